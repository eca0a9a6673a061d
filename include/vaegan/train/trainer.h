#pragma once
/// Training of every model type: for the VAE-GAN which loss updates which network (DESIGN.md §2,
/// the routing table), the VAE's ELBO step, the GAN's two-player step, the VAE-then-GAN phases;
/// one RMSprop optimizer per network, the equilibrium rule and learning-rate decay, and the epoch
/// loop that writes the run directory (DESIGN.md §5).

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vaegan/model/vae_gan.h"
#include "vaegan/train/config.h"

namespace vaegan {

/// Gradients of one step, one tensor per parameter in `parameters()` order of each network.
struct VaeGanGradients {
  std::vector<torch::Tensor> encoder;        ///< grad of L_prior + L_llike
  std::vector<torch::Tensor> decoder;        ///< grad of gamma * L_llike + L_adv (L_adv dropped when gated)
  std::vector<torch::Tensor> discriminator;  ///< grad of L_dis; empty when the update is skipped
};

/// Options of `vae_gan_gradients`.
struct GradientOptions {
  /// Weight of L_llike in the decoder's objective (paper §2.2).
  TORCH_ARG(double, gamma) = 1e-2;
  /// Weight of L_prior in the encoder's objective (1: the paper's).
  TORCH_ARG(double, beta) = 1.0;
  /// false drops L_adv from the decoder's objective (equilibrium gate).
  TORCH_ARG(bool, decoder_adversarial) = true;
  /// false skips the discriminator's gradient (equilibrium gate).
  TORCH_ARG(bool, discriminator) = true;
  /// true: the decoder's share of L_llike comes out of the encoder's backward pass (see
  /// `vae_gan_gradients`); false: one independent `autograd::grad` per network (the unfused
  /// reference path, kept for the benchmark's ratio).
  TORCH_ARG(bool, fused) = true;
};

/// Computes each network's gradient exactly as the routing table of DESIGN.md §2 says:
/// encoder `beta * L_prior + L_llike`, decoder `gamma * L_llike + L_adv`, discriminator
/// `L_dis`, over the shared graph of `losses` (kept; it is freed when the caller drops
/// `losses` and the forward's tensors). Each `autograd::grad` call names only the parameters
/// it is for, so no loss leaks into another network; for the discriminator x_recon and x_prior
/// act as constants.
///
/// Fused (the default): one backward pass of `beta * L_prior + L_llike` with respect to the
/// encoder's and the decoder's parameters gives the encoder its whole gradient and the decoder
/// `grad L_llike` (L_prior does not depend on the decoder); by linearity the decoder's gradient
/// is `gamma * grad L_llike + grad L_adv`, and a second pass differentiates L_adv alone. The
/// discriminator's pass is the third. With one network call per input and reconstructions kept
/// out of L_dis (the defaults), L_adv and L_llike share no branch of the graph, so the
/// reconstruction branch of the decoder and the lower discriminator layers are traversed once
/// instead of twice (11 % fewer FLOPs). With batch norm over concatenated batches every pass
/// covers every row, so fusing saves nothing and adds the decoder's weight gradients to the
/// first pass: use `fused(false)` there (`--batch-norm joint --fused-step false`).
VaeGanGradients vae_gan_gradients(VaeGan& model, const VaeGanLosses& losses, const GradientOptions& options);

/// What a training step optimizes.
enum class Phase {
  kVaeGan,  ///< Algorithm 1: encoder, decoder and discriminator
  kVae,     ///< `beta * L_prior + L_pixel`: encoder and decoder (the `vae` model, phase 1 of `vae-then-gan`)
  kGan,     ///< decoder (generator) against discriminator (the `gan` model, phase 2 of `vae-then-gan`)
};
/// `vaegan`, `vae` or `gan`: the `phase` value of metrics.jsonl.
std::string to_string(Phase phase);

/// Scalars of one training step; the losses a phase does not have stay 0.
struct StepStats {
  Phase phase = Phase::kVaeGan;
  double loss_prior = 0;                        ///< KL (vaegan, vae)
  double loss_llike = 0;                        ///< feature-wise reconstruction error (vaegan)
  double loss_pixel = 0;                        ///< pixel-wise reconstruction error (vae)
  double loss_dis = 0, loss_adv = 0;            ///< discriminator's and decoder's GAN losses (vaegan, gan)
  double d_real = 0, d_recon = 0, d_prior = 0;  ///< mean sigmoid(Dis(.)) on X, x_recon, x_prior
  bool dis_updated = true;                      ///< false when the equilibrium rule skipped it
  bool dec_adv_updated = true;                  ///< false when the equilibrium rule dropped L_adv
  /// true when a loss or a gradient was NaN or Inf: no network was updated.
  bool update_skipped = false;
  /// Sum of the losses of the phase (NaN or Inf when one of them is).
  double loss_sum() const { return loss_prior + loss_llike + loss_pixel + loss_dis + loss_adv; }
};

/// The equilibrium rule of seed 000 and the original code (DESIGN.md §2): from the
/// discriminator's mean BCE on real images and on prior samples, decide whether to update the
/// discriminator and whether to give the decoder its adversarial term. If both would be
/// skipped, both are done. Returns {update_discriminator, decoder_adversarial}.
std::pair<bool, bool> equilibrium_gate(double bce_real, double bce_prior, double equilibrium, double margin);

/// Owns the model, one optimizer per network and the noise generator; runs training steps of
/// the model type of `config.model.type`.
class Trainer {
 public:
  /// Builds the model from `config.model` (weights initialized from `config.seed`) on `device`.
  /// `vae-then-gan` starts in its VAE phase. Throws `InputError` for an invalid config.
  Trainer(const TrainConfig& config, torch::Device device);

