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

/// The values of the one-element tensors `scalars`, read with one device-to-host copy (each
/// `item()` on a GPU would wait for the device separately).
std::vector<double> scalar_values(const std::vector<torch::Tensor>& scalars) {
  std::vector<torch::Tensor> flat;
  for (const auto& t : scalars) flat.push_back(t.detach().to(torch::kFloat64).reshape({}));
  const torch::Tensor host = torch::stack(flat).cpu();
  return {host.data_ptr<double>(), host.data_ptr<double>() + host.numel()};
}

/// Whether every entry of every tensor is finite, with one synchronization: a sum is NaN or Inf
/// when an entry is (or when finite entries overflow, which is as bad).
bool all_finite(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> sums;
  for (const auto& t : tensors) sums.push_back(t.sum().to(torch::kFloat64));
  return sums.empty() || std::isfinite(torch::stack(sums).sum().item<double>());
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
  loss_options_.dis_on_recon(config_.dis_on_recon).gan_loss(config_.gan_loss).real_weight(config_.dis_real_weight);
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
  for (const Update& u : updates) {
    const std::vector<torch::Tensor> params = parameters(u.network);
    for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = u.gradients[i];
    if (config_.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, config_.grad_clip);
  }
  for (const Update& u : updates) optimizer(u.network).step();
  const bool decoder_updated =
      std::any_of(updates.begin(), updates.end(), [](const Update& u) { return u.network == Network::kDecoder; });
  if (ema_decoder_ && decoder_updated) update_ema();
  return true;
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
  // non_blocking: a batch in pinned memory (LoaderOptions::pin_memory) is copied to a GPU while
  // the previous step's kernels still run.
  const torch::Tensor on_device = batch.to(device_, /*non_blocking=*/true);
  const torch::Tensor x = config_.channels_last ? on_device.contiguous(torch::MemoryFormat::ChannelsLast) : on_device;
  switch (phase_) {
    case Phase::kVae:
      return vae_step(x, eps.to(device_));
    case Phase::kGan:
      return gan_step(x, z_prior.to(device_));
    case Phase::kVaeGan:
      break;
  }
  return vae_gan_step(x, eps.to(device_), z_prior.to(device_));
}

// Every step has one shape: inside a scope, the forward pass (under autocast for bf16), the
// losses, the statistics and each network's gradient; the scope's end frees the graph and the
// activations; then `apply_updates` checks finiteness and steps the optimizers.

StepStats Trainer::vae_gan_step(const torch::Tensor& x, const torch::Tensor& eps, const torch::Tensor& z_prior) {
  StepStats s;
  std::vector<Update> updates;
  {
    VaeGanForward f;
    VaeGanLosses losses;
    {
      AutocastGuard autocast(device_, bf16());
      f = vae_gan_forward(model_, x, eps, z_prior, config_.batch_norm, config_.dis_on_recon);
      losses = vae_gan_losses(f, loss_options_);
    }
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor bce_real =
          F::binary_cross_entropy_with_logits(f.real.logits, torch::ones_like(f.real.logits));
      // The generated images' cost: the mean BCE over all of them that L_dis sees, as the
      // authors' code averages it.
      torch::Tensor bce_generated =
          F::binary_cross_entropy_with_logits(f.prior.logits, torch::zeros_like(f.prior.logits));
      if (config_.dis_on_recon) {
        bce_generated = 0.5 * (bce_generated +
                               F::binary_cross_entropy_with_logits(f.recon.logits, torch::zeros_like(f.recon.logits)));
      }
      const std::vector<double> v =
          global_means(scalar_values({losses.prior, losses.llike, losses.dis, losses.adv, mean_sigmoid(f.real.logits),
                                      mean_sigmoid(f.recon.logits), mean_sigmoid(f.prior.logits), bce_real,
                                      bce_generated, pixel_mse(f.x_recon, x)}));
      s.loss_prior = v[0];
      s.loss_llike = v[1];
      s.loss_dis = v[2];
      s.loss_adv = v[3];
      s.d_real = v[4];
      s.d_recon = v[5];
      s.d_prior = v[6];
      s.mse = v[9];
      if (config_.equilibrium) {
        std::tie(s.dis_updated, s.dec_adv_updated) =
            equilibrium_gate(v[7], v[8], config_.equilibrium_value, config_.equilibrium_margin);
      }
    }
    VaeGanGradients g =
        vae_gan_gradients(model_, losses,
                          GradientOptions()
                              .gamma(config_.gamma)
                              .beta(config_.beta)
                              .decoder_adversarial(s.dec_adv_updated)
                              .discriminator(s.dis_updated)
                              // with one joint batch every pass covers every row:
                              // fusing saves nothing and costs a pass
                              .fused(config_.fused_step && config_.batch_norm != BatchNormMode::kJoint));
    updates = {{Network::kEncoder, std::move(g.encoder)}};
    // The authors' rule skips the decoder's whole update when it is ahead.
    const bool decoder_steps = s.dec_adv_updated || config_.equilibrium_skip == EquilibriumSkip::kAdversarial;
    if (decoder_steps) updates.push_back({Network::kDecoder, std::move(g.decoder)});
    if (s.dis_updated) {
      add_r1_gradient(x, g.discriminator);
      updates.push_back({Network::kDiscriminator, std::move(g.discriminator)});
    }
  }
  s.update_skipped = !apply_updates(std::isfinite(s.loss_sum()), updates);
  return s;
}

