#include "vaegan/data/cifar10_dataset.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <fstream>

#include "vaegan/core/error.h"

namespace vaegan {
namespace fs = std::filesystem;

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

std::pair<torch::Tensor, torch::Tensor> read_cifar10_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open (expected a CIFAR-10 binary batch)", path));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const int64_t size = static_cast<int64_t>(bytes.size());
  if (size == 0 || size % kCifar10RecordBytes != 0) {
    throw InputError(fmt::format(
        "{}: {} bytes is not a whole number of {}-byte CIFAR-10 records (truncated or not a CIFAR-10 binary file)",
        path, size, kCifar10RecordBytes));
  }
  const int64_t n = size / kCifar10RecordBytes;
  const torch::Tensor records =
      torch::from_blob(const_cast<char*>(bytes.data()), {n, kCifar10RecordBytes}, torch::kUInt8).clone();
  torch::Tensor labels = records.select(1, 0).to(torch::kLong);  // [N]
  const int64_t max_label = labels.max().item<int64_t>();
  if (max_label > 9) {
    const int64_t at = labels.gt(9).nonzero()[0][0].item<int64_t>();
    throw InputError(fmt::format("{}: record {} has label {} (expected 0..9)", path, at, labels[at].item<int64_t>()));
  }
  torch::Tensor images = records.narrow(1, 1, 3072).reshape({n, 3, 32, 32});  // R, G, B planes, row-major
  return {images, labels};
}

std::shared_ptr<TensorImageDataset> load_cifar10(const std::string& data_dir, Split split, int64_t image_size) {
  fs::path dir(data_dir);
  if (!fs::exists(dir / "test_batch.bin") && fs::exists(dir / "cifar-10-batches-bin" / "test_batch.bin")) {
    dir /= "cifar-10-batches-bin";
  }
  std::vector<std::string> names;
  if (split == Split::kTrain) {
    for (int i = 1; i <= 5; ++i) names.push_back(fmt::format("data_batch_{}.bin", i));
  } else {
    names.push_back("test_batch.bin");
  }
  std::vector<torch::Tensor> images, labels;
  for (const auto& name : names) {
    const fs::path p = dir / name;
    if (!fs::is_regular_file(p)) {
      throw InputError(
          fmt::format("{}: no {} (CIFAR-10 binary version expects {} there)", data_dir, name, fmt::join(names, ", ")));
    }
    auto [x, y] = read_cifar10_file(p.string());
    images.push_back(x);
    labels.push_back(y);
  }
  return std::make_shared<TensorImageDataset>(fit_image_size(torch::cat(images), image_size, /*pad=*/false),
                                              torch::cat(labels), dir.string(), cifar10_class_names());
}

}  // namespace vaegan
