#pragma once
// Helpers shared by the tests: temporary directories and tiny datasets.
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "vaegan/data/idx_dataset.h"

namespace vaegan::test {

/// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vaegan-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Writes an MNIST-style dataset into `dir`: `n_train` / `n_test` 28×28 images of simple shapes
/// (bright squares of class-dependent size) with labels 0..9, gzipped like Debian's files.
inline void write_tiny_idx_dataset(const std::string& dir, int64_t n_train, int64_t n_test) {
  auto make = [](int64_t n, uint64_t seed) {
    torch::manual_seed(seed);
    torch::Tensor labels = torch::randint(0, 10, {n}, torch::kLong);
    torch::Tensor images = torch::zeros({n, 28, 28}, torch::kUInt8);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = labels[i].item<int64_t>();
      images[i].narrow(0, 12 - k, 4 + 2 * k).narrow(1, 12 - k, 4 + 2 * k).fill_(200 + 5 * k);
    }
    return std::make_pair(images, labels.to(torch::kUInt8));
  };
  auto [train_x, train_y] = make(n_train, 1);
  auto [test_x, test_y] = make(n_test, 2);
  write_idx(dir + "/train-images-idx3-ubyte.gz", train_x);
  write_idx(dir + "/train-labels-idx1-ubyte.gz", train_y);
  write_idx(dir + "/t10k-images-idx3-ubyte.gz", test_x);
  write_idx(dir + "/t10k-labels-idx1-ubyte.gz", test_y);
}

}  // namespace vaegan::test
