#include "vaegan/model/losses.h"

#include <fmt/format.h>

#include "vaegan/core/error.h"

namespace vaegan {
namespace F = torch::nn::functional;

namespace {
/// Losses are computed in fp32 at least: bf16/fp16 network outputs (autocast) are widened,
/// fp32 and fp64 ones are used as they are.
torch::Tensor widened(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return type == torch::kBFloat16 || type == torch::kHalf ? t.to(torch::kFloat32) : t;
}
}  // namespace

torch::Tensor kl_divergence(const torch::Tensor& mu_in, const torch::Tensor& logvar_in) {
  const torch::Tensor mu = widened(mu_in), logvar = widened(logvar_in);
  // [B, Z] -> per-sample sum [B] -> batch mean
  return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean();
}

torch::Tensor feature_reconstruction_loss(const torch::Tensor& recon_features, const torch::Tensor& real_features) {
  return 0.5 * (widened(recon_features) - widened(real_features)).pow(2).flatten(1).sum(1).mean();
}

torch::Tensor pixel_reconstruction_loss(const torch::Tensor& preactivation_in, const torch::Tensor& target,
                                        ReconLoss form) {
  const torch::Tensor preactivation = widened(preactivation_in);
  const torch::Tensor target01 = (target + 1) * 0.5;  // [B, C, H, W] in [0, 1]
  torch::Tensor per_pixel;
  if (form == ReconLoss::kBce) {
    per_pixel = F::binary_cross_entropy_with_logits(
        2 * preactivation, target01, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  } else {
    per_pixel = (torch::tanh(preactivation) * 0.5 + 0.5 - target01).pow(2);
  }
  return per_pixel.flatten(1).sum(1).mean();  // per-image sum, batch mean
}

torch::Tensor pixel_mse(const torch::Tensor& x_recon, const torch::Tensor& x) {
  return (widened(x_recon.detach()) - widened(x.detach())).pow(2).mean();
}

namespace {
/// Mean BCE of logits against a constant label in [0, 1]: one logit per image, so the
/// per-sample sum is the value itself and the batch mean is the loss.
torch::Tensor bce(const torch::Tensor& logits_in, double label) {
  const torch::Tensor logits = widened(logits_in);
  return F::binary_cross_entropy_with_logits(logits, torch::full_like(logits, label));
}
}  // namespace

torch::Tensor discriminator_loss(const torch::Tensor& real_logits, const torch::Tensor& recon_logits,
                                 const torch::Tensor& prior_logits, double real_weight, double label_smoothing) {
  TORCH_CHECK(real_weight >= 0 && real_weight < 1, "discriminator_loss: real_weight must be in [0, 1), got ",
              real_weight);
  TORCH_CHECK(label_smoothing >= 0 && label_smoothing < 0.5,
              "discriminator_loss: label_smoothing must be in [0, 0.5), got ", label_smoothing);
  const torch::Tensor real = bce(real_logits, 1.0 - label_smoothing);
  if (real_weight > 0) {
    torch::Tensor generated = bce(prior_logits, 0.0);
    if (recon_logits.defined()) generated = 0.5 * (generated + bce(recon_logits, 0.0));
    return 2 * (real_weight * real + (1 - real_weight) * generated);
  }
  torch::Tensor loss = real + bce(prior_logits, 0.0);
  if (recon_logits.defined()) loss = loss + bce(recon_logits, 0.0);
  return loss;
}

torch::Tensor adversarial_loss(const torch::Tensor& recon_logits, const torch::Tensor& prior_logits, GanLoss form) {
  auto term = [form](const torch::Tensor& logits) {
    return form == GanLoss::kNonSaturating ? bce(logits, 1.0) : -bce(logits, 0.0);
  };
  torch::Tensor loss = term(prior_logits);
  if (recon_logits.defined()) loss = loss + term(recon_logits);
  return loss;
}

}  // namespace vaegan
