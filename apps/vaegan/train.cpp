// `vaegan train`: flags -> TrainConfig -> vaegan::fit, with a progress bar on a terminal and
// plain log lines otherwise.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "commands.h"
#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/data/datasets.h"
#include "vaegan/dist/process_group.h"
#include "vaegan/train/fit.h"

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
      write_stderr(fmt::format("\r\033[2Kepoch {}/{} [{}{}] {}/{} | {} | {:.0f} img/s | ETA {}", e.epoch + 1, e.epochs,
                               std::string(filled, '#'), std::string(width - filled, '.'), e.step_in_epoch,
                               e.steps_per_epoch, losses_text(e.stats), e.images_per_sec, format_duration(e.eta_sec)));
    } else if (e.global_step % log_every == 0 || e.step_in_epoch == e.steps_per_epoch) {
      spdlog::info("epoch {}/{} step {}/{} (total {}) | {} | {:.0f} img/s | ETA {}", e.epoch + 1, e.epochs,
                   e.step_in_epoch, e.steps_per_epoch, e.global_step, losses_text(e.stats), e.images_per_sec,
                   format_duration(e.eta_sec));
    }
  };
  o.on_epoch_end = [terminal](const ProgressEvent& e, const std::string& images_dir) {
    if (terminal) write_stderr("\n");
    spdlog::info("epoch {} done: images in {}/epoch-{:03d}-*.png", e.epoch + 1, images_dir, e.epoch + 1);
  };
  return o;
}

}  // namespace

/// The process group of this rank when RANK/WORLD_SIZE describe a job (null otherwise; a job of
/// one rank has a group too, as DDP with world size 1); on CUDA, the rank's GPU is LOCAL_RANK unless `device` names
/// one. Ranks other than 0 log warnings and errors only, each line marked with its rank.
std::shared_ptr<ProcessGroup> join_job(const LaunchArgs& launch, torch::Device& device) {
  const std::optional<DistributedEnv> env = distributed_env_from_environment();
  if (launch.nproc > 0 && env && std::getenv("VAEGAN_LAUNCHED") == nullptr) {
    spdlog::warn("--nproc {}: ignored, this process is rank {} of a job started by torchrun", launch.nproc, env->rank);
  }
  if (std::getenv("VAEGAN_LAUNCHED") != nullptr) {
    // A rank of `--nproc`: if the launcher dies, stop as on SIGTERM (checkpoint, exit) instead of
    // training on as an orphan.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() == 1) std::raise(SIGTERM);  // the launcher was already gone
  }
  if (!env) return nullptr;
  spdlog::set_pattern(fmt::format("[%Y-%m-%d %H:%M:%S.%e] [rank {}] [%^%l%$] %v", env->rank));
  if (env->rank != 0) spdlog::set_level(spdlog::level::warn);
  if (device.is_cuda() && !device.has_index()) device = torch::Device(torch::kCUDA, env->local_rank);
  return std::make_shared<ProcessGroup>(
      *env, ProcessGroupOptions()
                .timeout(std::chrono::milliseconds(static_cast<int64_t>(launch.dist_timeout * 1000)))
                .device(device));
}

