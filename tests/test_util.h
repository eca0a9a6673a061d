#pragma once
// Helpers shared by the tests: temporary directories and tiny datasets.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stb_image_write.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vaegan/data/idx_dataset.h"

/// Skips the current test, with a message, where no CUDA GPU is visible (every test of the
/// `cuda` label starts with it; CI machines have no GPU).
#define VAEGAN_REQUIRE_CUDA()                                                                               \
  do {                                                                                                      \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU visible to this LibTorch: test skipped"; \
  } while (0)

namespace vaegan::test {
namespace fs = std::filesystem;

/// The lines of `run_dir/metrics.jsonl` without the wall-clock field (`images_per_sec`): what
/// two runs of the same configuration must agree on, line for line.
inline std::vector<std::string> metric_lines(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    j.erase("images_per_sec");
    lines.push_back(j.dump());
  }
  return lines;
}

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

/// Writes an MNIST-style dataset into `dir` (created when missing): `n_train` / `n_test` 28×28 images of simple shapes
/// (bright squares of class-dependent size) with labels 0..9, gzipped like Debian's files.
inline void write_tiny_idx_dataset(const std::string& dir, int64_t n_train, int64_t n_test) {
  fs::create_directories(dir);
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

/// Writes `n` CIFAR-10 records: record i has label i % 10 and every byte of channel c equal to
/// (i * 3 + c) % 256, except pixel (0, 1) of the red plane, which is 255 (to check the layout).
inline void write_cifar(const std::string& path, int64_t n, size_t truncate_by = 0) {
  std::string bytes;
  for (int64_t i = 0; i < n; ++i) {
    bytes.push_back(static_cast<char>(i % 10));
    for (int c = 0; c < 3; ++c) {
      for (int p = 0; p < 1024; ++p) bytes.push_back(static_cast<char>(c == 0 && p == 1 ? 255 : (i * 3 + c) % 256));
    }
  }
  bytes.resize(bytes.size() - truncate_by);
  std::ofstream(path, std::ios::binary) << bytes;
}

/// Writes an RGB image `w`×`h` whose left half is white and right half black, as PNG or JPEG.
inline void write_image(const std::string& path, int w, int h) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<uint8_t> px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) px[static_cast<size_t>((y * w + x) * 3 + c)] = x < w / 2 ? 255 : 0;
    }
  }
  const bool jpg = path.size() > 4 && path.substr(path.size() - 4) == ".jpg";
  const int ok = jpg ? stbi_write_jpg(path.c_str(), w, h, 3, px.data(), 95)
                     : stbi_write_png(path.c_str(), w, h, 3, px.data(), w * 3);
  ASSERT_NE(ok, 0) << path;
}

/// A CelebA-style folder: `n` images, partitions i % 3, attributes (Smiling = +1 for even i).
inline void write_celeba(const std::string& dir, int n, bool short_row = false) {
  std::ofstream part(dir + "/list_eval_partition.txt"), attr(dir + "/list_attr_celeba.txt");
  attr << n << "\nSmiling Young\n";
  for (int i = 0; i < n; ++i) {
    const std::string name = fmt::format("{:06d}.jpg", i + 1);
    write_image(dir + "/img_align_celeba/" + name, 178, 218);
    part << name << " " << i % 3 << "\n";
    attr << name << (i % 2 == 0 ? "  1" : " -1");
    if (!(short_row && i == 4)) attr << " -1";
    attr << "\n";
  }
}

}  // namespace vaegan::test
