// `make bench`: throughput of the VAE-GAN training step on the machine at hand, next to the
// machine's own convolution peak and an independent PyTorch implementation of the same step
// (bench/twin.py). Prints one JSON object per line; never part of `make test`.
//
// Usage: vaegan_bench [--presets small32,paper64] [--models vaegan,vae,gan] [--precisions fp32,bf16]
//                     [--reps N] [--threads T] [--device cpu|cuda|auto] [--python PY] [--no-twin]
//                     [--no-loader] [--profile DIR]
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <stb_image_write.h>
#include <sys/resource.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "vaegan/core/runtime.h"
#include "vaegan/data/datasets.h"
#include "vaegan/data/image_folder_dataset.h"
#include "vaegan/data/loader.h"
#include "vaegan/train/fit.h"
#include "vaegan/train/trainer.h"

namespace {

using Clock = std::chrono::steady_clock;
using vaegan::NetworkOptions;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// Peak resident set size of this process, MiB.
double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

/// Forward multiply-accumulates per image of each layer, in forward order, from the layer shapes.
struct NetworkMacs {
  std::vector<double> encoder, decoder, discriminator;
};

NetworkMacs count_macs(const NetworkOptions& o) {
  NetworkMacs m;
  const double k2 = 25.0;
  {  // encoder: stride-2 convs, FC, two heads
    double in = static_cast<double>(o.encoder.in_channels()), s = static_cast<double>(o.encoder.image_size());
    for (int64_t c : o.encoder.channels()) {
      s /= 2;
      m.encoder.push_back(s * s * in * static_cast<double>(c) * k2);
      in = static_cast<double>(c);
    }
    const double fc = static_cast<double>(o.encoder.fc_dim()), z = static_cast<double>(o.encoder.latent_dim());
    m.encoder.push_back(in * s * s * fc);
    m.encoder.push_back(2 * fc * z);
  }
  {  // decoder: FC, stride-2 transposed convs (MACs = input positions × cin × cout × k²), final conv
    const auto& ch = o.decoder.channels();
    double s = static_cast<double>(o.decoder.image_size() >> ch.size());
    double in = static_cast<double>(ch.front());
    m.decoder.push_back(static_cast<double>(o.decoder.latent_dim()) * in * s * s);
    for (int64_t c : ch) {
      m.decoder.push_back(s * s * in * static_cast<double>(c) * k2);
      s *= 2;
      in = static_cast<double>(c);
    }
    m.decoder.push_back(s * s * in * static_cast<double>(o.decoder.out_channels()) * k2);
  }
  {  // discriminator: stride-1 conv, stride-2 convs, FC, logit
    double in = static_cast<double>(o.discriminator.in_channels()),
           s = static_cast<double>(o.discriminator.image_size());
    for (size_t i = 0; i < o.discriminator.channels().size(); ++i) {
      if (i > 0) s /= 2;
      const double c = static_cast<double>(o.discriminator.channels()[i]);
      m.discriminator.push_back(s * s * in * c * k2);
      in = c;
    }
    const double fc = static_cast<double>(o.discriminator.fc_dim());
    m.discriminator.push_back(in * s * s * fc);
    m.discriminator.push_back(fc);
  }
  return m;
}

/// Sum of the first `n` entries of `v` (all by default).
double sum(const std::vector<double>& v, size_t n = SIZE_MAX) {
  return std::accumulate(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(n, v.size())), 0.0);
}

