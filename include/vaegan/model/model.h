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
  /// The authors' released code (`model/aegan.py` of github.com/andersbll/autoencoding_beyond_pixels):
  /// the decoder once per input; the discriminator once on `[x_recon; x]` for `L_llike`'s
  /// features and once on `[x; x_prior]` (`[x; x_recon; x_prior]` when reconstructions are in
  /// `L_dis`) for the GAN losses. For networks with one group (the GAN model) it is `kJoint`.
  kOriginal,
};
VAEGAN_ENUM_NAMES(BatchNormMode, "--batch-norm", 3, {BatchNormMode::kSeparate, "separate"},
                  {BatchNormMode::kJoint, "joint"}, {BatchNormMode::kOriginal, "original"})

/// How a new model's weights are drawn (`--init`).
enum class WeightInit {
  kPytorch,  ///< LibTorch's defaults (Kaiming-uniform weights, uniform biases), as PyTorch code gets them
  /// The authors' released code (deeppy's `AutoFiller`): every convolution and linear weight
  /// uniform in `±1 / sqrt(3 * fan_in)`, every bias 0 (batch norm: scale 1, shift 0).
  kOriginal,
};
VAEGAN_ENUM_NAMES(WeightInit, "--init", 2, {WeightInit::kPytorch, "pytorch"}, {WeightInit::kOriginal, "original"})

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

/// Redraws the weights of every convolution, transposed convolution and linear layer of `model`
/// as `init` says (a no-op for `kPytorch`, whose weights the constructor drew). fan_in is
/// `weight.numel() / weight.size(0)`: in_features for a linear layer, `C_in * k * k` for a
/// convolution, and for a transposed convolution (weight `[C_in, C_out, k, k]`) `C_out * k * k`,
/// as `torch.nn.init._calculate_fan_in_and_fan_out` counts it. Draws from the global generator
/// (`torch::manual_seed`).
void initialize_weights(torch::nn::Module& model, WeightInit init);

/// Runs `decoder` on each latent batch of `z` (`[B_i, Z]` each) as `mode` says and returns one
/// image batch `[B_i, C, S, S]` per input, in order (`kOriginal` decodes each input alone).
std::vector<torch::Tensor> decode_each(Decoder& decoder, std::initializer_list<torch::Tensor> z, BatchNormMode mode);

/// Runs `discriminator` on each image batch of `x` (`[B_i, C, S, S]` each) as `mode` says and
/// returns one output per input, in order (`kOriginal`: one joint batch, as `kJoint`).
std::vector<DiscriminatorOutput> discriminate_each(Discriminator& discriminator, std::initializer_list<torch::Tensor> x,
                                                   BatchNormMode mode);

}  // namespace vaegan
