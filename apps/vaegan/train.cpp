// `vaegan train`: flags -> TrainConfig -> vaegan::fit, with a progress bar on a terminal and
// plain log lines otherwise.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "commands.h"
#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/data/datasets.h"
#include "vaegan/train/trainer.h"

namespace vaegan::cli {
namespace {

std::atomic<int> g_stop_signal{0};

/// The signal that asked training to stop (SIGINT or SIGTERM), or 0.
int stop_signal() { return g_stop_signal.load(); }

/// First SIGINT/SIGTERM: ask `fit` to stop after the current step and a checkpoint. Second: exit
/// at once (checkpoints are written under temporary names, so none is damaged).
void on_stop_signal(int sig) {
  int expected = 0;
  if (!g_stop_signal.compare_exchange_strong(expected, sig)) std::_Exit(128 + sig);
}

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60)
                   : fmt::format("{}:{:02d}", s / 60, s % 60);
}

std::string losses_text(const StepStats& s) {
  switch (s.phase) {
    case Phase::kVae:
      return fmt::format("vae: prior {:.2f} pixel {:.1f}", s.loss_prior, s.loss_pixel);
    case Phase::kGan:
      return fmt::format("gan: dis {:.3f} adv {:.3f} D(x) {:.2f} D(xp) {:.2f}", s.loss_dis, s.loss_adv, s.d_real,
                         s.d_prior);
    default:
      return fmt::format("prior {:.2f} llike {:.1f} dis {:.3f} adv {:.3f} D(x) {:.2f} D(xp) {:.2f}", s.loss_prior,
                         s.loss_llike, s.loss_dis, s.loss_adv, s.d_real, s.d_prior);
  }
}

/// Progress bar redrawn in place on a terminal; a log line every `log_every` steps otherwise.
FitObserver make_progress(bool terminal, int64_t log_every) {
  FitObserver o;
  o.on_step = [terminal, log_every](const ProgressEvent& e) {
    if (terminal) {
      const int width = 24;
      const int filled = static_cast<int>(width * e.step_in_epoch / std::max<int64_t>(1, e.steps_per_epoch));
      fmt::print(stderr, "\r\033[2Kepoch {}/{} [{}{}] {}/{} | {} | {:.0f} img/s | ETA {}", e.epoch + 1, e.epochs,
                 std::string(filled, '#'), std::string(width - filled, '.'), e.step_in_epoch, e.steps_per_epoch,
                 losses_text(e.stats), e.images_per_sec, format_duration(e.eta_sec));
      std::fflush(stderr);
    } else if (e.global_step % log_every == 0 || e.step_in_epoch == e.steps_per_epoch) {
      spdlog::info("epoch {}/{} step {}/{} (total {}) | {} | {:.0f} img/s | ETA {}", e.epoch + 1, e.epochs,
                   e.step_in_epoch, e.steps_per_epoch, e.global_step, losses_text(e.stats), e.images_per_sec,
                   format_duration(e.eta_sec));
    }
  };
  o.on_epoch_end = [terminal](const ProgressEvent& e, const std::string& images_dir) {
    if (terminal) fmt::print(stderr, "\n");
    spdlog::info("epoch {} done: images in {}/epoch-{:03d}-*.png", e.epoch + 1, images_dir, e.epoch + 1);
  };
  return o;
}

}  // namespace

