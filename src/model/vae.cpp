#include "vaegan/model/vae.h"

namespace vaegan {

VaeForward vae_forward(Model& model, const torch::Tensor& x, const torch::Tensor& eps) {
  VaeForward f;
  std::tie(f.mu, f.logvar) = model->encoder->forward(x);  // [B, Z] each
  f.z = reparameterize(f.mu, f.logvar, eps);              // [B, Z]
  f.preactivation = model->decoder->preactivation(f.z);   // [B, C, S, S]
  return f;
}

VaeLosses vae_losses(const VaeForward& f, const torch::Tensor& x, ReconLoss form) {
  return VaeLosses{kl_divergence(f.mu, f.logvar), pixel_reconstruction_loss(f.preactivation, x, form)};
}

}  // namespace vaegan
