#pragma once
/// Opening a dataset by name (`--dataset`).

#include <memory>
#include <string>
#include <vector>

#include "vaegan/data/celeba.h"
#include "vaegan/data/image_dataset.h"

namespace vaegan {

/// Names accepted by `--dataset`: fashion-mnist, mnist, cifar10, celeba, folder.
const std::vector<std::string>& dataset_names();

/// Image channels of a named dataset (1 for the MNIST family, 3 for cifar10 and celeba);
/// `folder` has none of its own: returns 0 (the user's `--channels`).
int64_t dataset_channels(const std::string& name);

/// The channel count to use for dataset `name`: `requested` when positive, else the dataset's own
/// (`dataset_channels`), else 3 (a folder of colour images). Throws `InputError` naming
/// `--channels` when `requested` is negative.
int64_t resolve_channels(const std::string& name, int64_t requested);

/// Choices that change which images a split holds.
struct DatasetOptions {
  /// celeba: partitions and crop (`CelebADataset`)
  TORCH_ARG(CelebAProtocol, celeba_protocol) = CelebAProtocol::kStandard;
  /// folder without `train/` and `test/`: the fraction held out as its test split (0: none)
  TORCH_ARG(double, val_fraction) = 0.1;
};

/// Opens `split` of the dataset `name` in `data_dir` at `image_size` with `channels`:
/// fashion-mnist / mnist (IDX, `IdxDataset::from_directory`, padded to the size), cifar10
/// (`load_cifar10`), celeba (`CelebADataset` under `options.celeba_protocol`), folder (`ImageFolderDataset` with
/// `options.val_fraction`).
/// Throws `InputError` naming the flag or file for an unknown name, a channel count the dataset
/// does not have, or unreadable data.
std::shared_ptr<ImageDataset> open_dataset(const std::string& name, const std::string& data_dir, Split split,
                                           int64_t channels, int64_t image_size, const DatasetOptions& options = {});

/// Default data directory of a named dataset: Debian's `dataset-fashion-mnist` package path
/// for `fashion-mnist`, `data/NAME` otherwise.
std::string default_data_dir(const std::string& dataset);

}  // namespace vaegan
