#pragma once
/// Architecture presets (docs/design.md, "Architectures"): `paper64` (the paper's 64×64 networks,
/// paper §4 and its appendix table), `small32` (the same shapes with half the channels, for 32×32
/// Fashion-MNIST / MNIST / CIFAR-10) and `mlp28` (the MLP VAE on 28×28 images of Kingma & Welling
/// 2014, §C.2, for the `vae` model only).

#include <string>
#include <vector>

#include "vaegan/nn/decoder.h"
#include "vaegan/nn/discriminator.h"
#include "vaegan/nn/encoder.h"

namespace vaegan {

/// The largest latent size a preset accepts (the paper's is 128).
constexpr int64_t kMaxLatentDim = 4096;

/// Names of the presets, for flag validation: small32, paper64, mlp28.
const std::vector<std::string>& arch_names();

/// Native image size S of a preset (32, 64 or 28). Throws `InputError` naming `--arch` for an
/// unknown name.
int64_t preset_image_size(const std::string& arch);

/// The revision of the presets that a configuration's sizes of 0 refer to (`ModelConfig::preset_version`).
/// Revisions differ only in small32's Z, each measured better than the one before
/// (docs/training-defaults.md, "Z = 32 becomes the default" and "Z = 16 becomes the default"):
/// 1: Z = 64 (runs written before 2026-11-28); 2: Z = 32; 3: Z = 16.
constexpr int kPresetVersion = 3;

/// Native latent size Z of a preset in revision `preset_version` (small32: 16 — 64 in revision 1,
/// 32 in revision 2 —; paper64 128; mlp28 20). Throws as `preset_image_size`, and `InputError`
/// naming `model.preset_version` for a revision outside 1..kPresetVersion.
int64_t preset_latent_dim(const std::string& arch, int preset_version = kPresetVersion);

/// The discriminator convolution (1-based) whose output is `Dis_l` for `L_llike` when the
/// configuration says 0: small32 3 (the 8×8 convolution: measured against 2 and 4 on
/// Fashion-MNIST and the Oxygen icons, docs/training-defaults.md, "The feature layer"), paper64
/// and mlp28 4 (the authors' `recon_depth = 9`, their CelebA model's 4th convolution). Every
/// config.json written before this rule names its layer, so no revision of the presets is
/// needed. Throws as `preset_image_size`.
int64_t preset_feature_layer(const std::string& arch);

/// The options of the three networks of one preset.
struct NetworkOptions {
  EncoderOptions encoder;
  DecoderOptions decoder;
  DiscriminatorOptions discriminator;
};

/// The networks of preset `arch` for images `[B, channels, image_size, image_size]` (0: the
/// preset's size), latent size `latent_dim` (0: the preset's in revision `preset_version`) and
/// discriminator feature layer `feature_layer` (1-based convolution, for `L_llike`; 0: the preset's,
/// `preset_feature_layer`). Throws `InputError` naming the flag for an unknown preset, a negative
/// size, channels other than 1 or 3, an image size a convolutional preset cannot halve three
/// times, a feature layer outside 0..4, or an unknown revision (as `preset_latent_dim`).
NetworkOptions preset_network_options(const std::string& arch, int64_t channels, int64_t image_size, int64_t latent_dim,
                                      int64_t feature_layer, int preset_version = kPresetVersion);

}  // namespace vaegan
