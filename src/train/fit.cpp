#include "vaegan/train/fit.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <sstream>
#include <thread>

#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/data/datasets.h"
#include "vaegan/data/loader.h"
#include "vaegan/io/fs.h"
#include "vaegan/io/image_io.h"
#include "vaegan/model/gan.h"
#include "vaegan/model/vae.h"
#include "vaegan/train/checkpoint.h"
#include "vaegan/train/metrics_logger.h"

namespace vaegan {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// The files and folders of a run inside its directory (`.lock` stays: see `DirectoryLock`).
constexpr const char* kRunFiles[] = {"checkpoints", "images", "plots", "tensorboard", "metrics.jsonl", "config.json"};

/// Removes a run's files from `run_dir`, ignoring errors.
void remove_run_files(const std::string& run_dir) {
  std::error_code ignored;
  for (const char* name : kRunFiles) std::filesystem::remove_all(std::filesystem::path(run_dir) / name, ignored);
}

/// Removes `checkpoints/.tmp-*` left by a process that died while writing a checkpoint (the
/// caller holds the run directory's lock, so no live writer owns them).
void remove_stale_temporaries(const std::string& run_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(run_dir) / "checkpoints", ec)) {
    if (entry.path().filename().string().rfind(".tmp-", 0) == 0) {
      spdlog::info("removing {}, a checkpoint that was never finished", entry.path().string());
      fs::remove_all(entry.path(), ec);
    }
  }
}

/// Creates the run directory's folders; with `overwrite`, removes a previous run's files first.
/// Throws `InputError` naming `--out` when `run_dir` holds a run and `overwrite` is false, or when
/// it cannot be created.
void prepare_run_dir(const std::string& run_dir, bool overwrite) {
  namespace fs = std::filesystem;
  if (fs::exists(fs::path(run_dir) / "config.json") || fs::exists(fs::path(run_dir) / "checkpoints")) {
    if (!overwrite) {
      throw InputError(fmt::format("--out: {} already holds a run (pass --overwrite to replace it)", run_dir));
    }
    for (const char* name : kRunFiles) fs::remove_all(fs::path(run_dir) / name);
  }
  std::error_code ec;
  for (const char* sub : {"images", "plots", "checkpoints"}) fs::create_directories(fs::path(run_dir) / sub, ec);
  if (ec) throw InputError(fmt::format("--out: cannot create {}: {}", run_dir, ec.message()));
}

/// How many steps and epochs a run has.
struct RunLength {
  int64_t steps_per_epoch = 0;  ///< full batches per epoch (the last partial batch is dropped)
  int64_t epochs = 0;           ///< epochs to run (fewer than `config.epochs` when `max_steps` ends earlier)
  int64_t total_steps = 0;
};

/// The length of a run of `config` on `n_train` images split over `world_size` ranks (each rank
/// takes `n_train / world_size` of every epoch, `config.batch_size` per step).
RunLength run_length(const TrainConfig& config, int64_t n_train, int world_size) {
  RunLength r;
  r.steps_per_epoch = n_train / world_size / config.batch_size;
  if (r.steps_per_epoch < 1) {
    throw InputError(fmt::format("--batch-size: {}{} is larger than the {} training images in {}", config.batch_size,
                                 world_size > 1 ? fmt::format(" per rank on {} ranks", world_size) : "", n_train,
                                 config.data_dir));
  }
  r.epochs = config.epochs;
  if (config.max_steps > 0) {
    const int64_t needed = (config.max_steps + r.steps_per_epoch - 1) / r.steps_per_epoch;
    r.epochs = config.epochs > 0 ? std::min(r.epochs, needed) : needed;
  }
  r.total_steps = r.epochs * r.steps_per_epoch;
  if (config.max_steps > 0) r.total_steps = std::min(config.max_steps, r.total_steps);
  return r;
}

/// Fixed inputs of the per-epoch image grids: the first test images and one prior draw.
struct GridInputs {
  torch::Tensor test_images;  ///< [G, C, S, S]
  torch::Tensor z_prior;      ///< [G, Z]
};

/// The grids of `epoch`: reconstructions of the grid's test images and samples of its prior
/// draw, decoded by the decoder's moving average when the trainer keeps one (as `vaegan sample`
/// decodes by default), else by the trained decoder.
void write_epoch_images(Trainer& trainer, const GridInputs& grid, const std::string& images_dir, int64_t epoch) {
  Model& model = trainer.model();
  Decoder decoder = trainer.ema_decoder() ? trainer.ema_decoder() : model->decoder;
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t ncol = 8;
  if (model->encoder) {
    const torch::Tensor recon = decoder->forward(model->encode_mean(grid.test_images.to(trainer.device()))).cpu();
    save_image_grid(fmt::format("{}/epoch-{:03d}-reconstructions.png", images_dir, epoch),
                    interleave_rows(grid.test_images, recon, ncol), ncol);
  }
  const torch::Tensor samples = decoder->forward(grid.z_prior.to(trainer.device())).cpu();
  model->train();
  save_image_grid(fmt::format("{}/epoch-{:03d}-samples.png", images_dir, epoch), samples, ncol);
}

