#pragma once
/// The one model container: the networks a model type has, registered under the names that are
/// the checkpoint format (`encoder`, `decoder`, `discriminator`). Each model type has one forward
/// and one loss function beside it: `vae_gan_forward`/`vae_gan_losses` (model/vae_gan.h),
/// `vae_forward`/`vae_losses` (model/vae.h), `gan_forward`/`gan_losses` (model/gan.h). Training
/// (which loss updates which network) lives in train/trainer.h.
///
/// Legend: B batch, C channels, S image size, Z latent size.

#include <torch/torch.h>

#include <array>
#include <initializer_list>
#include <utility>
#include <vector>

#include "vaegan/core/enum_names.h"
#include "vaegan/model/model_config.h"

namespace vaegan {

/// How a network that sees several inputs in one step runs on them (docs/design.md, "Batch
/// norm"): the same arithmetic either way except for the batch statistics.
enum class BatchNormMode {
  kSeparate,  ///< once per input, so batch norm never mixes real and generated images
  kJoint,     ///< once on the concatenation, so batch norm normalizes over all inputs together
};
VAEGAN_ENUM_NAMES(BatchNormMode, "--batch-norm", 2, {BatchNormMode::kSeparate, "separate"},
                  {BatchNormMode::kJoint, "joint"})

/// The networks of one model (`ModelConfig::has_encoder`, `has_discriminator`): `vaegan` and
/// `vae-then-gan` all three, `vae` no discriminator, `gan` no encoder (the decoder is its
/// generator). A missing network is a null holder.
class ModelImpl : public torch::nn::Module {
 public:
  /// Builds the networks of `config` with LibTorch's default initialization (seeded by
  /// `torch::manual_seed`). Throws `InputError` naming the flag for an invalid config.
  explicit ModelImpl(const ModelConfig& config);

  /// Mean of q(z|x) for images `[B, C, S, S]` in `[-1, 1]`: `[B, Z]`. Throws `InputError` for a
  /// model without an encoder (`gan`).
  torch::Tensor encode_mean(const torch::Tensor& x);
  /// Deterministic reconstruction Dec(mean of q(z|x)) of images `[B, C, S, S]`: `[B, C, S, S]` in
  /// `[-1, 1]`. Throws `InputError` for a model without an encoder.
  torch::Tensor reconstruct(const torch::Tensor& x);
  /// Z: the latent size.
  int64_t latent_dim() const { return decoder->options.latent_dim(); }

  ModelConfig config;
  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
  Discriminator discriminator{nullptr};
};
TORCH_MODULE(Model);

/// Runs `decoder` on each latent batch of `z` (`[B_i, Z]` each) as `mode` says and returns one
/// image batch `[B_i, C, S, S]` per input, in order.
std::vector<torch::Tensor> decode_each(Decoder& decoder, std::initializer_list<torch::Tensor> z, BatchNormMode mode);

/// Runs `discriminator` on each image batch of `x` (`[B_i, C, S, S]` each) as `mode` says and
/// returns one output per input, in order.
std::vector<DiscriminatorOutput> discriminate_each(Discriminator& discriminator, std::initializer_list<torch::Tensor> x,
                                                   BatchNormMode mode);

}  // namespace vaegan
