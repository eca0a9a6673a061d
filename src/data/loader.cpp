#include "vaegan/data/loader.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <exception>
#include <mutex>
#include <system_error>

#include "vaegan/core/error.h"

namespace vaegan {

BatchLoader::BatchLoader(std::shared_ptr<const ImageDataset> dataset, torch::Tensor order, LoaderOptions options,
                         int64_t epoch, int64_t start_position, int64_t first_batch)
    : dataset_(std::move(dataset)),
      order_(order.to(torch::kLong).contiguous()),
      options_(options),
      epoch_(epoch),
      start_position_(start_position),
      first_batch_(first_batch),
      position_(start_position),
      produced_(first_batch) {
  TORCH_CHECK(options_.batch_size() >= 1 && options_.prefetch() >= 1 && options_.threads() >= 1,
              "BatchLoader: batch_size, prefetch and threads must be positive");
  // An in-memory dataset is gathered by `next`'s caller, on the loader's device (`to` copies only
  // when that is not the CPU); a file-backed one is decoded by the background thread.
  in_memory_ = dataset_->in_memory();
  if (in_memory_.defined()) in_memory_ = in_memory_.to(options_.device());
  if (!in_memory_.defined()) thread_ = std::thread([this] { produce(); });
}

BatchLoader::~BatchLoader() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

std::optional<Batch> BatchLoader::next() {
  if (!thread_.joinable()) {  // in memory: gathered here
    if (done_) return std::nullopt;
    std::optional<Batch> b = make_batch();
    done_ = !b;
    return b;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !ready_.empty() || done_; });
  if (!ready_.empty()) {
    Batch b = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();
    return b;
  }
  if (error_) std::rethrow_exception(error_);
  return std::nullopt;
}

Batch BatchLoader::assemble(const std::vector<int64_t>& indices, const std::vector<torch::Tensor>& decoded,
                            int64_t batch_index) const {
  Batch b;
  // [B, C, S, S] in [-1, 1]: gathered from memory on the loader's device, or stacked from the
  // images the background thread decoded
  b.images =
      in_memory_.defined()
          ? to_model_range(in_memory_.index_select(0, torch::tensor(indices, torch::kLong).to(in_memory_.device())))
          : to_model_range(torch::stack(decoded));
  std::vector<int64_t> labels;
  for (int64_t i : indices) labels.push_back(dataset_->label(i));
  b.labels = torch::tensor(labels, torch::kLong);
  if (options_.horizontal_flip()) {
    // One generator per (seed, epoch, batch): the flips do not depend on thread timing.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(
        options_.seed() * 1000003ULL + static_cast<uint64_t>(epoch_) * 7919ULL + static_cast<uint64_t>(batch_index));
    const torch::Tensor flip = torch::rand({b.images.size(0)}, gen).lt(0.5).view({-1, 1, 1, 1}).to(b.images.device());
    b.images = torch::where(flip, b.images.flip({3}), b.images);
  }
  return b;
}

void BatchLoader::decode_shares(const std::vector<int64_t>& candidates, std::vector<torch::Tensor>& images,
                                std::vector<std::string>& errors) const {
  const size_t shares = static_cast<size_t>(options_.threads());
  std::vector<std::exception_ptr> failures(shares);
  auto decode = [&](size_t share) {
    try {
      for (size_t k = share; k < candidates.size(); k += shares) {
        try {
          images[k] = dataset_->image(candidates[k]);
        } catch (const ImageReadError& e) {
          errors[k] = e.what();
        }
      }
    } catch (...) {  // anything else ends the epoch with this error, after every thread is joined
      failures[share] = std::current_exception();
    }
  };
  std::vector<std::thread> helpers;
  size_t started = 1;  // share 0 is this thread's
  try {
    for (; started < shares; ++started) helpers.emplace_back(decode, started);
  } catch (const std::exception& e) {  // no more threads (limits, memory): this thread decodes the rest
    static std::once_flag warned;
    std::call_once(warned, [&] {
      spdlog::warn("--loader-threads {}: only {} decoding threads could be started ({}); using those",
                   options_.threads(), started, e.what());
    });
  }
  decode(0);
  for (size_t share = started; share < shares; ++share) decode(share);
  for (auto& h : helpers) h.join();
  for (const auto& f : failures) {
    if (f) std::rethrow_exception(f);
  }
}

std::optional<Batch> BatchLoader::make_batch() {
  const int64_t m = order_.size(0), batch = options_.batch_size();
  const int64_t* order = order_.data_ptr<int64_t>();
  const bool in_memory = in_memory_.defined();
  std::vector<int64_t> indices;
  std::vector<torch::Tensor> decoded;  // file-backed datasets: uint8 [C, S, S] per index
  while (static_cast<int64_t>(indices.size()) < batch && position_ < m) {
    const int64_t take = std::min(batch - static_cast<int64_t>(indices.size()), m - position_);
    std::vector<int64_t> candidates(order + position_, order + position_ + take);
    position_ += take;
    if (in_memory) {
      indices.insert(indices.end(), candidates.begin(), candidates.end());
      continue;
    }
    // Decode the candidates in `threads` strided shares.
    std::vector<torch::Tensor> images(candidates.size());
    std::vector<std::string> errors(candidates.size());
    decode_shares(candidates, images, errors);
    for (size_t k = 0; k < candidates.size(); ++k) {
      if (errors[k].empty()) {
        indices.push_back(candidates[k]);
        decoded.push_back(images[k]);
        continue;
      }
      dataset_->mark_unreadable(candidates[k], errors[k]);
    }
  }
  readable_ += static_cast<int64_t>(indices.size());
  if (static_cast<int64_t>(indices.size()) < batch) {                  // the last partial batch is dropped
    if (produced_ == first_batch_ && start_position_ == 0 && m > 0) {  // a whole epoch gave no batch
      throw InputError(readable_ == 0 ? fmt::format("{}: none of the {} images could be read", dataset_->summary(), m)
                                      : fmt::format("{}: only {} of {} images could be read, fewer than a batch of {}",
                                                    dataset_->summary(), readable_, m, batch));
    }
    return std::nullopt;
  }
  Batch b = assemble(indices, decoded, produced_++);
  b.end_position = position_;
  if (options_.pin_memory() && b.images.is_cpu()) b.images = b.images.pin_memory();
  return b;
}

void BatchLoader::produce() {
  try {
    while (std::optional<Batch> b = make_batch()) {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] { return stop_ || static_cast<int64_t>(ready_.size()) < options_.prefetch(); });
      if (stop_) return;
      ready_.push_back(std::move(*b));
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  done_ = true;
  changed_.notify_all();
}

}  // namespace vaegan
