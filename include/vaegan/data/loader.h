#pragma once
/// The batch loader: assembles training batches in a background thread so the trainer never
/// waits on files, applies augmentation, and skips unreadable images.

#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "vaegan/data/image_dataset.h"

namespace vaegan {

/// One batch: float32 images `[B, C, S, S]` in `[-1, 1]` and int64 labels `[B]` (-1: none).
struct Batch {
  torch::Tensor images;
  torch::Tensor labels;
  int64_t end_position = 0;  ///< entries of the order consumed up to and including this batch
};

/// Options of `BatchLoader`.
struct LoaderOptions {
  /// B: images per batch; the last partial batch of an epoch is dropped.
  TORCH_ARG(int64_t, batch_size) = 64;
  /// Mirror each image left-right with probability 1/2.
  TORCH_ARG(bool, horizontal_flip) = false;
  /// Seed of the flip decisions (with the epoch, so every epoch flips differently but
  /// reproducibly).
  TORCH_ARG(uint64_t, seed) = 0;
  /// Batches assembled ahead of the trainer.
  TORCH_ARG(int64_t, prefetch) = 3;
  /// Threads decoding the images of one batch (file-backed datasets; in-memory ones use one).
  TORCH_ARG(int64_t, threads) = 1;
  /// Put each batch's images in page-locked memory, so that a copy to a GPU with
  /// `non_blocking` overlaps with computation (as `DataLoader(pin_memory=True)`). Needs a
  /// LibTorch with CUDA and a visible GPU.
  TORCH_ARG(bool, pin_memory) = false;
  /// Where an in-memory dataset's batches are gathered: on a GPU the loader (one per epoch in
  /// `fit`) copies the dataset's uint8 images there when it is made, and gathers, converts and
  /// flips each batch on it (no host work or copy per step; the values equal the CPU's).
  /// File-backed datasets ignore it.
  TORCH_ARG(torch::Device, device) = torch::kCPU;
};

/// Iterates one epoch: the images of `order` (indices into `dataset`) in that order, in batches.
/// A file-backed dataset's batches are decoded by a background thread up to `prefetch` batches
/// ahead; an in-memory dataset's are gathered by `next` itself (a copy of a few hundred KiB: a
/// thread would only compete with LibTorch's intra-op pool), on the GPU when
/// `LoaderOptions::device` names one. An image that cannot be read is
/// replaced by the next one of `order`, with one warning per image (spdlog) naming it; the
/// batches therefore stay full and their content depends only on `order` and on which files are
/// unreadable, not on timing.
class BatchLoader {
 public:
  /// Starts the background thread (file-backed datasets). `order`: int64 `[M]`. To continue an interrupted epoch,
  /// `start_position` skips the entries of `order` already consumed and `first_batch` is the
  /// index of the next batch (it seeds that batch's flips).
  BatchLoader(std::shared_ptr<const ImageDataset> dataset, torch::Tensor order, LoaderOptions options,
              int64_t epoch = 0, int64_t start_position = 0, int64_t first_batch = 0);
  /// Stops and joins the thread (pending batches are dropped).
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  /// The next batch, or nullopt when the epoch's order is used up. Rethrows an error of the
  /// background thread; throws `InputError` naming the dataset when not one image of `order`
  /// could be read.
  std::optional<Batch> next();

 private:
  /// The background thread's loop: `make_batch` until the epoch ends, `prefetch` ahead.
  void produce();
  /// Assembles the batch at the current position of `order` and advances it; nullopt at the end
  /// of the epoch. Called by one thread only (the background one, or `next`'s caller).
  std::optional<Batch> make_batch();
  /// Decodes `candidates` into `images` (or the read error into `errors`) in `threads` strided
  /// shares, one per thread; shares whose thread cannot be started run on this one. Joins every
  /// thread on every path and rethrows the first error other than `ImageReadError`.
  void decode_shares(const std::vector<int64_t>& candidates, std::vector<torch::Tensor>& images,
                     std::vector<std::string>& errors) const;
  Batch assemble(const std::vector<int64_t>& indices, const std::vector<torch::Tensor>& decoded,
                 int64_t batch_index) const;

  std::shared_ptr<const ImageDataset> dataset_;
  /// An in-memory dataset's uint8 images `[N, C, S, S]` on `options.device()` (the dataset's own
  /// tensor on the CPU, a copy made once per loader on a GPU); undefined for a file-backed dataset.
  torch::Tensor in_memory_;
  torch::Tensor order_;
  LoaderOptions options_;
  int64_t epoch_, start_position_, first_batch_;
  int64_t position_, produced_, readable_ = 0;  ///< owned by the producing thread
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  bool done_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace vaegan
