#pragma once
/// `vaegan eval`: reconstruction metrics, the VAE's ELBO and importance-weighted bound, and
/// sample quality (Fréchet distance, precision/recall) in a recorded feature space.

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "vaegan/data/image_dataset.h"
#include "vaegan/eval/classifier.h"
#include "vaegan/model/model.h"

namespace vaegan {

/// Options of `evaluate`.
struct EvalOptions {
  /// Test images for the reconstruction metrics and the bounds (0: all).
  TORCH_ARG(int64_t, num_test) = 10000;
  /// Prior samples and real test images compared in feature space.
  TORCH_ARG(int64_t, num_samples) = 10000;
  /// K of the importance-weighted bound (Burda et al. 2016); 0 skips it.
  TORCH_ARG(int64_t, iw_samples) = 0;
  /// k of the k-NN precision/recall balls.
  TORCH_ARG(int64_t, k) = 3;
  TORCH_ARG(int64_t, batch_size) = 250;
  /// Seed of the prior samples and of the posterior samples of the bounds.
  TORCH_ARG(uint64_t, seed) = 0;
};

/// Per-image log-likelihood `log p(x | z)` in nats of the VAE decoder with preactivation
/// `preactivation` `[B, C, S, S]` for images `x` in `[-1, 1]`: Bernoulli (`bce`) on `[0, 1]`
/// intensities, or Gaussian of variance 1/2 on `[0, 1]` pixels (`mse`, the density whose negative
/// log is `L_pixel` plus `D/2 log(pi)`). Returns `[B]`.
torch::Tensor decoder_log_likelihood(const torch::Tensor& preactivation, const torch::Tensor& x, ReconLoss form);

/// Per-image ELBO `E_q[log p(x|z)] - KL(q(z|x) || p(z))` (one posterior sample) and, with
/// `iw_samples` K > 0, the importance-weighted bound
/// `log 1/K sum_k p(x|z_k) p(z_k) / q(z_k|x)`, both in nats, for images `x` `[B, C, S, S]`.
/// Returns `{elbo [B], iw [B] or undefined}`.
std::pair<torch::Tensor, torch::Tensor> vae_bounds(Model& model, const torch::Tensor& x, ReconLoss form,
                                                   int64_t iw_samples, at::Generator& gen);

/// The share of `originals` `[N, C, S, S]` whose reconstructions `[N, C, S, S]` (both in
/// `[-1, 1]`) `classify` (images -> int64 classes `[B]`) assigns the same class as the original,
/// in batches of `batch_size`: how well a reconstruction keeps what the image shows, which the
/// paper's learned similarity is meant to keep (section 1). In [0, 1]; NaN for N = 0.
double class_agreement(const std::function<torch::Tensor(const torch::Tensor&)>& classify,
                       const torch::Tensor& originals, const torch::Tensor& reconstructions, int64_t batch_size);

/// The squared Euclidean distance `||phi(x_i) - phi(r_i)||^2` between the features `extract`
/// (images -> `[B, F]`) gives each original `x_i` and its reconstruction `r_i` (`[N, C, S, S]` in
/// `[-1, 1]`, same shape), in batches of `batch_size`: float64 `[N]` on the CPU. How close a
/// reconstruction is in the evaluation's feature space rather than in pixels (the paper's
/// argument, section 1, measured with a held-out network). Throws `c10::Error` when the shapes differ.
torch::Tensor feature_distance_per_image(const std::function<torch::Tensor(const torch::Tensor&)>& extract,
                                         const torch::Tensor& originals, const torch::Tensor& reconstructions,
                                         int64_t batch_size);

/// Evaluates `model` (put in eval mode) on `test`: reconstruction MSE, PSNR and SSIM (models
/// with an encoder), ELBO and the IW bound in nats per image and bits per dimension under the
/// model's own likelihood (`vae` models), and, with `features`, the Fréchet distance and
/// precision/recall between `num_samples` prior samples and as many test images, and, when
/// `features` is a classifier, the reconstructions' `class_agreement`, and with any `features`
/// their `feature_distance` (`feature_distance_per_image`, mean and standard error). Returns the JSON
/// that `vaegan eval` writes; every number comes with how it was computed (counts, extractor, k).
nlohmann::json evaluate(Model& model, const ImageDataset& test, const FeatureExtractor* features,
                        const EvalOptions& options, torch::Device device);

}  // namespace vaegan
