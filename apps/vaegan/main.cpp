// vaegan: train and use VAE-GANs (Larsen et al. 2016). One error funnel: usage errors exit 2,
// runtime failures exit 1 (docs/design.md, "Errors").
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/data/datasets.h"
#include "vaegan/data/image_dataset.h"
#include "vaegan/io/fs.h"
#include "vaegan/io/image_io.h"
#include "vaegan/io/npy.h"

namespace vaegan::cli {

void write_stderr(const std::string& text) noexcept {
  // fputs reports a failed write (closed or full stderr) by its return value, which is ignored:
  // an error message that cannot be shown must not turn exit code 2 into an abort.
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
}

bool is_folder_output(const std::string& path) {
  return (!path.empty() && path.back() == '/') || std::filesystem::is_directory(path);
}

void check_image_output(const std::string& path) {
  if (!is_folder_output(path)) {
    require_extension(path, {".png", ".npy"}, "--out");
  } else if (std::error_code ec; std::filesystem::exists(path) && !std::filesystem::is_empty(path, ec)) {
    throw InputError(
        fmt::format("--out: {} is not empty (a folder of images gets exactly the images written: "
                    "remove it or name another)",
                    path));
  }
}

void write_images(const std::string& path, const torch::Tensor& images, int64_t ncol) {
  check_image_output(path);
  if (is_folder_output(path)) {
    write_png_folder(path, images);
  } else if (has_extension(path, ".npy")) {
    write_npy(path, images.scalar_type() == torch::kUInt8 ? images : to_uint8_nhwc(images));
  } else {
    save_image_grid(path, images, ncol);
  }
}

torch::Device apply_runtime(const RuntimeArgs& runtime) {
  configure_threads(runtime.threads);
  const torch::Device device = parse_device(runtime.device);
  configure_device(device, runtime.deterministic);
  return device;
}

LoadedModel load_for_command(const std::string& checkpoint, const RuntimeArgs& runtime) {
  LoadedModel m = load_model(checkpoint, apply_runtime(runtime), runtime.decoder_weights);
  if (m.decoder_weights == DecoderWeights::kEma) {
    spdlog::info(
        "{}: decoding with the moving average of the decoder's weights (--decoder-weights trained: the "
        "trained ones)",
        m.directory);
  }
  return m;
}

std::shared_ptr<ImageDataset> model_dataset(const LoadedModel& m, const std::string& data_dir, Split split) {
  return open_dataset(m.config.dataset, data_dir.empty() ? m.config.data_dir : data_dir, split, m.config.model.channels,
                      model_image_size(m.config.model), dataset_options(m.config));
}

CLI::Validator at_least(int64_t min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        try {
          size_t used = 0;
          const long long v = std::stoll(text, &used);
          if (used == text.size() && v >= min) return {};
        } catch (const std::exception&) {
        }
        return fmt::format("must be an integer >= {}, got '{}'", min, text);
      },
      fmt::format(">= {}", min));
}

CLI::Option* add_seed_option(CLI::App* cmd, uint64_t& seed, const std::string& help) {
  return cmd->add_option("--seed", seed, help)->check(at_least(0))->capture_default_str();
}

void add_threads_option(CLI::App* cmd, int& threads) {
  cmd->add_option("--threads", threads, "Intra-op threads (0: all cores)")->check(at_least(0));
}

void add_runtime_options(CLI::App* cmd, RuntimeArgs& runtime, bool threads, bool decoder_weights) {
  if (threads) add_threads_option(cmd, runtime.threads);
  cmd->add_option("--device", runtime.device, "cpu, cuda, cuda:N or auto (CUDA when a GPU is visible)")
      ->capture_default_str();
  cmd->add_flag("--deterministic", runtime.deterministic,
                "Deterministic algorithms only (no cuDNN autotuning; an operation without one fails)");
  if (decoder_weights) {
    add_enum_option(cmd, "--decoder-weights", runtime.decoder_weights,
                    "auto: the moving average of the decoder's weights when the run kept one (--ema-decay), else the "
                    "trained weights; ema; trained");
  }
}

}  // namespace vaegan::cli

int main(int argc, char** argv) {
  vaegan::cli::set_command_line(argc, argv);
  // Logs go to stderr, line by line, so they interleave correctly with the progress bar and
  // reach a log file as they happen.
  spdlog::set_default_logger(spdlog::stderr_color_mt("vaegan"));
  spdlog::flush_on(spdlog::level::info);
  CLI::App app{"vaegan: VAE-GAN (Larsen et al. 2016) training and latent-space tools"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vaegan 0.1.0");
  vaegan::cli::Runner run;
  vaegan::cli::setup_train(app, run);
  vaegan::cli::setup_sample(app, run);
  vaegan::cli::setup_encode(app, run);
  vaegan::cli::setup_reconstruct(app, run);
  vaegan::cli::setup_interpolate(app, run);
  vaegan::cli::setup_attribute(app, run);
  vaegan::cli::setup_eval(app, run);
  vaegan::cli::setup_classifier(app, run);
  vaegan::cli::setup_plot(app, run);
  vaegan::cli::setup_serve(app, run);
  const auto subcommands = app.get_subcommands([](const CLI::App*) { return true; });
  const bool known = std::any_of(subcommands.begin(), subcommands.end(),
                                 [&](const CLI::App* sub) { return argc > 1 && sub->get_name() == argv[1]; });
  if (argc > 1 && argv[1][0] != '-' && !known) {
    std::string names;
    for (const CLI::App* sub : subcommands) names += (names.empty() ? "" : ", ") + sub->get_name();
    vaegan::cli::write_stderr(
        fmt::format("vaegan: error: unknown command '{}' (expected one of: {})\n", argv[1], names));
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    try {
      const int rc = app.exit(e);  // prints help, version or the error with a hint
      return rc == 0 ? 0 : 2;
    } catch (...) {  // stdout or stderr unwritable
      return e.get_exit_code() == 0 ? 0 : 2;
    }
  }
  try {
    return run();
  } catch (const vaegan::InputError& e) {
    vaegan::cli::write_stderr(fmt::format("vaegan: error: {}\n", e.what()));
    return 2;
  } catch (const vaegan::ImageReadError& e) {  // an image file given on the command line
    vaegan::cli::write_stderr(fmt::format("vaegan: error: {}\n", e.what()));
    return 2;
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    if (what.find("can't allocate memory") != std::string::npos) what = vaegan::with_memory_limit_hint(what);
    vaegan::cli::write_stderr(fmt::format("vaegan: error: {}\n", what));
    return 1;
  } catch (const std::bad_alloc& e) {
    vaegan::cli::write_stderr(
        fmt::format("vaegan: error: {}\n", vaegan::with_memory_limit_hint("out of memory (std::bad_alloc)")));
    return 1;
  } catch (const std::exception& e) {
    vaegan::cli::write_stderr(fmt::format("vaegan: error: {}\n", e.what()));
    return 1;
  }
}
