#pragma once
/// Architecture presets (DESIGN.md §3): `paper64` (the paper's 64×64 networks), `small32`
/// (the same shapes with half the channels, for 32×32 Fashion-MNIST / MNIST / CIFAR-10) and
/// `mlp28` (seed 002's MLP VAE on 28×28 images, for the `vae` model only).

#include <string>
#include <vector>

#include "vaegan/nn/decoder.h"
#include "vaegan/nn/discriminator.h"
#include "vaegan/nn/encoder.h"

namespace vaegan {

/// The part of the configuration that defines the networks; saved in every checkpoint so that
/// commands loading it rebuild the same model.
struct ModelConfig {
  /// Which model: `vaegan` (encoder, decoder, discriminator; paper), `vae` (encoder, decoder;
  /// seed 002), `gan` (decoder as generator, discriminator; DCGAN-style) or `vae-then-gan`
  /// (all three: a VAE phase, then a GAN phase from the VAE's decoder; seed 003).
  std::string type = "vaegan";
  std::string arch = "small32";  ///< preset name: `small32`, `paper64` or `mlp28`
  int64_t channels = 1;          ///< C: image channels (1 for Fashion-MNIST)
  int64_t image_size = 0;        ///< S; 0 means the preset's (32, 64, 28); conv presets need a multiple of 8
  int64_t latent_dim = 0;        ///< Z; 0 means the preset's (64 small32, 128 paper64, 20 mlp28)
  int64_t feature_layer = 4;     ///< 1-based discriminator convolution used for `L_llike`

  bool has_encoder() const { return type != "gan"; }
  bool has_discriminator() const { return type != "vae"; }
};

/// Names of the presets and of the model types, for flag validation.
const std::vector<std::string>& arch_names();
const std::vector<std::string>& model_type_names();

/// Native image size S of a preset (32, 64 or 28). Throws `InputError` for an unknown name.
int64_t preset_image_size(const std::string& arch);

/// The image size `config` trains on: `config.image_size`, or the preset's when 0.
int64_t model_image_size(const ModelConfig& config);

/// The three networks' options for `config`, with `latent_dim` and the image size resolved.
/// Throws `InputError` naming the flag for an unknown model type or preset, a negative latent
/// size, channels other than 1 or 3, an image size the preset cannot halve often enough, a
/// feature layer outside 1..4, or `mlp28` with a model other than `vae`.
struct NetworkOptions {
  EncoderOptions encoder;
  DecoderOptions decoder;
  DiscriminatorOptions discriminator;
};
NetworkOptions make_network_options(const ModelConfig& config);

}  // namespace vaegan
