#include "vaegan/train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/model/gan.h"
#include "vaegan/model/vae.h"

#ifdef VAEGAN_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/cuda.h>
#endif

namespace vaegan {
namespace F = torch::nn::functional;

namespace {

/// `torch::autograd::grad` with unused inputs reported as zeros instead of undefined tensors.
std::vector<torch::Tensor> grad_or_zeros(const torch::Tensor& loss, const std::vector<torch::Tensor>& params,
                                         bool retain_graph) {
  std::vector<torch::Tensor> g = torch::autograd::grad({loss}, params, {}, retain_graph, false, /*allow_unused=*/true);
  for (size_t i = 0; i < g.size(); ++i) {
    if (!g[i].defined()) g[i] = torch::zeros_like(params[i]);
  }
  return g;
}

}  // namespace

torch::Tensor r1_penalty(Discriminator& discriminator, const torch::Tensor& x, double gamma) {
  // a copy: the caller may change `x` before differentiating the penalty
  const torch::Tensor real =
      x.detach().to(discriminator->parameters().front().scalar_type(), /*non_blocking=*/false, /*copy=*/true);
  real.requires_grad_(true);
  const torch::Tensor logits = discriminator->forward(real).logits;
  const torch::Tensor dx = torch::autograd::grad({logits.sum()}, {real}, {}, /*retain_graph=*/true,
                                                 /*create_graph=*/true)[0];
  return 0.5 * gamma * dx.pow(2).flatten(1).sum(1).mean();
}

namespace {

torch::Tensor mean_sigmoid(const torch::Tensor& logits) { return torch::sigmoid(logits.detach()).mean(); }

/// The one-element tensors `scalars`, detached, as one `[K]` float64 tensor on their device.
torch::Tensor stack_scalars(const std::vector<torch::Tensor>& scalars) {
  std::vector<torch::Tensor> flat;
  for (const auto& t : scalars) flat.push_back(t.detach().to(torch::kFloat64).reshape({}));
  return torch::stack(flat);
}

/// The values of `stacked` (`stack_scalars`), read with one device-to-host copy (each `item()`
/// on a GPU would wait for the device separately).
std::vector<double> scalar_values(const torch::Tensor& stacked) {
  const torch::Tensor host = stacked.cpu();
  return {host.data_ptr<double>(), host.data_ptr<double>() + host.numel()};
}

/// The sum of every entry of the non-empty `tensors`, as a 0-d float64 tensor on their device (no
/// host read, so a CUDA graph can capture it): NaN or Inf when an entry is.
torch::Tensor entry_sum(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> sums;
  for (const auto& t : tensors) sums.push_back(t.sum().to(torch::kFloat64));
  return torch::stack(sums).sum();
}

/// Whether every entry of every tensor is finite, with one synchronization: a sum is NaN or Inf
/// when an entry is (or when finite entries overflow, which is as bad).
bool all_finite(const std::vector<torch::Tensor>& tensors) {
  return tensors.empty() || std::isfinite(entry_sum(tensors).item<double>());
}

/// Whether `updates` include the decoder's.
template <typename Update>
bool updates_decoder(const std::vector<Update>& updates) {
  return std::any_of(updates.begin(), updates.end(), [](const Update& u) { return u.network == Network::kDecoder; });
}

/// Copies each tensor of `from` into the one of `to` at the same index (same shapes), without
/// autograd recording it.
void copy_tensors(const std::vector<torch::Tensor>& to, const std::vector<torch::Tensor>& from) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < to.size(); ++i) to[i].copy_(from[i]);
}

}  // namespace