  /// One training step on images `x` `[B, C, S, S]` in `[-1, 1]` (on any device; moved to the
  /// trainer's), drawing the noise from `generator()`.
  StepStats step(const torch::Tensor& x);
  /// The same step with the noise given: `eps` and `z_prior` `[B, Z]` (for parity tests); a phase
  /// ignores what it does not use (the VAE `z_prior`, the GAN `eps`).
  /// vaegan: all three networks as the routing table says (`vae_gan_gradients`).
  /// vae: encoder and decoder on `beta * L_prior + L_pixel` (one backward pass).
  /// gan: from one forward, the discriminator on `L_dis` (real vs prior samples) and the decoder
  /// on the adversarial term, each gradient over its own parameters only (simultaneous updates,
  /// as Algorithm 1 does for the VAE-GAN).
  /// When a loss or any gradient is NaN or Inf, no network is updated and `update_skipped` is set.
  /// With `config.precision == "bf16"` the forward pass runs under `AutocastGuard` (convolutions
  /// and linear layers in bf16); losses, gradients, weights and optimizer states stay fp32.
  StepStats step(const torch::Tensor& x, const torch::Tensor& eps, const torch::Tensor& z_prior);

  /// The phase the next step runs.
  Phase phase() const { return phase_; }
  /// `vae-then-gan`: ends the VAE phase. The generator keeps the VAE decoder's weights; its
  /// optimizer starts afresh (its RMSprop statistics belonged to another loss).
  void begin_gan_phase();

  /// Multiplies every optimizer's learning rate by `config.lr_decay` (call after each epoch).
  void decay_learning_rates();
  /// Whether network `which` (0 encoder, 1 decoder, 2 discriminator) exists, i.e. has an optimizer.
  bool has_optimizer(int which) const { return optimizers_.at(which) != nullptr; }
  /// Current learning rate of optimizer `which`; throws `std::out_of_range` for a missing network.
  double learning_rate(int which) const;
  /// Sets the learning rate of optimizer `which` (resume); throws `std::out_of_range` likewise.
  void set_learning_rate(int which, double lr);

