#include "vaegan/train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/data/datasets.h"
#include "vaegan/data/loader.h"
#include "vaegan/io/fs.h"
#include "vaegan/io/image_io.h"
#include "vaegan/io/plot.h"
#include "vaegan/model/gan.h"
#include "vaegan/model/vae.h"
#include "vaegan/train/checkpoint.h"
#include "vaegan/train/metrics_logger.h"

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

void assign_gradients(const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& grads) {
  for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = grads[i];
}

double mean_sigmoid(const torch::Tensor& logits) { return torch::sigmoid(logits.detach()).mean().item<double>(); }

/// Whether every entry of every tensor is finite, with one synchronization: a sum is NaN or Inf
/// when an entry is (or when finite entries overflow, which is as bad).
bool all_finite(std::initializer_list<const std::vector<torch::Tensor>*> groups) {
  std::vector<torch::Tensor> sums;
  for (const auto* g : groups) {
    for (const auto& t : *g) sums.push_back(t.sum().to(torch::kFloat64));
  }
  return sums.empty() || std::isfinite(torch::stack(sums).sum().item<double>());
}

}  // namespace

VaeGanGradients vae_gan_gradients(VaeGan& model, const VaeGanLosses& losses, const GradientOptions& o) {
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

std::pair<bool, bool> equilibrium_gate(double bce_real, double bce_prior, double equilibrium, double margin) {
  bool update_dis = true, decoder_adv = true;
  if (bce_real < equilibrium - margin || bce_prior < equilibrium - margin) update_dis = false;
  if (bce_real > equilibrium + margin || bce_prior > equilibrium + margin) decoder_adv = false;
  if (!update_dis && !decoder_adv) update_dis = decoder_adv = true;
  return {update_dis, decoder_adv};
}

std::string to_string(Phase phase) {
  switch (phase) {
    case Phase::kVae:
      return "vae";
    case Phase::kGan:
      return "gan";
    default:
      return "vaegan";
  }
}

Trainer::Trainer(const TrainConfig& config, torch::Device device)
    : config_(config), device_(device), generator_(at::make_generator<at::CPUGeneratorImpl>(config.seed)) {
  validate(config_);
  torch::manual_seed(config_.seed);  // weight initialization
  model_ = VaeGan(config_.model);
  model_->to(device_);
  if (config_.channels_last) to_channels_last(*model_);
  model_->train();
  optimizers_.resize(3);
  if (model_->encoder) optimizers_[0] = make_optimizer(model_->encoder->parameters());
  optimizers_[1] = make_optimizer(model_->decoder->parameters());
  if (model_->discriminator) optimizers_[2] = make_optimizer(model_->discriminator->parameters());
  loss_options_.dis_on_recon(config_.dis_on_recon).gan_loss(parse_gan_loss(config_.gan_loss));
  const std::string& type = config_.model.type;
  phase_ = type == "vae" || type == "vae-then-gan" ? Phase::kVae : type == "gan" ? Phase::kGan : Phase::kVaeGan;
}

std::unique_ptr<torch::optim::RMSprop> Trainer::make_optimizer(const std::vector<torch::Tensor>& params) const {
  return std::make_unique<torch::optim::RMSprop>(params,
                                                 torch::optim::RMSpropOptions(config_.lr).alpha(config_.rmsprop_alpha));
}

void Trainer::begin_gan_phase() {
  TORCH_CHECK(config_.model.type == "vae-then-gan", "begin_gan_phase: only a vae-then-gan model has phases");
  const double lr = learning_rate(1);  // keep the decayed learning rate
  optimizers_[1] = make_optimizer(model_->decoder->parameters());
  set_learning_rate(1, lr);
  phase_ = Phase::kGan;
}

torch::optim::RMSprop& Trainer::optimizer(int which) {
  if (!optimizers_.at(which)) throw std::out_of_range(fmt::format("this model has no network {}", which));
  return *optimizers_[which];
}

StepStats Trainer::step(const torch::Tensor& batch) {
  const int64_t b = batch.size(0), z_dim = model_->latent_dim();
  // Noise comes from the trainer's CPU generator so a run is reproducible on any device; both
  // draws happen in every phase so that the noise stream does not depend on the phase.
  const torch::Tensor eps = torch::randn({b, z_dim}, generator_);
  const torch::Tensor z_prior = torch::randn({b, z_dim}, generator_);
  return step(batch, eps, z_prior);
}

StepStats Trainer::step(const torch::Tensor& batch, const torch::Tensor& eps, const torch::Tensor& z_prior) {
  const torch::Tensor x =
      config_.channels_last ? batch.to(device_).contiguous(torch::MemoryFormat::ChannelsLast) : batch.to(device_);
  switch (phase_) {
    case Phase::kVae:
      return vae_step(x, eps.to(device_));
    case Phase::kGan:
      return gan_step(x, z_prior.to(device_));
    default:
      return vae_gan_step(x, eps.to(device_), z_prior.to(device_));
  }
}

StepStats Trainer::vae_gan_step(const torch::Tensor& x, const torch::Tensor& eps, const torch::Tensor& z_prior) {
  VaeGanForward f;
  VaeGanLosses losses;
  {
    AutocastGuard autocast(device_, config_.precision == "bf16");
    f = model_->forward(x, eps, z_prior, config_.batch_norm == "joint");
    losses = vae_gan_losses(f, loss_options_);
  }

  StepStats s;
  if (config_.equilibrium) {
    torch::NoGradGuard no_grad;
    const double bce_real =
        F::binary_cross_entropy_with_logits(f.real.logits, torch::ones_like(f.real.logits)).item<double>();
    const double bce_prior =
        F::binary_cross_entropy_with_logits(f.prior.logits, torch::zeros_like(f.prior.logits)).item<double>();
    std::tie(s.dis_updated, s.dec_adv_updated) =
        equilibrium_gate(bce_real, bce_prior, config_.equilibrium_value, config_.equilibrium_margin);
  }
  s.loss_prior = losses.prior.item<double>();
  s.loss_llike = losses.llike.item<double>();
  s.loss_dis = losses.dis.item<double>();
  s.loss_adv = losses.adv.item<double>();
  s.d_real = mean_sigmoid(f.real.logits);
  s.d_recon = mean_sigmoid(f.recon.logits);
  s.d_prior = mean_sigmoid(f.prior.logits);

  VaeGanGradients g = vae_gan_gradients(model_, losses,
                                        GradientOptions()
                                            .gamma(config_.gamma)
                                            .beta(config_.beta)
                                            .decoder_adversarial(s.dec_adv_updated)
                                            .discriminator(s.dis_updated)
                                            .fused(config_.fused_step));
  f = VaeGanForward();  // release activations before the optimizer steps
  losses = VaeGanLosses();
  if (!std::isfinite(s.loss_sum()) || !all_finite({&g.encoder, &g.decoder, &g.discriminator})) {
    s.update_skipped = true;
    return s;
  }
  assign_gradients(model_->encoder->parameters(), g.encoder);
  assign_gradients(model_->decoder->parameters(), g.decoder);
  optimizers_[0]->step();
  optimizers_[1]->step();
  if (s.dis_updated) {
    assign_gradients(model_->discriminator->parameters(), g.discriminator);
    optimizers_[2]->step();
  }
  return s;
}

StepStats Trainer::vae_step(const torch::Tensor& x, const torch::Tensor& eps) {
  StepStats s;
  s.phase = Phase::kVae;
  s.dis_updated = s.dec_adv_updated = false;
  std::vector<torch::Tensor> params = model_->encoder->parameters(), dec = model_->decoder->parameters();
  params.insert(params.end(), dec.begin(), dec.end());
  std::vector<torch::Tensor> grads;
  {
    VaeLosses l;
    {
      AutocastGuard autocast(device_, config_.precision == "bf16");
      l = vae_losses(vae_forward(model_->encoder, model_->decoder, x, eps), x, parse_recon_loss(config_.recon_loss));
    }
    s.loss_prior = l.prior.item<double>();
    s.loss_pixel = l.pixel.item<double>();
    grads = grad_or_zeros(config_.beta * l.prior + l.pixel, params, /*retain_graph=*/false);
  }  // the graph dies here, before the optimizer steps
  if (!std::isfinite(s.loss_sum()) || !all_finite({&grads})) {
    s.update_skipped = true;
    return s;
  }
  for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = grads[i];
  optimizers_[0]->step();
  optimizers_[1]->step();
  return s;
}

StepStats Trainer::gan_step(const torch::Tensor& x, const torch::Tensor& z_prior) {
  StepStats s;
  s.phase = Phase::kGan;
  const std::vector<torch::Tensor> dec = model_->decoder->parameters(), dis = model_->discriminator->parameters();
  std::vector<torch::Tensor> g_dec, g_dis;
  {
    GanForward f;
    GanLosses l;
    {
      AutocastGuard autocast(device_, config_.precision == "bf16");
      f = gan_forward(model_->decoder, model_->discriminator, x, z_prior, config_.batch_norm == "joint");
      l = gan_losses(f, parse_gan_loss(config_.gan_loss));
    }
    s.loss_dis = l.dis.item<double>();
    s.loss_adv = l.adv.item<double>();
    s.d_real = mean_sigmoid(f.real.logits);
    s.d_prior = mean_sigmoid(f.fake.logits);
    // Each player's gradient over its own parameters only: L_adv never reaches the
    // discriminator, L_dis never the generator.
    g_dec = grad_or_zeros(l.adv, dec, /*retain_graph=*/true);
    g_dis = grad_or_zeros(l.dis, dis, /*retain_graph=*/false);
  }
  if (!std::isfinite(s.loss_sum()) || !all_finite({&g_dec, &g_dis})) {
    s.update_skipped = true;
    return s;
  }
  assign_gradients(dec, g_dec);
  assign_gradients(dis, g_dis);
  optimizers_[1]->step();
  optimizers_[2]->step();
  return s;
}

void Trainer::decay_learning_rates() {
  for (auto& opt : optimizers_) {
    if (!opt) continue;
    for (auto& group : opt->param_groups()) {
      auto& o = static_cast<torch::optim::RMSpropOptions&>(group.options());
      o.lr(o.lr() * config_.lr_decay);
    }
  }
}

double Trainer::learning_rate(int which) const {
  if (!optimizers_.at(which)) throw std::out_of_range(fmt::format("this model has no network {}", which));
  return static_cast<const torch::optim::RMSpropOptions&>(optimizers_[which]->param_groups().at(0).options()).lr();
}

void Trainer::set_learning_rate(int which, double lr) {
  for (auto& group : optimizer(which).param_groups())
    static_cast<torch::optim::RMSpropOptions&>(group.options()).lr(lr);
}

// ---------------------------------------------------------------- the epoch loop

namespace {

/// Fixed inputs of the per-epoch image grids: the first test images and one prior draw.
struct GridInputs {
  torch::Tensor test_images;  ///< [G, C, S, S]
  torch::Tensor z_prior;      ///< [G, Z]
};

void write_epoch_images(Trainer& trainer, const GridInputs& grid, const std::string& images_dir, int64_t epoch) {
  VaeGan& model = trainer.model();
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t ncol = 8;
  if (model->encoder) {
    const torch::Tensor recon = model->reconstruct(grid.test_images.to(trainer.device())).cpu();
    save_image_grid(fmt::format("{}/epoch-{:03d}-reconstructions.png", images_dir, epoch),
                    interleave_rows(grid.test_images, recon, ncol), ncol);
  }
  const torch::Tensor samples = model->decoder->forward(grid.z_prior.to(trainer.device())).cpu();
  model->train();
  save_image_grid(fmt::format("{}/epoch-{:03d}-samples.png", images_dir, epoch), samples, ncol);
}

nlohmann::json metrics_record(const ProgressEvent& e, const Trainer& t, int64_t dis_skipped, int64_t dec_adv_skipped,
                              int64_t images_skipped, int64_t bad_steps) {
  const StepStats& s = e.stats;
  nlohmann::json j = {{"step", e.global_step}, {"epoch", e.epoch}, {"phase", to_string(s.phase)}};
  if (s.phase != Phase::kGan) j["loss_prior"] = s.loss_prior;
  if (s.phase == Phase::kVaeGan) j["loss_llike"] = s.loss_llike;
  if (s.phase == Phase::kVae) j["loss_pixel"] = s.loss_pixel;
  if (s.phase != Phase::kVae) {
    j["loss_dis"] = s.loss_dis;
    j["loss_adv"] = s.loss_adv;
    j["d_real"] = s.d_real;
    if (s.phase == Phase::kVaeGan) j["d_recon"] = s.d_recon;
    j["d_prior"] = s.d_prior;
  }
  const char* names[] = {"lr_encoder", "lr_decoder", "lr_discriminator"};
  for (int i = 0; i < 3; ++i) {
    if (t.has_optimizer(i)) j[names[i]] = t.learning_rate(i);
  }
  j["images_per_sec"] = e.images_per_sec;
  if (s.phase == Phase::kVaeGan) {
    j["dis_updates_skipped"] = dis_skipped;
    j["dec_adv_updates_skipped"] = dec_adv_skipped;
  }
  j["images_skipped"] = images_skipped;
  j["bad_steps"] = bad_steps;
  return j;
}

/// Drops the lines of `path` whose step is after `step` (resume: they are logged again).
void truncate_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).at("step").get<int64_t>() > step) break;
    } catch (const nlohmann::json::exception&) {
      break;  // a line cut short by a crash ends the usable log
    }
    kept += line + "\n";
  }
  in.close();
  write_text_atomically(path, kept);
}

