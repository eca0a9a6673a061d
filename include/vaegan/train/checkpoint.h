#pragma once
/// Checkpoints (DESIGN.md §5): `RUN/checkpoints/step-NNNNNNN/` holding `model.pt` (all weights
/// and batch-norm statistics), `optimizer-{encoder,decoder,discriminator}.pt` (those the model has), `state.json`
/// (step, epoch, learning rates, format version) and a copy of `config.json`.
/// `RUN/checkpoints/last` names the newest. Written under a temporary name, flushed, then
/// renamed, so a crash never leaves a half-written checkpoint behind that name.

#include <torch/torch.h>

#include <string>

#include "vaegan/model/vae_gan.h"
#include "vaegan/train/config.h"

namespace vaegan {

class Trainer;

/// Position of training when a checkpoint was taken.
struct TrainingState {
  int64_t step = 0;   ///< optimizer steps done
  int64_t epoch = 0;  ///< completed epochs
};

/// Writes a checkpoint of `trainer` at `state` into `run_dir/checkpoints/`, updates `last`, and
/// removes older checkpoints beyond the newest `keep`. Returns the checkpoint directory.
/// Throws `std::runtime_error` naming the path when writing fails (the previous checkpoint
/// and `last` stay intact).
std::string save_checkpoint(const std::string& run_dir, Trainer& trainer, const TrainingState& state,
                            int keep = 2);

/// Resolves `path` (a checkpoint directory or a run directory, meaning its newest checkpoint)
/// to a checkpoint directory. Throws `InputError` naming `path` when neither is found.
std::string resolve_checkpoint(const std::string& path);

/// A model rebuilt from a checkpoint's saved config, in eval mode.
struct LoadedModel {
  TrainConfig config;
  TrainingState state;
  VaeGan model{nullptr};
  std::string directory;  ///< the resolved checkpoint directory
};

/// Loads the model of `path` (see `resolve_checkpoint`) onto `device`.
/// Throws `InputError` naming the file when the checkpoint is missing, incomplete or damaged.
LoadedModel load_model(const std::string& path, torch::Device device);

}  // namespace vaegan
