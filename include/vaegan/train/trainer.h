#pragma once
/// One training step of every model type: for the VAE-GAN which loss updates which network
/// (docs/design.md, "The algorithm", the routing table), the VAE's ELBO step, the GAN's
/// two-player step, the VAE-then-GAN phases; one optimizer per network (RMSprop or Adam, with
/// its own learning rate, weight decay and gradient clipping), the equilibrium rule and
/// learning-rate decay. The epoch loop that writes a run directory is `fit`
/// (train/fit.h).

#include <torch/torch.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vaegan/core/enum_names.h"
#include "vaegan/dist/process_group.h"
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

/// Computes each network's gradient exactly as the routing table of docs/design.md says:
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
/// first pass: the trainer does not fuse there (`Trainer::step` with `--batch-norm joint`).
VaeGanGradients vae_gan_gradients(Model& model, const VaeGanLosses& losses, const GradientOptions& options);

/// The R1 gradient penalty of Mescheder, Geiger and Nowozin 2018 ("Which training methods for
/// GANs do actually converge?", arXiv 1801.04406, eq. 9) on real images `x` (`[B, C, H, W]`,
/// values in `[-1, 1]`): `(gamma / 2) * mean_i ||grad_x D(x)_i||^2`, the gradient of the summed
/// logits with respect to each image, squared and summed over its pixels, averaged over the
/// batch. Returns the penalty as a scalar with its graph (create_graph), so that differentiating
/// it with respect to the discriminator's parameters is the double backward the penalty needs.
/// Runs in the dtype of `discriminator` (call it outside autocast) on a copy of `x`; with batch
/// norm in training mode the statistics are those of this batch, and the forward pass moves the
/// running statistics as any other does (the trainer puts them back after differentiating).
torch::Tensor r1_penalty(Discriminator& discriminator, const torch::Tensor& x, double gamma);

/// What a training step optimizes; its name is the `phase` value of metrics.jsonl and state.json.
enum class Phase {
  kVaeGan,  ///< Algorithm 1: encoder, decoder and discriminator
  kVae,     ///< `beta * L_prior + L_pixel`: encoder and decoder (the `vae` model, phase 1 of `vae-then-gan`)
  kGan,     ///< decoder (generator) against discriminator (the `gan` model, phase 2 of `vae-then-gan`)
};
VAEGAN_ENUM_NAMES(Phase, "phase", 3, {Phase::kVaeGan, "vaegan"}, {Phase::kVae, "vae"}, {Phase::kGan, "gan"})

/// The networks that have an optimizer; their names are the `lr_NAME` keys of metrics.jsonl and
/// the `optimizer-NAME.pt` files of a checkpoint.
enum class Network { kEncoder = 0, kDecoder = 1, kDiscriminator = 2 };
VAEGAN_ENUM_NAMES(Network, "network", 3, {Network::kEncoder, "encoder"}, {Network::kDecoder, "decoder"},
                  {Network::kDiscriminator, "discriminator"})
/// The three networks, in order.
constexpr std::array<Network, 3> kNetworks = {Network::kEncoder, Network::kDecoder, Network::kDiscriminator};

/// Scalars of one training step; the losses a phase does not have stay 0.
struct StepStats {
  Phase phase = Phase::kVaeGan;
  double loss_prior = 0;  ///< KL (vaegan, vae)
  double loss_llike = 0;  ///< feature-wise reconstruction error (vaegan)
  double loss_pixel = 0;  ///< pixel-wise reconstruction error (vae)
  /// vaegan: mean squared error per pixel of the reconstructions (on `[-1, 1]`; not a loss of
  /// the step, a measure of it)
  double mse = 0;
  double loss_dis = 0, loss_adv = 0;            ///< discriminator's and decoder's GAN losses (vaegan, gan)
  double d_real = 0, d_recon = 0, d_prior = 0;  ///< mean sigmoid(Dis(.)) on X, x_recon, x_prior
  bool dis_updated = true;                      ///< false when the equilibrium rule skipped it
  /// false when the equilibrium rule held the decoder back: it dropped L_adv
  /// (`EquilibriumSkip::kAdversarial`) or the decoder's whole update (`kDecoder`)
  bool dec_adv_updated = true;
  /// true when a loss or a gradient was NaN or Inf: no network was updated.
  bool update_skipped = false;
  /// Sum of the losses of the phase (NaN or Inf when one of them is).
  double loss_sum() const { return loss_prior + loss_llike + loss_pixel + loss_dis + loss_adv; }
};

