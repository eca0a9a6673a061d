#pragma once
/// The GAN baseline (Goodfellow et al. 2014; DCGAN-style, Radford et al. 2016): the decoder is
/// the generator and the VAE-GAN's discriminator judges real images against prior samples
/// (DESIGN.md §2, baselines). Forward and losses only (training: `train/trainer.h`).

#include <torch/torch.h>

#include "vaegan/model/losses.h"
#include "vaegan/nn/decoder.h"
#include "vaegan/nn/discriminator.h"

namespace vaegan {

/// One GAN forward pass.
struct GanForward {
  torch::Tensor x_fake;            ///< `[B, C, S, S]`: Dec(z_p) in `[-1, 1]`
  DiscriminatorOutput real, fake;  ///< Dis on x and on x_fake
};

/// Generates `x_fake = generator(z_prior)` from `z_prior` `[B, Z]` and runs the discriminator on
/// the real images `x` `[B, C, S, S]` and on `x_fake`: once on `[x; x_fake]` (`joint_batches`,
/// batch norm over both) or once per input.
GanForward gan_forward(Decoder& generator, Discriminator& discriminator, const torch::Tensor& x,
                       const torch::Tensor& z_prior, bool joint_batches);

/// The GAN's losses (scalars, graph kept).
struct GanLosses {
  torch::Tensor dis;  ///< `BCE(Dis(x), 1) + BCE(Dis(x_fake), 0)`
  torch::Tensor adv;  ///< generator's term, see `adversarial_loss`
};

/// Losses of `f`; `form` chooses the generator's term (non-saturating by default in `train`).
GanLosses gan_losses(const GanForward& f, GanLoss form);

}  // namespace vaegan