/// The data order of `epoch`: a permutation of `n` drawn from the trainer's generator as it was
/// at the epoch's start. A resumed epoch (`continuing`) redraws it from the saved state, then
/// puts the generator back where the checkpoint left it. Records the start state in `state`.
torch::Tensor epoch_order(Trainer& trainer, TrainingState& state, int64_t n, bool continuing) {
  torch::Tensor current_rng;
  if (continuing) {
    current_rng = trainer.generator().get_state();
    trainer.generator().set_state(state.rng_epoch_start);
  }
  state.rng_epoch_start = trainer.generator().get_state();
  torch::Tensor order = torch::randperm(n, trainer.generator(), torch::kLong);
  if (continuing) trainer.generator().set_state(current_rng);
  return order;
}

/// Address space a training run needs beyond what the process uses once its datasets and model
/// are built: measured for small32 at batch 64 on 2 threads (about 400 MiB more at its peak),
/// rounded up. Larger presets and batches need more; they fail with the out-of-memory message.
constexpr int64_t kTrainingHeadroom = int64_t{512} << 20;

/// Why `--precision auto` chose what it chose on `device`, for the log.
std::string precision_reason(torch::Device device) {
  if (device.is_cuda()) {
    return cuda_bf16_supported(device) ? "this GPU has bf16 arithmetic (compute capability 8.0 or later)"
                                       : "this GPU has no native bf16 arithmetic";
  }
  if (cpu_bf16_fast()) return "this CPU has AMX or is an AMD CPU with AVX-512 BF16";
  return cpu_has_bf16() ? "this CPU has AVX-512 BF16 but no AMX: bf16 convolutions run slower than fp32 on such CPUs"
                        : "this CPU has no bf16 instructions";
}

/// Batch-size-weighted running means of named values, summed over the ranks of `group` (when
/// given) at the end; the keys are fixed up front, so every rank sums the same list even when it
/// saw no batch.
class Means {
 public:
  explicit Means(std::vector<std::string> keys) : keys_(std::move(keys)) {
    for (size_t i = 0; i < keys_.size(); ++i) sums_.push_back(torch::zeros({}, torch::kFloat64));
  }
  void add(const std::string& key, const torch::Tensor& value, int64_t n) {
    const auto it = std::find(keys_.begin(), keys_.end(), key);
    TORCH_CHECK(it != keys_.end(), "Means: unknown key ", key);
    sums_[static_cast<size_t>(it - keys_.begin())] +=
        value.detach().to(torch::kCPU, torch::kFloat64) * static_cast<double>(n);
  }
  /// Each key's sum over every rank, divided by `n`.
  std::vector<std::pair<std::string, double>> means(int64_t n, ProcessGroup* group) const {
    std::vector<double> sums;
    for (const auto& sum : sums_) sums.push_back(sum.item<double>());
    if (group != nullptr) sums = group->all_reduce_sum(sums);
    std::vector<std::pair<std::string, double>> out;
    for (size_t i = 0; i < keys_.size(); ++i) out.emplace_back(keys_[i], sums[i] / static_cast<double>(n));
    return out;
  }

 private:
  std::vector<std::string> keys_;
  std::vector<torch::Tensor> sums_;
};

/// The values `validate` reports for `c`'s model, in order.
std::vector<std::string> validation_keys(const TrainConfig& c) {
  if (c.model.has_encoder() && c.model.has_discriminator()) {
    return {"val_loss_prior", "val_loss_llike", "val_loss_dis", "val_loss_adv", "val_mse"};
  }
  if (c.model.has_encoder()) return {"val_loss_prior", "val_loss_pixel", "val_mse"};
  return {"val_loss_dis", "val_loss_adv"};
}

/// Intra-op threads of one rank: `threads`, or when 0 the machine's cores shared among the
/// `local_world_size` ranks on it (two ranks on 2 cores: one thread each).
int rank_threads(int threads, int local_world_size) {
  if (threads > 0 || local_world_size <= 1) return threads;
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return std::max(1, cores / local_world_size);
}

/// A checkpoint's files as one byte string (CBOR: a map of name to bytes), for a broadcast.
std::string encode_files(const CheckpointFiles& files) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, bytes] : files) j[name] = nlohmann::json::binary({bytes.begin(), bytes.end()});
  const std::vector<uint8_t> cbor = nlohmann::json::to_cbor(j);
  return {cbor.begin(), cbor.end()};
}