/// The equilibrium rule of the authors' code (docs/design.md, "Stabilisers"): from the
/// discriminator's mean BCE on real images and on the generated images of L_dis (prior samples,
/// and reconstructions when it has them), decide whether to update the discriminator and
/// whether the decoder may use its adversarial term (`TrainConfig::equilibrium_skip` says what
/// it loses otherwise). If both would be skipped, both are done. Returns
/// {update_discriminator, decoder_adversarial}.
std::pair<bool, bool> equilibrium_gate(double bce_real, double bce_generated, double equilibrium, double margin);

/// Eager steps a phase runs on the capture stream before its step is captured in a CUDA graph
/// (cuDNN's autotuner, cuBLAS's workspace and the optimizers' states are set up by them; PyTorch's
/// `torch.cuda.graphs` documentation warms up likewise).
constexpr int64_t kCudaGraphWarmupSteps = 2;

/// Owns the model, one optimizer per network and the noise generator; runs training steps of
/// the model type of `config.model.type`.
class Trainer {
 public:
  /// Builds the model from `config.model` (weights initialized from `config.seed`) on `device`.
  /// `vae-then-gan` starts in its VAE phase; `Precision::kAuto` is resolved (`resolve_precision`,
  /// see `config()`). Throws `InputError` for an invalid config.
  ///
  /// With `group` (data parallelism, docs/design.md "Data parallelism"), this trainer is one rank
  /// of `group->world_size()`: each `step` takes this rank's share of the global batch, and
  ///  - draws the noise of the whole global batch and keeps its own rows (so every rank's
  ///    generator stays in the same state, and the noise equals one process's at the global batch);
  ///  - averages the step's scalars over the ranks (one all-reduce) before the equilibrium rule
  ///    and the NaN check use them, so every rank decides alike, and reports the averages;
  ///  - averages every updated network's gradients over the ranks (one all-reduce of one
  ///    flattened buffer) before clipping and the optimizers' steps.
  /// Batch norm stays per rank (the statistics of the rank's own rows), as in PyTorch's DDP.
  /// The ranks' weights must start equal (`fit` broadcasts rank 0's).
  Trainer(const TrainConfig& config, torch::Device device, std::shared_ptr<ProcessGroup> group = nullptr);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// One training step on images `x` `[B, C, S, S]` in `[-1, 1]` (on any device; moved to the
  /// trainer's), drawing the noise from `generator()` (`[B * world_size, Z]` each, this rank's
  /// rows kept).
  StepStats step(const torch::Tensor& x);
  /// The same step with the noise given: `eps` and `z_prior` `[B, Z]` (for parity tests); a phase
  /// ignores what it does not use (the VAE `z_prior`, the GAN `eps`).
  /// vaegan: all three networks as the routing table says (`vae_gan_gradients`).
  /// vae: encoder and decoder on `beta * L_prior + L_pixel` (one backward pass).
  /// gan: from one forward, the discriminator on `L_dis` (real vs prior samples) and the decoder
  /// on the adversarial term, each gradient over its own parameters only (simultaneous updates,
  /// as Algorithm 1 does for the VAE-GAN).
  /// When a loss or any gradient is NaN or Inf, no network is updated and `update_skipped` is set.
  ///
  /// On a CUDA device with `config.cuda_graphs` (see `uses_cuda_graphs`), the first
  /// `kCudaGraphWarmupSteps` steps of a phase run as above on a side stream, the next one
  /// captures the forward pass, the losses and the gradients into one CUDA graph (and, with
  /// RMSprop and no gradient clipping, the optimizers' steps into a second one), and from then on
  /// a step copies `x`, `eps` and `z_prior` into the graph's inputs and replays it: the same
  /// kernels on the same addresses, one launch instead of thousands, and one device-to-host copy
  /// of the step's scalars. A batch of another shape (an epoch's last) runs as above.
  /// With bf16 precision the forward pass runs under `AutocastGuard` (convolutions and linear
  /// layers in bf16); losses, gradients, weights and optimizer states stay fp32. Autograd is on
  /// for the step even inside a caller's `torch::NoGradGuard`.
  StepStats step(const torch::Tensor& x, const torch::Tensor& eps, const torch::Tensor& z_prior);