void prepare_run_dir(const std::string& run_dir, bool overwrite) {
  namespace fs = std::filesystem;
  if (fs::exists(fs::path(run_dir) / "config.json") || fs::exists(fs::path(run_dir) / "checkpoints")) {
    if (!overwrite) {
      throw InputError(fmt::format("--out: {} already holds a run (pass --overwrite to replace it)", run_dir));
    }
    for (const char* name : {"checkpoints", "images", "plots", "metrics.jsonl", "config.json"})
      fs::remove_all(fs::path(run_dir) / name);
  }
  std::error_code ec;
  fs::create_directories(fs::path(run_dir) / "images", ec);
  fs::create_directories(fs::path(run_dir) / "plots", ec);
  fs::create_directories(fs::path(run_dir) / "checkpoints", ec);
  if (ec) throw InputError(fmt::format("--out: cannot create {}: {}", run_dir, ec.message()));
}

}  // namespace

FitResult fit(const TrainConfig& config_in, const std::string& run_dir, bool overwrite, const FitObserver& observer,
              bool resume) {
  TrainConfig config = resume ? load_config(run_dir + "/config.json") : config_in;
  if (config.data_dir.empty()) config.data_dir = default_data_dir(config.dataset);
  validate(config);
  const int64_t image_size = model_image_size(config.model);
  const std::shared_ptr<ImageDataset> train_set =
      open_dataset(config.dataset, config.data_dir, Split::kTrain, config.model.channels, image_size);
  const std::shared_ptr<ImageDataset> test_set =
      open_dataset(config.dataset, config.data_dir, Split::kTest, config.model.channels, image_size);
  spdlog::info("train: {}", train_set->summary());
  const int64_t n = train_set->size();
  const int64_t steps_per_epoch = n / config.batch_size;  // the last partial batch is dropped
  if (steps_per_epoch < 1) {
    throw InputError(fmt::format("--batch-size: {} is larger than the {} training images in {}", config.batch_size, n,
                                 config.data_dir));
  }
  int64_t epochs = config.epochs;
  if (config.max_steps > 0) {
    const int64_t needed = (config.max_steps + steps_per_epoch - 1) / steps_per_epoch;
    epochs = config.epochs > 0 ? std::min(epochs, needed) : needed;
  }
  const int64_t total_steps =
      config.max_steps > 0 ? std::min(config.max_steps, epochs * steps_per_epoch) : epochs * steps_per_epoch;
  const int64_t vae_epochs = config.model.type == "vae-then-gan" ? vae_phase_epochs(config) : 0;

  Trainer trainer(config, default_device());
  TrainingState state;
  FitResult result;
  if (resume) {
    const std::string checkpoint = newest_valid_checkpoint(run_dir);
    if (vae_epochs > 0 && std::filesystem::exists(checkpoint + "/state.json")) {
      // the GAN phase has a fresh decoder optimizer: switch before loading its state
      const nlohmann::json st = nlohmann::json::parse(std::ifstream(checkpoint + "/state.json"));
      if (st.value("phase", "") == "gan") trainer.begin_gan_phase();
    }
    state = load_training_state(checkpoint, trainer);
    result.last_checkpoint = checkpoint;
    truncate_metrics(run_dir + "/metrics.jsonl", state.step);
    spdlog::info("resuming {} from {} (step {}, epoch {})", run_dir, checkpoint, state.step, state.epoch + 1);
  } else {
    prepare_run_dir(run_dir, overwrite);
    write_text_atomically(run_dir + "/config.json", nlohmann::json(config).dump(2) + "\n");
  }
  MetricsLogger metrics(run_dir + "/metrics.jsonl");
  at::Generator grid_gen = at::make_generator<at::CPUGeneratorImpl>(config.seed + 1);
  const GridInputs grid{test_set->first_images(config.grid_size),
                        torch::randn({config.grid_size, trainer.model()->latent_dim()}, grid_gen)};
  const LoaderOptions loader_options = LoaderOptions()
                                           .batch_size(config.batch_size)
                                           .horizontal_flip(config.horizontal_flip)
                                           .seed(config.seed)
                                           .threads(config.loader_threads);
  const int keep = static_cast<int>(config.keep_checkpoints);

  const auto run_start = std::chrono::steady_clock::now();
  int64_t step = state.step, bad_in_a_row = 0;
  const int64_t first_step = step;
  bool out_of_time = false, stop = false;
  bool plots = gnuplot_available();
  if (!plots) spdlog::warn("gnuplot not found: no plots/losses.png (Debian package gnuplot-nox)");
  for (int64_t epoch = state.epoch; epoch < epochs && step < total_steps && !out_of_time && !stop; ++epoch) {
    if (vae_epochs > 0 && epoch == vae_epochs && trainer.phase() == Phase::kVae) {
      trainer.begin_gan_phase();
      spdlog::info("vae-then-gan: VAE phase done after {} epochs; GAN phase from the VAE's decoder", vae_epochs);
    }
    // The epoch's order comes from the generator as it was at the epoch's start; a resumed
    // epoch redraws it from the saved state, then continues from the saved current state.
    const bool continuing = resume && epoch == state.epoch && state.step_in_epoch > 0;
    torch::Tensor current_rng;
    if (continuing) {
      current_rng = trainer.generator().get_state();
      trainer.generator().set_state(state.rng_epoch_start);
    }
    state.rng_epoch_start = trainer.generator().get_state();
    const torch::Tensor order = torch::randperm(n, trainer.generator(), torch::kLong);
    if (continuing) trainer.generator().set_state(current_rng);
    const int64_t first = continuing ? state.step_in_epoch : 0;
    BatchLoader loader(train_set, order, loader_options, epoch, continuing ? state.order_position : 0, first);
    const auto epoch_start = std::chrono::steady_clock::now();
    const int64_t epoch_steps = std::min(steps_per_epoch, first + total_steps - step);
    ProgressEvent e;
    e.epoch = epoch;
    e.epochs = epochs;
    e.steps_per_epoch = epoch_steps;
    state.epoch = epoch;
    for (int64_t i = first; i < epoch_steps; ++i) {
      std::optional<Batch> batch = loader.next();
      if (!batch) break;  // unreadable images shortened the epoch
      e.stats = trainer.step(batch->images);
      ++step;
      state.step = step;
      state.step_in_epoch = i + 1;
      state.order_position = batch->end_position;
      state.dis_skipped += !e.stats.dis_updated && e.stats.phase == Phase::kVaeGan;
      state.dec_adv_skipped += !e.stats.dec_adv_updated && e.stats.phase == Phase::kVaeGan;
      state.bad_steps += e.stats.update_skipped;
      bad_in_a_row = e.stats.update_skipped ? bad_in_a_row + 1 : 0;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
      e.step_in_epoch = i + 1;
      e.global_step = step;
      e.images_per_sec = static_cast<double>((i + 1 - first) * config.batch_size) / std::max(elapsed, 1e-9);
      e.eta_sec = elapsed / static_cast<double>(i + 1 - first) * static_cast<double>(epoch_steps - i - 1);
      const auto record = [&] {
        return metrics_record(e, trainer, state.dis_skipped, state.dec_adv_skipped, train_set->unreadable_count(),
                              state.bad_steps);
      };
      if (e.stats.update_skipped) {
        spdlog::warn("step {}: a loss or gradient is NaN or Inf; update skipped ({} in a row)", step, bad_in_a_row);
      }
      if (bad_in_a_row >= config.max_bad_steps) {
        metrics.log(record());
        throw std::runtime_error(
            fmt::format("training diverged: {} steps in a row (up to step {}) had NaN or Inf losses or gradients "
                        "(--max-bad-steps {}); {}: lower --lr and train again",
                        bad_in_a_row, step, config.max_bad_steps,
                        result.last_checkpoint.empty()
                            ? fmt::format("no checkpoint of {} was written yet", run_dir)
                            : fmt::format("the last checkpoint, {}, is intact", result.last_checkpoint)));
      }
      const bool epoch_ends = i + 1 == epoch_steps;
      if (step % config.log_every == 0 || epoch_ends) metrics.log(record());
      if (observer.on_step) observer.on_step(e);
      const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count() / 60;
      out_of_time = config.max_minutes > 0 && minutes >= config.max_minutes;
      stop = observer.should_stop && observer.should_stop();
      if ((out_of_time || stop) && !epoch_ends) {
        if (step % config.log_every != 0) metrics.log(record());
        if (stop) {  // mid-epoch: a checkpoint to resume from, then out
          result.last_checkpoint = save_checkpoint(run_dir, trainer, state, keep);
          break;
        }
        state.step_in_epoch = epoch_steps;  // out of time: this partial epoch ends here
        break;
      }
      if (config.checkpoint_every > 0 && step % config.checkpoint_every == 0 && !epoch_ends) {
        result.last_checkpoint = save_checkpoint(run_dir, trainer, state, keep);
      }
    }
    if (stop && state.step_in_epoch < epoch_steps) break;
    write_epoch_images(trainer, grid, run_dir + "/images", epoch + 1);
    if (plots) {
      try {
        plot_losses({run_dir}, run_dir + "/plots/losses.png");
      } catch (const std::exception& err) {  // a plot is never worth a failed run
        spdlog::warn("no loss plot: {}", err.what());
        plots = false;
      }
    }
    trainer.decay_learning_rates();
    state.epoch = epoch + 1;
    state.step_in_epoch = 0;
    state.order_position = 0;
    state.rng_epoch_start = torch::Tensor();
    result.last_checkpoint = save_checkpoint(run_dir, trainer, state, keep);
    result.epochs = epoch + 1;
    if (observer.on_epoch_end) observer.on_epoch_end(e, run_dir + "/images");
  }
  result.steps = step;
  result.stopped_by_time = out_of_time;
  result.interrupted = stop;
  result.bad_steps = state.bad_steps;
  result.images_skipped = train_set->unreadable_count();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  result.images_per_sec = static_cast<double>((step - first_step) * config.batch_size) / std::max(result.seconds, 1e-9);
  return result;
}

}  // namespace vaegan
