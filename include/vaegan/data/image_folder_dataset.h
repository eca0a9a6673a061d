#pragma once
/// Any folder of PNG/JPEG images (non-square ones included), decoded on demand by the
/// loader's background threads (stb_image), centre-cropped to a square and resized.

#include <memory>
#include <string>
#include <vector>

#include "vaegan/data/image_dataset.h"

namespace vaegan {

/// Decodes the PNG or JPEG file `path` (told apart by their signatures, not the name) to `uint8`
/// `[channels, size, size]`: JPEG with libjpeg-turbo (CMYK ones too), PNG with stb_image; converted to grey (1) or RGB
/// (3), a PNG with an alpha channel composited over white first, cropped to a square of side `crop` (0: the largest
/// square; clamped to the image), centred, or from row `crop_top` when it is >= 0 (clamped so that the square fits),
/// then resized to `size` (stb_image_resize's default filter; a square already of that size is kept as it is). Throws
/// `ImageReadError` naming `path` with the decoder's reason when it cannot be read or decoded, or when it has more than
/// 8192×8192 pixels (checked before decoding).
torch::Tensor decode_image_file(const std::string& path, int64_t channels, int64_t size, int64_t crop = 0,
                                int64_t crop_top = -1);

/// `decode_image_file` for a file's content `bytes` already in memory (an upload); `path` names it
/// in the messages.
torch::Tensor decode_image_bytes(const std::string& bytes, const std::string& path, int64_t channels, int64_t size,
                                 int64_t crop = 0, int64_t crop_top = -1);

/// Image files under `root`, recursively, sorted: extensions .png .jpg .jpeg (any case).
/// Directory links are followed, each directory entered once; an entry that cannot be examined
/// (a link loop, a dangling link) is skipped with a warning. Throws `InputError` when `root`
/// itself cannot be listed.
std::vector<std::string> list_image_files(const std::string& root);

/// Seed of the permutation that picks a folder's held-out images (`ImageFolderDataset`).
constexpr uint64_t kValidationSplitSeed = 20161231;

/// A folder of images. Labels: when every image lies in a first-level subfolder, the sorted
/// subfolder names are the classes; otherwise there are none (-1). Splits: when `root` has
/// `train/` and `test/` subfolders they are the splits; otherwise a fraction `val_fraction` of
/// the images, drawn with the fixed seed `kValidationSplitSeed` (the same files on every run), is
/// the test split and the rest the train split (`val_fraction` 0: both splits are every image).
class ImageFolderDataset : public ImageDataset {
 public:
  /// Lists the images of `split` under `root`. Throws `InputError` naming `root` when it does not
  /// exist or holds no image file, or when `channels` is not 1 or 3.
  /// Throws `InputError` naming `--val-fraction` when the split would leave no training image.
  ImageFolderDataset(const std::string& root, Split split, int64_t channels, int64_t image_size,
                     double val_fraction = 0);
  /// An explicit file list (CelebA) with labels (-1 for none; empty: all -1), cropped as
  /// `decode_image_file` says.
  ImageFolderDataset(std::vector<std::string> files, std::vector<int64_t> labels, std::string source, int64_t channels,
                     int64_t image_size, int64_t crop, int64_t crop_top = -1);

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int64_t channels() const override { return channels_; }
  int64_t image_size() const override { return image_size_; }
  torch::Tensor image(int64_t i) const override;
  int64_t label(int64_t i) const override;
  std::vector<std::string> class_names() const override { return class_names_; }
  std::string summary() const override;
  const std::vector<std::string>& files() const { return files_; }

 private:
  /// Keeps the files of `split` when a fraction `val_fraction` is held out.
  void hold_out(Split split, double val_fraction);

  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
  std::vector<std::string> class_names_;
  std::string source_;
  int64_t channels_, image_size_, crop_ = 0, crop_top_ = -1;
};

}  // namespace vaegan
