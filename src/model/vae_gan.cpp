#include "vaegan/model/vae_gan.h"

namespace vaegan {

VaeGanForward vae_gan_forward(Model& model, const torch::Tensor& x, const torch::Tensor& eps,
                              const torch::Tensor& z_prior, BatchNormMode mode, bool dis_on_recon,
                              const AugmentDraw& real_augment, const AugmentDraw& prior_augment) {
  VaeGanForward f;
  std::tie(f.mu, f.logvar) = model->encoder->forward(x);  // [B, Z] each
  f.z = reparameterize(f.mu, f.logvar, eps);              // [B, Z]
  const std::vector<torch::Tensor> decoded = decode_each(model->decoder, {f.z, z_prior}, mode);
  f.x_recon = decoded[0];  // [B, C, S, S]
  f.x_prior = decoded[1];  // [B, C, S, S]
  // what the discriminator sees (the inputs themselves without augmentation)
  const torch::Tensor real = augment(x, real_augment), recon = augment(f.x_recon, real_augment),
                      prior = augment(f.x_prior, prior_augment);
  if (mode != BatchNormMode::kOriginal) {
    const std::vector<DiscriminatorOutput> d = discriminate_each(model->discriminator, {real, recon, prior}, mode);
    f.real = d[0];
    f.recon = d[1];
    f.prior = d[2];
    return f;
  }
  // The authors' groups: L_llike's features from [x_recon; x] ...
  const std::vector<DiscriminatorOutput> llike = discriminate_each(model->discriminator, {recon, real}, mode);
  f.recon = llike[0];
  f.real.features = llike[1].features;
  // ... and the GAN's logits from [x; x_prior], or [x; x_recon; x_prior] when L_dis has the
  // reconstructions (their logits then replace those of the L_llike pass).
  if (dis_on_recon) {
    const std::vector<DiscriminatorOutput> gan = discriminate_each(model->discriminator, {real, recon, prior}, mode);
    f.real.logits = gan[0].logits;
    f.recon.logits = gan[1].logits;
    f.prior = gan[2];
  } else {
    const std::vector<DiscriminatorOutput> gan = discriminate_each(model->discriminator, {real, prior}, mode);
    f.real.logits = gan[0].logits;
    f.prior = gan[1];
  }
  return f;
}

VaeGanLosses vae_gan_losses(const VaeGanForward& f, const VaeGanLossOptions& options) {
  const torch::Tensor recon_logits = options.dis_on_recon() ? f.recon.logits : torch::Tensor();
  return VaeGanLosses{
      kl_divergence(f.mu, f.logvar),
      feature_reconstruction_loss(f.recon.features, f.real.features),
      discriminator_loss(f.real.logits, recon_logits, f.prior.logits, options.real_weight(), options.label_smoothing()),
      adversarial_loss(recon_logits, f.prior.logits, options.gan_loss()),
  };
}

}  // namespace vaegan