CheckpointFiles decode_files(const std::string& encoded) {
  const nlohmann::json j = nlohmann::json::from_cbor(encoded);
  CheckpointFiles files;
  for (const auto& [name, value] : j.items()) {
    const auto& bytes = value.get_binary();
    files[name] = std::string(bytes.begin(), bytes.end());
  }
  return files;
}

/// The run loop of `fit`, one epoch at a time.
class RunLoop {
 public:
  RunLoop(const TrainConfig& config, std::string run_dir, const FitObserver& observer, bool resume,
          torch::Device device, std::shared_ptr<ProcessGroup> group)
      : config_(config),
        run_dir_(std::move(run_dir)),
        observer_(observer),
        group_(group),
        writer_(!group || group->rank() == 0),
        world_(group ? group->world_size() : 1),
        train_set_(open_dataset(config.dataset, config.data_dir, Split::kTrain, config.model.channels,
                                model_image_size(config.model), dataset_options(config))),
        test_set_(open_dataset(config.dataset, config.data_dir, Split::kTest, config.model.channels,
                               model_image_size(config.model), dataset_options(config))),
        length_(run_length(config, train_set_->size(), world_)),
        threads_(configure_threads(rank_threads(config.threads, group ? group->env().local_world_size : 1))),
        trainer_(config, device, group) {
    resuming_ = resume;  // the other ranks receive the resumed state from rank 0 (`sync_from_rank0`)
    if (resume && writer_) {
      remove_stale_temporaries(run_dir_);
      const ResumePoint p = resume_from_newest(run_dir_, trainer_);
      state_ = p.state;
      result_.last_checkpoint = p.checkpoint;
      MetricsLogger::truncate_after(run_dir_ + "/metrics.jsonl", state_.step);
      spdlog::info("resuming {} from {} (step {}, epoch {})", run_dir_, p.checkpoint, state_.step, state_.epoch + 1);
    }
    check_address_space(kTrainingHeadroom);
    result_.config = trainer_.config();  // precision resolved
    if (config.precision == Precision::kAuto) {
      spdlog::info("--precision auto: {} ({})", enum_name(result_.config.precision), precision_reason(device));
    }
    spdlog::info("training {} ({}) on {} for {} epochs{} on {} with {} threads; run directory {}",
                 enum_name(config.model.type), config.model.arch, config.dataset, config.epochs,
                 config.max_steps > 0 ? fmt::format(" (at most {} steps)", config.max_steps) : "", device.str(),
                 threads_, run_dir_);
    spdlog::info("train: {}", train_set_->summary());
    if (group_) {
      int64_t parameters = 0;
      for (const auto& p : trainer_.model()->parameters()) parameters += p.numel();
      spdlog::info(
          "data parallel: {} ranks ({}) x batch {} = global batch {}; {} steps per epoch; all-reduce of at most {} "
          "gradient values ({:.2f} MB in fp32) per step",
          world_, group_->backend(), config.batch_size, config.batch_size * world_, length_.steps_per_epoch, parameters,
          static_cast<double>(parameters) * 4 / 1e6);
    }
  }

  /// Data parallelism: every rank takes rank 0's weights, batch-norm statistics, optimizer
  /// states, generator and training position (rank 0's resumed checkpoint, or its fresh model),
  /// as a checkpoint's files in one broadcast, so that the ranks start equal (as DDP's
  /// constructor does) and a resume needs the run directory on rank 0's machine only.
  void sync_from_rank0() {
    if (!group_) return;
    const std::string bytes = group_->broadcast(writer_ ? encode_files(checkpoint_files(trainer_, state_)) : "");
    if (!writer_) state_ = restore_checkpoint_files(decode_files(bytes), trainer_, "rank 0's training state");
  }

  /// Writes config.json for a new run (after `prepare_run_dir`).
  void write_config() {
    write_text_atomically(run_dir_ + "/config.json", nlohmann::json(trainer_.config()).dump(2) + "\n");
  }

  /// Steps this run has done (a resumed run counts from its checkpoint).
  int64_t steps_done() const { return state_.step; }