VaeGanGradients vae_gan_gradients(Model& model, const VaeGanLosses& losses, const GradientOptions& o) {
  VaeGanGradients g;
  const std::vector<torch::Tensor> enc = model->encoder->parameters(), dec = model->decoder->parameters();
  // Encoder: beta * L_prior + L_llike. L_adv and L_dis also depend on the encoder (through
  // x_recon) but are not part of its objective (paper §2.2, Algorithm 1).
  const torch::Tensor encoder_loss = o.beta() * losses.prior + losses.llike;
  if (o.fused()) {
    // One pass for the encoder's objective and the decoder's share of L_llike (L_prior does
    // not depend on the decoder, so its part of this gradient is grad L_llike exactly).
    std::vector<torch::Tensor> params = enc;
    params.insert(params.end(), dec.begin(), dec.end());
    std::vector<torch::Tensor> both = grad_or_zeros(encoder_loss, params, /*retain_graph=*/true);
    g.encoder.assign(both.begin(), both.begin() + static_cast<std::ptrdiff_t>(enc.size()));
    g.decoder.assign(both.begin() + static_cast<std::ptrdiff_t>(enc.size()), both.end());
    for (auto& t : g.decoder) t.mul_(o.gamma());
    if (o.decoder_adversarial()) {
      std::vector<torch::Tensor> adv = grad_or_zeros(losses.adv, dec, /*retain_graph=*/true);
      for (size_t i = 0; i < adv.size(); ++i) g.decoder[i].add_(adv[i]);
    }
  } else {
    g.encoder = grad_or_zeros(encoder_loss, enc, /*retain_graph=*/true);
    torch::Tensor decoder_loss = o.gamma() * losses.llike;
    if (o.decoder_adversarial()) decoder_loss = decoder_loss + losses.adv;
    g.decoder = grad_or_zeros(decoder_loss, dec, /*retain_graph=*/true);
  }
  // Discriminator: L_dis, differentiated with respect to its own parameters only.
  if (o.discriminator()) {
    g.discriminator = grad_or_zeros(losses.dis, model->discriminator->parameters(), /*retain_graph=*/true);
  }
  return g;  // the caller drops `losses`, which frees the graph
}

std::pair<bool, bool> equilibrium_gate(double bce_real, double bce_generated, double equilibrium, double margin) {
  bool update_dis = true, decoder_adv = true;
  if (bce_real < equilibrium - margin || bce_generated < equilibrium - margin) update_dis = false;
  if (bce_real > equilibrium + margin || bce_generated > equilibrium + margin) decoder_adv = false;
  if (!update_dis && !decoder_adv) update_dis = decoder_adv = true;
  return {update_dis, decoder_adv};
}

Trainer::Trainer(const TrainConfig& config, torch::Device device, std::shared_ptr<ProcessGroup> group)
    : config_(config),
      device_(device),
      generator_(at::make_generator<at::CPUGeneratorImpl>(config.seed)),
      group_(std::move(group)) {
  validate(config_);
  config_.precision = resolve_precision(config_.precision, device_);
  torch::manual_seed(config_.seed);  // weight initialization
  model_ = Model(config_.model);
  initialize_weights(*model_, config_.init);
  model_->to(device_);
  if (config_.channels_last) to_channels_last(*model_);
  model_->train();
  if (config_.ema_decay > 0) {
    // A copy of the decoder as initialized: same options, layout and device, then its tensors.
    ema_decoder_ = Decoder(model_->decoder->options);
    ema_decoder_->to(device_);
    if (config_.channels_last) to_channels_last(*ema_decoder_);
    for (auto& p : ema_decoder_->parameters()) p.set_requires_grad(false);
    copy_tensors(ema_decoder_->parameters(), model_->decoder->parameters());
    copy_tensors(ema_decoder_->buffers(), model_->decoder->buffers());
    ema_decoder_->eval();
  }
  for (Network n : kNetworks) {
    const std::vector<torch::Tensor> params = parameters(n);
    if (!params.empty()) optimizers_[static_cast<size_t>(n)] = make_optimizer(params, initial_learning_rate(n));
  }
  augment_ = parse_augment_policy(config_.augment).probability(config_.augment_p);
  loss_options_.dis_on_recon(config_.dis_on_recon)
      .gan_loss(config_.gan_loss)
      .real_weight(config_.dis_real_weight)
      .label_smoothing(config_.label_smoothing);
  switch (config_.model.type) {
    case ModelType::kVae:
    case ModelType::kVaeThenGan:
      phase_ = Phase::kVae;
      break;
    case ModelType::kGan:
      phase_ = Phase::kGan;
      break;
    case ModelType::kVaeGan:
      phase_ = Phase::kVaeGan;
      break;
  }
}