/// FLOPs per image of the work the step actually does (convolutions and linear layers; batch
/// norm and activations left out), for the configuration `c`: the forward (encoder on B,
/// decoder on 2B, discriminator on 3B images) and the gradient computations of
/// `vae_gan_gradients` (unfused: one per network, as listed below; fused: the encoder's pass
/// also yields the decoder's weight gradients of its branches, and the decoder's own pass
/// covers L_adv alone). Backward through a layer costs its forward for the input gradient and
/// again for the weight gradient; autograd skips what no requested gradient needs. With joint
/// batch norm every row of a network's batch depends on every other, so each backward covers
/// the whole batch; with one call per input only the branches a loss reaches are traversed.
///  encoder:       discriminator input grads up to layer l (x_recon branch), decoder input
///                 grads (z branch), encoder weights and inputs (not the first layer's input);
///  discriminator: weights and inputs (not the first layer's) of the branches in L_dis;
///  decoder:       discriminator input grads (layers up to l for L_llike, all for L_adv),
///                 decoder weights and inputs (not the FC's input) of its branches.
double step_flops_per_image(const NetworkOptions& o, const vaegan::TrainConfig& c) {
  const NetworkMacs m = count_macs(o);
  const double E = sum(m.encoder), D = sum(m.decoder), C = sum(m.discriminator);
  const double c_low = sum(m.discriminator, static_cast<size_t>(o.discriminator.feature_layer()));
  const bool joint = c.batch_norm == vaegan::BatchNormMode::kJoint;
  const double dis_branches = joint ? 3 : (c.dis_on_recon ? 3 : 2);  // branches L_dis reaches
  const double forward = E + 2 * D + 3 * C;
  const double grad_encoder = (joint ? 3 * c_low + 2 * D : c_low + D) + E + (E - m.encoder.front());
  const double grad_discriminator = dis_branches * (C + C - m.discriminator.front());
  const double dec_rows_llike = joint ? 2 : 1;  // decoder branches L_llike reaches
  double grad_decoder = 0;
  if (!c.fused_step) {
    const double dis_input_for_decoder = joint ? 3 * C : (c.dis_on_recon ? C : c_low) + C;
    grad_decoder = dis_input_for_decoder + 2 * (D + D - m.decoder.front());
  } else {
    // weight grads of the L_llike branches in the encoder's pass, then L_adv's own pass
    const double dec_rows_adv = joint ? 2 : (c.dis_on_recon ? 2 : 1);
    grad_decoder = dec_rows_llike * D + (joint ? 3 * C : (c.dis_on_recon ? 2 : 1) * C) +
                   dec_rows_adv * (D + D - m.decoder.front());
  }
  return 2.0 * (forward + grad_encoder + grad_discriminator + grad_decoder);
}

/// FLOPs per image of the `vae` step (encoder on B images, decoder on B latents, one backward
/// pass to both networks' weights; every decoder layer's input gradient, down to z, but not the
/// encoder's first layer's) and of
/// the `gan` step (decoder on B prior latents, discriminator on 2B images; the generator's pass
/// goes through the discriminator's input gradients of the fake branch, the discriminator's
/// through its weights and inputs of both branches).
double step_flops_per_image(const NetworkOptions& o, const std::string& model, const vaegan::TrainConfig& c) {
  if (model == "vaegan") return step_flops_per_image(o, c);
  const NetworkMacs m = count_macs(o);
  const double E = sum(m.encoder), D = sum(m.decoder), C = sum(m.discriminator);
  if (model == "vae") return 2.0 * ((E + D) + (E + E - m.encoder.front()) + (D + D));
  const double forward = D + 2 * C;
  const double grad_generator = C + (D + D - m.decoder.front());
  const double grad_discriminator = 2 * (C + C - m.discriminator.front());
  return 2.0 * (forward + grad_generator + grad_discriminator);
}

struct Timing {
  double median = 0, min = 0, max = 0;  // seconds per step
  int64_t cuda_graph_captures = 0;      // graphs the trainer captured (0: every step ran eagerly)
};

