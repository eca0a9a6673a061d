#pragma once
/// The GAN baseline (Goodfellow et al. 2014; DCGAN-style, Radford et al. 2016): the decoder is
/// the generator and the VAE-GAN's discriminator judges real images against prior samples
/// (docs/design.md, "The models"). Its forward pass and losses (training: train/trainer.h).

#include <torch/torch.h>

#include "vaegan/model/augment.h"
#include "vaegan/model/losses.h"
#include "vaegan/model/model.h"

namespace vaegan {

/// One GAN forward pass.
struct GanForward {
  torch::Tensor x_fake;            ///< `[B, C, S, S]`: Dec(z_p) in `[-1, 1]`
  DiscriminatorOutput real, fake;  ///< Dis on x and on x_fake
};

/// Generates `x_fake = Dec(z_prior)` from `z_prior` `[B, Z]` with `model`'s decoder and runs its
/// discriminator on the real images `x` `[B, C, S, S]` and on `x_fake`, once on `[x; x_fake]`
/// (`kJoint`, batch norm over both) or once per input. With augmentation (model/augment.h) it
/// judges `augment(x, real_augment)` and `augment(x_fake, fake_augment)`; `x_fake` in the result
/// is not augmented.
GanForward gan_forward(Model& model, const torch::Tensor& x, const torch::Tensor& z_prior,
                       BatchNormMode mode = BatchNormMode::kSeparate, const AugmentDraw& real_augment = {},
                       const AugmentDraw& fake_augment = {});

/// The GAN's losses (scalars, graph kept).
struct GanLosses {
  torch::Tensor dis;  ///< `BCE(Dis(x), 1 - label_smoothing) + BCE(Dis(x_fake), 0)`
  torch::Tensor adv;  ///< generator's term, see `adversarial_loss`
};

/// Losses of `f`; `form` chooses the generator's term, `label_smoothing` the real images' target
/// (`discriminator_loss`). Throws `c10::Error` for `label_smoothing` outside [0, 0.5).
GanLosses gan_losses(const GanForward& f, GanLoss form = GanLoss::kNonSaturating, double label_smoothing = 0);

}  // namespace vaegan