  /// Whether this trainer's steps are replayed from CUDA graphs: `config.cuda_graphs`, a CUDA
  /// device and a build with CUDA, one process, and a step without a host decision between its
  /// forward pass and its gradients (no equilibrium rule) and no double backward pass (no R1
  /// penalty). Augmentation's parameters, drawn on the host, are graph inputs as the noise is.
  /// The optimizers' steps are captured too with RMSprop and no gradient clipping (Adam's bias
  /// correction and clipping's norm are computed on the host); the decoder's moving average is
  /// updated outside the graphs.
  bool uses_cuda_graphs() const;
  /// CUDA graphs captured so far (each phase's step graph and each re-capture of the optimizers'
  /// graph after a change of learning rate count one).
  int64_t cuda_graph_captures() const { return cuda_graph_captures_; }
  /// Drops the captured CUDA graphs (only the optimizers' graph, whose learning rates are
  /// constants in it, with `optimizers_only`): the next steps capture again. Call after replacing
  /// the model's or the optimizers' tensors (`restore_checkpoint` does); `set_learning_rate` and
  /// `begin_gan_phase` do it themselves. Nothing without graphs.
  void drop_cuda_graphs(bool optimizers_only = false);
  /// The phase the next step runs.
  Phase phase() const { return phase_; }
  /// `vae-then-gan`: ends the VAE phase. The generator keeps the VAE decoder's weights; its
  /// optimizer starts afresh (its statistics belonged to another loss), at the decayed rate.
  void begin_gan_phase();

  /// Sets the learning rates for the period after `periods_done` periods (call after each one:
  /// an epoch, or `config.lr_anneal_period` steps under `anneal`): `exponential` multiplies each
  /// by `config.lr_decay`; `anneal` sets each to its start value times the annealing factor of
  /// `periods_done` (`LrSchedule::kAnneal`).
  void decay_learning_rates(int64_t periods_done);
  /// Whether network `which` exists, i.e. has an optimizer.
  bool has_optimizer(Network which) const { return optimizers_.at(static_cast<size_t>(which)) != nullptr; }
  /// Updates optimizer `which` has taken (the step count of its parameters' states; 0 before the
  /// first). Throws `std::out_of_range` for a missing network.
  int64_t updates_taken(Network which);
  /// Current learning rate of optimizer `which`; throws `std::out_of_range` for a missing network.
  double learning_rate(Network which) const;
  /// Sets the learning rate of optimizer `which` (resume); throws `std::out_of_range` likewise.
  void set_learning_rate(Network which, double lr);

