#pragma once
/// One name table per enum: the strings an enum value has in `config.json`, on the command line
/// and in logs all come from it, so a knob is an enum in the code and a word on disk.
///
/// nlohmann's `NLOHMANN_JSON_SERIALIZE_ENUM` maps an unknown string silently to the first value;
/// a configuration file with a typo must be an error instead, so `VAEGAN_ENUM_JSON` reads
/// strictly through `parse_enum`.

#include <fmt/format.h>

#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "vaegan/core/error.h"

namespace vaegan {

/// Specialized for every enum `E` with a public table:
/// `static constexpr const char* key` (its config key, used in messages) and
/// `static constexpr std::array<std::pair<E, const char*>, N> values`.
template <typename E>
struct EnumTable;

/// The name of `value` in its table (e.g. `"non-saturating"`).
template <typename E>
std::string enum_name(E value) {
  for (const auto& [v, name] : EnumTable<E>::values) {
    if (v == value) return name;
  }
  return "?";  // unreachable for values of the table
}

/// Every name of `E`, in table order.
template <typename E>
std::vector<std::string> enum_names() {
  std::vector<std::string> out;
  for (const auto& entry : EnumTable<E>::values) out.emplace_back(entry.second);
  return out;
}

/// The value named `name`. Throws `InputError` "`what`: unknown value 'x' (expected a, b or c)";
/// `what` defaults to the table's config key.
template <typename E>
E parse_enum(const std::string& name, const std::string& what = EnumTable<E>::key) {
  std::string expected;
  const auto& values = EnumTable<E>::values;
  for (size_t i = 0; i < values.size(); ++i) {
    if (name == values[i].second) return values[i].first;
    expected += (i == 0 ? "" : i + 1 == values.size() ? " or " : ", ") + std::string(values[i].second);
  }
  throw InputError(fmt::format("{}: unknown value '{}' (expected {})", what, name, expected));
}

}  // namespace vaegan

/// Declares the name table of enum `E` (its config key `KEY` and `N` `{value, "name"}` pairs) and
/// its strict JSON conversion. Use inside `namespace vaegan`.
#define VAEGAN_ENUM_NAMES(E, KEY, N, ...)                                               \
  template <>                                                                           \
  struct EnumTable<E> {                                                                 \
    static constexpr const char* key = KEY;                                             \
    static constexpr std::array<std::pair<E, const char*>, N> values = {{__VA_ARGS__}}; \
  };                                                                                    \
  VAEGAN_ENUM_JSON(E)

/// Declares strict JSON conversion for enum `E` (it must have an `EnumTable`), in `E`'s namespace.
#define VAEGAN_ENUM_JSON(E)                                                           \
  inline void to_json(nlohmann::json& j, E value) { j = ::vaegan::enum_name(value); } \
  inline void from_json(const nlohmann::json& j, E& value) { value = ::vaegan::parse_enum<E>(j.get<std::string>()); }
