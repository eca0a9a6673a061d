#pragma once
/// CelebA (Liu et al. 2015), aligned and cropped version as the paper uses it (§4): the images
/// `img_align_celeba/*.jpg` (178×218), `list_eval_partition.txt` ("FILE 0|1|2": train,
/// validation, test) and `list_attr_celeba.txt` (a count line, a line of 40 attribute names, then
/// "FILE v1 .. v40" with v = 1 or -1). Preprocessing: a centred 148×148 crop resized to the
/// model's size (64 for `paper64`), as common VAE-GAN code does.

#include <memory>
#include <string>
#include <vector>

#include "vaegan/core/enum_names.h"
#include "vaegan/data/image_folder_dataset.h"

namespace vaegan {

/// Side of the square crop taken from each 178×218 CelebA image.
constexpr int64_t kCelebACrop = 148;
/// First row of the crop under `CelebAProtocol::kOriginal` (the authors' bounding box: rows
/// 40 to 187, columns 15 to 162, i.e. 5 rows lower than the centred crop).
constexpr int64_t kCelebAOriginalCropTop = 40;

/// Which CelebA images train and how they are cropped (`--celeba-protocol`).
enum class CelebAProtocol {
  kStandard,  ///< train on partition 0, test on 2; the centred 148×148 crop
  /// The authors' released code (`dataset/celeba.py` of
  /// github.com/andersbll/autoencoding_beyond_pixels, `split='test'`): train on partitions 0
  /// and 1 (train and validation), test on 2; the 148×148 crop from row 40, column 15.
  kOriginal,
};
VAEGAN_ENUM_NAMES(CelebAProtocol, "--celeba-protocol", 2, {CelebAProtocol::kStandard, "standard"},
                  {CelebAProtocol::kOriginal, "original"})

/// The 40 binary attributes of every image.
struct CelebAAttributes {
  std::vector<std::string> names;  ///< e.g. "Smiling", "Eyeglasses"
  std::vector<std::string> files;  ///< image file names, in file order
  torch::Tensor values;            ///< int8 `[N, 40]`, +1 or -1
  /// Column of attribute `name`; throws `InputError` listing the names when there is none.
  int64_t index(const std::string& name) const;
};

/// Reads `list_attr_celeba.txt`. Throws `InputError` naming the file and line when the header is
/// missing, a row has a different number of values than there are names, or a value is not ±1.
CelebAAttributes read_celeba_attributes(const std::string& path);

/// CelebA as an `ImageFolderDataset` of one split (train: partition 0, or 0 and 1 under
/// `kOriginal`; test: partition 2), with the attribute rows of its images.
class CelebADataset : public ImageFolderDataset {
 public:
  /// Throws `InputError` naming the file when `data_dir` lacks `img_align_celeba/` or
  /// `list_eval_partition.txt`, a partition line is malformed, or the split is empty.
  /// Attributes are read when `list_attr_celeba.txt` exists (and must then be well formed).
  CelebADataset(const std::string& data_dir, Split split, int64_t image_size,
                CelebAProtocol protocol = CelebAProtocol::kStandard);
  /// Attribute values of this split's images, int8 `[N, 40]` (undefined without the file).
  const torch::Tensor& attributes() const { return attributes_; }
  const std::vector<std::string>& attribute_names() const { return attribute_names_; }

 private:
  torch::Tensor attributes_;
  std::vector<std::string> attribute_names_;
};

}  // namespace vaegan
