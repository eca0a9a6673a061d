#pragma once
/// The dataset interface the trainer and the tools read: N square images of C channels, with
/// optional class labels, held in memory or decoded from files on demand.
///
/// Images travel as `uint8` `[C, S, S]` (0..255) until a batch is assembled; models see float32
/// in `[-1, 1]` (`to_model_range`).

#include <torch/torch.h>

#include <array>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "vaegan/core/enum_names.h"

namespace vaegan {

/// Which half of a dataset to read.
enum class Split { kTrain, kTest };
VAEGAN_ENUM_NAMES(Split, "--split", 2, {Split::kTrain, "train"}, {Split::kTest, "test"})

/// An image that cannot be read or decoded (file-backed datasets). The loader skips such images
/// with one warning each; other code reports it like `InputError`.
class ImageReadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// `uint8` images (any shape, on any device) -> float32 in `[-1, 1]`: `x * (1 / 127.5) - 1`,
/// the same bits on a CPU and a GPU. (A division by 127.5 would not be: PyTorch's CUDA kernel
/// divides by a scalar as a multiplication by its float reciprocal, the CPU's divides exactly,
/// and some pixels then differ by one unit in the last place.)
torch::Tensor to_model_range(const torch::Tensor& images);
/// float32 images in `[-1, 1]` -> `uint8` 0..255 (rounded, clamped); inverse of `to_model_range`.
torch::Tensor to_uint8_range(const torch::Tensor& images);

/// Base class of every dataset. Thread-safe for concurrent `image` calls.
class ImageDataset {
 public:
  virtual ~ImageDataset() = default;
  /// N: number of images.
  virtual int64_t size() const = 0;
  /// C: channels (1 or 3).
  virtual int64_t channels() const = 0;
  /// S: height and width.
  virtual int64_t image_size() const = 0;
  /// Image `i` as `uint8` `[C, S, S]`. Throws `ImageReadError` naming the file when it cannot be
  /// read, `std::out_of_range` for a bad index.
  virtual torch::Tensor image(int64_t i) const = 0;
  /// Class label of image `i`, or -1 when the dataset has no labels.
  virtual int64_t label(int64_t i) const = 0;
  /// Class names indexed by label; empty when the dataset has no labels.
  virtual std::vector<std::string> class_names() const { return {}; }
  /// All images as `uint8` `[N, C, S, S]` when held in memory (the loader then gathers batches
  /// with one `index_select`); undefined for file-backed datasets.
  virtual torch::Tensor in_memory() const { return {}; }
  /// Short description for logs, e.g. "60000 images 1x32x32 from DIR".
  virtual std::string summary() const = 0;

  /// Images `indices` as float32 `[K, C, S, S]` in `[-1, 1]` (for grids and evaluation).
  /// Throws `ImageReadError` when one of them cannot be read.
  torch::Tensor images(const std::vector<int64_t>& indices) const;
  /// The first `n` readable images (fewer when the dataset is smaller), float32 `[K, C, S, S]`
  /// in `[-1, 1]`; unreadable ones are skipped with one warning each. Throws `InputError` when
  /// none can be read.
  torch::Tensor first_images(int64_t n) const;

  /// Records that image `i` could not be read because of `error` (which names the file) and logs
  /// "skipping unreadable image: ERROR" once per process for each distinct error: the train and
  /// test splits of a folder without `train/`, `test/` and a held-out fraction are the same files, reported once.
  void mark_unreadable(int64_t i, const std::string& error) const;
  /// How many distinct images were found unreadable so far.
  int64_t unreadable_count() const;

 private:
  mutable std::mutex unreadable_mutex_;
  mutable std::set<int64_t> unreadable_;
};

/// A dataset held in memory: `uint8` images `[N, C, S, S]` and int64 labels `[N]` (or -1s).
class TensorImageDataset : public ImageDataset {
 public:
  /// `source` names where the data came from (for messages). Throws `std::invalid_argument`
  /// when the shapes do not fit (`images` not 4-D square `uint8`, label count differs).
  TensorImageDataset(torch::Tensor images, torch::Tensor labels, std::string source,
                     std::vector<std::string> class_names = {});
  int64_t size() const override { return images_.size(0); }
  int64_t channels() const override { return images_.size(1); }
  int64_t image_size() const override { return images_.size(2); }
  torch::Tensor image(int64_t i) const override;
  int64_t label(int64_t i) const override;
  std::vector<std::string> class_names() const override { return class_names_; }
  torch::Tensor in_memory() const override { return images_; }
  std::string summary() const override;
  /// All labels, int64 `[N]` (-1 where there are none).
  const torch::Tensor& labels() const { return labels_; }

 private:
  torch::Tensor images_, labels_;
  std::string source_;
  std::vector<std::string> class_names_;
};

/// Brings `uint8` images `[N, C, h, w]` to `[N, C, size, size]`: MNIST-style images smaller than
/// `size` are padded with black (0) around the centre when `pad` (28 -> 32, docs/design.md, "Architectures");
/// otherwise they are resized (bilinear, antialiased when shrinking) after a centre crop to a
/// square.
torch::Tensor fit_image_size(const torch::Tensor& images, int64_t size, bool pad);

}  // namespace vaegan
