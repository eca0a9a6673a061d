#pragma once
/// VAE-GAN training: which loss updates which network (DESIGN.md §2, the routing table), one
/// RMSprop optimizer per network, the equilibrium rule and learning-rate decay, and the epoch
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

/// Scalars of one training step.
struct StepStats {
  double loss_prior = 0, loss_llike = 0, loss_dis = 0, loss_adv = 0;
  double d_real = 0, d_recon = 0, d_prior = 0;  ///< mean sigmoid(Dis(.)) on X, x_recon, x_prior
  bool dis_updated = true;                      ///< false when the equilibrium rule skipped it
  bool dec_adv_updated = true;                  ///< false when the equilibrium rule dropped L_adv
};

/// The equilibrium rule of seed 000 and the original code (DESIGN.md §2): from the
/// discriminator's mean BCE on real images and on prior samples, decide whether to update the
/// discriminator and whether to give the decoder its adversarial term. If both would be
/// skipped, both are done. Returns {update_discriminator, decoder_adversarial}.
std::pair<bool, bool> equilibrium_gate(double bce_real, double bce_prior, double equilibrium, double margin);

/// Owns the model, its three optimizers and the noise generator; runs Algorithm 1 steps.
class VaeGanTrainer {
 public:
  /// Builds the model from `config.model` (weights initialized from `config.seed`) on `device`.
  /// Throws `InputError` for an invalid config.
  VaeGanTrainer(const TrainConfig& config, torch::Device device);

  /// One training step on images `x` `[B, C, S, S]` in `[-1, 1]` (on any device; moved to the
  /// trainer's). Updates all three networks as the routing table says.
  StepStats step(const torch::Tensor& x);
  /// The same step with the noise given: `eps` and `z_prior` `[B, Z]` (for parity tests).
  StepStats step(const torch::Tensor& x, const torch::Tensor& eps, const torch::Tensor& z_prior);

  /// Multiplies every optimizer's learning rate by `config.lr_decay` (call after each epoch).
  void decay_learning_rates();
  /// Current learning rate of optimizer `which` (0 encoder, 1 decoder, 2 discriminator).
  double learning_rate(int which) const;

  VaeGan& model() { return model_; }
  torch::optim::RMSprop& optimizer(int which) { return *optimizers_.at(which); }
  const TrainConfig& config() const { return config_; }
  torch::Device device() const { return device_; }
  /// Generator of all training noise (data order, eps, prior z), seeded from `config.seed`.
  at::Generator& generator() { return generator_; }

 private:
  TrainConfig config_;
  torch::Device device_;
  VaeGan model_{nullptr};
  std::vector<std::unique_ptr<torch::optim::RMSprop>> optimizers_;
  VaeGanLossOptions loss_options_;
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
};

/// Summary of a finished run.
struct FitResult {
  int64_t steps = 0;
  int64_t epochs = 0;
  double seconds = 0;
  double images_per_sec = 0;
  std::string last_checkpoint;
  bool stopped_by_time = false;  ///< ended by `max_minutes`
};

/// Trains per `config` and writes `run_dir` (DESIGN.md §5): `config.json`, `metrics.jsonl`,
/// `images/epoch-NNN-{reconstructions,samples}.png` after every epoch, and a checkpoint after
/// every epoch and at the end (also when `max_minutes` ends an epoch early). `run_dir` must not contain a previous run
/// unless `overwrite`. Throws `InputError` for a bad config, unreadable data or an occupied `run_dir`;
/// `std::runtime_error` when writing fails.
FitResult fit(const TrainConfig& config, const std::string& run_dir, bool overwrite, const FitObserver& observer);

}  // namespace vaegan