std::vector<torch::Tensor> Trainer::parameters(Network which) const {
  const auto* m = model_.get();
  switch (which) {
    case Network::kEncoder:
      return m->encoder ? m->encoder->parameters() : std::vector<torch::Tensor>{};
    case Network::kDecoder:
      return m->decoder->parameters();
    case Network::kDiscriminator:
      return m->discriminator ? m->discriminator->parameters() : std::vector<torch::Tensor>{};
  }
  return {};
}

double Trainer::initial_learning_rate(Network which) const {
  const double own = which == Network::kEncoder   ? config_.lr_encoder
                     : which == Network::kDecoder ? config_.lr_decoder
                                                  : config_.lr_discriminator;
  return own > 0 ? own : config_.lr;
}

std::unique_ptr<torch::optim::Optimizer> Trainer::make_optimizer(const std::vector<torch::Tensor>& params,
                                                                 double lr) const {
  if (config_.optimizer == OptimizerType::kAdam) {
    return std::make_unique<torch::optim::Adam>(params,
                                                torch::optim::AdamOptions(lr)
                                                    .betas(std::make_tuple(config_.adam_beta1, config_.adam_beta2))
                                                    .weight_decay(config_.weight_decay));
  }
  return std::make_unique<torch::optim::RMSprop>(
      params, torch::optim::RMSpropOptions(lr).alpha(config_.rmsprop_alpha).weight_decay(config_.weight_decay));
}

void Trainer::begin_gan_phase() {
  TORCH_CHECK(config_.model.type == ModelType::kVaeThenGan, "begin_gan_phase: only a vae-then-gan model has phases");
  const double lr = learning_rate(Network::kDecoder);  // keep the decayed learning rate
  optimizers_[static_cast<size_t>(Network::kDecoder)] = make_optimizer(parameters(Network::kDecoder), lr);
  phase_ = Phase::kGan;
  drop_cuda_graphs();
}

torch::optim::Optimizer& Trainer::optimizer(Network which) {
  if (!has_optimizer(which)) throw std::out_of_range(fmt::format("this model has no {}", enum_name(which)));
  return *optimizers_[static_cast<size_t>(which)];
}

std::vector<double> Trainer::global_means(std::vector<double> values) const {
  return group_ ? group_->all_reduce_mean(values) : values;
}

bool Trainer::apply_updates(bool losses_finite, const std::vector<Update>& updates) {
  std::vector<torch::Tensor> all;
  for (const Update& u : updates) all.insert(all.end(), u.gradients.begin(), u.gradients.end());
  // `losses_finite` is the same on every rank (from the averaged losses), and so is the set of
  // updates (from the averaged gate): every rank joins this all-reduce or none does.
  if (!losses_finite) return false;
  if (group_) group_->all_reduce_mean(all);
  if (!all_finite(all)) return false;
  step_optimizers(updates);
  return true;
}

void Trainer::step_optimizers(const std::vector<Update>& updates) {
  for (const Update& u : updates) {
    const std::vector<torch::Tensor> params = parameters(u.network);
    for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = u.gradients[i];
    if (config_.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, config_.grad_clip);
  }
  for (const Update& u : updates) optimizer(u.network).step();
  if (ema_decoder_ && updates_decoder(updates)) update_ema();
}

void Trainer::update_ema() {
  torch::NoGradGuard no_grad;
  const double n = static_cast<double>(ema_updates_);
  const double d = std::min(config_.ema_decay, (1.0 + n) / (10.0 + n));
  const std::vector<torch::Tensor> average = ema_decoder_->parameters(), current = model_->decoder->parameters();
  for (size_t i = 0; i < average.size(); ++i) average[i].mul_(d).add_(current[i], 1.0 - d);
  copy_tensors(ema_decoder_->buffers(), model_->decoder->buffers());
  ++ema_updates_;
}

StepStats Trainer::step(const torch::Tensor& batch) {
  const int64_t b = batch.size(0), z_dim = model_->latent_dim();
  // Noise comes from the trainer's CPU generator so a run is reproducible on any device; both
  // draws happen in every phase so that the noise stream does not depend on the phase. A rank
  // draws the global batch's noise and keeps its rows.
  const int64_t global = b * world_size(), first = group_ ? b * group_->rank() : 0;
  const torch::Tensor eps = torch::randn({global, z_dim}, generator_).narrow(0, first, b);
  const torch::Tensor z_prior = torch::randn({global, z_dim}, generator_).narrow(0, first, b);
  return step(batch, eps, z_prior);
}