  Model& model() { return model_; }
  const Model& model() const { return model_; }
  /// Optimizer of network `which` (`torch::optim::RMSprop` or `Adam`, per `config.optimizer`);
  /// throws `std::out_of_range` for a missing network.
  torch::optim::Optimizer& optimizer(Network which);
  const TrainConfig& config() const { return config_; }
  /// The VAE-GAN loss options of `config()` (reconstructions in L_dis, GAN loss, real weight).
  const VaeGanLossOptions& loss_options() const { return loss_options_; }
  torch::Device device() const { return device_; }
  /// Generator of all training noise (data order, eps, prior z), seeded from `config.seed`.
  at::Generator& generator() { return generator_; }
  /// The exponential moving average of the decoder's weights (`config.ema_decay` > 0; null
  /// otherwise), on the trainer's device, in eval mode, never trained. After every step that
  /// updates the decoder each of its parameters becomes `d * ema + (1 - d) * decoder` with
  /// `d = min(ema_decay, (1 + n) / (10 + n))`, n the updates averaged so far (the warm-up keeps the
  /// initial weights from lingering in a short run), and its batch-norm statistics are copied.
  /// Karras et al. 2018 (ProGAN) §A.1; the warm-up as TensorFlow's `ExponentialMovingAverage`
  /// with `num_updates`.
  Decoder ema_decoder() const { return ema_decoder_; }
  /// Decoder updates averaged into `ema_decoder()` so far (saved in checkpoints).
  int64_t ema_updates() const { return ema_updates_; }
  /// Sets that count (resume).
  void set_ema_updates(int64_t n) { ema_updates_ = n; }
  /// The process group this trainer is a rank of (null: a single process).
  ProcessGroup* group() const { return group_.get(); }
  /// Ranks in the job (1 without a group).
  int world_size() const { return group_ ? group_->world_size() : 1; }

