#pragma once
/// MNIST-family datasets stored as IDX files (Fashion-MNIST, MNIST), gzipped or not.
///
/// IDX format (LeCun et al.): 4-byte magic `00 00 TT NN` (TT = 0x08 unsigned byte data,
/// NN = number of dimensions), NN big-endian uint32 sizes, then the row-major body.

#include <torch/torch.h>

#include <string>

#include "vaegan/data/image_dataset.h"

namespace vaegan {

/// Reads one IDX file of unsigned bytes, gzip-compressed or plain (detected by zlib).
/// Returns a `uint8` tensor whose shape is the header's dimensions.
/// `expected_dims` > 0 also checks the number of dimensions.
/// Throws `InputError` naming `path` when the file is missing or unreadable, the magic is not
/// `00 00 08 NN`, the dimension count differs from `expected_dims`, or the body is shorter or
/// longer than the header says.
torch::Tensor read_idx(const std::string& path, int64_t expected_dims = 0);

/// Writes a `uint8` tensor as an IDX file (plain, or gzip when `path` ends in `.gz`).
/// Used by tests and tools to build small fixtures. Throws `std::runtime_error` on I/O failure.
void write_idx(const std::string& path, const torch::Tensor& data);

/// An image dataset with labels, held in memory.
///
/// images: float32 `[N, C, H, W]`, values in `[-1, 1]`; labels: int64 `[N]`.
class IdxDataset {
 public:
  /// Reads `images_path` (IDX, 3 dims `[N, 28, 28]` or any `[N, h, w]`) and `labels_path`
  /// (IDX, 1 dim `[N]`). Images are scaled from 0..255 to `[-1, 1]` and, when `image_size`
  /// is larger than the stored size, padded symmetrically with -1 (black) to
  /// `[N, 1, image_size, image_size]` (28 -> 32 for the `small32` preset, docs/design.md, "Architectures").
  /// Throws `InputError` for any bad file (see `read_idx`), when image and label counts
  /// differ, or when `image_size` is smaller than the stored images.
  IdxDataset(const std::string& images_path, const std::string& labels_path, int64_t image_size);

  /// Opens the standard file names in `data_dir` for `split`: `train-images-idx3-ubyte` /
  /// `t10k-images-idx3-ubyte` (and the `-labels-idx1-ubyte` twins), each with or without
  /// `.gz`, also accepting the `train-images.idx3-ubyte` spelling.
  /// Throws `InputError` naming the directory and the names looked for when none is found.
  static IdxDataset from_directory(const std::string& data_dir, Split split, int64_t image_size);

  /// All images, float32 `[N, 1, H, W]` in `[-1, 1]` (converted on each call).
  torch::Tensor images() const;
  /// All images as stored, `uint8` `[N, 1, H, W]`, padding 0.
  const torch::Tensor& pixels() const { return pixels_; }
  /// All labels, int64 `[N]`.
  const torch::Tensor& labels() const { return labels_; }

 private:
  torch::Tensor pixels_;
  torch::Tensor labels_;
};

}  // namespace vaegan
