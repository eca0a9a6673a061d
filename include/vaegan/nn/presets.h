#pragma once
/// Architecture presets (DESIGN.md §3): `paper64` (the paper's 64×64 networks) and `small32`
/// (the same shapes with half the channels, for 32×32 Fashion-MNIST / MNIST).

#include <string>
#include <vector>

#include "vaegan/nn/decoder.h"
#include "vaegan/nn/discriminator.h"
#include "vaegan/nn/encoder.h"

namespace vaegan {

/// The part of the configuration that defines the networks; saved in every checkpoint so that
/// commands loading it rebuild the same model.
struct ModelConfig {
  std::string arch = "small32";  ///< preset name: `small32` or `paper64`
  int64_t channels = 1;          ///< C: image channels (1 for Fashion-MNIST)
  int64_t latent_dim = 0;        ///< Z; 0 means the preset's (64 for small32, 128 for paper64)
  int64_t feature_layer = 4;     ///< 1-based discriminator convolution used for `L_llike`
};

/// Names of the presets, for `--arch` validation.
const std::vector<std::string>& arch_names();

/// Image size S of a preset (32 or 64). Throws `InputError` for an unknown name.
int64_t preset_image_size(const std::string& arch);

/// The three networks' options for `config`, with `latent_dim` resolved.
/// Throws `InputError` for an unknown preset, a non-positive latent size or a feature layer
/// outside 1..4.
struct NetworkOptions {
  EncoderOptions encoder;
  DecoderOptions decoder;
  DiscriminatorOptions discriminator;
};
NetworkOptions make_network_options(const ModelConfig& config);

}  // namespace vaegan