  FitResult run() {
    at::Generator grid_gen = at::make_generator<at::CPUGeneratorImpl>(config_.seed + 1);
    // The grid's test images are the first of the validation images: the test split is read once.
    const int64_t n_val = config_.val_images > 0 ? std::min(config_.val_images, test_set_->size()) : test_set_->size();
    const torch::Tensor first = test_set_->first_images(std::max(n_val, config_.grid_size));
    grid_ = GridInputs{first.narrow(0, 0, std::min(config_.grid_size, first.size(0))),
                       torch::randn({config_.grid_size, trainer_.model()->latent_dim()}, grid_gen)};
    val_images_ = first.narrow(0, 0, std::min(n_val, first.size(0)));
    spdlog::info("validation: {} images of {}", val_images_.size(0), test_set_->summary());
    if (writer_) {
      metrics_.emplace(run_dir_ + "/metrics.jsonl");
      open_tensorboard();
      plots_ = gnuplot_available();
      if (!plots_) spdlog::warn("gnuplot not found: no plots/losses.png (Debian package gnuplot-nox)");
    }
    start_ = Clock::now();
    collective_start_ = group_ ? group_->collective_seconds() : 0.0;
    const int64_t first_step = state_.step;
    const int64_t vae_epochs = config_.model.type == ModelType::kVaeThenGan ? vae_phase_epochs(config_) : 0;
    for (int64_t epoch = state_.epoch; epoch < length_.epochs && state_.step < length_.total_steps; ++epoch) {
      if (vae_epochs > 0 && epoch == vae_epochs && trainer_.phase() == Phase::kVae) {
        trainer_.begin_gan_phase();
        spdlog::info("vae-then-gan: VAE phase done after {} epochs; GAN phase from the VAE's decoder", vae_epochs);
      }
      try {
        if (!run_epoch(epoch)) break;
      } catch (const DistributedError& e) {
        throw DistributedError(
            fmt::format("{}; {}", e.what(),
                        result_.last_checkpoint.empty()
                            ? fmt::format("no checkpoint of {} was written yet", run_dir_)
                            : fmt::format("the last checkpoint is {} (continue with: vaegan train --resume {})",
                                          result_.last_checkpoint, run_dir_)));
      }
    }
    result_.steps = state_.step;
    result_.steps_this_call = state_.step - first_step;
    result_.bad_steps = state_.bad_steps;
    result_.images_skipped = train_set_->unreadable_count();
    result_.best_score = state_.best_score;
    if (!std::isnan(state_.best_score)) result_.best_checkpoint = run_dir_ + "/checkpoints/best";
    result_.seconds = seconds_since(start_);
    if (group_) result_.collective_seconds = group_->collective_seconds() - collective_start_;
    result_.images_per_sec =
        static_cast<double>((state_.step - first_step) * config_.batch_size * world_) / std::max(result_.seconds, 1e-9);
    return result_;
  }