StepStats Trainer::step(const torch::Tensor& batch, const torch::Tensor& eps, const torch::Tensor& z_prior) {
  // A step needs autograd whatever the caller's mode (a NoGradGuard around `fit` or a step).
  const torch::AutoGradMode grad_mode(true);
  if (std::optional<StepStats> s = graph_step(batch, eps, z_prior)) return *s;
  return eager_step(batch, eps, z_prior);
}

StepStats Trainer::eager_step(const torch::Tensor& batch, const torch::Tensor& eps, const torch::Tensor& z_prior) {
  // non_blocking: a batch in pinned memory (LoaderOptions::pin_memory) is copied to a GPU while
  // the previous step's kernels still run.
  const torch::Tensor on_device = batch.to(device_, /*non_blocking=*/true);
  const torch::Tensor x = config_.channels_last ? on_device.contiguous(torch::MemoryFormat::ChannelsLast) : on_device;
  Computed c = compute(x, eps.to(device_), z_prior.to(device_), draw_augments(x.size(0), x.size(2)));
  const std::vector<double> v = c.values.empty() ? global_means(scalar_values(c.scalars)) : c.values;
  StepStats s = stats_of(c, v);
  s.update_skipped = !apply_updates(std::isfinite(s.loss_sum()), c.updates);
  return s;
}

Trainer::Computed Trainer::compute(const torch::Tensor& x, const torch::Tensor& eps, const torch::Tensor& z_prior,
                                   const AugmentDraws& augments) {
  switch (phase_) {
    case Phase::kVae:
      return vae_compute(x, eps);
    case Phase::kGan:
      return gan_compute(x, z_prior, augments);
    case Phase::kVaeGan:
      break;
  }
  return vae_gan_compute(x, eps, z_prior, augments);
}

StepStats Trainer::stats_of(const Computed& c, const std::vector<double>& v) {
  StepStats s;
  s.phase = c.phase;
  switch (c.phase) {
    case Phase::kVaeGan:  // see vae_gan_compute
      s.loss_prior = v[0];
      s.loss_llike = v[1];
      s.loss_dis = v[2];
      s.loss_adv = v[3];
      s.d_real = v[4];
      s.d_recon = v[5];
      s.d_prior = v[6];
      s.mse = v[9];
      s.dis_updated = c.dis_updated;
      s.dec_adv_updated = c.dec_adv_updated;
      break;
    case Phase::kVae:
      s.loss_prior = v[0];
      s.loss_pixel = v[1];
      s.dis_updated = s.dec_adv_updated = false;
      break;
    case Phase::kGan:
      s.loss_dis = v[0];
      s.loss_adv = v[1];
      s.d_real = v[2];
      s.d_prior = v[3];
      break;
  }
  return s;
}

// Every phase's device part has one shape: the forward pass (under autocast for bf16), the
// losses, the step's scalars stacked on the device, and each network's gradient; its end frees
// the graph and the activations. The caller (`eager_step`, or a CUDA graph's replay) then reads
// the scalars, checks finiteness and steps the optimizers.

