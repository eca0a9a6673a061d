#pragma once
/// The VAE-GAN's forward pass and losses (paper §2, Algorithm 1; docs/design.md, "The
/// algorithm"). Which loss updates which network is the trainer's (train/trainer.h).
///
/// Legend: B batch, C channels, S image size, Z latent size, F features of layer l.

#include <torch/torch.h>

#include "vaegan/model/augment.h"
#include "vaegan/model/losses.h"
#include "vaegan/model/model.h"

namespace vaegan {

/// Everything one forward pass of Algorithm 1 produces.
struct VaeGanForward {
  torch::Tensor mu, logvar;                ///< `[B, Z]`: q(z|x)
  torch::Tensor z;                         ///< `[B, Z]`: reparameterized sample of q(z|x)
  torch::Tensor x_recon;                   ///< `[B, C, S, S]`: Dec(z), "x tilde"
  torch::Tensor x_prior;                   ///< `[B, C, S, S]`: Dec(z_p), z_p ~ N(0, I)
  DiscriminatorOutput real, recon, prior;  ///< Dis on X, x_recon, x_prior
};

/// One forward of Algorithm 1 through `model` (a `vaegan` or `vae-then-gan` model) on images
/// `x` `[B, C, S, S]` in `[-1, 1]`, with the noise given: `eps` `[B, Z]` for the
/// reparameterization and `z_prior` `[B, Z]` for prior samples. `kJoint`: the decoder runs once
/// on `[z; z_prior]` (`[2B, Z]`) and the discriminator once on `[x; x_recon; x_prior]`
/// (`[3B, C, S, S]`), as Algorithm 1 is written; `kSeparate` (the default, by measurement: see
/// docs/training-defaults.md): once per input; `kOriginal`: the decoder once per input, the
/// discriminator once on `[x_recon; x]` (the features of `L_llike`; `recon.logits` from this
/// pass are for statistics) and once on `[x; x_prior]`, or on `[x; x_recon; x_prior]` when
/// `dis_on_recon` (the logits of the GAN losses), as the authors' released code groups them.
/// `dis_on_recon` matters only for `kOriginal`.
///
/// With augmentation (`--augment`, model/augment.h) the discriminator sees `augment(x,
/// real_augment)`, `augment(x_recon, real_augment)` and `augment(x_prior, prior_augment)`: each
/// reconstruction is transformed exactly as its original, so `L_llike` still compares an image
/// with its own reconstruction, and the prior samples independently, as DiffAugment transforms
/// real and generated images. `x_recon` and `x_prior` in the result are not augmented.
VaeGanForward vae_gan_forward(Model& model, const torch::Tensor& x, const torch::Tensor& eps,
                              const torch::Tensor& z_prior, BatchNormMode mode = BatchNormMode::kSeparate,
                              bool dis_on_recon = false, const AugmentDraw& real_augment = {},
                              const AugmentDraw& prior_augment = {});

/// The four loss values of one step (float32 scalars, graph kept).
struct VaeGanLosses {
  torch::Tensor prior;  ///< L_prior (KL), nats per image
  torch::Tensor llike;  ///< L_llike (feature-wise reconstruction error, paper eq. 7)
  torch::Tensor dis;    ///< L_dis
  torch::Tensor adv;    ///< decoder's adversarial term
};

/// Options of `vae_gan_losses`; the defaults are `vaegan train`'s (`TrainConfig`).
struct VaeGanLossOptions {
  /// Whether the discriminator's loss (and the decoder's adversarial term) include the
  /// reconstructions: paper Algorithm 1 yes; the authors' CelebA code and the default here, by
  /// measurement (docs/training-defaults.md), no.
  TORCH_ARG(bool, dis_on_recon) = false;
  TORCH_ARG(GanLoss, gan_loss) = GanLoss::kNonSaturating;
  /// Weight of the real images in `L_dis` (`discriminator_loss`): 0 for Algorithm 1's plain sum.
  TORCH_ARG(double, real_weight) = 0;
  /// One-sided label smoothing of `L_dis` (`discriminator_loss`): the real images' target is
  /// `1 - label_smoothing` (Salimans et al. 2016, §3.4; 0: none).
  TORCH_ARG(double, label_smoothing) = 0;
};

/// The losses of docs/design.md, "The algorithm", for a forward pass.
VaeGanLosses vae_gan_losses(const VaeGanForward& f, const VaeGanLossOptions& options = {});

}  // namespace vaegan