 private:
  /// Runs the steps of `epoch` (from the resumed position, if any); returns false when the run
  /// stops inside it (time, signal).
  bool run_epoch(int64_t epoch) {
    const bool continuing = resuming_ && epoch == state_.epoch && state_.step_in_epoch > 0;
    resuming_ = false;
    const int64_t n = train_set_->size(), global_batch = config_.batch_size * world_;
    const torch::Tensor order = epoch_order(trainer_, state_, n, continuing);
    // Where the epoch continues: entries of `order` already consumed (by all ranks), and the
    // step that follows them; a checkpoint of another world size has its position translated.
    const int64_t position = continuing ? state_.order_position : 0;
    const int64_t first = !continuing                   ? 0
                          : state_.world_size == world_ ? state_.step_in_epoch
                                                        : position / global_batch;
    if (continuing && state_.world_size != world_) {
      spdlog::info("resuming a checkpoint of {} rank(s) on {}: epoch position {} of {} is step {} at global batch {}",
                   state_.world_size, world_, position, n, first, global_batch);
    }
    // This rank's share of the rest of the epoch (DistributedSampler's: every world_-th entry
    // from its rank, the same count on every rank): global step i takes a window of
    // global_batch entries of `order`, the rows of which are split among the ranks.
    const int64_t per_rank = (n - position) / world_;
    const int64_t rank = group_ ? group_->rank() : 0;
    const torch::Tensor shard =
        world_ == 1 ? order : order.slice(0, position + rank, position + per_rank * world_, world_);
    BatchLoader loader(train_set_, shard,
                       LoaderOptions()
                           .batch_size(config_.batch_size)
                           .horizontal_flip(config_.horizontal_flip)
                           .seed(config_.seed)
                           .threads(config_.loader_threads)
                           .pin_memory(trainer_.device().is_cuda())
                           .device(trainer_.device()),
                       epoch, world_ == 1 ? position : 0, first);
    const auto epoch_start = Clock::now();
    ProgressEvent e;
    e.epoch = epoch;
    e.epochs = length_.epochs;
    const int64_t epoch_end = world_ == 1 ? length_.steps_per_epoch : first + per_rank / config_.batch_size;
    e.steps_per_epoch = std::min(epoch_end, first + length_.total_steps - state_.step);
    state_.epoch = epoch;
    state_.world_size = world_;
    // The next batch is fetched before the ranks agree on stopping, so that one collective
    // carries both: a rank whose data ran out (unreadable images) stops every rank's epoch.
    std::optional<Batch> batch = loader.next();
    bool missing = agree({!batch})[0];
    for (int64_t i = first; i < e.steps_per_epoch; ++i) {
      if (missing) {  // unreadable images shortened the epoch
        spdlog::warn("epoch {} ended after {} of {} steps: {} training images could not be read", epoch + 1, i,
                     e.steps_per_epoch, train_set_->unreadable_count());
        break;
      }
      e.stats = trainer_.step(batch->images);
      state_.step += 1;
      if (anneals_by_steps() && state_.step % config_.lr_anneal_period == 0) {
        trainer_.decay_learning_rates(state_.step / config_.lr_anneal_period);
      }
      state_.step_in_epoch = i + 1;
      state_.order_position = world_ == 1 ? batch->end_position : position + (i + 1 - first) * global_batch;
      const double elapsed = seconds_since(epoch_start);
      e.step_in_epoch = i + 1;
      e.global_step = state_.step;
      e.images_per_sec = static_cast<double>((i + 1 - first) * global_batch) / std::max(elapsed, 1e-9);
      e.eta_sec = elapsed / static_cast<double>(i + 1 - first) * static_cast<double>(e.steps_per_epoch - i - 1);
      count(e);
      const bool epoch_ends = i + 1 == e.steps_per_epoch;
      const bool logged = state_.step % config_.log_every == 0 || epoch_ends;
      if (logged) log(e);
      if (observer_.on_step && writer_) observer_.on_step(e);
      std::optional<Batch> next;
      if (!epoch_ends) next = loader.next();
      const std::vector<bool> stop =
          agree({config_.max_minutes > 0 && seconds_since(start_) / 60 >= config_.max_minutes,
                 observer_.should_stop && observer_.should_stop(), !epoch_ends && !next});
      result_.stopped_by_time = stop[0];
      result_.interrupted = stop[1];
      missing = stop[2];
      batch = std::move(next);
      if ((result_.stopped_by_time || result_.interrupted) && !epoch_ends) {
        // Mid-epoch: a checkpoint of the position inside the epoch, so that --resume continues
        // exactly; after a time stop also the grids and the plot of the run so far.
        if (!logged) log(e);
        sync_buffers();
        if (result_.stopped_by_time) write_images_and_plot(e);
        checkpoint();
        return false;
      }
      if (config_.checkpoint_every > 0 && state_.step % config_.checkpoint_every == 0 && !epoch_ends) {
        sync_buffers();
        checkpoint();
      }
    }
    end_epoch(e);
    return !result_.stopped_by_time && !result_.interrupted && !result_.early_stopped;
  }

  /// `flags` ORed over the ranks (one collective; as they are for one process): every decision
  /// that ends a loop must be the same on every rank, or one of them would wait forever.
  std::vector<bool> agree(const std::vector<bool>& flags) { return group_ ? group_->any(flags) : flags; }

  /// Data parallelism: batch norm's running statistics are each rank's own (its rows' batches);
  /// before they are used (validation, grids) or saved, every rank takes rank 0's, as DDP's
  /// `broadcast_buffers` does, so that the ranks' models stay equal.
  void sync_buffers() {
    if (group_) group_->broadcast(trainer_.model()->buffers());
  }

  /// Validates after epoch `e`, logs the validation line and updates the best score; returns
  /// whether the score improved (strictly lower than the best so far, or the first).
  bool validate_epoch(const ProgressEvent& e) {
    const Validation v = validate(trainer_, val_images_);
    nlohmann::json line = {{"step", e.global_step}, {"epoch", e.epoch}, {"split", "validation"}};
    for (const auto& [key, value] : v.values) line[key] = value;
    if (!std::isnan(v.score)) line["val_score"] = v.score;
    if (writer_) {
      metrics_->log(line);
      to_tensorboard([&](EventWriter& w) { add_scalars(w, "validation", line); });
    }
    if (std::isnan(v.score) && unscored()) return false;  // gan: nothing to compare
    // a NaN or infinite score (diverged) is never an improvement
    const bool improved = std::isfinite(v.score) && (std::isnan(state_.best_score) || v.score < state_.best_score);
    if (improved) {
      state_.best_score = v.score;
      state_.best_step = state_.step;
      state_.validations_since_best = 0;
    } else {
      state_.validations_since_best += 1;
    }
    spdlog::info("epoch {}: val_score {:.6g} ({}; best {:.6g} at step {})", e.epoch + 1, v.score,
                 improved ? "best so far" : fmt::format("{} without improvement", state_.validations_since_best),
                 state_.best_score, state_.best_step);
    return improved;
  }