int run_train(TrainArgs a) {
  if (a.out.empty() && a.resume.empty()) throw InputError("train: give --out RUN_DIR (or --resume RUN_DIR)");
  if (a.launch.node_rank >= a.launch.nnodes) {
    throw InputError(
        fmt::format("--node-rank: must be below --nnodes {}, got {}", a.launch.nnodes, a.launch.node_rank));
  }
  if (a.launch.nproc > 0 && distributed_env_from_environment() == std::nullopt) {
    return launch_local_ranks(a.launch, command_line());
  }
  TrainConfig& config = a.config;
  config.model.channels = resolve_channels(config.dataset, a.channels);
  const std::string& run_dir = a.resume.empty() ? a.out : a.resume;
  const bool terminal = ::isatty(::fileno(stderr)) != 0;
  FitObserver observer = make_progress(terminal, config.log_every);
  observer.should_stop = [] { return stop_signal() != 0; };
  install_stop_handlers();
  if (!a.resume.empty() && !a.ignored_on_resume.empty()) {
    spdlog::warn("--resume continues with the run's saved configuration; ignoring {}",
                 fmt::join(a.ignored_on_resume, ", "));
  }
  torch::Device device = parse_device(a.runtime.device);
  std::shared_ptr<ProcessGroup> group = join_job(a.launch, device);
  configure_device(device, a.runtime.deterministic);
  const FitResult r = fit(config, run_dir, a.overwrite, observer, !a.resume.empty(), device, group);
  if (r.interrupted) {
    // A rank that got no signal itself stopped because another rank did: it exits as on SIGINT.
    const int sig = stop_signal() != 0 ? stop_signal() : SIGINT;
    if (terminal) write_stderr("\n");
    spdlog::warn("interrupted by {} at step {}; checkpoint {}. Resume with: vaegan train --resume {}",
                 stop_signal() == 0 ? "another rank's signal"
                 : sig == SIGTERM   ? "SIGTERM"
                                    : "SIGINT",
                 r.steps, r.last_checkpoint, run_dir);
    return 128 + sig;
  }
  if (r.bad_steps > 0) spdlog::warn("{} updates were skipped for NaN/Inf losses or gradients", r.bad_steps);
  if (r.stopped_by_time) {
    spdlog::info("stopped by --max-minutes {} at step {}; continue with: vaegan train --resume {}",
                 r.config.max_minutes, r.steps, run_dir);
  }
  if (r.early_stopped) {
    spdlog::info("stopped early: {} epochs without a better val_score (--early-stop-patience {})",
                 r.config.early_stop_patience, r.config.early_stop_patience);
  }
  if (!r.best_checkpoint.empty()) {
    spdlog::info("best val_score {:.6g}: {}", r.best_score, r.best_checkpoint);
  }
  if (r.images_skipped > 0) spdlog::warn("{} training images could not be read and were skipped", r.images_skipped);
  spdlog::info("done: {} steps, {} epochs in {} ({:.0f} img/s); checkpoint {}", r.steps, r.epochs,
               format_duration(r.seconds), r.images_per_sec, r.last_checkpoint);
  if (group) {
    spdlog::info("collectives: {:.1f} s of {:.1f} s ({:.1f} %, {:.1f} ms per step) on rank 0", r.collective_seconds,
                 r.seconds, 100 * r.collective_seconds / std::max(r.seconds, 1e-9),
                 1e3 * r.collective_seconds / std::max<double>(1, static_cast<double>(r.steps_this_call)));
  }
  return 0;
}

