#pragma once
/// Checkpoints (docs/design.md, "Checkpoints"): `RUN/checkpoints/step-NNNNNNN/` holding
/// `model.pt` (all weights and batch-norm statistics), `optimizer-{encoder,decoder,discriminator}.pt`
/// (those the model has), `decoder-ema.pt` (the decoder's moving average, with `--ema-decay`), `rng.pt` (the
/// generator's state now and at the epoch's start), `state.json` (step, epoch, position in the epoch, phase, counters,
/// learning rates, format version), a copy of `config.json` and `checksums.json` (CRC-32 of every file).
/// `RUN/checkpoints/last` names the newest. Written under a temporary name, flushed, then
/// renamed, so a crash never leaves a half-written checkpoint behind that name.

#include <torch/torch.h>

#include <limits>
#include <map>
#include <string>

#include "vaegan/model/model.h"
#include "vaegan/train/config.h"
#include "vaegan/train/trainer.h"

namespace vaegan {

/// Position of training when a checkpoint was taken: everything `fit` needs, besides weights,
/// optimizer states, the generator and the phase (which the trainer holds), to continue exactly
/// where it stopped.
struct TrainingState {
  int64_t step = 0;                              ///< steps done
  int64_t epoch = 0;                             ///< completed epochs
  int64_t step_in_epoch = 0;                     ///< steps done in the current epoch (0 at an epoch boundary)
  int64_t order_position = 0;                    ///< entries of the current epoch's data order consumed (all ranks)
  int64_t world_size = 1;                        ///< ranks of the job that wrote it (data parallelism)
  int64_t dis_skipped = 0, dec_adv_skipped = 0;  ///< equilibrium counters
  int64_t bad_steps = 0;                         ///< updates skipped for NaN/Inf so far
  torch::Tensor rng_epoch_start;                 ///< generator state before the epoch's data order was drawn
  /// Best validation score so far (`val_score`, lower is better; NaN before the first), the step
  /// of its checkpoint (`checkpoints/best`) and the validations since it (early stopping).
  double best_score = std::numeric_limits<double>::quiet_NaN();
  int64_t best_step = 0;
  int64_t validations_since_best = 0;
};

/// A checkpoint's files by name (`model.pt`, `optimizer-NAME.pt`, `rng.pt`, `state.json`,
/// `config.json`), as bytes.
using CheckpointFiles = std::map<std::string, std::string>;

/// The files of a checkpoint of `trainer` at `state`, in memory: what `save_checkpoint` writes
/// (without `checksums.json`), and what rank 0 of a data-parallel job sends the other ranks.
CheckpointFiles checkpoint_files(Trainer& trainer, const TrainingState& state);

/// Restores `files` (from `checkpoint_files` or a checkpoint directory) into `trainer` as
/// `restore_checkpoint` does; `where` names them in errors. Throws `InputError` naming the file
/// that is missing or damaged.
TrainingState restore_checkpoint_files(const CheckpointFiles& files, Trainer& trainer, const std::string& where);

/// The directory of the checkpoint of step `step` of `run_dir` (`RUN/checkpoints/step-NNNNNNN`).
std::string checkpoint_path(const std::string& run_dir, int64_t step);

/// Writes a checkpoint of `trainer` at `state` into `run_dir/checkpoints/`, updates `last`, and
/// removes older checkpoints beyond the newest `keep`. Returns the checkpoint directory.
/// Throws `std::runtime_error` naming the path when writing fails (the previous checkpoint
/// and `last` stay intact).
std::string save_checkpoint(const std::string& run_dir, Trainer& trainer, const TrainingState& state, int keep = 2);

/// Copies checkpoint directory `checkpoint` to `run_dir/checkpoints/best` (through a temporary
/// name, so `best` is always a whole checkpoint, if briefly absent) and returns its path. The
/// copy is never removed by `keep`. Throws `std::runtime_error` naming the path when writing fails.
std::string save_best_checkpoint(const std::string& run_dir, const std::string& checkpoint);

/// Checks `dir`'s format version and the CRC-32 of every file listed in its `checksums.json`.
/// Throws `InputError` naming the checkpoint and the file that is missing or damaged.
void verify_checkpoint(const std::string& dir);

/// The newest checkpoint of `run_dir` that verifies, falling back to older ones with a warning
/// naming each one refused. Throws `InputError` when there is none.
std::string newest_valid_checkpoint(const std::string& run_dir);

/// Restores everything checkpoint `dir` saved into `trainer` (built from the same config): its
/// phase (a `vae-then-gan` checkpoint of the GAN phase switches the trainer to it first), weights,
/// optimizer states with their learning rates, and the generator; returns the training state.
/// `dir` must have passed `verify_checkpoint`. Throws `InputError` naming the file when anything
/// is damaged.
TrainingState restore_checkpoint(const std::string& dir, Trainer& trainer);

/// Where `resume_from_newest` continues from.
struct ResumePoint {
  std::string checkpoint;  ///< the checkpoint directory restored
  TrainingState state;
};

/// Restores `trainer` from the newest checkpoint of `run_dir` that verifies
/// (`newest_valid_checkpoint`, then `restore_checkpoint`). Throws `InputError` when there is none.
ResumePoint resume_from_newest(const std::string& run_dir, Trainer& trainer);

/// Resolves `path` (a checkpoint directory or a run directory, meaning its newest checkpoint)
/// to a checkpoint directory. Throws `InputError` naming `path` when neither is found.
std::string resolve_checkpoint(const std::string& path);

/// Which decoder weights `load_model` gives the model (`--decoder-weights`).
enum class DecoderWeights {
  kAuto,     ///< the moving average when the checkpoint has one (`decoder-ema.pt`), else the trained weights
  kEma,      ///< the moving average; an error when the checkpoint has none
  kTrained,  ///< the weights the optimizer trained (`model.pt`)
};
VAEGAN_ENUM_NAMES(DecoderWeights, "--decoder-weights", 3, {DecoderWeights::kAuto, "auto"},
                  {DecoderWeights::kEma, "ema"}, {DecoderWeights::kTrained, "trained"})

/// A model rebuilt from a checkpoint's saved config, in eval mode.
struct LoadedModel {
  TrainConfig config;
  TrainingState state;
  Model model{nullptr};
  std::string directory;               ///< the resolved checkpoint directory
  torch::Device device = torch::kCPU;  ///< where the model lives
  /// The decoder weights loaded: `kEma` or `kTrained` (never `kAuto`).
  DecoderWeights decoder_weights = DecoderWeights::kTrained;
};

/// Loads the model of `path` (see `resolve_checkpoint`) onto `device`, after `verify_checkpoint`,
/// with the decoder weights `decoder` says. Throws `InputError` naming the file when the
/// checkpoint is missing, incomplete or damaged, or has no moving average for `kEma`.
LoadedModel load_model(const std::string& path, torch::Device device, DecoderWeights decoder = DecoderWeights::kAuto);

}  // namespace vaegan