  /// Whether the model has no validation score (`Validation::score`).
  bool unscored() const { return !config_.model.has_encoder(); }

  /// Whether the learning rates follow `--lr-anneal-period` steps instead of epochs.
  bool anneals_by_steps() const { return config_.lr_schedule == LrSchedule::kAnneal && config_.lr_anneal_period > 0; }

  /// Counts the skipped updates of step `e`; throws when `max_bad_steps` steps in a row diverged.
  void count(const ProgressEvent& e) {
    const StepStats& s = e.stats;
    state_.dis_skipped += !s.dis_updated && s.phase == Phase::kVaeGan;
    state_.dec_adv_skipped += !s.dec_adv_updated && s.phase == Phase::kVaeGan;
    state_.bad_steps += s.update_skipped;
    bad_in_a_row_ = s.update_skipped ? bad_in_a_row_ + 1 : 0;
    if (!s.update_skipped) return;
    spdlog::warn("step {}: a loss or gradient is NaN or Inf; update skipped ({} in a row)", state_.step, bad_in_a_row_);
    if (bad_in_a_row_ < config_.max_bad_steps) return;
    log(e);
    throw std::runtime_error(fmt::format(
        "training diverged: {} steps in a row (up to step {}) had NaN or Inf losses or gradients "
        "(--max-bad-steps {}); {}: lower --lr and train again",
        bad_in_a_row_, state_.step, config_.max_bad_steps,
        result_.last_checkpoint.empty() ? fmt::format("no checkpoint of {} was written yet", run_dir_)
                                        : fmt::format("the last checkpoint, {}, is intact", result_.last_checkpoint)));
  }

  void log(const ProgressEvent& e) {
    if (!writer_) return;
    MetricsRecord r;
    r.step = e.global_step;
    r.epoch = e.epoch;
    r.stats = e.stats;
    r.learning_rates = learning_rates(trainer_);
    r.images_per_sec = e.images_per_sec;
    r.dis_skipped = state_.dis_skipped;
    r.dec_adv_skipped = state_.dec_adv_skipped;
    r.images_skipped = train_set_->unreadable_count();
    r.bad_steps = state_.bad_steps;
    const nlohmann::json line(r);  // one conversion for both logs
    metrics_->log(line);
    to_tensorboard([&](EventWriter& w) { add_scalars(w, "train", line); });
  }

  /// TensorBoard (rank 0): the event file of this call, holding the events before a resumed
  /// step; a new run's resolved configuration as text at step 0.
  void open_tensorboard() {
    const std::string& dir = config_.tensorboard;
    if (dir == "none") return;
    try {
      events_.emplace(dir.empty() ? run_dir_ + "/tensorboard" : dir, state_.step > 0 ? state_.step : -1);
      if (state_.step == 0) {
        std::string text;  // an indented block: Markdown shows the JSON as it is
        std::istringstream lines(nlohmann::json(trainer_.config()).dump(2));
        for (std::string l; std::getline(lines, l);) text += "    " + l + "\n";
        events_->add_text("config", 0, text);
      }
      spdlog::info("TensorBoard: {} (tensorboard --logdir {})", events_->path(), dir.empty() ? run_dir_ : dir);
    } catch (const std::exception& e) {  // the run matters more than its TensorBoard view
      spdlog::warn("no TensorBoard events: {}", e.what());
      events_.reset();
    }
  }

  /// Calls `write` with the TensorBoard writer, if any; a failure (disk full) is warned about
  /// once and ends the TensorBoard events, never the run (metrics.jsonl has the numbers).
  void to_tensorboard(const std::function<void(EventWriter&)>& write) {
    if (!events_) return;
    try {
      write(*events_);
    } catch (const std::exception& e) {
      spdlog::warn("no more TensorBoard events: {}", e.what());
      events_.reset();
    }
  }

  /// TensorBoard: the grids just written for epoch `epoch` (1-based) and, for a model with an
  /// encoder, a histogram of the latent means of up to 1024 validation images.
  void add_epoch_events(int64_t epoch) {
    if (!events_) return;
    std::vector<float> means;
    if (Model& model = trainer_.model(); model->encoder) {
      torch::NoGradGuard no_grad;
      model->eval();
      const torch::Tensor x = val_images_.narrow(0, 0, std::min<int64_t>(1024, val_images_.size(0)));
      const torch::Tensor mu = model->encode_mean(x.to(trainer_.device())).to(torch::kCPU, torch::kFloat).contiguous();
      model->train();
      means.assign(mu.data_ptr<float>(), mu.data_ptr<float>() + mu.numel());
    }
    to_tensorboard([&](EventWriter& w) {
      for (const char* kind : {"reconstructions", "samples"}) {
        const std::string png = fmt::format("{}/images/epoch-{:03d}-{}.png", run_dir_, epoch, kind);
        if (std::filesystem::exists(png)) w.add_png(std::string("images/") + kind, state_.step, read_file_bytes(png));
      }
      w.add_histogram("latent/mean", state_.step, means);
    });
  }

