#include "vaegan/data/datasets.h"

#include <fmt/format.h>

#include "vaegan/core/error.h"
#include "vaegan/data/celeba.h"
#include "vaegan/data/cifar10_dataset.h"
#include "vaegan/data/idx_dataset.h"
#include "vaegan/data/image_folder_dataset.h"

namespace vaegan {

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"fashion-mnist", "mnist", "cifar10", "celeba", "folder"};
  return names;
}

int64_t dataset_channels(const std::string& name) {
  if (name == "fashion-mnist" || name == "mnist") return 1;
  if (name == "cifar10" || name == "celeba") return 3;
  if (name == "folder") return 0;
  throw InputError(
      fmt::format("--dataset: unknown dataset '{}' (expected fashion-mnist, mnist, cifar10, celeba or folder)", name));
}

std::shared_ptr<ImageDataset> open_dataset(const std::string& name, const std::string& data_dir, Split split,
                                           int64_t channels, int64_t image_size, const DatasetOptions& options) {
  const int64_t own = dataset_channels(name);
  if (own != 0 && own != channels) {
    throw InputError(fmt::format("--channels: {} images have {} channel(s), not {}", name, own, channels));
  }
  if (name == "fashion-mnist" || name == "mnist") {
    // IDX images are 28×28: padded with black to larger sizes (docs/design.md, "Architectures"), resized to smaller.
    IdxDataset idx = IdxDataset::from_directory(data_dir, split, std::max<int64_t>(image_size, 28));
    torch::Tensor images = idx.pixels();
    if (images.size(2) != image_size) images = fit_image_size(images, image_size, /*pad=*/false);
    static const std::vector<std::string> fashion = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    static const std::vector<std::string> digits = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    return std::make_shared<TensorImageDataset>(images, idx.labels(), data_dir, name == "mnist" ? digits : fashion);
  }
  if (name == "cifar10") return load_cifar10(data_dir, split, image_size);
  if (name == "celeba") return std::make_shared<CelebADataset>(data_dir, split, image_size, options.celeba_protocol());
  return std::make_shared<ImageFolderDataset>(data_dir, split, channels, image_size, options.val_fraction());
}

std::string default_data_dir(const std::string& dataset) {
  if (dataset == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  return "data/" + dataset;
}

int64_t resolve_channels(const std::string& name, int64_t requested) {
  if (requested < 0) throw InputError(fmt::format("--channels: must be 0 (the dataset's), 1 or 3, got {}", requested));
  if (requested > 0) return requested;
  const int64_t own = dataset_channels(name);
  return own > 0 ? own : 3;
}

}  // namespace vaegan