/// Waits for `device`'s queued work (a GPU runs asynchronously: a step's time is only known
/// once its kernels have finished).
void synchronize(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

/// Times `reps` training steps of `c` on `device` after `warmup`, on one fixed random batch
/// already on the device; with `profile` non-empty, one more step runs under LibTorch's autograd
/// profiler and its Chrome trace is written there (summarize it with bench/profile_summary.py).
Timing time_steps(const vaegan::TrainConfig& c, torch::Device device, int warmup, int reps,
                  const std::string& profile = "") {
  const int64_t batch = c.batch_size;
  vaegan::Trainer trainer(c, device);
  const int64_t s = vaegan::preset_image_size(c.model.arch);
  torch::Tensor x = (torch::rand({batch, 1, s, s}) * 2 - 1).to(device);
  std::vector<double> t;
  for (int i = 0; i < warmup + reps; ++i) {
    synchronize(device);
    auto t0 = Clock::now();
    trainer.step(x);
    synchronize(device);
    if (i >= warmup) t.push_back(seconds_since(t0));
  }
  if (!profile.empty()) {
    torch::autograd::profiler::RecordProfile guard(profile);
    trainer.step(x);
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front(), t.back(), trainer.cuda_graph_captures()};
}

/// Images/s that the trainer's data path delivers for Fashion-MNIST: the dataset opened as
/// `fit` opens it (timed once: gzip and IDX decoding), then one epoch of shuffled batches from
/// `BatchLoader`. Returns {decode seconds, images/s}; empty when the dataset is absent.
std::optional<std::pair<double, double>> loader_throughput(int64_t batch) {
  const std::string dir = vaegan::default_data_dir("fashion-mnist");
  if (!std::filesystem::exists(dir)) return std::nullopt;
  auto t0 = Clock::now();
  const auto data = vaegan::open_dataset("fashion-mnist", dir, vaegan::Split::kTrain, 1, 32);
  const double decode = seconds_since(t0);
  t0 = Clock::now();
  vaegan::BatchLoader loader(data, torch::randperm(data->size(), torch::kLong),
                             vaegan::LoaderOptions().batch_size(batch));
  int64_t images = 0;
  while (auto b = loader.next()) images += b->images.size(0);
  return std::make_pair(decode, static_cast<double>(images) / seconds_since(t0));
}

/// Images/s that `BatchLoader` delivers from a folder of `n` 64×64 JPEG files (written to a
/// temporary directory first), decoding with `threads` threads, batches of `batch`.
double jpeg_folder_throughput(int64_t n, int64_t batch, int64_t threads) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("vaegan-bench-jpeg-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  torch::manual_seed(0);
  for (int64_t i = 0; i < n; ++i) {
    // smooth random content (noise would make JPEG decoding unrealistically slow)
    const torch::Tensor img = torch::nn::functional::interpolate(torch::rand({1, 3, 8, 8}) * 255,
                                                                 torch::nn::functional::InterpolateFuncOptions()
                                                                     .size(std::vector<int64_t>{64, 64})
                                                                     .mode(torch::kBilinear)
                                                                     .align_corners(false));
    const torch::Tensor hwc = img[0].permute({1, 2, 0}).to(torch::kUInt8).contiguous();
    stbi_write_jpg((dir / ("img" + std::to_string(i) + ".jpg")).c_str(), 64, 64, 3, hwc.data_ptr<uint8_t>(), 90);
  }
  auto data = std::make_shared<vaegan::ImageFolderDataset>(dir.string(), vaegan::Split::kTrain, 3, 64);
  const auto t0 = Clock::now();
  vaegan::BatchLoader loader(data, torch::randperm(n, torch::kLong),
                             vaegan::LoaderOptions().batch_size(batch).threads(threads));
  int64_t images = 0;
  while (auto b = loader.next()) images += b->images.size(0);
  const double seconds = seconds_since(t0);
  fs::remove_all(dir);
  return static_cast<double>(images) / seconds;
}

/// Steps at the start of the training-loop figure that are not timed, as the bare step's
/// warm-up is not: opening the epoch, cuDNN's autotuning, CUDA graphs' warm-up and capture.
constexpr int64_t kLoopUntimedSteps = 10;

/// Images/s of `vaegan train`'s loop (`fit`: the data loader, the step, metrics and progress;
/// an end-of-run checkpoint and grids excluded) for `steps` steps of `c` on `device`, from the
/// end of step `kLoopUntimedSteps` to the end of the last; the run directory is a temporary one.
/// Empty when `c.data_dir` is absent; `steps` must exceed `kLoopUntimedSteps`.
std::optional<double> train_loop_images_per_sec(vaegan::TrainConfig c, torch::Device device, int64_t steps) {
  namespace fs = std::filesystem;
  if (!fs::exists(c.data_dir)) return std::nullopt;
  const fs::path run = fs::temp_directory_path() / ("vaegan-bench-train-" + std::to_string(::getpid()));
  c.max_steps = steps;
  c.epochs = 1;
  c.log_every = 50;
  Clock::time_point start, end;
  vaegan::FitObserver observer;
  observer.on_step = [&](const vaegan::ProgressEvent& e) {
    // a step's kernels may still run when it returns: the clock reads after they end
    if (e.global_step == kLoopUntimedSteps || e.global_step == steps) synchronize(device);
    if (e.global_step == kLoopUntimedSteps) start = Clock::now();
    if (e.global_step == steps) end = Clock::now();
  };
  vaegan::fit(c, run.string(), /*overwrite=*/true, observer, /*resume=*/false, device);
  fs::remove_all(run);
  return static_cast<double>((steps - kLoopUntimedSteps) * c.batch_size) /
         std::chrono::duration<double>(end - start).count();
}

/// bf16 matrix-multiply TFLOP/s of a CUDA device (8192² · 8192, median of 5 after 2 warm-ups):
/// the GPU's practical peak, measured.
double cuda_bf16_matmul_tflops(torch::Device device) {
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const int64_t n = 8192;
  const torch::Tensor a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
  std::vector<double> t;
  for (int i = 0; i < 7; ++i) {
    synchronize(device);
    const auto t0 = Clock::now();
    torch::mm(a, b);
    synchronize(device);
    if (i >= 2) t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return 2.0 * static_cast<double>(n * n * n) / t[t.size() / 2] / 1e12;
}

/// Runs bench/twin.py with `python` (the build's Python with torch: Debian's python3-torch, or
/// the virtual environment's torch 2.x); returns its JSON lines (empty when torch is missing).
std::vector<nlohmann::json> run_twin(const std::string& python, const std::string& preset, const std::string& model,
                                     int64_t batch, int threads, int reps, const std::string& device) {
  if (std::system((python + " -c 'import torch' >/dev/null 2>&1").c_str()) != 0) return {};
  const std::string cmd = python + " " + std::string(VAEGAN_SOURCE_DIR) + "/bench/twin.py --presets " + preset +
                          " --models " + model + " --batch-size " + std::to_string(batch) + " --threads " +
                          std::to_string(threads) + " --steps " + std::to_string(reps) + " --device " + device;
  std::vector<nlohmann::json> out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return out;
  char buf[4096];
  while (fgets(buf, sizeof buf, pipe)) {
    try {
      out.push_back(nlohmann::json::parse(buf));
    } catch (const nlohmann::json::exception&) {
    }
  }
  pclose(pipe);
  return out;
}

/// The configuration bench model name `model` stands for at preset `arch` and batch `batch`:
/// `vaegan train`'s defaults for a model type; `vaegan-literal`, Algorithm 1 as the paper writes
/// it (joint batch norm, reconstructions in L_dis); `vaegan-original`, `--recipe original`.
/// Without augmentation (`--augment none`): the PyTorch twin (bench/twin.py) computes the step
/// without it, and the two must do the same work.
vaegan::TrainConfig bench_config(const std::string& model, const std::string& arch, int64_t batch) {
  vaegan::TrainConfig config;
  config.augment = "none";
  if (model == "vaegan-literal") {
    config.batch_norm = vaegan::BatchNormMode::kJoint;
    config.dis_on_recon = true;
  } else if (model == "vaegan-original") {
    vaegan::apply_recipe(vaegan::Recipe::kOriginal, config);
  } else {
    config.model.type = vaegan::parse_enum<vaegan::ModelType>(model);
  }
  config.model.arch = arch;
  config.model.latent_dim = 0;  // the preset's
  config.batch_size = batch;
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> presets = {"small32", "paper64"}, models = {"vaegan", "vae", "gan"},
                           precisions = {"fp32", "bf16"};
  std::string profile_dir, device_name = "auto", python = VAEGAN_PYTHON,
                           train_data = vaegan::default_data_dir("fashion-mnist");
  int reps = 5, threads = 0;
  int64_t train_steps = 150;
  bool no_twin = false, no_loader = false;
  CLI::App app{"vaegan_bench: training-step and data-loader throughput, side by side with the PyTorch twin"};
  app.add_option("--presets", presets, "Architecture presets")
      ->delimiter(',')
      ->check(CLI::IsMember(vaegan::arch_names()))
      ->capture_default_str();
  app.add_option("--models", models,
                 "Model types, and VAE-GAN variants: vaegan-literal (Algorithm 1 as written: joint batch norm, "
                 "reconstructions in L_dis) and vaegan-original (--recipe original at the preset's size)")
      ->delimiter(',')
      ->check(CLI::IsMember({"vaegan", "vae", "gan", "vaegan-literal", "vaegan-original"}))
      ->capture_default_str();
  app.add_option("--precisions", precisions, "Precisions")
      ->delimiter(',')
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_option("--reps", reps, "Timed steps per configuration")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--threads", threads, "Intra-op threads (0: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--profile", profile_dir, "Write an autograd-profiler trace of one step per configuration here");
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or auto")->capture_default_str();
  app.add_option("--python", python, "Python with torch for the twin")->capture_default_str();
  app.add_option("--train-data", train_data,
                 "Fashion-MNIST-style IDX directory for the training-loop figure (small32 VAE-GAN)")
      ->capture_default_str();
  app.add_option("--train-steps", train_steps,
                 fmt::format("Steps of the training-loop figure, the first {} untimed (0: skip it)", kLoopUntimedSteps))
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag("--no-twin", no_twin, "Skip the PyTorch twin");
  app.add_flag("--no-loader", no_loader, "Skip the data-loader figures");
  int64_t batch = 64;
  app.add_option("--batch-size", batch, "Images per step of every configuration (the twin's too)")
      ->check(CLI::Range(int64_t{1}, int64_t{65536}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (train_steps > 0 && train_steps <= kLoopUntimedSteps) {
    std::cerr << fmt::format("--train-steps: must be 0 or more than {} (the untimed steps), got {}\n",
                             kLoopUntimedSteps, train_steps);
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);  // stdout carries the JSON lines; the training loop's log stays out
  const bool twin = !no_twin, loader = !no_loader;
  threads = vaegan::configure_threads(threads);
  torch::Device device(torch::kCPU);
  try {
    device = vaegan::parse_device(device_name);
  } catch (const std::exception& e) {
    std::cerr << "vaegan_bench: " << e.what() << std::endl;
    return 2;
  }
  vaegan::configure_device(device, /*deterministic=*/false);
  if (!profile_dir.empty()) std::filesystem::create_directories(profile_dir);
  // the practical peak the steps are compared with: on a CPU one large 5×5 channels-last
  // convolution, on a GPU a large bf16 matrix multiply
  double peak_fp32 = 0, peak_bf16 = 0;
  if (device.is_cuda()) {
    peak_bf16 = 1e3 * cuda_bf16_matmul_tflops(device);
    std::cout << nlohmann::json{{"bench", "bf16_matmul_peak"},
                                {"device", device.str()},
                                {"default_precision", vaegan::bf16_by_default(device) ? "bf16" : "fp32"},
                                {"bf16_matmul_tflops", peak_bf16 / 1e3}}
                     .dump()
              << std::endl;
  } else {
    peak_fp32 = vaegan::conv5x5_gflops(at::kFloat, 64, 128);
    peak_bf16 = vaegan::conv5x5_gflops(at::kBFloat16, 64, 128);
    std::cout << nlohmann::json{{"bench", "conv5x5_peak"},
                                {"threads", threads},
                                {"cpu_has_bf16", vaegan::cpu_has_bf16()},
                                {"default_precision", vaegan::bf16_by_default(device) ? "bf16" : "fp32"},
                                {"fp32_channels_last_gflops", peak_fp32},
                                {"bf16_channels_last_gflops", peak_bf16}}
                     .dump()
              << std::endl;
  }
  if (auto fm = loader ? loader_throughput(batch) : std::nullopt) {
    std::cout << nlohmann::json{{"bench", "data_loader"},
                                {"dataset", "fashion-mnist"},
                                {"decode_seconds", fm->first},
                                {"images_per_sec", fm->second}}
                     .dump()
              << std::endl;
  }
  for (int64_t t : {int64_t{1}, int64_t{threads}}) {
    if (!loader) break;
    std::cout << nlohmann::json{{"bench", "data_loader"},
                                {"dataset", "folder of 64x64 JPEGs"},
                                {"loader_threads", t},
                                {"images_per_sec", jpeg_folder_throughput(2048, batch, t)}}
                     .dump()
              << std::endl;
    if (threads == 1) break;
  }
  for (const std::string& arch : presets) {
    for (const std::string& model : models) {
      vaegan::TrainConfig config = bench_config(model, arch, batch);
      const bool vaegan_model = config.model.type == vaegan::ModelType::kVaeGan;
      const int r = arch == "paper64" ? std::max(1, reps / 2) : reps;
      std::map<std::string, double> ips_of;  // "fp32", "bf16", "fp32-unfused"
      for (const std::string& precision : precisions) {
        config.precision = vaegan::parse_enum<vaegan::Precision>(precision);
        // Beside the default step: on a CPU the unfused step (it only exists for the VAE-GAN, and
        // only matters in fp32), on a GPU the step without CUDA graphs.
        struct Variant {
          bool fused, cuda_graphs;
          std::string suffix;  ///< of the `ips_of` key and the profile's name
        };
        const bool fusable = config.batch_norm != vaegan::BatchNormMode::kJoint;
        std::vector<Variant> variants = {{fusable, true, ""}};
        if (device.is_cuda()) {
          variants.push_back({fusable, false, "-eager"});
        } else if (vaegan_model && precision == "fp32" && fusable) {
          variants.push_back({false, true, "-unfused"});
        }
        for (const Variant& variant : variants) {
          const bool fused = variant.fused;
          config.fused_step = fused;
          config.cuda_graphs = variant.cuda_graphs;
          // (the FLOP count models the joint and separate groupings, not the authors')
          const double flops = config.batch_norm == vaegan::BatchNormMode::kOriginal
                                   ? std::nan("")
                                   : step_flops_per_image(vaegan::make_network_options(config.model),
                                                          vaegan_model ? "vaegan" : model, config);
          const std::string profile = profile_dir.empty() ? ""
                                                          : fmt::format("{}/{}-{}-{}{}.json", profile_dir, arch, model,
                                                                        precision, variant.suffix);
          // one warm-up step more than a graph's warm-up: the capture is not timed
          const Timing t = time_steps(config, device, static_cast<int>(vaegan::kCudaGraphWarmupSteps) + 1, r, profile);
          const double ips = static_cast<double>(batch) / t.median;
          ips_of[precision + variant.suffix] = ips;
          nlohmann::json line = {{"bench", "train_step"},
                                 {"model", model},
                                 {"preset", arch},
                                 {"precision", precision},
                                 {"batch", batch},
                                 {"threads", threads},
                                 {"images_per_sec", ips},
                                 {"images_per_sec_min", static_cast<double>(batch) / t.max},
                                 {"images_per_sec_max", static_cast<double>(batch) / t.min},
                                 {"ms_per_step", t.median * 1e3},
                                 {"gflop_per_image", flops / 1e9},
                                 {"gflops", ips * flops / 1e9},
                                 {"device", device.str()},
                                 {"peak_rss_mib", peak_rss_mib()}};
          if (device.is_cuda()) {
            line["fraction_of_bf16_matmul_peak"] = ips * flops / 1e9 / peak_bf16;
          } else {
            line["fraction_of_fp32_conv_peak"] = ips * flops / 1e9 / peak_fp32;
            line["fraction_of_bf16_conv_peak"] = ips * flops / 1e9 / peak_bf16;
          }
          if (vaegan_model) {
            line["batch_norm"] = config.batch_norm;
            line["dis_on_recon"] = config.dis_on_recon;
            line["fused_step"] = fused;
            if (variant.suffix == "-unfused") line["fused_speedup"] = ips_of[precision] / ips;
          }
          if (device.is_cuda()) {
            line["cuda_graphs"] = variant.cuda_graphs;
            line["cuda_graph_captures"] = t.cuda_graph_captures;
            if (variant.suffix == "-eager") line["cuda_graphs_speedup"] = ips_of[precision] / ips;
          }
          if (!profile.empty()) line["profile"] = profile;
          std::cout << line.dump() << std::endl;
        }
      }
      if (model == "vaegan" && arch == "small32" && train_steps > 0) {  // the defaults only
        // the same step inside `vaegan train`'s loop, with real data, against the bare step
        for (const std::string& precision : precisions) {
          vaegan::TrainConfig c = config;
          c.precision = vaegan::parse_enum<vaegan::Precision>(precision);
          c.fused_step = true;
          c.cuda_graphs = true;
          c.dataset = "fashion-mnist";
          c.data_dir = train_data;
          c.threads = threads;
          const std::optional<double> ips = train_loop_images_per_sec(c, device, train_steps);
          if (!ips) break;
          std::cout << nlohmann::json{{"bench", "train_loop"},
                                      {"preset", arch},
                                      {"precision", precision},
                                      {"device", device.str()},
                                      {"steps", train_steps},
                                      {"images_per_sec", *ips},
                                      {"bare_step_images_per_sec", ips_of[precision]},
                                      {"loop_over_bare_step", *ips / ips_of[precision]}}
                           .dump()
                    << std::endl;
        }
      }
      if (twin) {
        nlohmann::json ratios = {{"bench", "ratio_to_twin"}, {"preset", arch}, {"model", model}};
        for (const auto& [name, ips] : ips_of) ratios["vaegan_" + name + "_images_per_sec"] = ips;
        const std::vector<nlohmann::json> tw =
            run_twin(python, arch, model, batch, threads, r, device.is_cuda() ? "cuda" : "cpu");
        if (tw.empty()) ratios["twin"] = python + " has no torch: vaegan's figures only";
        double best_twin = 0;
        std::string best_setting;
        for (const auto& j : tw) {
          std::cout << j.dump() << std::endl;
          const std::string setting = j.at("setting").get<std::string>();
          const double twin_ips = j.at("images_per_sec").get<double>();
          if (twin_ips > best_twin) std::tie(best_twin, best_setting) = std::make_pair(twin_ips, setting);
          for (const auto& [name, ips] : ips_of) {
            if (name.find("unfused") == std::string::npos) ratios[name + "_over_twin_" + setting] = ips / twin_ips;
          }
        }
        if (best_twin > 0) {
          // the twin's best setting, torch.compile included where torch 2.x has it, against
          // vaegan at the precision `--precision auto` picks here
          const std::string ours = vaegan::bf16_by_default(device) ? "bf16" : "fp32";
          ratios["twin_best_setting"] = best_setting;
          if (ips_of.count(ours)) ratios["default_precision_over_twin_best"] = ips_of[ours] / best_twin;
        }
        std::cout << ratios.dump() << std::endl;
      }
    }
  }
  return 0;
}
