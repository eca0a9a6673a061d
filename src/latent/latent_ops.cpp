#include "vaegan/latent/latent_ops.h"

#include <fmt/format.h>

#include <algorithm>

#include "vaegan/core/error.h"
#include "vaegan/data/celeba.h"

namespace vaegan {

torch::Tensor interpolate_latents(const torch::Tensor& a, const torch::Tensor& b, int64_t steps, bool slerp) {
  TORCH_CHECK(steps >= 2, "interpolate_latents: steps must be at least 2");
  TORCH_CHECK(a.sizes() == b.sizes() && a.dim() == 2, "interpolate_latents: expected two [R, Z] of one shape");
  const torch::Tensor t = torch::linspace(0, 1, steps, a.options()).view({1, steps, 1});  // [1, T, 1]
  const torch::Tensor a3 = a.unsqueeze(1), b3 = b.unsqueeze(1);                           // [R, 1, Z]
  const torch::Tensor linear = a3 + t * (b3 - a3);
  if (!slerp) return linear;
  const torch::Tensor na = a3.norm(2, 2, true), nb = b3.norm(2, 2, true);  // [R, 1, 1]
  const torch::Tensor cos = ((a3 / na) * (b3 / nb)).sum(2, true).clamp(-1, 1);
  const torch::Tensor omega = torch::acos(cos), so = torch::sin(omega);
  const torch::Tensor unit =
      (torch::sin((1 - t) * omega) * (a3 / na) + torch::sin(t * omega) * (b3 / nb)) / so.clamp_min(1e-7);
  const torch::Tensor spherical = unit * (na + t * (nb - na));
  return torch::where(so.abs() < 1e-6, linear, spherical);
}

torch::Tensor attribute_vector(const torch::Tensor& latents, const torch::Tensor& has) {
  const torch::Tensor mask = has.to(torch::kBool);
  const int64_t with = mask.sum().item<int64_t>(), without = mask.numel() - with;
  if (with == 0 || without == 0) {
    throw InputError(fmt::format("--attribute: {} of {} images have the attribute; both groups must be non-empty", with,
                                 mask.numel()));
  }
  return latents.index({mask}).mean(0) - latents.index({mask.logical_not()}).mean(0);
}

int64_t class_index(const std::vector<std::string>& names, const std::string& name, const std::string& flag) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<int64_t>(i);
  }
  if (!name.empty() && name.size() < 10 && std::all_of(name.begin(), name.end(), ::isdigit) &&
      std::stoll(name) < static_cast<int64_t>(names.size())) {
    return std::stoll(name);
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  throw InputError(fmt::format("{}: no class '{}' (classes: {})", flag, name, list.empty() ? "none" : list));
}

AttributeSelection select_by_class(const ImageDataset& data, int64_t n, const std::string& to_class,
                                   const std::string& from_class) {
  const auto names = data.class_names();
  torch::Tensor labels = torch::empty({n}, torch::kLong);
  auto acc = labels.accessor<int64_t, 1>();
  for (int64_t i = 0; i < n; ++i) acc[i] = data.label(i);
  AttributeSelection s;
  if (from_class.empty()) {
    s.has = labels.eq(class_index(names, to_class, "--attribute"));
    s.keep = torch::ones({n}, torch::kBool);
    return s;
  }
  const int64_t from = class_index(names, from_class, "--from-class");
  s.has = labels.eq(class_index(names, to_class, "--to-class"));
  s.keep = labels.eq(from).logical_or(s.has);
  return s;
}

AttributeSelection select_by_named_attribute(const ImageDataset& data, int64_t n, const std::string& attribute) {
  const auto* celeba = dynamic_cast<const CelebADataset*>(&data);
  if (!celeba || !celeba->attributes().defined()) {
    throw InputError(
        fmt::format("--attribute: this dataset has no named attributes (CelebA with list_attr_celeba.txt has); "
                    "use --attribute class=NAME or --from-class/--to-class"));
  }
  CelebAAttributes lookup;
  lookup.names = celeba->attribute_names();
  AttributeSelection s;
  s.has = celeba->attributes().narrow(0, 0, n).select(1, lookup.index(attribute)).gt(0);
  s.keep = torch::ones({n}, torch::kBool);
  return s;
}

}  // namespace vaegan
