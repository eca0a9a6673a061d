#include "vaegan/data/image_folder_dataset.h"

#include <fmt/format.h>
#include <stb_image.h>
#include <stb_image_resize.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

#include "vaegan/core/error.h"

namespace vaegan {
namespace fs = std::filesystem;

torch::Tensor decode_image_file(const std::string& path, int64_t channels, int64_t size, int64_t crop) {
  TORCH_CHECK(channels == 1 || channels == 3, "decode_image_file: channels must be 1 or 3");
  int w = 0, h = 0, stored = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load(path.c_str(), &w, &h, &stored, static_cast<int>(channels)),
                                                   stbi_image_free);
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    throw ImageReadError(fmt::format("{}: cannot decode image ({})", path, reason ? reason : "unknown reason"));
  }
  const int64_t c = channels;
  int64_t side = std::min(w, h);
  if (crop > 0) side = std::min(side, crop);
  const int64_t top = (h - side) / 2, left = (w - side) / 2;
  const stbi_uc* origin = pixels.get() + (top * w + left) * c;
  torch::Tensor out = torch::empty({size, size, c}, torch::kUInt8);  // HWC, as stb writes it
  if (stbir_resize_uint8(origin, static_cast<int>(side), static_cast<int>(side), static_cast<int>(w * c),
                         out.data_ptr<uint8_t>(), static_cast<int>(size), static_cast<int>(size),
                         static_cast<int>(size * c), static_cast<int>(c)) == 0) {
    throw ImageReadError(fmt::format("{}: cannot resize {}x{} to {}x{}", path, side, side, size, size));
  }
  return out.permute({2, 0, 1}).contiguous();  // [C, S, S]
}

std::vector<std::string> list_image_files(const std::string& root) {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::follow_directory_symlink, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files.push_back(it->path().string());
  }
  if (ec) throw InputError(fmt::format("{}: cannot list ({})", root, ec.message()));
  std::sort(files.begin(), files.end());
  return files;
}

ImageFolderDataset::ImageFolderDataset(const std::string& root_in, Split split, int64_t channels, int64_t image_size)
    : source_(root_in), channels_(channels), image_size_(image_size) {
  if (channels != 1 && channels != 3) throw InputError(fmt::format("--channels: must be 1 or 3, got {}", channels));
  fs::path root(root_in);
  if (!fs::is_directory(root)) throw InputError(fmt::format("--data-dir: {} is not a directory", root_in));
  if (fs::is_directory(root / "train") && fs::is_directory(root / "test")) {
    root /= split == Split::kTrain ? "train" : "test";
    source_ = root.string();
  }
  files_ = list_image_files(root.string());
  if (files_.empty()) {
    throw InputError(
        fmt::format("--data-dir: {} holds no image file (looked for .png, .jpg, .jpeg, recursively)", root.string()));
  }
  // Class subfolders: every file one or more levels below a first-level folder.
  std::map<std::string, int64_t> classes;
  bool all_in_subfolders = true;
  std::vector<std::string> first_level;
  for (const auto& f : files_) {
    const fs::path rel = fs::path(f).lexically_relative(root);
    if (std::distance(rel.begin(), rel.end()) < 2) {
      all_in_subfolders = false;
      break;
    }
    first_level.push_back(rel.begin()->string());
    classes.emplace(first_level.back(), 0);
  }
  labels_.assign(files_.size(), -1);
  if (all_in_subfolders) {
    int64_t k = 0;
    for (auto& [name, index] : classes) {
      index = k++;
      class_names_.push_back(name);
    }
    for (size_t i = 0; i < files_.size(); ++i) labels_[i] = classes.at(first_level[i]);
  }
}

ImageFolderDataset::ImageFolderDataset(std::vector<std::string> files, std::vector<int64_t> labels, std::string source,
                                       int64_t channels, int64_t image_size, int64_t crop)
    : files_(std::move(files)),
      labels_(std::move(labels)),
      source_(std::move(source)),
      channels_(channels),
      image_size_(image_size),
      crop_(crop) {
  if (labels_.empty()) labels_.assign(files_.size(), -1);
  TORCH_CHECK(labels_.size() == files_.size(), "ImageFolderDataset: one label per file expected");
}

torch::Tensor ImageFolderDataset::image(int64_t i) const {
  if (i < 0 || i >= size()) throw std::out_of_range(fmt::format("{}: no image {}", source_, i));
  return decode_image_file(files_[static_cast<size_t>(i)], channels_, image_size_, crop_);
}

int64_t ImageFolderDataset::label(int64_t i) const { return labels_.at(static_cast<size_t>(i)); }

std::string ImageFolderDataset::summary() const {
  return fmt::format("{} image files from {} ({}{}x{}x{})", size(), source_,
                     class_names_.empty() ? "" : fmt::format("{} classes, ", class_names_.size()), channels_,
                     image_size_, image_size_);
}

}  // namespace vaegan