 private:
  /// A fresh optimizer of `config.optimizer` over `params` at learning rate `lr`.
  std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<torch::Tensor>& params, double lr) const;
  /// The learning rate network `which` starts with: its own (`lr_encoder`, ...) or `lr`.
  double initial_learning_rate(Network which) const;
  /// The parameters of network `which` (empty for a missing network).
  std::vector<torch::Tensor> parameters(Network which) const;
  /// One network's share of a step: its gradients, one per parameter.
  struct Update {
    Network network;
    std::vector<torch::Tensor> gradients;
  };
  /// The end of every step: when `losses_finite` and every gradient is finite, assigns each
  /// update's gradients to its network's parameters, clips their norm to `config.grad_clip`
  /// (when set; `torch.nn.utils.clip_grad_norm_`) and steps its optimizer; otherwise updates
  /// nothing. Call after the step's graph is released. Returns whether it updated.
  bool apply_updates(bool losses_finite, const std::vector<Update>& updates);
  /// Assigns each update's gradients to its network's parameters, clips them (`config.grad_clip`),
  /// steps the optimizers and the decoder's moving average: `apply_updates` once it has decided.
  void step_optimizers(const std::vector<Update>& updates);
  /// What a step computes on the device before anything is read: the phase's scalars, the
  /// equilibrium rule's decisions (whose inputs, when the rule is on, are read on the way) and
  /// each network's gradients.
  struct Computed {
    Phase phase = Phase::kVaeGan;
    /// `[K]` float64, the phase's scalars (`stats_of` says which), not yet read
    torch::Tensor scalars;
    /// their values averaged over the ranks, when the equilibrium rule has already read them
    std::vector<double> values;
    bool dis_updated = true, dec_adv_updated = true;
    std::vector<Update> updates;
  };
  /// The parameters of a step's augmentation (`draw_augments`): real images and their
  /// reconstructions, then generated images; empty draws without augmentation.
  struct AugmentDraws {
    AugmentDraw real, generated;
  };
  /// The device part of a step of the current phase on `x`, `eps`, `z_prior` (on the device),
  /// with `augments`' transforms on what the discriminator judges. Reads nothing back from the
  /// device unless the equilibrium rule is on.
  Computed compute(const torch::Tensor& x, const torch::Tensor& eps, const torch::Tensor& z_prior,
                   const AugmentDraws& augments);
  Computed vae_gan_compute(const torch::Tensor& x, const torch::Tensor& eps, const torch::Tensor& z_prior,
                           const AugmentDraws& augments);
  Computed vae_compute(const torch::Tensor& x, const torch::Tensor& eps);
  Computed gan_compute(const torch::Tensor& x, const torch::Tensor& z_prior, const AugmentDraws& augments);
  /// The step's statistics from `c` and the scalars' values `v` (averaged over the ranks).
  static StepStats stats_of(const Computed& c, const std::vector<double>& v);
  /// The step on CUDA graphs (see `step`); null when this step must run without them.
  std::optional<StepStats> graph_step(const torch::Tensor& batch, const torch::Tensor& eps,
                                      const torch::Tensor& z_prior);
  /// The step without CUDA graphs (see `step`).
  StepStats eager_step(const torch::Tensor& batch, const torch::Tensor& eps, const torch::Tensor& z_prior);
  /// Whether the optimizers' steps can be captured: RMSprop (Adam's bias correction is computed
  /// on the host from its step count) without gradient clipping (whose norm is read back).
  bool optimizers_capturable() const;
  /// Captures the step of the current phase into `graph_` from the inputs of this step.
  void capture_step(const torch::Tensor& batch, const torch::Tensor& eps, const torch::Tensor& z_prior);
  /// Whether the optimizer of every update has a state for each of its parameters (created by its
  /// first step): a state created during a capture would be zeroed again by every replay.
  bool optimizer_states_exist(const std::vector<Update>& updates);
  /// Captures the optimizers' steps on the step graph's gradients into `graph_`.
  void capture_optimizers();
  /// Adds the gradient of the R1 penalty on the real batch `x` (`r1_penalty`, weight
  /// `config.r1_gamma`; nothing when it is 0) to the discriminator's `gradients`, in fp32, and
  /// leaves the discriminator's batch-norm running statistics as they were before it. With
  /// `config.r1_interval` N > 1 only when the discriminator has taken a multiple of N updates,
  /// weighted N times (lazy R1).
  void add_r1_gradient(const torch::Tensor& x, std::vector<torch::Tensor>& gradients);
  /// This rank's share of two draws of `config.augment`'s transforms for `b` images of size
  /// `size` (real images and their reconstructions, then generated images), from the trainer's
  /// generator at the global batch as the step's noise, on the CPU; empty draws without
  /// augmentation. Only the phases with a discriminator draw them (a vae-then-gan run's VAE
  /// phase draws none). Every step draws them once, after its noise, with or without CUDA graphs.
  AugmentDraws draw_augments(int64_t b, int64_t size);
  /// Whether this phase's steps augment what the discriminator judges: `config.augment` names a
  /// transform and the phase has a discriminator (not a vae-then-gan run's VAE phase).
  bool augmenting() const { return augment_.any() && phase_ != Phase::kVae; }
  /// Averages the decoder's current weights into `ema_decoder_` (see `ema_decoder`).
  void update_ema();
  bool bf16() const { return config_.precision == Precision::kBf16; }
  /// `values` averaged over the ranks (unchanged without a group).
  std::vector<double> global_means(std::vector<double> values) const;

  TrainConfig config_;
  torch::Device device_;
  Model model_{nullptr};
  std::array<std::unique_ptr<torch::optim::Optimizer>, 3> optimizers_;  ///< by `Network` (null: absent)
  VaeGanLossOptions loss_options_;
  AugmentOptions augment_;  ///< `config.augment`, parsed
  Phase phase_ = Phase::kVaeGan;
  at::Generator generator_;
  std::shared_ptr<ProcessGroup> group_;
  Decoder ema_decoder_{nullptr};
  int64_t ema_updates_ = 0;
  /// The captured step of the current phase (defined in trainer.cpp; CUDA builds only).
  struct StepGraph;
  std::unique_ptr<StepGraph> graph_;
  int64_t cuda_graph_captures_ = 0;
  bool cuda_graphs_failed_ = false;  ///< a capture failed: steps run without graphs from then on
};

}  // namespace vaegan
