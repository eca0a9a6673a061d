#pragma once
/// VAE-GAN losses as free functions (docs/design.md, "The algorithm"). Each is a per-sample sum averaged over the
/// batch and returns a float32 scalar tensor that keeps its autograd graph.

#include <torch/torch.h>

#include <array>
#include <utility>

#include "vaegan/core/enum_names.h"
#include "vaegan/model/model_config.h"

namespace vaegan {

/// Form of the decoder's adversarial term (`--gan-loss`).
enum class GanLoss {
  kNonSaturating,  ///< `BCE(Dis(x_fake), 1)` (Goodfellow et al. 2014, §3)
  kMinimax,        ///< `-BCE(Dis(x_fake), 0)`, the paper's literal `-L_GAN`
};
VAEGAN_ENUM_NAMES(GanLoss, "--gan-loss", 2, {GanLoss::kNonSaturating, "non-saturating"}, {GanLoss::kMinimax, "minimax"})

/// `L_prior = KL(N(mu, exp(logvar)) || N(0, I))`
///          `= -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))`, averaged over the batch.
/// mu, logvar: `[B, Z]`. Returns nats per image. (Kingma & Welling 2014, appendix B; paper eq. 3.)
torch::Tensor kl_divergence(const torch::Tensor& mu, const torch::Tensor& logvar);

/// `L_llike = 1/2 * sum_f (recon_f - real_f)^2`, averaged over the batch: the negative
/// log-likelihood (up to a constant) of a Gaussian with identity covariance on discriminator
/// features `Dis_l` (paper eq. 7). recon_features, real_features: `[B, F]`.
torch::Tensor feature_reconstruction_loss(const torch::Tensor& recon_features, const torch::Tensor& real_features);

/// `L_pixel` of the plain VAE (`--recon-loss`; a sum over pixels, not a mean, so that it weighs
/// against the per-image KL as the ELBO says: Kingma & Welling 2014, eq. 10),
/// averaged over the batch, in nats per image for `bce`. `preactivation` is the decoder's output
/// before tanh, `a` `[B, C, H, W]` (`Decoder::preactivation`), `target` the images `[B, C, H, W]`
/// in `[-1, 1]`. Both forms work on the `[0, 1]` scale that PyTorch VAE code uses:
/// bce `sum BCE(sigmoid(2a), (x + 1) / 2)` (logits `2a`, computed stably from them);
/// mse `sum ((tanh(a) - x) / 2)^2`.
torch::Tensor pixel_reconstruction_loss(const torch::Tensor& preactivation, const torch::Tensor& target,
                                        ReconLoss form);

/// Mean squared error per pixel between reconstructions and images `[B, C, H, W]`, both on the
/// `[-1, 1]` scale, in fp32 at least, without a graph: a measure logged beside the losses
/// (`mse`, `val_mse`), not one that trains.
torch::Tensor pixel_mse(const torch::Tensor& x_recon, const torch::Tensor& x);

/// `L_dis = BCE(real, 1) + BCE(recon, 0) + BCE(prior, 0)` on logits `[B, 1]` (paper §2.1,
/// "discriminating based on samples from p(z) and q(z|x)"). `recon_logits` may be undefined,
/// in which case its term is left out (the original code's CelebA setting).
/// With `real_weight` r in (0, 1), the authors' weighting of real against generated images
/// (`real_vs_gen_weight` in their released code, `model/aegan.py`):
/// `2 * (r * BCE(real, 1) + (1 - r) * G)`, G the mean BCE over all generated images (the mean of
/// the recon and prior terms, or the prior term alone); r = 0.5 without reconstructions is the
/// plain sum. With `label_smoothing` s > 0, one-sided label smoothing: the real images' target is
/// 1 - s instead of 1 (`BCE(real, 1 - s)`), the generated images' stays 0 (Salimans et al. 2016,
/// "Improved Techniques for Training GANs", arXiv 1606.03498, §3.4). Throws `c10::Error` for r
/// outside [0, 1) or s outside [0, 0.5).
torch::Tensor discriminator_loss(const torch::Tensor& real_logits, const torch::Tensor& recon_logits,
                                 const torch::Tensor& prior_logits, double real_weight = 0, double label_smoothing = 0);

/// Decoder's adversarial term on fake logits `[B, 1]`: non-saturating
/// `BCE(recon, 1) + BCE(prior, 1)` or minimax `-(BCE(recon, 0) + BCE(prior, 0))`.
/// `recon_logits` may be undefined, in which case its term is left out.
torch::Tensor adversarial_loss(const torch::Tensor& recon_logits, const torch::Tensor& prior_logits, GanLoss form);

}  // namespace vaegan
