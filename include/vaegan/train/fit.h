#pragma once
/// The run loop: trains a `Trainer` epoch by epoch and writes a run directory (docs/design.md,
/// "Run directory"): config, metrics, image grids, loss plots and checkpoints; resumes one.

#include <functional>
#include <limits>
#include <optional>
#include <string>

#include "vaegan/train/config.h"
#include "vaegan/train/trainer.h"

namespace vaegan {

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

/// The validation losses of one epoch (`validate`).
struct Validation {
  /// `val_loss_prior`, `val_loss_llike`, `val_loss_pixel`, `val_loss_dis`, `val_loss_adv` (those
  /// the model has, as its training step defines them) and `val_mse`, in order
  std::vector<std::pair<std::string, double>> values;
  /// What `checkpoints/best` and early stopping compare, lower is better: `vae` the negative
  /// ELBO (`val_loss_prior + val_loss_pixel`), `vaegan` and `vae-then-gan` `val_mse`; NaN for `gan`.
  double score = std::numeric_limits<double>::quiet_NaN();
};

/// The model of `trainer` evaluated on `images` `[N, C, S, S]` in `[-1, 1]`, in batches of the
/// config's batch size: eval mode (batch norm from its running statistics), no gradients, the
/// training precision, the reparameterization and prior noise drawn from a generator seeded
/// with `config.seed + 2` (the same noise at every epoch). `val_mse` is the mean squared error
/// per pixel of `Model::reconstruct` (the posterior mean), on the `[-1, 1]` scale. Each value is
/// the mean over the images. With a moving average of the decoder (`Trainer::ema_decoder`) the
/// decoder is evaluated with the averaged weights, as `load_model` and the commands use it, so
/// `checkpoints/best` is the best of what they would decode with. Leaves the model in train mode
/// with its own weights.
Validation validate(Trainer& trainer, const torch::Tensor& images);

/// Summary of a finished run.
struct FitResult {
  TrainConfig config;  ///< the configuration trained (resolved; on resume, the run's own)
  int64_t steps = 0;
  int64_t epochs = 0;
  double seconds = 0;
  double images_per_sec = 0;
  std::string last_checkpoint;
  bool stopped_by_time = false;  ///< ended by `max_minutes` (resumable: `--resume` continues)
  bool interrupted = false;      ///< ended by `FitObserver::should_stop`
  bool early_stopped = false;    ///< ended by `early_stop_patience` validations without a better score
  std::string best_checkpoint;   ///< `checkpoints/best` (empty when no validation score was kept)
  double best_score = std::numeric_limits<double>::quiet_NaN();  ///< its `val_score`
  int64_t bad_steps = 0;                                         ///< updates skipped for NaN/Inf
  int64_t images_skipped = 0;   ///< training images that could not be read (each warned about once)
  int64_t steps_this_call = 0;  ///< steps this call trained (`steps` minus a resumed run's earlier ones)
  /// Data parallelism: seconds this rank spent in collectives during this call (waiting for the
  /// others included)
  double collective_seconds = 0;
};

/// Trains per `config` and writes `run_dir`: `config.json` (resolved: data directory and
/// precision), `metrics.jsonl`, `images/epoch-NNN-{reconstructions,samples}.png` after every
/// epoch (no reconstructions for a `gan`), `plots/losses.png` redrawn after every epoch (when
/// gnuplot is installed), and a checkpoint after every epoch. A stop inside an epoch
/// (`max_minutes`, `FitObserver::should_stop`) checkpoints the position inside the epoch, so that
/// `resume` continues exactly where it stopped; a time stop also writes the grids so far. Batches come from a
/// background `BatchLoader`. `vae-then-gan` switches to its GAN phase after `vae_phase_epochs(config)` epochs.
/// `run_dir` must not contain a previous run unless `overwrite`. With `resume`, `run_dir` must hold a run: `config` is
/// ignored for its saved `config.json`, training continues from the newest checkpoint that verifies
/// (`resume_from_newest`), and metrics.jsonl lines after that checkpoint are dropped, so the finished run equals an
/// uninterrupted one. Steps with NaN/Inf are skipped and counted; `max_bad_steps` of them in a row stop the run. Throws
/// `InputError` for a bad config, unreadable data, an occupied `run_dir` or a run without a valid checkpoint to resume;
/// `std::runtime_error` when writing fails or training diverges. `device`: where to train (empty: `default_device()`);
/// the run directory does not depend on it, so a run resumes on another device. Call `configure_device` first for
/// cuDNN's autotuner and deterministic algorithms.
///
/// `group` (data parallelism; docs/design.md, "Data parallelism"): this call is one rank of a job and every rank
/// calls `fit` alike. Rank 0 alone reads `config` from the run directory on resume and writes the run directory;
/// its configuration (precision resolved on its machine) and its training state (weights, optimizer states,
/// generator, position: the checkpoint's files) go to the other ranks in broadcasts, so that only rank 0 needs
/// the run directory. Each epoch's data order is one permutation from the common generator, of which every rank
/// takes every `world_size`-th entry (PyTorch's DistributedSampler, the tail that does not divide dropped);
/// `config.batch_size` is the per-rank batch, so a step consumes `batch_size * world_size` images and metrics
/// report the global images/s. Stops (time, `should_stop`, an epoch shortened by unreadable images) are agreed
/// through a collective after every step; batch-norm statistics are taken from rank 0 before validation, grids
/// and checkpoints. Validation is split among the ranks by batch. A checkpoint records the world size and the
/// position in the epoch's order, so a run resumes at another world size (the position becomes the step of
/// the new global batch that contains it). A failure on one rank at start-up stops every rank with a message
/// naming it; a rank lost later makes the others throw `DistributedError` within `--dist-timeout`, naming it and
/// the last checkpoint.
FitResult fit(const TrainConfig& config, const std::string& run_dir, bool overwrite, const FitObserver& observer,
              bool resume = false, std::optional<torch::Device> device = std::nullopt,
              std::shared_ptr<ProcessGroup> group = nullptr);

}  // namespace vaegan
