#include "vaegan/model/vae_gan.h"

namespace vaegan {

VaeGanForward vae_gan_forward(Model& model, const torch::Tensor& x, const torch::Tensor& eps,
                              const torch::Tensor& z_prior, BatchNormMode mode) {
  VaeGanForward f;
  std::tie(f.mu, f.logvar) = model->encoder->forward(x);  // [B, Z] each
  f.z = reparameterize(f.mu, f.logvar, eps);              // [B, Z]
  const std::vector<torch::Tensor> decoded = decode_each(model->decoder, {f.z, z_prior}, mode);
  f.x_recon = decoded[0];  // [B, C, S, S]
  f.x_prior = decoded[1];  // [B, C, S, S]
  const std::vector<DiscriminatorOutput> d = discriminate_each(model->discriminator, {x, f.x_recon, f.x_prior}, mode);
  f.real = d[0];
  f.recon = d[1];
  f.prior = d[2];
  return f;
}

VaeGanLosses vae_gan_losses(const VaeGanForward& f, const VaeGanLossOptions& options) {
  const torch::Tensor recon_logits = options.dis_on_recon() ? f.recon.logits : torch::Tensor();
  return VaeGanLosses{
      kl_divergence(f.mu, f.logvar),
      feature_reconstruction_loss(f.recon.features, f.real.features),
      discriminator_loss(f.real.logits, recon_logits, f.prior.logits),
      adversarial_loss(recon_logits, f.prior.logits, options.gan_loss()),
  };
}

}  // namespace vaegan
