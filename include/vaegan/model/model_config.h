#pragma once
/// What a model is: its type, its architecture and its likelihood p(x|z). Saved with every run
/// and checkpoint (`config.json`), so that every command that loads a checkpoint rebuilds the same
/// networks without asking for architecture flags again.

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "vaegan/core/enum_names.h"
#include "vaegan/nn/presets.h"

namespace vaegan {

/// Which model (docs/design.md, "The models").
enum class ModelType {
  kVaeGan,      ///< encoder, decoder, discriminator trained together (paper Algorithm 1)
  kVae,         ///< encoder and decoder on the pixel-wise ELBO (Kingma & Welling 2014)
  kGan,         ///< decoder as generator against the discriminator (Goodfellow et al. 2014, DCGAN-style)
  kVaeThenGan,  ///< a VAE phase, then a GAN phase whose generator starts from the VAE's decoder
};
VAEGAN_ENUM_NAMES(ModelType, "--model", 4, {ModelType::kVaeGan, "vaegan"}, {ModelType::kVae, "vae"},
                  {ModelType::kGan, "gan"}, {ModelType::kVaeThenGan, "vae-then-gan"})

/// Pixel likelihood p(x|z) of the plain VAE (`--recon-loss`), on the `[0, 1]` scale that PyTorch
/// VAE code uses (see `pixel_reconstruction_loss`).
enum class ReconLoss {
  kBce,  ///< Bernoulli on `[0, 1]` intensities (Kingma & Welling 2014, §C.1)
  kMse,  ///< squared error on `[0, 1]` pixels: a Gaussian of variance 1/2, up to a constant
};
VAEGAN_ENUM_NAMES(ReconLoss, "--recon-loss", 2, {ReconLoss::kBce, "bce"}, {ReconLoss::kMse, "mse"})

/// The part of the configuration that defines the networks and the likelihood. In `config.json`
/// the fields but `recon_loss` form the `model` object; `recon_loss` is a top-level key (format 1 put it
/// there, and the format is kept).
struct ModelConfig {
  ModelType type = ModelType::kVaeGan;
  std::string arch = "small32";  ///< preset name: `small32`, `paper64` or `mlp28` (nn/presets.h)
  int64_t channels = 1;          ///< C: image channels (1 for Fashion-MNIST)
  int64_t image_size = 0;        ///< S; 0 means the preset's (32, 64, 28); conv presets need a multiple of 8
  int64_t latent_dim = 0;        ///< Z; 0 means the preset's (16 small32, 128 paper64, 20 mlp28)
  /// 1-based discriminator convolution whose output is `Dis_l` (paper eq. 7); 0 means the preset's
  /// (3 small32, 4 paper64: `preset_feature_layer`)
  int64_t feature_layer = 0;
  ReconLoss recon_loss = ReconLoss::kBce;  ///< `vae`: the pixel likelihood p(x|z)
  /// Which revision of the presets a size of 0 means (nn/presets.h, `kPresetVersion`): a run's
  /// config.json written before the key existed reads as 1, so its small32 keeps Z = 64.
  int preset_version = kPresetVersion;

  bool has_encoder() const { return type != ModelType::kGan; }
  bool has_discriminator() const { return type != ModelType::kVae; }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ModelConfig, type, arch, channels, image_size, latent_dim,
                                                feature_layer, preset_version)

/// The image size `config` trains on: `config.image_size`, or the preset's when 0. Throws
/// `InputError` for an unknown preset.
int64_t model_image_size(const ModelConfig& config);

/// The three networks' options for `config` (`preset_network_options`), after checking that
/// the type and the preset go together (`mlp28` is the plain VAE's only). Throws `InputError`
/// naming the flag.
NetworkOptions make_network_options(const ModelConfig& config);

}  // namespace vaegan