  /// Rank 0 writes a checkpoint; the other ranks note its name (for their messages).
  void checkpoint() {
    result_.last_checkpoint =
        writer_ ? save_checkpoint(run_dir_, trainer_, state_, static_cast<int>(config_.keep_checkpoints))
                : checkpoint_path(run_dir_, state_.step);
  }

  /// The grids of epoch `e` (as far as it went) and the loss plot.
  void write_images_and_plot(const ProgressEvent& e) {
    if (!writer_) return;
    write_epoch_images(trainer_, grid_, run_dir_ + "/images", e.epoch + 1);
    add_epoch_events(e.epoch + 1);
    if (plots_) {
      try {
        plot_losses({run_dir_}, run_dir_ + "/plots/losses.png");
      } catch (const std::exception& err) {  // a plot is never worth a failed run
        spdlog::warn("no loss plot: {}", err.what());
        plots_ = false;
      }
    }
  }

  /// Grids, the loss plot, the learning-rate decay and a checkpoint at the end of epoch `e`.
  void end_epoch(const ProgressEvent& e) {
    sync_buffers();
    write_images_and_plot(e);
    if (!anneals_by_steps()) trainer_.decay_learning_rates(e.epoch + 1);
    state_.epoch = e.epoch + 1;
    state_.step_in_epoch = 0;
    state_.order_position = 0;
    state_.rng_epoch_start = torch::Tensor();
    const bool improved = validate_epoch(e);
    checkpoint();
    if (improved && writer_) save_best_checkpoint(run_dir_, result_.last_checkpoint);
    result_.early_stopped =
        config_.early_stop_patience > 0 && state_.validations_since_best >= config_.early_stop_patience;
    result_.epochs = e.epoch + 1;
    if (observer_.on_epoch_end && writer_) observer_.on_epoch_end(e, run_dir_ + "/images");
  }

  const TrainConfig& config_;
  const std::string run_dir_;
  const FitObserver& observer_;
  std::shared_ptr<ProcessGroup> group_;  ///< null: a single process
  bool writer_;                          ///< rank 0 (or the only process): writes the run directory
  int world_;                            ///< ranks in the job
  std::shared_ptr<ImageDataset> train_set_, test_set_;
  RunLength length_;
  int threads_;
  Trainer trainer_;
  TrainingState state_;
  FitResult result_;
  GridInputs grid_;
  torch::Tensor val_images_;  ///< [N, C, S, S]: the test images each validation averages over
  std::optional<MetricsLogger> metrics_;
  std::optional<EventWriter> events_;  ///< TensorBoard (rank 0; none with `--tensorboard none`)
  Clock::time_point start_;
  double collective_start_ = 0;  ///< the group's collective seconds when `run` began
  bool resuming_ = false;
  bool plots_ = false;
  int64_t bad_in_a_row_ = 0;
};

/// While it lives, the model's decoder holds the weights of `average` (a moving average of it;
/// nothing when null); its own weights are put back when it ends, however it ends.
class AveragedDecoder {
 public:
  AveragedDecoder(Decoder decoder, Decoder average) : decoder_(std::move(decoder)) {
    if (!average) return;
    torch::NoGradGuard no_grad;
    const auto mine = decoder_->parameters(), theirs = average->parameters();
    for (size_t i = 0; i < mine.size(); ++i) {
      trained_.push_back(mine[i].detach().clone());
      mine[i].detach().copy_(theirs[i]);
    }
  }
  ~AveragedDecoder() {
    torch::NoGradGuard no_grad;
    const auto mine = decoder_->parameters();
    for (size_t i = 0; i < trained_.size(); ++i) mine[i].detach().copy_(trained_[i]);
  }
  AveragedDecoder(const AveragedDecoder&) = delete;
  AveragedDecoder& operator=(const AveragedDecoder&) = delete;

 private:
  Decoder decoder_;
  std::vector<torch::Tensor> trained_;
};

}  // namespace