  VaeGan& model() { return model_; }
  const VaeGan& model() const { return model_; }
  /// Optimizer of network `which`; throws `std::out_of_range` for a missing network.
  torch::optim::RMSprop& optimizer(int which);
  const TrainConfig& config() const { return config_; }
  torch::Device device() const { return device_; }
  /// Generator of all training noise (data order, eps, prior z), seeded from `config.seed`.
  at::Generator& generator() { return generator_; }

 private:
  StepStats vae_gan_step(const torch::Tensor& x, const torch::Tensor& eps, const torch::Tensor& z_prior);
  StepStats vae_step(const torch::Tensor& x, const torch::Tensor& eps);
  StepStats gan_step(const torch::Tensor& x, const torch::Tensor& z_prior);
  std::unique_ptr<torch::optim::RMSprop> make_optimizer(const std::vector<torch::Tensor>& params) const;

  TrainConfig config_;
  torch::Device device_;
  VaeGan model_{nullptr};
  std::vector<std::unique_ptr<torch::optim::RMSprop>> optimizers_;  ///< encoder, decoder, discriminator (null: absent)
  VaeGanLossOptions loss_options_;
  Phase phase_ = Phase::kVaeGan;
  at::Generator generator_;
};

/// Progress of the epoch loop, for reporting.
struct ProgressEvent {
  int64_t epoch = 0;          ///< 0-based epoch
  int64_t epochs = 0;         ///< planned epochs
  int64_t step_in_epoch = 0;  ///< 1-based step within the epoch
  int64_t steps_per_epoch = 0;
  int64_t global_step = 0;    ///< steps done in the run
  double images_per_sec = 0;  ///< throughput over the epoch so far
  double eta_sec = 0;         ///< seconds left in this epoch
  StepStats stats;
};

/// Observer of `fit`: step and epoch-end callbacks (either may be empty).
struct FitObserver {
  std::function<void(const ProgressEvent&)> on_step;
  std::function<void(const ProgressEvent&, const std::string& images_dir)> on_epoch_end;
  /// Asked after every step; true stops training after a checkpoint (e.g. on SIGINT).
  std::function<bool()> should_stop;
};

/// Summary of a finished run.
struct FitResult {
  int64_t steps = 0;
  int64_t epochs = 0;
  double seconds = 0;
  double images_per_sec = 0;
  std::string last_checkpoint;
  bool stopped_by_time = false;  ///< ended by `max_minutes`
  bool interrupted = false;      ///< ended by `FitObserver::should_stop`
  int64_t bad_steps = 0;         ///< updates skipped for NaN/Inf
  int64_t images_skipped = 0;    ///< training images that could not be read (each warned about once)
};

/// Trains per `config` and writes `run_dir` (DESIGN.md §5): `config.json`, `metrics.jsonl`,
/// `images/epoch-NNN-{reconstructions,samples}.png` after every epoch (no reconstructions for a
/// `gan`), `plots/losses.png` redrawn after every epoch (when gnuplot is installed), and a checkpoint after every epoch
/// and at the end (also when `max_minutes` ends an epoch early). Batches come from a background `BatchLoader`.
/// `vae-then-gan` switches to its GAN phase after `vae_phase_epochs(config)` epochs. `run_dir` must not contain a
/// previous run unless `overwrite`. With `resume`, `run_dir` must hold a run: `config` is ignored for its saved
/// `config.json`, training continues from the newest checkpoint that verifies (weights, optimizer states, learning
/// rates, generator, position in the epoch's data order, counters), and metrics.jsonl lines after that checkpoint are
/// dropped, so the finished run equals an uninterrupted one. Steps with NaN/Inf are skipped and counted;
/// `max_bad_steps` of them in a row stop the run. Throws `InputError` for a bad config, unreadable data, an occupied
/// `run_dir` or a run without a valid checkpoint to resume; `std::runtime_error` when writing fails or training
/// diverges.
FitResult fit(const TrainConfig& config, const std::string& run_dir, bool overwrite, const FitObserver& observer,
              bool resume = false);

}  // namespace vaegan
