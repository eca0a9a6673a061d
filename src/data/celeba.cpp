#include "vaegan/data/celeba.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "vaegan/core/error.h"

namespace vaegan {
namespace fs = std::filesystem;

namespace {

/// Full paths of the images of `split`, from `list_eval_partition.txt`.
std::vector<std::string> celeba_files(const std::string& data_dir, Split split, CelebAProtocol protocol) {
  const fs::path images = fs::path(data_dir) / "img_align_celeba";
  const fs::path partition = fs::path(data_dir) / "list_eval_partition.txt";
  if (!fs::is_directory(images)) {
    throw InputError(
        fmt::format("--data-dir: {} has no img_align_celeba/ folder (CelebA, aligned and cropped)", data_dir));
  }
  std::ifstream in(partition);
  if (!in) throw InputError(fmt::format("{}: cannot open (CelebA's evaluation partition list)", partition.string()));
  const int wanted = split == Split::kTrain ? 0 : 2;
  // the authors train on the validation partition (1) too
  const bool with_validation = split == Split::kTrain && protocol == CelebAProtocol::kOriginal;
  std::vector<std::string> files;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    std::istringstream row(line);
    std::string name;
    int part = -1;
    if (!(row >> name)) continue;  // blank line
    if (!(row >> part) || part < 0 || part > 2) {
      throw InputError(fmt::format("{}:{}: expected \"FILE 0|1|2\", got \"{}\"", partition.string(), number, line));
    }
    if (part == wanted || (with_validation && part == 1)) files.push_back((images / name).string());
  }
  if (files.empty()) {
    throw InputError(fmt::format("{}: no image of the {} partition ({})", partition.string(),
                                 split == Split::kTrain ? "train" : "test", wanted));
  }
  return files;
}

}  // namespace

int64_t CelebAAttributes::index(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<int64_t>(i);
  }
  throw InputError(fmt::format("--attribute: CelebA has no attribute '{}' (it has {})", name, fmt::join(names, ", ")));
}

CelebAAttributes read_celeba_attributes(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{}: cannot open (CelebA's attribute list)", path));
  CelebAAttributes a;
  std::string line;
  int64_t count = 0;
  if (!std::getline(in, line) || !(std::istringstream(line) >> count) || count < 0) {
    throw InputError(fmt::format("{}:1: expected the number of images, got \"{}\"", path, line));
  }
  if (!std::getline(in, line)) throw InputError(fmt::format("{}:2: missing the line of attribute names", path));
  {
    std::istringstream names(line);
    for (std::string n; names >> n;) a.names.push_back(n);
  }
  if (a.names.empty()) throw InputError(fmt::format("{}:2: no attribute names", path));
  const int64_t k = static_cast<int64_t>(a.names.size());
  std::vector<int8_t> values;
  for (int64_t number = 3; std::getline(in, line); ++number) {
    std::istringstream row(line);
    std::string file;
    if (!(row >> file)) continue;
    int64_t got = 0;
    for (int v; row >> v; ++got) {
      if (v != 1 && v != -1) throw InputError(fmt::format("{}:{}: value {} is not 1 or -1", path, number, v));
      values.push_back(static_cast<int8_t>(v));
    }
    if (got != k || !row.eof()) {
      throw InputError(fmt::format("{}:{}: {} has {} attribute values, expected {} (one per name on line 2)", path,
                                   number, file, got, k));
    }
    a.files.push_back(file);
  }
  const int64_t n = static_cast<int64_t>(a.files.size());
  a.values = torch::from_blob(values.data(), {n, k}, torch::kInt8).clone();
  return a;
}

CelebADataset::CelebADataset(const std::string& data_dir, Split split, int64_t image_size, CelebAProtocol protocol)
    : ImageFolderDataset(celeba_files(data_dir, split, protocol), {}, data_dir, 3, image_size, kCelebACrop,
                         protocol == CelebAProtocol::kOriginal ? kCelebAOriginalCropTop : -1) {
  const fs::path attr_path = fs::path(data_dir) / "list_attr_celeba.txt";
  if (!fs::exists(attr_path)) return;
  CelebAAttributes a = read_celeba_attributes(attr_path.string());
  std::unordered_map<std::string, int64_t> row;
  for (size_t i = 0; i < a.files.size(); ++i) row.emplace(a.files[i], static_cast<int64_t>(i));
  std::vector<int64_t> rows;
  for (const auto& f : files()) {
    const std::string name = fs::path(f).filename().string();
    auto it = row.find(name);
    if (it == row.end()) throw InputError(fmt::format("{}: no attribute row for {}", attr_path.string(), name));
    rows.push_back(it->second);
  }
  attributes_ = a.values.index_select(0, torch::tensor(rows, torch::kLong));
  attribute_names_ = a.names;
}

}  // namespace vaegan
