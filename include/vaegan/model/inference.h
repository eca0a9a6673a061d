#pragma once
/// Batched inference for the commands and the evaluation: any number of images or latents in,
/// processed `batch_size` at a time on the model's device (memory bounded in N), results
/// gathered on the CPU. The model should be in eval mode and the caller inside a
/// `torch::NoGradGuard`.

#include <torch/torch.h>

#include <functional>

#include "vaegan/model/model.h"

namespace vaegan {

/// Applies `f` to `x` `[N, ...]` in chunks of `batch_size` along dim 0, each moved to `device`,
/// and concatenates the results on the CPU. Throws `std::invalid_argument` for `batch_size < 1`.
torch::Tensor map_batches(const torch::Tensor& x, int64_t batch_size, torch::Device device,
                          const std::function<torch::Tensor(const torch::Tensor&)>& f);

/// Means of q(z|x) of images `x` `[N, C, S, S]` in `[-1, 1]`: `[N, Z]` on the CPU. Throws
/// `InputError` for a model without an encoder.
torch::Tensor encode_means(Model& model, const torch::Tensor& x, torch::Device device, int64_t batch_size = 256);

/// Decoded images of latents `z` `[N, Z]`: `[N, C, S, S]` in `[-1, 1]` on the CPU.
torch::Tensor decode_latents(Model& model, const torch::Tensor& z, torch::Device device, int64_t batch_size = 256);

/// Reconstructions Dec(mean of q(z|x)) of images `x` `[N, C, S, S]`: `[N, C, S, S]` in `[-1, 1]`
/// on the CPU. Throws `InputError` for a model without an encoder.
torch::Tensor reconstruct_images(Model& model, const torch::Tensor& x, torch::Device device, int64_t batch_size = 256);

}  // namespace vaegan
