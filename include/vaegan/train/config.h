#pragma once
/// The resolved training configuration: one flat, commented struct, saved as `config.json` in
/// the run directory and in every checkpoint (DESIGN.md §5).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "vaegan/nn/presets.h"

namespace vaegan {

/// Version of the run-directory / checkpoint format written by this build. 2: checkpoints carry
/// `checksums.json`, `rng.pt` and the data-order position (format 1 still loads for sampling and
/// evaluation, unverified, but cannot be resumed exactly).
constexpr int kFormatVersion = 2;

struct TrainConfig {
  ModelConfig model;

  // data
  std::string dataset = "fashion-mnist";  ///< fashion-mnist | mnist | cifar10 | celeba | folder
  std::string data_dir;                   ///< empty: `default_data_dir(dataset)`
  bool horizontal_flip = false;           ///< mirror training images left-right at random
  int64_t loader_threads = 1;             ///< threads decoding image files (folder, celeba)

  // schedule
  int64_t epochs = 10;      ///< passes over the training set
  int64_t max_steps = 0;    ///< stop after this many steps (0: no limit)
  int64_t batch_size = 64;  ///< images per step (paper §4: 64)
  /// `vae-then-gan`: epochs of the VAE phase (0: half of `epochs`, at least 1), the rest GAN.
  int64_t pretrain_epochs = 0;
  double max_minutes = 0;  ///< stop after the step that exceeds this wall time, in minutes (0: no limit)

  // optimization (one RMSprop per network, paper §4)
  double lr = 3e-4;                ///< learning rate of all three optimizers (paper §4: 3e-4)
  double lr_decay = 1.0;           ///< learning rates are multiplied by this after every epoch (seed 000: 0.75)
  double rmsprop_alpha = 0.9;      ///< RMSprop smoothing constant (original code: 0.9)
  double gamma = 1e-2;             ///< weight of L_llike against L_adv in the decoder (paper §2.2)
  double beta = 1.0;               ///< weight of L_prior in the encoder's objective (1: the paper's ELBO)
  std::string recon_loss = "bce";  ///< `vae`: pixel likelihood, bce | mse (`pixel_reconstruction_loss`)
  /// Discriminator also classifies reconstructions (Algorithm 1: yes; the original CelebA code
  /// and the default here, by measurement: no, see docs/training-defaults.md).
  bool dis_on_recon = false;
  /// joint: each network runs once on the concatenation of its inputs; separate (default, by
  /// measurement): once per input, so batch norm never mixes real and generated images.
  std::string batch_norm = "separate";
  std::string gan_loss = "non-saturating";  ///< decoder adversarial term: non-saturating | minimax

  // equilibrium (seed 000 and the original code): skip the update of the player that is ahead
  bool equilibrium = false;
  double equilibrium_value = 0.68;
  double equilibrium_margin = 0.35;

  // speed (neither changes what is computed)
  bool fused_step = true;     ///< share the L_llike backward pass between encoder and decoder (exact)
  bool channels_last = true;  ///< NHWC memory format for convolutions (faster on CPU)
  /// fp32 | bf16: bf16 autocast for the forward pass (`AutocastGuard`); weights, gradients,
  /// optimizer states and losses stay fp32. The CLI resolves `auto` with `default_precision`.
  std::string precision = "fp32";

  // fault tolerance
  int64_t checkpoint_every = 0;  ///< steps between checkpoints, besides those at epoch ends (0: none)
  int64_t keep_checkpoints = 2;  ///< newest checkpoints kept (older ones are deleted)
  int64_t max_bad_steps = 10;    ///< stop after this many steps in a row with NaN/Inf losses or gradients

  // reproducibility and resources
  uint64_t seed = 0;
  int threads = 0;  ///< intra-op threads (0: all cores)

  // logging
  int64_t log_every = 50;  ///< steps between metrics.jsonl lines
  int64_t grid_size = 64;  ///< images in each per-epoch grid
};

void to_json(nlohmann::json& j, const ModelConfig& c);
void from_json(const nlohmann::json& j, ModelConfig& c);
void to_json(nlohmann::json& j, const TrainConfig& c);
/// Reads a config written by `to_json`; missing keys keep their defaults.
/// Throws `InputError` when `format_version` is newer than this build's.
void from_json(const nlohmann::json& j, TrainConfig& c);

/// Checks ranges and combinations. Throws `InputError` naming the flag, e.g.
/// "--batch-size: must be at least 2, got 1".
void validate(const TrainConfig& c);

/// Epochs of the VAE phase of a `vae-then-gan` run: `pretrain_epochs`, or half of `epochs`
/// (at least 1) when 0.
int64_t vae_phase_epochs(const TrainConfig& c);

/// Reads `path` (a config.json). Throws `InputError` naming the file when it is missing or not
/// valid JSON of the expected shape.
TrainConfig load_config(const std::string& path);

}  // namespace vaegan