Trainer::Computed Trainer::vae_gan_compute(const torch::Tensor& x, const torch::Tensor& eps,
                                           const torch::Tensor& z_prior, const AugmentDraws& augments) {
  Computed c;
  VaeGanForward f;
  VaeGanLosses losses;
  {
    AutocastGuard autocast(device_, bf16());
    f = vae_gan_forward(model_, x, eps, z_prior, config_.batch_norm, config_.dis_on_recon, augments.real,
                        augments.generated);
    losses = vae_gan_losses(f, loss_options_);
  }
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor bce_real = F::binary_cross_entropy_with_logits(f.real.logits, torch::ones_like(f.real.logits));
    // The generated images' cost: the mean BCE over all of them that L_dis sees, as the
    // authors' code averages it.
    torch::Tensor bce_generated =
        F::binary_cross_entropy_with_logits(f.prior.logits, torch::zeros_like(f.prior.logits));
    if (config_.dis_on_recon) {
      bce_generated = 0.5 * (bce_generated +
                             F::binary_cross_entropy_with_logits(f.recon.logits, torch::zeros_like(f.recon.logits)));
    }
    c.scalars = stack_scalars({losses.prior, losses.llike, losses.dis, losses.adv, mean_sigmoid(f.real.logits),
                               mean_sigmoid(f.recon.logits), mean_sigmoid(f.prior.logits), bce_real, bce_generated,
                               pixel_mse(f.x_recon, x)});
    if (config_.equilibrium) {
      c.values = global_means(scalar_values(c.scalars));
      std::tie(c.dis_updated, c.dec_adv_updated) =
          equilibrium_gate(c.values[7], c.values[8], config_.equilibrium_value, config_.equilibrium_margin);
    }
  }
  VaeGanGradients g = vae_gan_gradients(model_, losses,
                                        GradientOptions()
                                            .gamma(config_.gamma)
                                            .beta(config_.beta)
                                            .decoder_adversarial(c.dec_adv_updated)
                                            .discriminator(c.dis_updated)
                                            // with one joint batch every pass covers every row:
                                            // fusing saves nothing and costs a pass
                                            .fused(config_.fused_step && config_.batch_norm != BatchNormMode::kJoint));
  f = VaeGanForward();  // frees the graph and the activations
  losses = VaeGanLosses();
  c.updates = {{Network::kEncoder, std::move(g.encoder)}};
  // The authors' rule skips the decoder's whole update when it is ahead.
  const bool decoder_steps = c.dec_adv_updated || config_.equilibrium_skip == EquilibriumSkip::kAdversarial;
  if (decoder_steps) c.updates.push_back({Network::kDecoder, std::move(g.decoder)});
  if (c.dis_updated) {
    add_r1_gradient(x, g.discriminator);
    c.updates.push_back({Network::kDiscriminator, std::move(g.discriminator)});
  }
  return c;
}

Trainer::Computed Trainer::vae_compute(const torch::Tensor& x, const torch::Tensor& eps) {
  Computed c;
  c.phase = Phase::kVae;
  c.dis_updated = c.dec_adv_updated = false;
  VaeLosses l;
  {
    AutocastGuard autocast(device_, bf16());
    l = vae_losses(vae_forward(model_, x, eps), x, config_.model.recon_loss);
  }
  c.scalars = stack_scalars({l.prior, l.pixel});
  // One backward pass for both networks: the loss is their common objective.
  std::vector<torch::Tensor> params = parameters(Network::kEncoder), dec = parameters(Network::kDecoder);
  const size_t n_enc = params.size();
  params.insert(params.end(), dec.begin(), dec.end());
  std::vector<torch::Tensor> grads = grad_or_zeros(config_.beta * l.prior + l.pixel, params, /*retain_graph=*/false);
  c.updates = {{Network::kEncoder, {grads.begin(), grads.begin() + static_cast<std::ptrdiff_t>(n_enc)}},
               {Network::kDecoder, {grads.begin() + static_cast<std::ptrdiff_t>(n_enc), grads.end()}}};
  return c;
}

Trainer::Computed Trainer::gan_compute(const torch::Tensor& x, const torch::Tensor& z_prior,
                                       const AugmentDraws& augments) {
  Computed c;
  c.phase = Phase::kGan;
  {
    GanForward f;
    GanLosses l;
    {
      AutocastGuard autocast(device_, bf16());
      f = gan_forward(model_, x, z_prior, config_.batch_norm, augments.real, augments.generated);
      l = gan_losses(f, config_.gan_loss, config_.label_smoothing);
    }
    c.scalars = stack_scalars({l.dis, l.adv, mean_sigmoid(f.real.logits), mean_sigmoid(f.fake.logits)});
    // Each player's gradient over its own parameters only: L_adv never reaches the
    // discriminator, L_dis never the generator.
    c.updates = {
        {Network::kDecoder, grad_or_zeros(l.adv, parameters(Network::kDecoder), /*retain_graph=*/true)},
        {Network::kDiscriminator, grad_or_zeros(l.dis, parameters(Network::kDiscriminator), /*retain_graph=*/false)}};
  }
  add_r1_gradient(x, c.updates.back().gradients);
  return c;
}

