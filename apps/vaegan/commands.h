#pragma once
/// Subcommands of the `vaegan` binary. Each `setup_x` registers its subcommand and options on
/// `app` and, when the subcommand is chosen, stores in `run` the function that executes it.
/// Errors are thrown (see vaegan/core/error.h) and turned into exit codes by `main`.

#include <CLI/CLI.hpp>
#include <functional>

#include "vaegan/data/image_dataset.h"
#include "vaegan/train/checkpoint.h"

namespace vaegan::cli {

using Runner = std::function<int()>;

void setup_train(CLI::App& app, Runner& run);
void setup_sample(CLI::App& app, Runner& run);
void setup_reconstruct(CLI::App& app, Runner& run);
void setup_interpolate(CLI::App& app, Runner& run);
void setup_attribute(CLI::App& app, Runner& run);
void setup_eval(CLI::App& app, Runner& run);
void setup_classifier(CLI::App& app, Runner& run);
void setup_plot(CLI::App& app, Runner& run);

/// Writes images `[N, C, H, W]` in `[-1, 1]` to `path`: a PNG grid with `ncol` columns, or a
/// `uint8` `[N, H, W, C]` `.npy`. Throws `InputError` naming `--out` for another extension.
void write_images(const std::string& path, const torch::Tensor& images, int64_t ncol);

/// Checks that `--out` ends in .png or .npy; throws `InputError` otherwise.
void check_image_output(const std::string& path);

/// The prologue of every command that uses a checkpoint: sets the intra-op threads (`--threads`,
/// 0: all cores) and loads `checkpoint` (`load_model`) onto the default device.
LoadedModel load_for_command(const std::string& checkpoint, int threads);

/// `split` of the dataset `m` was trained on, read from `data_dir` (empty: the training run's
/// directory), at the model's channels and size. Throws as `open_dataset`.
std::shared_ptr<ImageDataset> model_dataset(const LoadedModel& m, const std::string& data_dir, Split split);

/// Adds the `--threads` option (intra-op threads, 0: all cores) to `cmd`.
void add_threads_option(CLI::App* cmd, int& threads);

}  // namespace vaegan::cli