void setup_train(CLI::App& app, Runner& run) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a VAE-GAN, VAE or GAN and write a run directory");
  TrainConfig& c = args->config;
  // First, so that its callback runs before the others': the file's values, then the flags given
  // (CLI11 runs the option callbacks in the order the options were added).
  cmd->add_option_function<std::string>(
         "--config",
         [args](const std::string& path) {
           try {
             args->config = load_config(path);  // strict: unknown keys and wrong types name the key
           } catch (const InputError& e) {      // inside CLI11's parse: reported as a usage error (exit 2)
             throw CLI::ValidationError("--config", e.what());
           }
           args->channels = args->config.model.channels;
         },
         "JSON configuration with the keys of a run's config.json (e.g. RUN/config.json to repeat a run); "
         "flags given beside it override its values")
      ->type_name("FILE");
  // Second: a recipe's settings over the file's (or the defaults), before the flags given.
  cmd->add_option_function<std::string>(
         "--recipe",
         [args](const std::string& name) {
           try {
             apply_recipe(parse_enum<Recipe>(name), args->config);
           } catch (const InputError& e) {
             throw CLI::ValidationError("--recipe", e.what());
           }
         },
         "original: train as the authors' released code does (their CelebA experiment: batch-norm groups, "
         "equilibrium rule, minimax decoder, annealing, initialisation, CelebA crop; docs/training-defaults.md); "
         "flags given beside it override its values")
      ->check(CLI::IsMember(enum_names<Recipe>()))
      ->type_name("NAME");
  // Ranges are checked once, by `validate` (train/config.h), when training starts.
  add_enum_option(cmd, "--model", c.model.type,
                  "vaegan (the paper), vae (pixel-wise baseline), gan (DCGAN-style baseline), vae-then-gan (a VAE "
                  "phase, then a GAN from its decoder)");
  cmd->add_option("--dataset", c.dataset, "Dataset")->check(CLI::IsMember(dataset_names()))->capture_default_str();
  cmd->add_option("--data-dir", c.data_dir,
                  "Directory of the dataset files (default: /usr/share/datasets/fashion-mnist for fashion-mnist, "
                  "data/NAME otherwise)");
  cmd->add_option("--channels", args->channels, "Image channels, 1 or 3 (0: the dataset's; folder: 3)")
      ->capture_default_str();
  cmd->add_option("--image-size", c.model.image_size,
                  "Image size S the model works at (0: the preset's: 32 small32, 64 paper64, 28 mlp28)")
      ->capture_default_str();
  cmd->add_flag("--flip", c.horizontal_flip, "Augment with random left-right flips");
  cmd->add_option("--loader-threads", c.loader_threads, "Threads decoding image files (folder, celeba)")
      ->capture_default_str();
  cmd->add_option("--val-fraction", c.val_fraction,
                  "folder without train/ and test/: fraction of its images held out for validation and evaluation "
                  "(fixed seed; 0: none, validation on the training images)")
      ->capture_default_str();
  cmd->add_option("--val-images", c.val_images, "Test images each epoch's validation averages over (0: all)")
      ->capture_default_str();
  cmd->add_option("--early-stop-patience", c.early_stop_patience,
                  "Stop after this many epochs without a better val_score (vae: negative ELBO; vaegan, vae-then-gan: "
                  "reconstruction MSE; 0: never)")
      ->capture_default_str();
  add_enum_option(cmd, "--celeba-protocol", c.celeba_protocol,
                  "celeba: standard (train partition 0, centred crop) or original (the authors': partitions 0 and 1, "
                  "crop from row 40)");
  auto* out_opt = cmd->add_option("--out", args->out, "Run directory to create");
  cmd->add_option("--resume", args->resume,
                  "Continue the run in this directory from its newest valid checkpoint (its saved config applies)")
      ->excludes(out_opt);
  cmd->add_option("--checkpoint-every", c.checkpoint_every, "Steps between checkpoints besides epoch ends (0: none)")
      ->capture_default_str();
  cmd->add_option("--keep-checkpoints", c.keep_checkpoints, "Newest checkpoints to keep")->capture_default_str();
  cmd->add_option("--max-bad-steps", c.max_bad_steps,
                  "Stop after this many steps in a row with NaN/Inf losses or gradients (each is skipped)")
      ->capture_default_str();
  cmd->add_flag("--overwrite", args->overwrite, "Replace a previous run in --out");
  cmd->add_option("--arch", c.model.arch, "Architecture preset (mlp28: the MLP VAE, --model vae only)")
      ->check(CLI::IsMember(arch_names()))
      ->capture_default_str();
  cmd->add_option("--latent-dim", c.model.latent_dim,
                  "Latent size Z (0: the preset's: 16 small32, 128 paper64, 20 mlp28)")
      ->capture_default_str();
  add_enum_option(cmd, "--recon-loss", c.model.recon_loss, "VAE pixel likelihood on [0, 1] pixels");
  cmd->add_option("--pretrain-epochs", c.pretrain_epochs,
                  "vae-then-gan: epochs of the VAE phase (0: half of --epochs), the rest GAN")
      ->capture_default_str();
  cmd->add_option("--feature-layer", c.model.feature_layer,
                  "Discriminator convolution (1..4) used for L_llike (0: the preset's: 3 small32, 4 paper64)")
      ->capture_default_str();
  cmd->add_option("--epochs", c.epochs, "Passes over the training set")->capture_default_str();
  cmd->add_option("--max-steps", c.max_steps, "Stop after this many steps (0: no limit)")->capture_default_str();
  cmd->add_option("--max-minutes", c.max_minutes, "Stop after this much wall time, in minutes (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--batch-size", c.batch_size, "Images per step")->capture_default_str();
  add_enum_option(cmd, "--optimizer", c.optimizer, "Optimizer of each network (rmsprop: paper §4)");
  cmd->add_option("--lr", c.lr, "Learning rate of each network without its own")->capture_default_str();
  cmd->add_option("--lr-encoder", c.lr_encoder, "Encoder's learning rate (0: --lr)")->capture_default_str();
  cmd->add_option("--lr-decoder", c.lr_decoder, "Decoder's learning rate (0: --lr)")->capture_default_str();
  cmd->add_option("--lr-discriminator", c.lr_discriminator, "Discriminator's learning rate (0: --lr)")
      ->capture_default_str();
  cmd->add_option("--adam-beta1", c.adam_beta1, "Adam's beta1 (DCGAN practice: 0.5)")->capture_default_str();
  cmd->add_option("--adam-beta2", c.adam_beta2, "Adam's beta2")->capture_default_str();
  cmd->add_option("--weight-decay", c.weight_decay, "L2 penalty added to each gradient by the optimizer")
      ->capture_default_str();
  cmd->add_option("--grad-clip", c.grad_clip, "Largest L2 norm of each network's gradient per step (0: none)")
      ->capture_default_str();
  add_enum_option(cmd, "--lr-schedule", c.lr_schedule,
                  "exponential (--lr-decay per epoch) or anneal (the authors': start * (1 - (e/T)^gamma * (1 - "
                  "final ratio)))");
  cmd->add_option("--lr-anneal-epochs", c.lr_anneal_epochs, "anneal: periods T to the final rate")
      ->capture_default_str();
  cmd->add_option("--lr-anneal-period", c.lr_anneal_period,
                  "anneal: steps per period (0: one epoch; the authors' periods are 250 batches)")
      ->capture_default_str();
  cmd->add_option("--lr-anneal-gamma", c.lr_anneal_gamma, "anneal: exponent")->capture_default_str();
  cmd->add_option("--lr-final-ratio", c.lr_final_ratio, "anneal: final rate over the start rate")
      ->capture_default_str();
  cmd->add_option("--lr-decay", c.lr_decay, "exponential: learning-rate factor applied after each epoch (1: none)")
      ->capture_default_str();
  cmd->add_option("--rmsprop-alpha", c.rmsprop_alpha, "RMSprop smoothing constant")->capture_default_str();
  cmd->add_option("--gamma", c.gamma, "Weight of L_llike against L_adv in the decoder's loss")->capture_default_str();
  cmd->add_option("--beta", c.beta, "Weight of L_prior (KL) in the encoder's loss")->capture_default_str();
  cmd->add_option("--ema-decay", c.ema_decay,
                  "Keep an exponential moving average of the decoder's weights with this decay (e.g. 0.995), used "
                  "by sample, eval, reconstruct, interpolate, attribute and serve unless --decoder-weights trained "
                  "(0: none)")
      ->capture_default_str();
  cmd->add_option("--dis-on-recon", c.dis_on_recon, "Discriminator also sees reconstructions (true|false)")
      ->capture_default_str();
  add_enum_option(cmd, "--batch-norm", c.batch_norm,
                  "joint: each network runs once on the concatenation of its inputs; separate: once per input; "
                  "original: the authors' groups ([x_recon; x] for L_llike, [x; x_prior] for the GAN losses)");
  add_enum_option(cmd, "--gan-loss", c.gan_loss, "Decoder's adversarial term");
  cmd->add_option("--dis-real-weight", c.dis_real_weight,
                  "Weight of real images in L_dis against the generated ones (0: the plain sum; the authors': 0.5)")
      ->capture_default_str();
  cmd->add_option("--label-smoothing", c.label_smoothing,
                  "One-sided label smoothing: real images' target in L_dis is 1 - this (Salimans et al. 2016: 0.1; "
                  "0: none)")
      ->capture_default_str();
  cmd->add_option("--r1-gamma", c.r1_gamma,
                  "Weight gamma of the R1 penalty (gamma/2) E|grad_x D(x)|^2 on real images in the discriminator's "
                  "loss (Mescheder et al. 2018; 0: none; each step then runs the discriminator once more)")
      ->capture_default_str();
  cmd->add_option("--r1-interval", c.r1_interval,
                  "Lazy R1: the penalty, weighted N times, on every N-th discriminator update only (Karras et al. "
                  "2020, StyleGAN2: 16; 1: every update)")
      ->capture_default_str();
  cmd->add_option("--augment", c.augment,
                  "Differentiable augmentation of every image the discriminator sees (Zhao et al. 2020, DiffAugment): "
                  "none, or a comma-separated list of color, translation, cutout (a reconstruction is transformed as "
                  "its original; docs/training-defaults.md measured the default)")
      ->capture_default_str();
  cmd->add_option("--augment-p", c.augment_p,
                  "Probability that each transform of --augment is applied to each image (1: always)")
      ->capture_default_str();
  add_enum_option(cmd, "--init", c.init,
                  "Weight initialisation: pytorch (LibTorch's defaults) or original (the authors': uniform "
                  "+-1/sqrt(3 fan_in), zero biases)");
  cmd->add_flag("--equilibrium", c.equilibrium, "Skip the update of the player that is ahead (the authors' rule)");
  cmd->add_option("--equilibrium-value", c.equilibrium_value, "Equilibrium BCE")->capture_default_str();
  cmd->add_option("--equilibrium-margin", c.equilibrium_margin, "Equilibrium margin")->capture_default_str();
  add_enum_option(cmd, "--equilibrium-skip", c.equilibrium_skip,
                  "What the decoder loses when it is ahead: adversarial (only L_adv) or decoder (its whole update, "
                  "as the authors' code)");
  cmd->add_option("--channels-last", c.channels_last, "NHWC memory format for convolutions (true|false)")
      ->capture_default_str();
  cmd->add_option("--cuda-graphs", c.cuda_graphs,
                  "On a GPU, replay each training step from CUDA graphs (one launch instead of one per kernel; "
                  "not with --equilibrium, --r1-gamma or --nproc, which step without them) (true|false)")
      ->capture_default_str();
  cmd->add_option("--fused-step", c.fused_step,
                  "Share the L_llike backward pass between encoder and decoder (exact; false: one pass per network; "
                  "never with --batch-norm joint, where it saves nothing)")
      ->capture_default_str();
  add_enum_option(cmd, "--precision", c.precision,
                  "fp32, or bf16 autocast (weights, optimizer states and losses stay fp32); auto: bf16 on GPUs with "
                  "native bf16 and on CPUs with AMX or AMD's AVX-512 BF16, fp32 elsewhere");
  add_seed_option(cmd, c.seed, "Seed of weights, data order and noise");
  cmd->add_option("--threads", c.threads, "Intra-op threads (0: all cores)")->capture_default_str();
  add_runtime_options(cmd, args->runtime, /*threads=*/false, /*decoder_weights=*/false);
  LaunchArgs& launch = args->launch;
  cmd->add_option("--nproc", launch.nproc,
                  "Data parallelism: start this many ranks on this machine (as torchrun --nproc-per-node; "
                  "--batch-size is per rank; 0: one process, or the rank that RANK/WORLD_SIZE name)")
      ->check(at_least(0));
  cmd->add_option("--nnodes", launch.nnodes, "Data parallelism: machines in the job (each runs --nproc ranks)")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_option("--node-rank", launch.node_rank, "Data parallelism: this machine, 0 .. --nnodes - 1")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--master-addr", launch.master_addr, "Data parallelism: address of node 0 (MASTER_ADDR)")
      ->capture_default_str();
  cmd->add_option("--master-port", launch.master_port,
                  "Data parallelism: port of node 0's rendezvous store (0: a free one with one node, else 29500)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--dist-timeout", launch.dist_timeout,
                  "Data parallelism: seconds a collective waits for the other ranks before the job fails")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--log-every", c.log_every, "Steps between metrics lines")->capture_default_str();
  cmd->add_option("--grid-size", c.grid_size, "Images in each per-epoch grid")->capture_default_str();
  cmd->add_option("--tensorboard", c.tensorboard,
                  "Directory of the TensorBoard event files (default: RUN/tensorboard; none: write none)");
  cmd->callback([&run, args, cmd] {
    for (const CLI::Option* opt : cmd->get_options()) {
      const std::string name = opt->get_name();
      const bool applies = name == "--resume" || name == "--help" || name == "--device" || name == "--deterministic" ||
                           name == "--nproc" || name == "--nnodes" || name == "--node-rank" ||
                           name == "--master-addr" || name == "--master-port" || name == "--dist-timeout";
      if (opt->count() > 0 && !applies) args->ignored_on_resume.push_back(name);
    }
    run = [args] { return run_train(*args); };
  });
}

}  // namespace vaegan::cli