StepStats Trainer::vae_step(const torch::Tensor& x, const torch::Tensor& eps) {
  StepStats s;
  s.phase = Phase::kVae;
  s.dis_updated = s.dec_adv_updated = false;
  std::vector<Update> updates;
  {
    VaeLosses l;
    {
      AutocastGuard autocast(device_, bf16());
      l = vae_losses(vae_forward(model_, x, eps), x, config_.model.recon_loss);
    }
    const std::vector<double> v = global_means(scalar_values({l.prior, l.pixel}));
    s.loss_prior = v[0];
    s.loss_pixel = v[1];
    // One backward pass for both networks: the loss is their common objective.
    std::vector<torch::Tensor> params = parameters(Network::kEncoder), dec = parameters(Network::kDecoder);
    const size_t n_enc = params.size();
    params.insert(params.end(), dec.begin(), dec.end());
    std::vector<torch::Tensor> grads = grad_or_zeros(config_.beta * l.prior + l.pixel, params, /*retain_graph=*/false);
    updates = {{Network::kEncoder, {grads.begin(), grads.begin() + static_cast<std::ptrdiff_t>(n_enc)}},
               {Network::kDecoder, {grads.begin() + static_cast<std::ptrdiff_t>(n_enc), grads.end()}}};
  }
  s.update_skipped = !apply_updates(std::isfinite(s.loss_sum()), updates);
  return s;
}

StepStats Trainer::gan_step(const torch::Tensor& x, const torch::Tensor& z_prior) {
  StepStats s;
  s.phase = Phase::kGan;
  std::vector<Update> updates;
  {
    GanForward f;
    GanLosses l;
    {
      AutocastGuard autocast(device_, bf16());
      f = gan_forward(model_, x, z_prior, config_.batch_norm);
      l = gan_losses(f, config_.gan_loss);
    }
    const std::vector<double> v =
        global_means(scalar_values({l.dis, l.adv, mean_sigmoid(f.real.logits), mean_sigmoid(f.fake.logits)}));
    s.loss_dis = v[0];
    s.loss_adv = v[1];
    s.d_real = v[2];
    s.d_prior = v[3];
    // Each player's gradient over its own parameters only: L_adv never reaches the
    // discriminator, L_dis never the generator.
    updates = {
        {Network::kDecoder, grad_or_zeros(l.adv, parameters(Network::kDecoder), /*retain_graph=*/true)},
        {Network::kDiscriminator, grad_or_zeros(l.dis, parameters(Network::kDiscriminator), /*retain_graph=*/false)}};
  }
  add_r1_gradient(x, updates.back().gradients);
  s.update_skipped = !apply_updates(std::isfinite(s.loss_sum()), updates);
  return s;
}

void Trainer::add_r1_gradient(const torch::Tensor& x, std::vector<torch::Tensor>& gradients) {
  if (config_.r1_gamma <= 0) return;
  // The penalty's forward pass must not move the batch-norm statistics a second time: they are
  // put back once its graph (which keeps them) has been differentiated.
  std::vector<torch::Tensor> statistics;
  for (const auto& b : model_->discriminator->buffers()) statistics.push_back(b.detach().clone());
  const std::vector<torch::Tensor> r1 = grad_or_zeros(r1_penalty(model_->discriminator, x, config_.r1_gamma),
                                                      parameters(Network::kDiscriminator), /*retain_graph=*/false);
  for (size_t i = 0; i < r1.size(); ++i) gradients[i].add_(r1[i]);
  copy_tensors(model_->discriminator->buffers(), statistics);
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
  for (auto& group : optimizer(which).param_groups()) group.options().set_lr(lr);
}

}  // namespace vaegan