void setup_train(CLI::App& app, Runner& run) {
  auto config = std::make_shared<TrainConfig>();
  auto out = std::make_shared<std::string>();
  auto overwrite = std::make_shared<bool>(false);
  auto channels = std::make_shared<int64_t>(0);
  CLI::App* cmd = app.add_subcommand("train", "Train a VAE-GAN, VAE or GAN and write a run directory");
  TrainConfig& c = *config;
  cmd->add_option("--model", c.model.type,
                  "vaegan (the paper), vae (pixel-wise baseline), gan (DCGAN-style baseline), vae-then-gan (seed 003)")
      ->check(CLI::IsMember(model_type_names()))
      ->capture_default_str();
  cmd->add_option("--dataset", c.dataset, "Dataset")->check(CLI::IsMember(dataset_names()))->capture_default_str();
  cmd->add_option("--data-dir", c.data_dir,
                  "Directory of the dataset files (default: /usr/share/datasets/fashion-mnist for fashion-mnist, "
                  "data/NAME otherwise)");
  cmd->add_option("--channels", *channels, "Image channels, 1 or 3 (0: the dataset's; folder: 3)")
      ->check(CLI::Range(0, 3))
      ->capture_default_str();
  cmd->add_option("--image-size", c.model.image_size,
                  "Image size S the model works at (0: the preset's: 32 small32, 64 paper64, 28 mlp28)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_flag("--flip", c.horizontal_flip, "Augment with random left-right flips");
  cmd->add_option("--loader-threads", c.loader_threads, "Threads decoding image files (folder, celeba)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  auto resume = std::make_shared<std::string>();
  auto* out_opt = cmd->add_option("--out", *out, "Run directory to create");
  cmd->add_option("--resume", *resume,
                  "Continue the run in this directory from its newest valid checkpoint (its saved config applies)")
      ->excludes(out_opt);
  cmd->add_option("--checkpoint-every", c.checkpoint_every, "Steps between checkpoints besides epoch ends (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--keep-checkpoints", c.keep_checkpoints, "Newest checkpoints to keep")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-bad-steps", c.max_bad_steps,
                  "Stop after this many steps in a row with NaN/Inf losses or gradients (each is skipped)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_flag("--overwrite", *overwrite, "Replace a previous run in --out");
  cmd->add_option("--arch", c.model.arch, "Architecture preset (mlp28: seed 002's MLP, --model vae only)")
      ->check(CLI::IsMember(arch_names()))
      ->capture_default_str();
  cmd->add_option("--latent-dim", c.model.latent_dim,
                  "Latent size Z (0: the preset's: 64 small32, 128 paper64, 20 mlp28)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--recon-loss", c.recon_loss, "VAE pixel likelihood on [0, 1] pixels: bce or mse")
      ->check(CLI::IsMember({"bce", "mse"}))
      ->capture_default_str();
  cmd->add_option("--pretrain-epochs", c.pretrain_epochs,
                  "vae-then-gan: epochs of the VAE phase (0: half of --epochs), the rest GAN")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--feature-layer", c.model.feature_layer, "Discriminator convolution (1..4) used for L_llike")
      ->check(CLI::Range(1, 4))
      ->capture_default_str();
  cmd->add_option("--epochs", c.epochs, "Passes over the training set")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-steps", c.max_steps, "Stop after this many steps (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-minutes", c.max_minutes, "Stop after this much wall time, in minutes (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--batch-size", c.batch_size, "Images per step")->check(CLI::Range(2, 65536))->capture_default_str();
  cmd->add_option("--lr", c.lr, "RMSprop learning rate of each network")
      ->check(CLI::Range(1e-9, 1.0))
      ->capture_default_str();
  cmd->add_option("--lr-decay", c.lr_decay, "Learning-rate factor applied after each epoch (1: none)")
      ->check(CLI::Range(1e-6, 1.0))
      ->capture_default_str();
  cmd->add_option("--rmsprop-alpha", c.rmsprop_alpha, "RMSprop smoothing constant")
      ->check(CLI::Range(1e-6, 0.999999))
      ->capture_default_str();
  cmd->add_option("--gamma", c.gamma, "Weight of L_llike against L_adv in the decoder's loss")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--beta", c.beta, "Weight of L_prior (KL) in the encoder's loss")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--dis-on-recon", c.dis_on_recon, "Discriminator also sees reconstructions (true|false)")
      ->capture_default_str();
  cmd->add_option("--batch-norm", c.batch_norm,
                  "joint: each network runs once on the concatenation of its inputs; separate: once per input")
      ->check(CLI::IsMember({"joint", "separate"}))
      ->capture_default_str();
  cmd->add_option("--gan-loss", c.gan_loss, "Decoder's adversarial term")
      ->check(CLI::IsMember({"non-saturating", "minimax"}))
      ->capture_default_str();
  cmd->add_flag("--equilibrium", c.equilibrium, "Skip the update of the player that is ahead (seed 000)");
  cmd->add_option("--equilibrium-value", c.equilibrium_value, "Equilibrium BCE")->capture_default_str();
  cmd->add_option("--equilibrium-margin", c.equilibrium_margin, "Equilibrium margin")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--channels-last", c.channels_last, "NHWC memory format for convolutions (true|false)")
      ->capture_default_str();
  cmd->add_option("--fused-step", c.fused_step,
                  "Share the L_llike backward pass between encoder and decoder (exact; false: one pass per network)")
      ->capture_default_str();
  c.precision = "auto";
  cmd->add_option("--precision", c.precision,
                  "fp32, or bf16 autocast (weights, optimizer states and losses stay fp32); auto: bf16 only where "
                  "this CPU has bf16 instructions and runs them faster than fp32")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--seed", c.seed, "Seed of weights, data order and noise")->capture_default_str();
  cmd->add_option("--threads", c.threads, "Intra-op threads (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--log-every", c.log_every, "Steps between metrics lines")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--grid-size", c.grid_size, "Images in each per-epoch grid")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->callback([&run, config, out, overwrite, channels, resume] {
    run = [config, out, overwrite, channels, resume] {
      if (out->empty() && resume->empty()) throw InputError("train: give --out RUN_DIR (or --resume RUN_DIR)");
      const int64_t own = dataset_channels(config->dataset);
      config->model.channels = *channels > 0 ? *channels : own > 0 ? own : 3;
      if (!resume->empty()) {
        *out = *resume;
        *config = load_config(*resume + "/config.json");
      }
      const int threads = configure_threads(config->threads);
      if (config->precision == "auto") {
        config->precision = default_precision(default_device());
        spdlog::info("--precision auto: {} ({})", config->precision,
                     cpu_has_bf16() ? "this CPU has bf16 instructions; measured which is faster"
                                    : "this CPU has no bf16 instructions");
      }
      const bool terminal = ::isatty(::fileno(stderr)) != 0;
      spdlog::info("training {} ({}) on {} for {} epochs{} with {} threads; run directory {}", config->model.type,
                   config->model.arch, config->dataset, config->epochs,
                   config->max_steps > 0 ? fmt::format(" (at most {} steps)", config->max_steps) : "", threads, *out);
      FitObserver observer = make_progress(terminal, config->log_every);
      observer.should_stop = [] { return stop_signal() != 0; };
      install_stop_handlers();
      const FitResult r = fit(*config, *out, *overwrite, observer, !resume->empty());
      if (r.interrupted) {
        const int sig = stop_signal();
        if (terminal) fmt::print(stderr, "\n");
        spdlog::warn("interrupted by {} at step {}; checkpoint {}. Resume with: vaegan train --resume {}",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT", r.steps, r.last_checkpoint, *out);
        return 128 + sig;
      }
      if (r.bad_steps > 0) spdlog::warn("{} updates were skipped for NaN/Inf losses or gradients", r.bad_steps);
      if (r.stopped_by_time) spdlog::info("stopped by --max-minutes {}", config->max_minutes);
      if (r.images_skipped > 0) spdlog::warn("{} training images could not be read and were skipped", r.images_skipped);
      spdlog::info("done: {} steps, {} epochs in {} ({:.0f} img/s); checkpoint {}", r.steps, r.epochs,
                   format_duration(r.seconds), r.images_per_sec, r.last_checkpoint);
      return 0;
    };
  });
}

}  // namespace vaegan::cli
