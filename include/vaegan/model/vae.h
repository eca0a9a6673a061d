#pragma once
/// The plain VAE (Kingma & Welling 2014): encoder and decoder trained on
/// `beta * L_prior + L_pixel`; its forward pass and losses (training: train/trainer.h).
///
/// Legend: B batch, C channels, S image size, Z latent size.

#include <torch/torch.h>

#include "vaegan/model/losses.h"
#include "vaegan/model/model.h"

namespace vaegan {

/// One VAE forward pass.
struct VaeForward {
  torch::Tensor mu, logvar;     ///< `[B, Z]`: q(z|x)
  torch::Tensor z;              ///< `[B, Z]`: reparameterized sample
  torch::Tensor preactivation;  ///< `[B, C, S, S]`: decoder output before tanh (`Decoder::preactivation`)
};

/// Encodes images `x` `[B, C, S, S]` in `[-1, 1]` with `model`'s encoder, samples
/// `z = mu + sigma * eps` with the given `eps` `[B, Z]`, and decodes it.
VaeForward vae_forward(Model& model, const torch::Tensor& x, const torch::Tensor& eps);

/// The VAE's two loss terms (scalars, graph kept); the negative ELBO is `prior + pixel`.
struct VaeLosses {
  torch::Tensor prior;  ///< L_prior = KL(q(z|x) || N(0, I)), nats per image
  torch::Tensor pixel;  ///< L_pixel, per-image sum (see `pixel_reconstruction_loss`)
};

/// Losses of `f` against the encoded images `x` `[B, C, S, S]` in `[-1, 1]` under the pixel
/// likelihood `form`.
VaeLosses vae_losses(const VaeForward& f, const torch::Tensor& x, ReconLoss form);

}  // namespace vaegan
