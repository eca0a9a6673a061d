#pragma once
/// Subcommands of the `vaegan` binary. Each `setup_x` registers its subcommand and options on
/// `app` and, when the subcommand is chosen, stores in `run` the function that executes it.
/// Errors are thrown (see vaegan/core/error.h) and turned into exit codes by `main`.

#include <CLI/CLI.hpp>
#include <functional>

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

}  // namespace vaegan::cli
