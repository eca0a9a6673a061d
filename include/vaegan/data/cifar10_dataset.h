#pragma once
/// CIFAR-10, binary version (Krizhevsky 2009): `data_batch_1.bin` .. `data_batch_5.bin` (train)
/// and `test_batch.bin` (test), each a sequence of 3073-byte records: 1 label byte (0..9), then
/// 3072 bytes of a 32×32 image as three 1024-byte planes R, G, B in row-major order.

#include <memory>
#include <string>

#include "vaegan/data/image_dataset.h"

namespace vaegan {

/// Bytes per CIFAR-10 record.
constexpr int64_t kCifar10RecordBytes = 1 + 3 * 32 * 32;

/// The ten class names, indexed by label.
const std::vector<std::string>& cifar10_class_names();

/// Reads one CIFAR-10 binary file. Returns `{images uint8 [N, 3, 32, 32], labels int64 [N]}`.
/// Throws `InputError` naming `path` when it is missing, empty, not a whole number of records
/// (a truncated last record) or holds a label outside 0..9.
std::pair<torch::Tensor, torch::Tensor> read_cifar10_file(const std::string& path);

/// Opens the split of CIFAR-10 in `data_dir` (or in its `cifar-10-batches-bin/` subfolder),
/// brought to `image_size` (`fit_image_size`; 32 keeps the originals). Throws `InputError`
/// naming the directory and the files looked for when any is missing, or as `read_cifar10_file`.
std::shared_ptr<TensorImageDataset> load_cifar10(const std::string& data_dir, Split split, int64_t image_size);

}  // namespace vaegan