Validation validate(Trainer& trainer, const torch::Tensor& images) {
  const TrainConfig& c = trainer.config();
  Model& model = trainer.model();
  // The model the commands load from a checkpoint of this step: with the decoder's moving average
  // (batch-norm statistics are the same in both).
  const AveragedDecoder averaged(model->decoder, trainer.ema_decoder());
  const torch::Device device = trainer.device();
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(c.seed + 2);
  const int64_t n = images.size(0), z_dim = model->latent_dim();
  ProcessGroup* group = trainer.group();
  Means means(validation_keys(c));
  model->eval();
  try {
    torch::NoGradGuard no_grad;
    for (int64_t start = 0, index = 0; start < n; start += c.batch_size, ++index) {
      const int64_t b = std::min(c.batch_size, n - start);
      const torch::Tensor eps = torch::randn({b, z_dim}, gen).to(device);
      const torch::Tensor z_prior = torch::randn({b, z_dim}, gen).to(device);
      // Data parallelism: each rank takes every world_size-th batch (the noise is drawn for all).
      if (group != nullptr && index % group->world_size() != group->rank()) continue;
      torch::Tensor x = images.narrow(0, start, b).to(device);
      if (c.channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      AutocastGuard autocast(device, c.precision == Precision::kBf16);
      if (c.model.has_encoder() && c.model.has_discriminator()) {
        const VaeGanLosses l = vae_gan_losses(vae_gan_forward(model, x, eps, z_prior, c.batch_norm, c.dis_on_recon),
                                              trainer.loss_options());
        means.add("val_loss_prior", l.prior, b);
        means.add("val_loss_llike", l.llike, b);
        means.add("val_loss_dis", l.dis, b);
        means.add("val_loss_adv", l.adv, b);
      } else if (c.model.has_encoder()) {
        const VaeLosses l = vae_losses(vae_forward(model, x, eps), x, c.model.recon_loss);
        means.add("val_loss_prior", l.prior, b);
        means.add("val_loss_pixel", l.pixel, b);
      } else {
        const GanLosses l = gan_losses(gan_forward(model, x, z_prior, c.batch_norm), c.gan_loss, c.label_smoothing);
        means.add("val_loss_dis", l.dis, b);
        means.add("val_loss_adv", l.adv, b);
      }
      if (c.model.has_encoder()) {
        means.add("val_mse", pixel_mse(model->reconstruct(x), x), b);
      }
    }
  } catch (...) {
    model->train();
    throw;
  }
  model->train();
  Validation v;
  v.values = means.means(n, group);
  auto value = [&v](const std::string& key) {
    for (const auto& [k, x] : v.values) {
      if (k == key) return x;
    }
    return std::numeric_limits<double>::quiet_NaN();
  };
  if (c.model.type == ModelType::kVae) {
    v.score = value("val_loss_prior") + value("val_loss_pixel");
  } else if (c.model.has_encoder()) {
    v.score = value("val_mse");
  }
  return v;
}

FitResult fit(const TrainConfig& config_in, const std::string& run_dir, bool overwrite, const FitObserver& observer,
              bool resume, std::optional<torch::Device> device_in, std::shared_ptr<ProcessGroup> group) {
  ProcessGroup* g = group.get();
  const bool writer = g == nullptr || g->rank() == 0;
  const torch::Device device = device_in.value_or(default_device());
  // The configuration: rank 0's (on --resume, the run's saved one), with its precision resolved
  // on rank 0's machine, so that every rank trains the same numerics.
  TrainConfig config;
  std::exception_ptr error;
  try {
    config = resume && writer ? load_config(run_dir + "/config.json") : config_in;
    if (config.data_dir.empty()) config.data_dir = default_data_dir(config.dataset);
    validate(config);
  } catch (...) {
    error = std::current_exception();
  }
  check_all_ranks(g, error, "to read the configuration");
  if (g != nullptr) {
    if (writer && !resume) config.precision = resolve_precision(config.precision, device);
    config = parse_config(g->broadcast(writer ? nlohmann::json(config).dump() : ""), "rank 0's configuration");
  }
  // One writer per run directory, from before the first write to the end of the run.
  std::optional<DirectoryLock> lock;
  std::optional<RunLoop> loop;
  bool prepared = false;  // this call created the run's files (a refused --out keeps the old run's)
  try {
    if (writer) lock.emplace(run_dir, resume ? "--resume" : "--out");
    loop.emplace(config, run_dir, observer, resume, device, group);
    if (!resume && writer) {
      prepare_run_dir(run_dir, overwrite);
      prepared = true;
      loop->write_config();
    }
  } catch (...) {
    error = std::current_exception();
  }
  try {
    check_all_ranks(g, error, "at start-up");
    loop->sync_from_rank0();
    return loop->run();
  } catch (...) {
    // A new run that failed before its first step leaves nothing that would block the next
    // `--out` (a run with steps keeps its metrics and checkpoints, for the message and --resume).
    if (prepared && loop->steps_done() == 0) remove_run_files(run_dir);
    throw;
  }
}

}  // namespace vaegan
