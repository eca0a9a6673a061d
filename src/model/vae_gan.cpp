#include "vaegan/model/vae_gan.h"

#include <fmt/format.h>

#include "vaegan/core/error.h"

namespace vaegan {

VaeGanImpl::VaeGanImpl(const ModelConfig& config_) : config(config_) {
  NetworkOptions o = make_network_options(config);
  if (config.has_encoder()) encoder = register_module("encoder", Encoder(o.encoder));
  decoder = register_module("decoder", Decoder(o.decoder));
  if (config.has_discriminator()) discriminator = register_module("discriminator", Discriminator(o.discriminator));
}

VaeGanForward VaeGanImpl::forward(const torch::Tensor& x, const torch::Tensor& eps, const torch::Tensor& z_prior,
                                  bool joint_batches) {
  const int64_t b = x.size(0);
  VaeGanForward f;
  std::tie(f.mu, f.logvar) = encoder->forward(x);  // [B, Z] each
  f.z = reparameterize(f.mu, f.logvar, eps);       // [B, Z]
  if (!joint_batches) {
    f.x_recon = decoder->forward(f.z);      // [B, C, S, S]
    f.x_prior = decoder->forward(z_prior);  // [B, C, S, S]
    f.real = discriminator->forward(x);
    f.recon = discriminator->forward(f.x_recon);
    f.prior = discriminator->forward(f.x_prior);
    return f;
  }
  torch::Tensor decoded = decoder->forward(torch::cat({f.z, z_prior}));  // [2B, C, S, S]
  f.x_recon = decoded.narrow(0, 0, b);
  f.x_prior = decoded.narrow(0, b, b);
  DiscriminatorOutput d = discriminator->forward(torch::cat({x, decoded}));  // [3B, ...]
  auto rows = [&](int64_t i) {
    return DiscriminatorOutput{d.logits.narrow(0, i * b, b), d.features.narrow(0, i * b, b)};
  };
  f.real = rows(0);
  f.recon = rows(1);
  f.prior = rows(2);
  return f;
}

torch::Tensor VaeGanImpl::encode_mean(const torch::Tensor& x) {
  if (!encoder) {
    throw InputError(
        fmt::format("a {} model has no encoder: this needs a vaegan, vae or vae-then-gan checkpoint", config.type));
  }
  return std::get<0>(encoder->forward(x));
}

torch::Tensor VaeGanImpl::reconstruct(const torch::Tensor& x) { return decoder->forward(encode_mean(x)); }

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