Trainer::AugmentDraws Trainer::draw_augments(int64_t b, int64_t size) {
  if (!augmenting()) return {};
  const int64_t global = b * world_size(), first = group_ ? b * group_->rank() : 0;
  AugmentDraws d;
  d.real = draw_augment(augment_, global, size, generator_).narrow(first, b);
  d.generated = draw_augment(augment_, global, size, generator_).narrow(first, b);
  return d;
}

int64_t Trainer::updates_taken(Network which) {
  const auto& states = optimizer(which).state();
  if (states.empty()) return 0;  // no step yet
  // every parameter steps in every update (gradients are never undefined here): any state's count
  const torch::optim::OptimizerParamState* state = states.begin()->second.get();
  if (const auto* r = dynamic_cast<const torch::optim::RMSpropParamState*>(state)) return r->step();
  if (const auto* a = dynamic_cast<const torch::optim::AdamParamState*>(state)) return a->step();
  throw std::logic_error("updates_taken: an optimizer state of an unknown type");
}

void Trainer::add_r1_gradient(const torch::Tensor& x, std::vector<torch::Tensor>& gradients) {
  if (config_.r1_gamma <= 0) return;
  // Lazy R1: only every r1_interval-th update, weighted as many times (counted by the
  // discriminator's optimizer, which checkpoints save: a resumed run penalises the same steps).
  const int64_t interval = config_.r1_interval;
  if (interval > 1 && updates_taken(Network::kDiscriminator) % interval != 0) return;
  // The penalty's forward pass must not move the batch-norm statistics a second time: they are
  // put back once its graph (which keeps them) has been differentiated.
  std::vector<torch::Tensor> statistics;
  for (const auto& b : model_->discriminator->buffers()) statistics.push_back(b.detach().clone());
  const double gamma = config_.r1_gamma * static_cast<double>(interval);  // exact for 1
  const std::vector<torch::Tensor> r1 = grad_or_zeros(r1_penalty(model_->discriminator, x, gamma),
                                                      parameters(Network::kDiscriminator), /*retain_graph=*/false);
  for (size_t i = 0; i < r1.size(); ++i) gradients[i].add_(r1[i]);
  copy_tensors(model_->discriminator->buffers(), statistics);
}

// ---- CUDA graphs (docs/gpu.md, "CUDA graphs") ----

#ifdef VAEGAN_WITH_CUDA
struct Trainer::StepGraph {
  StepGraph(Phase p, c10::DeviceIndex device) : phase(p), stream(c10::cuda::getStreamFromPool(false, device)) {}
  Phase phase;
  /// where the warm-up steps run and the graphs are captured (capture needs a stream of its own)
  c10::cuda::CUDAStream stream;
  int64_t warmup_steps = 0;
  torch::Tensor x, eps, z_prior;  ///< the graph's inputs (undefined until the capture)
  AugmentDraws augments;          ///< the graph's augmentation parameters, on the device (empty without --augment)
  at::cuda::CUDAGraph compute;    ///< forward pass, losses, scalars, gradients
  /// `[K + 1]` float64: the phase's scalars, then the sum of every gradient entry (finite when
  /// every entry is, as `all_finite`)
  torch::Tensor readout;
  Computed computed;                                ///< its gradients are the graph's outputs, refilled by each replay
  std::unique_ptr<at::cuda::CUDAGraph> optimizers;  ///< null: the optimizers step eagerly
};

namespace {

/// Adds `delta` to the step count of every parameter's state of an RMSprop optimizer: a replayed
/// update does not run the host code that counts (checkpoints save the count).
void advance_rmsprop_steps(torch::optim::Optimizer& optimizer, int64_t delta) {
  for (auto& entry : optimizer.state()) {
    auto& state = static_cast<torch::optim::RMSpropParamState&>(*entry.second);
    state.step(state.step() + delta);
  }
}

/// Runs `capture` between `graph.capture_begin` and `capture_end` on `stream`. When it throws,
/// the stream's capture is ended (so that the stream works again) before the exception goes on.
template <typename Fn>
void capture_on(at::cuda::CUDAGraph& graph, const c10::cuda::CUDAStream& stream, Fn&& capture) {
  torch::cuda::synchronize(stream.device_index());
  const c10::cuda::CUDAStreamGuard guard(stream);
  // thread-local: the data loader's threads may use CUDA meanwhile
  graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
  try {
    capture();
  } catch (...) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream.stream(), &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
      cudaGraph_t abandoned = nullptr;
      if (cudaStreamEndCapture(stream.stream(), &abandoned) == cudaSuccess && abandoned) cudaGraphDestroy(abandoned);
    }
    (void)cudaGetLastError();  // the capture's error is not the next call's
    throw;
  }
  graph.capture_end();
  torch::cuda::synchronize(stream.device_index());
}

}  // namespace

