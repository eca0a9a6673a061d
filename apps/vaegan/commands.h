#pragma once
/// Subcommands of the `vaegan` binary. Each command has its arguments as a plain struct
/// (`XxxArgs`), a `run_xxx(const XxxArgs&)` that does the work through the library and returns
/// the exit code, and a `setup_xxx` that registers the subcommand's flags on `app` (their
/// defaults are the struct's) and, when the subcommand is chosen, stores in `run` the call of
/// `run_xxx`. Errors are thrown (vaegan/core/error.h) and turned into exit codes by `main`.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "vaegan/core/enum_names.h"
#include "vaegan/data/image_dataset.h"
#include "vaegan/eval/evaluate.h"
#include "vaegan/train/checkpoint.h"
#include "vaegan/train/config.h"

namespace vaegan::cli {

using Runner = std::function<int()>;

// ---------------------------------------------------------------- arguments

/// Where and how a command computes: `--threads`, `--device`, `--deterministic`.
struct RuntimeArgs {
  int threads = 0;              ///< intra-op threads (0: all cores)
  std::string device = "auto";  ///< cpu, cuda, cuda:N or auto (`parse_device`)
  bool deterministic = false;   ///< deterministic algorithms only (`configure_device`)
  /// The decoder weights a loaded model uses (`--decoder-weights`: the moving average by default)
  DecoderWeights decoder_weights = DecoderWeights::kAuto;
};

/// How `vaegan train` joins or starts a data-parallel job (torchrun's flags; docs/design.md,
/// "Data parallelism").
struct LaunchArgs {
  int nproc = 0;                          ///< ranks to start on this machine (0: none, run as one process or as
                                          ///< the rank RANK/WORLD_SIZE name)
  int nnodes = 1;                         ///< machines in the job
  int node_rank = 0;                      ///< this machine, 0 .. nnodes - 1
  std::string master_addr = "127.0.0.1";  ///< host of rank 0 (the rendezvous store)
  int master_port = 0;                    ///< its port (0: a free one when nnodes is 1, else 29500)
  double dist_timeout = 300;              ///< seconds a collective waits for the other ranks
};

/// `vaegan train`: a `TrainConfig` plus where to write it and where to compute (its
/// `runtime.threads` is unused: `config.threads` is saved with the run).
struct TrainArgs {
  TrainConfig config;
  std::string out;     ///< run directory to create
  std::string resume;  ///< run directory to continue (excludes `out`)
  bool overwrite = false;
  int64_t channels = 0;                        ///< 0: the dataset's (`resolve_channels`)
  std::vector<std::string> ignored_on_resume;  ///< flags given with `--resume` (its saved config applies)
  RuntimeArgs runtime;
  LaunchArgs launch;
};

/// `vaegan serve`.
struct ServeArgs {
  std::vector<std::string> runs;  ///< run directories
  std::string host = "127.0.0.1";
  int port = 8080;
  RuntimeArgs runtime;
};

/// `vaegan sample`.
struct SampleArgs {
  std::string checkpoint, out;
  int64_t n = 64;
  uint64_t seed = 0;
  RuntimeArgs runtime;
};

/// `vaegan reconstruct`.
struct ReconstructArgs {
  std::string checkpoint, out, data_dir;
  Split split = Split::kTest;
  int64_t n = 32;
  RuntimeArgs runtime;
};

/// `vaegan encode`.
struct EncodeArgs {
  std::string checkpoint, out, data_dir, input;
  Split split = Split::kTest;
  int64_t n = 0;  ///< images from the start (0: all)
  RuntimeArgs runtime;
};

/// `vaegan interpolate`.
struct InterpolateArgs {
  std::string checkpoint, out, from, to, data_dir;
  std::vector<int64_t> index;
  int64_t steps = 8, rows = 8;
  uint64_t seed = 0;
  bool slerp = false;
  RuntimeArgs runtime;
};

/// `vaegan attribute compute` and `apply`.
struct AttributeArgs {
  std::string checkpoint, out, attribute, from_class, to_class, vector, data_dir, strengths = "-1,0,1,2";
  int64_t max_images = 10000, n = 16;
  RuntimeArgs runtime;
};

/// `vaegan eval`.
struct EvalArgs {
  std::string checkpoint, out, features, classifier, data_dir;
  Split split = Split::kTest;
  EvalOptions options;
  RuntimeArgs runtime;
};

/// `vaegan classifier train`.
struct ClassifierArgs {
  std::string dataset = "fashion-mnist", data_dir, out;
  int64_t image_size = 32, channels = 0;
  RuntimeArgs runtime;
  ClassifierTrainOptions train;
};

/// `vaegan plot`.
struct PlotArgs {
  std::vector<std::string> runs;
  std::string out = "losses.png";
};

// ---------------------------------------------------------------- commands

int run_train(TrainArgs args);
int run_sample(const SampleArgs& args);
int run_reconstruct(const ReconstructArgs& args);
int run_encode(const EncodeArgs& args);
int run_interpolate(const InterpolateArgs& args);
int run_attribute_compute(const AttributeArgs& args);
int run_attribute_apply(const AttributeArgs& args);
int run_eval(const EvalArgs& args);
int run_classifier_train(const ClassifierArgs& args);
int run_plot(const PlotArgs& args);
int run_serve(const ServeArgs& args);

void setup_train(CLI::App& app, Runner& run);
void setup_sample(CLI::App& app, Runner& run);
void setup_reconstruct(CLI::App& app, Runner& run);
void setup_encode(CLI::App& app, Runner& run);
void setup_interpolate(CLI::App& app, Runner& run);
void setup_attribute(CLI::App& app, Runner& run);
void setup_eval(CLI::App& app, Runner& run);
void setup_classifier(CLI::App& app, Runner& run);
void setup_plot(CLI::App& app, Runner& run);
void setup_serve(CLI::App& app, Runner& run);

// ---------------------------------------------------------------- shared pieces

/// Starts `args.nproc` ranks of this program on this machine (ranks `node_rank * nproc` ..
/// `(node_rank + 1) * nproc - 1` of `nnodes * nproc`), each with `command_line` and the
/// environment variables torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
/// GROUP_RANK, MASTER_ADDR, MASTER_PORT), and waits for them. SIGTERM is passed on to them;
/// SIGINT from a terminal reaches them directly and is ignored here. When one rank fails, the
/// others get `dist_timeout` + 10 s to stop on their own (their collectives fail), then SIGKILL.
/// Returns 0 when every rank succeeded, else the exit code of the lowest rank that failed (128 +
/// signal for a rank killed by one). Throws `std::runtime_error` when a process cannot be started.
int launch_local_ranks(const LaunchArgs& args, const std::vector<std::string>& command_line);

/// The command line `main` was called with (for `launch_local_ranks`).
const std::vector<std::string>& command_line();
/// Records the command line (`main` calls it first).
void set_command_line(int argc, char** argv);

/// Writes `text` to stderr, ignoring a failed write (closed or full stderr); never throws.
void write_stderr(const std::string& text) noexcept;

/// Writes images `[N, C, H, W]` in `[-1, 1]` (or `uint8` `[N, H, W, C]`) to `path`: a PNG grid
/// with `ncol` columns, a `uint8` `[N, H, W, C]` `.npy`, or, for a path ending in `/` or an existing
/// folder, a folder of one PNG per image (`write_png_folder`). Throws `InputError` naming `--out`
/// for another extension or a folder that is not empty.
void write_images(const std::string& path, const torch::Tensor& images, int64_t ncol);

/// Whether `--out` names a folder of PNGs: it ends in `/` or is an existing directory.
bool is_folder_output(const std::string& path);

/// Checks that `--out` ends in .png or .npy or names a folder; throws `InputError` otherwise.
void check_image_output(const std::string& path);

/// Applies `runtime`: sets the intra-op threads (`configure_threads`), parses `--device`
/// (`parse_device`) and prepares it (`configure_device`). Returns the device. Throws
/// `InputError` for a device that is not there.
torch::Device apply_runtime(const RuntimeArgs& runtime);

/// The prologue of every command that uses a checkpoint: `apply_runtime`, then loads
/// `checkpoint` (`load_model`) onto the chosen device.
LoadedModel load_for_command(const std::string& checkpoint, const RuntimeArgs& runtime);

/// `split` of the dataset `m` was trained on, read from `data_dir` (empty: the training run's
/// directory), at the model's channels and size. Throws as `open_dataset`.
std::shared_ptr<ImageDataset> model_dataset(const LoadedModel& m, const std::string& data_dir, Split split);

/// A CLI11 check for an integer option: at least `min`, with the message "must be >= MIN, got X"
/// (CLI11's own unbounded checks print DBL_MAX in full, and an unsigned option would wrap -1).
CLI::Validator at_least(int64_t min);

/// Adds the `--seed` option (a non-negative integer) to `cmd`.
CLI::Option* add_seed_option(CLI::App* cmd, uint64_t& seed, const std::string& help);

/// Adds the `--threads` option (intra-op threads, 0: all cores) to `cmd`.
void add_threads_option(CLI::App* cmd, int& threads);

/// Adds `--device` and `--deterministic` to `cmd`, `--threads` unless `threads` is false, and
/// `--decoder-weights` when `decoder_weights` (commands that decode with a loaded model).
void add_runtime_options(CLI::App* cmd, RuntimeArgs& runtime, bool threads = true, bool decoder_weights = true);

/// Adds option `flag` for the enum `value`, accepting the names of its `EnumTable` and showing
/// the current value as the default.
template <typename E>
CLI::Option* add_enum_option(CLI::App* cmd, const std::string& flag, E& value, const std::string& help) {
  return cmd
      ->add_option_function<std::string>(
          flag, [&value, flag](const std::string& name) { value = parse_enum<E>(name, flag); }, help)
      ->check(CLI::IsMember(enum_names<E>()))
      ->type_name("TEXT")
      ->default_str(enum_name(value));
}

}  // namespace vaegan::cli
