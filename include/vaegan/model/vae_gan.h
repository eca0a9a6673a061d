#pragma once
/// The VAE-GAN model: encoder, decoder (= generator) and discriminator, forward only.
/// Training (which loss updates which network) lives in `train/trainer.h`.
///
/// Legend: B batch, C channels, S image size, Z latent size, F features of layer l.

#include <torch/torch.h>

#include <vector>

#include "vaegan/model/losses.h"
#include "vaegan/nn/presets.h"

namespace vaegan {

/// Everything one forward pass of Algorithm 1 produces (paper §2; DESIGN.md §2).
struct VaeGanForward {
  torch::Tensor mu, logvar;                ///< `[B, Z]`: q(z|x)
  torch::Tensor z;                         ///< `[B, Z]`: reparameterized sample of q(z|x)
  torch::Tensor x_recon;                   ///< `[B, C, S, S]`: Dec(z), "x tilde"
  torch::Tensor x_prior;                   ///< `[B, C, S, S]`: Dec(z_p), z_p ~ N(0, I)
  DiscriminatorOutput real, recon, prior;  ///< Dis on X, x_recon, x_prior
};

/// The four loss values of one step (scalars, graph kept).
struct VaeGanLosses {
  torch::Tensor prior;  ///< L_prior (KL), nats per image
  torch::Tensor llike;  ///< L_llike (feature-wise reconstruction error)
  torch::Tensor dis;    ///< L_dis
  torch::Tensor adv;    ///< decoder's adversarial term
};

/// The networks of a model, registered as `encoder`, `decoder`, `discriminator` (these names
/// are the checkpoint format). Every model type uses this one container with the networks it
/// has (`ModelConfig::has_encoder`, `has_discriminator`): `vaegan` and `vae-then-gan` all three,
/// `vae` no discriminator, `gan` no encoder (the decoder is its generator). A missing network is
/// a null holder.
class VaeGanImpl : public torch::nn::Module {
 public:
  /// Builds the networks of `config`; throws `InputError` for an invalid config.
  explicit VaeGanImpl(const ModelConfig& config);

  /// One forward of Algorithm 1 on images `x` `[B, C, S, S]` in `[-1, 1]`, with the noise given:
  /// `eps` `[B, Z]` for the reparameterization and `z_prior` `[B, Z]` for prior samples.
  /// With `joint_batches` the decoder runs once on `[z; z_prior]` (`[2B, Z]`) and the
  /// discriminator once on `[x; x_recon; x_prior]` (`[3B, C, S, S]`), so batch norm normalizes
  /// over the concatenation; otherwise each network runs once per input (`[B, ...]` each) and
  /// batch norm normalizes real images, reconstructions and prior samples separately
  /// (DESIGN.md §2, efficiency rule: the same arithmetic either way). The default follows
  /// Algorithm 1 literally; `vaegan train` defaults to separate batches (TrainConfig::batch_norm).
  VaeGanForward forward(const torch::Tensor& x, const torch::Tensor& eps, const torch::Tensor& z_prior,
                        bool joint_batches = true);

  /// Mean of q(z|x) for images `[B, C, S, S]`: `[B, Z]`. Throws `InputError` for a `gan`.
  torch::Tensor encode_mean(const torch::Tensor& x);
  /// Deterministic reconstruction Dec(mean of q(z|x)) of images `[B, C, S, S]`: `[B, C, S, S]`
  /// in `[-1, 1]`. Throws `InputError` for a `gan` (it has no encoder).
  torch::Tensor reconstruct(const torch::Tensor& x);
  /// Z: the latent size.
  int64_t latent_dim() const { return decoder->options.latent_dim(); }

  ModelConfig config;
  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
  Discriminator discriminator{nullptr};
};
TORCH_MODULE(VaeGan);

/// Options of the loss computation.
struct VaeGanLossOptions {
  /// Whether the discriminator's loss (and the decoder's adversarial term) include the
  /// reconstructions (paper Algorithm 1: yes, this struct's default; the original CelebA code
  /// and `vaegan train`'s default, TrainConfig::dis_on_recon: no).
  TORCH_ARG(bool, dis_on_recon) = true;
  TORCH_ARG(GanLoss, gan_loss) = GanLoss::kNonSaturating;
};

/// The losses of DESIGN.md §2 for a forward pass.
VaeGanLosses vae_gan_losses(const VaeGanForward& f, const VaeGanLossOptions& options);

}  // namespace vaegan