bool Trainer::optimizer_states_exist(const std::vector<Update>& updates) {
  return std::all_of(updates.begin(), updates.end(), [&](const Update& u) {
    return optimizer(u.network).state().size() == parameters(u.network).size();
  });
}
#else
struct Trainer::StepGraph {};
#endif

Trainer::~Trainer() = default;

bool Trainer::uses_cuda_graphs() const {
#ifdef VAEGAN_WITH_CUDA
  return config_.cuda_graphs && device_.is_cuda() && !group_ && !config_.equilibrium && config_.r1_gamma <= 0 &&
         !cuda_graphs_failed_;
#else
  return false;
#endif
}

bool Trainer::optimizers_capturable() const {
  return config_.optimizer == OptimizerType::kRmsprop && config_.grad_clip <= 0;
}

void Trainer::drop_cuda_graphs(bool optimizers_only) {
#ifdef VAEGAN_WITH_CUDA
  if (graph_ && optimizers_only) {
    graph_->optimizers.reset();
  } else {
    graph_.reset();
  }
#else
  (void)optimizers_only;
#endif
}

std::optional<StepStats> Trainer::graph_step(const torch::Tensor& batch, const torch::Tensor& eps,
                                             const torch::Tensor& z_prior) {
#ifdef VAEGAN_WITH_CUDA
  // a model left in eval mode steps as such, eagerly (the graph holds training mode's kernels)
  if (!uses_cuda_graphs() || !model_->is_training()) return std::nullopt;
  if (!graph_ || graph_->phase != phase_) {
    graph_ = std::make_unique<StepGraph>(phase_, device_.has_index() ? device_.index() : c10::cuda::current_device());
  }
  StepGraph& g = *graph_;
  if (!g.x.defined()) {
    if (g.warmup_steps < kCudaGraphWarmupSteps) {
      torch::cuda::synchronize(g.stream.device_index());
      StepStats s;
      {
        const c10::cuda::CUDAStreamGuard guard(g.stream);
        s = eager_step(batch, eps, z_prior);
      }
      torch::cuda::synchronize(g.stream.device_index());
      ++g.warmup_steps;
      return s;
    }
    try {
      capture_step(batch, eps, z_prior);
    } catch (const std::exception& e) {
      // Training goes on, without graphs: slower, not wrong.
      spdlog::warn("capturing the training step in a CUDA graph failed, continuing without CUDA graphs: {}", e.what());
      cuda_graphs_failed_ = true;
      graph_.reset();
      return std::nullopt;
    }
  }
  if (batch.sizes() != g.x.sizes()) return std::nullopt;  // an epoch's last, smaller batch
  if (!g.optimizers && optimizers_capturable() && optimizer_states_exist(g.computed.updates)) {
    try {
      capture_optimizers();
    } catch (const std::exception& e) {
      spdlog::warn("capturing the optimizers' steps in a CUDA graph failed, continuing without CUDA graphs: {}",
                   e.what());
      cuda_graphs_failed_ = true;
      graph_.reset();
      return std::nullopt;
    }
  }
  g.x.copy_(batch, /*non_blocking=*/true);
  g.eps.copy_(eps);
  g.z_prior.copy_(z_prior);
  // drawn where the eager step draws them: after the noise, from the same generator
  const AugmentDraws augments = draw_augments(batch.size(0), batch.size(2));
  g.augments.real.copy_(augments.real);
  g.augments.generated.copy_(augments.generated);
  g.compute.replay();
  const std::vector<double> readout = scalar_values(g.readout);
  StepStats s = stats_of(g.computed, {readout.begin(), readout.end() - 1});
  const bool finite = std::isfinite(s.loss_sum()) && std::isfinite(readout.back());
  if (finite && g.optimizers) {
    g.optimizers->replay();
    for (const Update& u : g.computed.updates) advance_rmsprop_steps(optimizer(u.network), 1);
    if (ema_decoder_ && updates_decoder(g.computed.updates)) update_ema();
  } else if (finite) {
    step_optimizers(g.computed.updates);
  }
  s.update_skipped = !finite;
  return s;
#else
  (void)batch, (void)eps, (void)z_prior;
  return std::nullopt;
#endif
}

void Trainer::capture_step(const torch::Tensor& batch, const torch::Tensor& eps, const torch::Tensor& z_prior) {
#ifdef VAEGAN_WITH_CUDA
  StepGraph& g = *graph_;
  // The inputs live outside the graph's memory pool, laid out as the eager step lays out x.
  g.x = batch.to(device_, /*non_blocking=*/false, /*copy=*/true);
  if (config_.channels_last) g.x = g.x.contiguous(torch::MemoryFormat::ChannelsLast);
  g.eps = eps.to(device_, /*non_blocking=*/false, /*copy=*/true);
  g.z_prior = z_prior.to(device_, /*non_blocking=*/false, /*copy=*/true);
  if (augmenting()) {
    // buffers of the draws' shapes; their values come before each replay, so the trainer's
    // generator is left alone here
    at::Generator placeholder = at::make_generator<at::CPUGeneratorImpl>(0);
    g.augments.real = draw_augment(augment_, batch.size(0), batch.size(2), placeholder).to(device_);
    g.augments.generated = draw_augment(augment_, batch.size(0), batch.size(2), placeholder).to(device_);
  }
  capture_on(g.compute, g.stream, [&] {
    Computed c = compute(g.x, g.eps, g.z_prior, g.augments);
    std::vector<torch::Tensor> gradients;
    for (const Update& u : c.updates) gradients.insert(gradients.end(), u.gradients.begin(), u.gradients.end());
    g.readout = torch::cat({c.scalars, entry_sum(gradients).reshape({1})});
    c.scalars = torch::Tensor();
    g.computed = std::move(c);
  });
  ++cuda_graph_captures_;
#else
  (void)batch, (void)eps, (void)z_prior;
#endif
}

void Trainer::capture_optimizers() {
#ifdef VAEGAN_WITH_CUDA
  StepGraph& g = *graph_;
  // The graph reads the gradients where the step graph writes them.
  for (const Update& u : g.computed.updates) {
    const std::vector<torch::Tensor> params = parameters(u.network);
    for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = u.gradients[i];
  }
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  capture_on(*graph, g.stream, [&] {
    const torch::NoGradGuard no_grad;
    for (const Update& u : g.computed.updates) optimizer(u.network).step();
  });
  // capturing ran the optimizers' host code once, which counted a step that was not taken
  for (const Update& u : g.computed.updates) advance_rmsprop_steps(optimizer(u.network), -1);
  g.optimizers = std::move(graph);
  ++cuda_graph_captures_;
#endif
}

void Trainer::decay_learning_rates(int64_t periods_done) {
  const double t = static_cast<double>(std::min(periods_done, config_.lr_anneal_epochs)) /
                   static_cast<double>(config_.lr_anneal_epochs);
  const double anneal = 1.0 - std::pow(t, config_.lr_anneal_gamma) * (1.0 - config_.lr_final_ratio);
  for (Network n : kNetworks) {
    if (!has_optimizer(n)) continue;
    set_learning_rate(n, config_.lr_schedule == LrSchedule::kAnneal ? initial_learning_rate(n) * anneal
                                                                    : learning_rate(n) * config_.lr_decay);
  }
}

double Trainer::learning_rate(Network which) const {
  if (!has_optimizer(which)) throw std::out_of_range(fmt::format("this model has no {}", enum_name(which)));
  return optimizers_[static_cast<size_t>(which)]->param_groups().at(0).options().get_lr();
}

void Trainer::set_learning_rate(Network which, double lr) {
  if (lr != learning_rate(which)) drop_cuda_graphs(/*optimizers_only=*/true);
  for (auto& group : optimizer(which).param_groups()) group.options().set_lr(lr);
}

}  // namespace vaegan
