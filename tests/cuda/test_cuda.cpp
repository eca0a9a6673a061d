// CUDA: device placement, CPU <-> GPU agreement and checkpoints, bf16 autocast and deterministic
// mode on a GPU (CTest label `cuda`; every test skips with a message where no GPU is visible).
// The parity of the GPU step with the PyTorch reference is CudaParity.* in
// tests/train/test_parity.cpp. scripts/gpu-check.sh runs this label on a lent GPU machine.
#include <gtest/gtest.h>
#include <torch/version.h>

#include <functional>
#include <limits>
#include <tuple>

#include "../test_util.h"
#include "vaegan/core/runtime.h"
#include "vaegan/data/loader.h"
#include "vaegan/train/checkpoint.h"
#include "vaegan/train/fit.h"
#include "vaegan/train/trainer.h"

namespace vaegan {
namespace {

/// A small fp32 VAE-GAN configuration on the tiny MNIST-style dataset.
TrainConfig tiny_config(const std::string& data_dir) {
  TrainConfig c;
  c.dataset = "mnist";
  c.data_dir = data_dir;
  c.batch_size = 16;
  c.epochs = 2;
  c.log_every = 1;
  c.grid_size = 4;
  c.seed = 5;
  c.model.latent_dim = 16;
  c.precision = Precision::kFp32;
  return c;
}

/// Fixed inputs of one step: x `[B, 1, 32, 32]` in [-1, 1], eps and z_prior `[B, Z]`.
struct StepInputs {
  torch::Tensor x, eps, z_prior;
};

StepInputs step_inputs(int64_t batch, int64_t z) {
  torch::manual_seed(3);
  return {torch::rand({batch, 1, 32, 32}) * 2 - 1, torch::randn({batch, z}), torch::randn({batch, z})};
}

/// Turns TF32 off for the lifetime of the object, so that fp32 on the GPU means fp32.
class NoTf32 {
 public:
  NoTf32() : cudnn_(at::globalContext().allowTF32CuDNN()), cublas_(at::globalContext().allowTF32CuBLAS()) {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  ~NoTf32() {
    at::globalContext().setAllowTF32CuDNN(cudnn_);
    at::globalContext().setAllowTF32CuBLAS(cublas_);
  }

 private:
  bool cudnn_, cublas_;
};

TEST(Cuda, TrainerKeepsWeightsGradientsAndOptimizerStatesOnTheGpu) {
  VAEGAN_REQUIRE_CUDA();
  TrainConfig c;
  c.model.latent_dim = 16;
  c.precision = Precision::kFp32;
  Trainer trainer(c, torch::kCUDA);
  const StepInputs in = step_inputs(8, 16);
  const StepStats s = trainer.step(in.x, in.eps, in.z_prior);  // inputs on the CPU: moved by the step
  EXPECT_TRUE(std::isfinite(s.loss_sum()));
  EXPECT_FALSE(s.update_skipped);
  for (const auto& p : trainer.model()->named_parameters()) {
    EXPECT_TRUE(p.value().is_cuda()) << p.key();
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(p.value().grad().is_cuda()) << p.key();
  }
  for (const auto& b : trainer.model()->named_buffers()) EXPECT_TRUE(b.value().is_cuda()) << b.key();
  for (Network n : kNetworks) {
    for (const auto& [key, state] : trainer.optimizer(n).state()) {
      EXPECT_TRUE(static_cast<torch::optim::RMSpropParamState&>(*state).square_avg().is_cuda()) << enum_name(n);
    }
  }
}

TEST(Cuda, StepEqualsTheCpuStep) {
  VAEGAN_REQUIRE_CUDA();
  const NoTf32 fp32;
  TrainConfig c;
  c.model.latent_dim = 16;
  c.precision = Precision::kFp32;
  const StepInputs in = step_inputs(8, 16);
  {  // fp32: the losses to 1e-4 (cuDNN's fp32 algorithms, FFT and Winograd among them, round
     // differently from the CPU's; amplified by batch norm's backward pass, the gradients of the
     // first discriminator layers differed by up to 10 % of their largest entry on an H100)
    Trainer cpu(c, torch::kCPU), gpu(c, torch::kCUDA);  // same seed: the same initial weights
    const StepStats a = cpu.step(in.x, in.eps, in.z_prior), b = gpu.step(in.x, in.eps, in.z_prior);
    EXPECT_NEAR(a.loss_llike, b.loss_llike, 1e-4 * std::abs(a.loss_llike));
    EXPECT_NEAR(a.loss_dis, b.loss_dis, 1e-4 * std::abs(a.loss_dis));
    EXPECT_NEAR(a.loss_adv, b.loss_adv, 1e-4 * std::abs(a.loss_adv));
    EXPECT_NEAR(a.loss_prior, b.loss_prior, 1e-4 * std::abs(a.loss_prior) + 1e-6);
  }
  // float64: every gradient of step 0 (left in .grad by the step) to 1e-8 of its largest entry,
  // as the parity tests compare: what differs here is the device, not the arithmetic
  Trainer cpu(c, torch::kCPU), gpu(c, torch::kCUDA);
  cpu.model()->to(torch::kFloat64);
  gpu.model()->to(torch::kFloat64);
  const auto f64 = [](const torch::Tensor& t) { return t.to(torch::kFloat64); };
  cpu.step(f64(in.x), f64(in.eps), f64(in.z_prior));
  gpu.step(f64(in.x), f64(in.eps), f64(in.z_prior));
  const auto pc = cpu.model()->named_parameters(), pg = gpu.model()->named_parameters();
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i) {
    const torch::Tensor gc = pc[i].value().grad(), gg = pg[i].value().grad().cpu();
    const double scale = gc.abs().max().item<double>();
    EXPECT_LE((gc - gg).abs().max().item<double>(), 1e-8 * scale + 1e-12) << pc[i].key();
  }
}

TEST(Cuda, CheckpointWrittenOnTheGpuLoadsAndResumesOnTheCpu) {
  VAEGAN_REQUIRE_CUDA();
  const NoTf32 fp32;
  test::TempDir dir;
  test::write_tiny_idx_dataset(dir / "data", 64, 8);
  TrainConfig c = tiny_config(dir / "data");  // 2 epochs of 4 steps
  FitObserver stop_after_two;
  int64_t steps = 0;
  stop_after_two.on_step = [&steps](const ProgressEvent& e) { steps = e.global_step; };
  stop_after_two.should_stop = [&steps] { return steps >= 2; };  // as SIGINT would: checkpoint, resumable
  const FitResult first = fit(c, dir / "run", /*overwrite=*/false, stop_after_two, /*resume=*/false, torch::kCUDA);
  ASSERT_TRUE(first.interrupted);
  ASSERT_EQ(first.steps, 2);
  LoadedModel on_cpu = load_model(dir / "run", torch::kCPU), on_gpu = load_model(dir / "run", torch::kCUDA);
  EXPECT_TRUE(on_cpu.model->parameters().front().is_cpu());
  EXPECT_TRUE(on_gpu.model->parameters().front().is_cuda());
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor z = torch::randn({4, 16});
    const torch::Tensor a = on_cpu.model->decoder->forward(z), b = on_gpu.model->decoder->forward(z.cuda()).cpu();
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-4);
  }
  // the GPU run continues on the CPU to its end, optimizer states included
  const FitResult r = fit(c, dir / "run", /*overwrite=*/false, FitObserver{}, /*resume=*/true, torch::kCPU);
  EXPECT_EQ(r.steps, 8);
}

// An in-memory dataset's batches for a GPU are gathered, converted and flipped there: the same
// values as the CPU's, in the same order, already on the device.
TEST(Cuda, InMemoryBatchesAreGatheredOnTheGpuAndEqualTheCpuOnes) {
  VAEGAN_REQUIRE_CUDA();
  torch::manual_seed(4);
  const torch::Tensor images = torch::randint(0, 256, {40, 3, 8, 8}).to(torch::kUInt8);
  auto ds = std::make_shared<TensorImageDataset>(images, torch::arange(40), "random");
  const torch::Tensor order = torch::randperm(40, torch::kLong);
  const auto options = LoaderOptions().batch_size(16).horizontal_flip(true).seed(9);
  BatchLoader on_cpu(ds, order, options), on_gpu(ds, order, LoaderOptions(options).device(torch::kCUDA));
  int batches = 0;
  while (auto a = on_cpu.next()) {
    const auto b = on_gpu.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_TRUE(b->images.is_cuda());
    EXPECT_TRUE(torch::equal(a->images, b->images.cpu())) << "batch " << batches;
    EXPECT_TRUE(torch::equal(a->labels, b->labels.cpu()));
    ++batches;
  }
  EXPECT_FALSE(on_gpu.next().has_value());
  EXPECT_EQ(batches, 2);
}

TEST(Cuda, Bf16AutocastComputesConvolutionsInBf16AndTrains) {
  VAEGAN_REQUIRE_CUDA();
  ASSERT_TRUE(cuda_bf16_supported(torch::kCUDA)) << "the GPUs vaegan is checked on (A100, H100, H200) have bf16";
  {
    const AutocastGuard autocast(torch::kCUDA, true);
    const torch::Tensor y =
        torch::conv2d(torch::randn({2, 3, 8, 8}, torch::kCUDA), torch::randn({4, 3, 3, 3}, torch::kCUDA));
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(resolve_precision(Precision::kAuto, torch::kCUDA), Precision::kBf16);
  const NoTf32 fp32;
  TrainConfig c;
  c.model.latent_dim = 16;
  c.precision = Precision::kFp32;
  Trainer full(c, torch::kCUDA);
  c.precision = Precision::kBf16;
  Trainer half(c, torch::kCUDA);
  const StepInputs in = step_inputs(16, 16);
  const StepStats a = full.step(in.x, in.eps, in.z_prior), b = half.step(in.x, in.eps, in.z_prior);
  ASSERT_TRUE(std::isfinite(b.loss_sum()));
  EXPECT_FALSE(b.update_skipped);
  // bf16 keeps 8 bits of mantissa: the losses of the same weights agree to a few percent
  EXPECT_NEAR(a.loss_llike, b.loss_llike, 0.05 * std::abs(a.loss_llike));
  EXPECT_NEAR(a.loss_dis, b.loss_dis, 0.05 * std::abs(a.loss_dis));
}

TEST(Cuda, DeterministicModeRepeatsARunExactly) {
  VAEGAN_REQUIRE_CUDA();
  configure_device(torch::kCUDA, /*deterministic=*/true);
  auto run = [] {
    TrainConfig c;
    c.model.latent_dim = 16;
    c.precision = Precision::kFp32;
    Trainer t(c, torch::kCUDA);
    std::vector<double> losses;
    for (int i = 0; i < 3; ++i) {
      const StepInputs in = step_inputs(16, 16);
      const StepStats s = t.step(in.x, in.eps, in.z_prior);
      losses.insert(losses.end(), {s.loss_prior, s.loss_llike, s.loss_dis, s.loss_adv});
    }
    return losses;
  };
  const std::vector<double> first = run(), second = run();
  configure_device(torch::kCUDA, /*deterministic=*/false);
  EXPECT_EQ(first, second);
}

// ---- CUDA graphs: a replayed step is the eager step ----

/// Everything a step changes: weights, batch-norm statistics (unless `statistics` is false),
/// optimizer states and step counts, the decoder's moving average.
std::vector<torch::Tensor> training_state(Trainer& t, bool statistics = true) {
  std::vector<torch::Tensor> s;
  for (const auto& p : t.model()->parameters()) s.push_back(p.detach().cpu());
  if (statistics) {
    for (const auto& b : t.model()->buffers()) s.push_back(b.detach().cpu());
  }
  for (Network n : kNetworks) {
    if (!t.has_optimizer(n)) continue;
    for (const auto& p : t.model()->parameters()) {
#if TORCH_VERSION_MAJOR >= 2
      const auto it = t.optimizer(n).state().find(p.unsafeGetTensorImpl());
#else  // LibTorch 1.x keys a parameter's state by its address as a string
      const auto it = t.optimizer(n).state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
#endif
      if (it == t.optimizer(n).state().end()) continue;
      if (auto* rms = dynamic_cast<torch::optim::RMSpropParamState*>(it->second.get())) {
        s.push_back(rms->square_avg().cpu());
        s.push_back(torch::tensor(rms->step()));
      } else if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(it->second.get())) {
        s.push_back(adam->exp_avg().cpu());
        s.push_back(adam->exp_avg_sq().cpu());
        s.push_back(torch::tensor(adam->step()));
      }
    }
  }
  if (Decoder ema = t.ema_decoder()) {
    for (const auto& p : ema->parameters()) s.push_back(p.detach().cpu());
  }
  return s;
}

/// Largest difference between two training states, relative to each tensor's largest entry. A
/// NaN in both at the same place counts as equal: a step with a NaN in its batch leaves NaN in
/// batch norm's running statistics, with or without graphs (its forward pass moves them before
/// the step finds the NaN), and a NaN in one only is the largest difference (infinite).
double relative_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const torch::Tensor x = a[i].to(torch::kFloat64), y = b[i].to(torch::kFloat64);
    const torch::Tensor both_nan = torch::isnan(x) & torch::isnan(y);
    torch::Tensor d = torch::where(both_nan, torch::zeros_like(x), (x - y).abs());
    d = torch::nan_to_num(d, std::numeric_limits<double>::infinity());
    const double scale = std::max(torch::nan_to_num(x.abs(), 0.0).max().item<double>(), 1e-12);
    worst = std::max(worst, d.max().item<double>() / scale);
  }
  return worst;
}

struct GraphCase {
  std::string name;
  std::function<void(TrainConfig&)> set;
  int64_t captures;  ///< graphs captured by the sequence of `CudaGraphs.ReplayedStepsEqualEagerSteps`
};

class CudaGraphs : public testing::TestWithParam<GraphCase> {};

// Two trainers of one seed, with and without CUDA graphs, take the same steps: full batches, a
// batch with a NaN (no update), a smaller batch (eager in both), a change of learning rate (the
// optimizers' graph is captured again) and more full batches. The losses of every step and the
// whole training state at the end agree to 1e-6 (deterministic kernels, TF32 off: the replay
// runs the eager step's kernels on the same values).
TEST_P(CudaGraphs, ReplayedStepsEqualEagerSteps) {
  VAEGAN_REQUIRE_CUDA();
  const NoTf32 fp32;
  configure_device(torch::kCUDA, /*deterministic=*/true);
  TrainConfig c;
  c.model.latent_dim = 16;
  c.precision = Precision::kFp32;
  GetParam().set(c);
  c.cuda_graphs = false;
  Trainer eager(c, torch::kCUDA);
  c.cuda_graphs = true;
  Trainer graphed(c, torch::kCUDA);
  EXPECT_FALSE(eager.uses_cuda_graphs());
  ASSERT_TRUE(graphed.uses_cuda_graphs());
  int64_t step = 0;
  auto both = [&](const StepInputs& in) {
    const StepStats a = eager.step(in.x, in.eps, in.z_prior), b = graphed.step(in.x, in.eps, in.z_prior);
    ++step;
    EXPECT_EQ(a.update_skipped, b.update_skipped) << "step " << step;
    if (a.update_skipped) return;
    for (auto [x, y, name] :
         {std::make_tuple(a.loss_prior, b.loss_prior, "L_prior"),
          std::make_tuple(a.loss_llike, b.loss_llike, "L_llike"),
          std::make_tuple(a.loss_pixel, b.loss_pixel, "L_pixel"), std::make_tuple(a.loss_dis, b.loss_dis, "L_dis"),
          std::make_tuple(a.loss_adv, b.loss_adv, "L_adv"), std::make_tuple(a.mse, b.mse, "mse"),
          std::make_tuple(a.d_real, b.d_real, "D(x)")}) {
      EXPECT_NEAR(x, y, 1e-6 * std::abs(x) + 1e-9) << name << ", step " << step;
    }
  };
  for (int i = 0; i < 5; ++i) both(step_inputs(16, 16));
  StepInputs bad = step_inputs(16, 16);
  bad.x[0][0][0][0] = std::nan("");
  const std::vector<torch::Tensor> before = training_state(graphed, /*statistics=*/false);
  both(bad);
  EXPECT_EQ(relative_difference(before, training_state(graphed, false)), 0) << "a NaN step must update nothing";
  both(step_inputs(8, 16));
  for (Network n : kNetworks) {
    if (eager.has_optimizer(n)) {
      eager.set_learning_rate(n, eager.learning_rate(n) * 0.5);
      graphed.set_learning_rate(n, graphed.learning_rate(n) * 0.5);
    }
  }
  for (int i = 0; i < 3; ++i) both(step_inputs(16, 16));
  configure_device(torch::kCUDA, /*deterministic=*/false);
  EXPECT_LE(relative_difference(training_state(eager), training_state(graphed)), 1e-6);
  EXPECT_EQ(graphed.cuda_graph_captures(), GetParam().captures);
  EXPECT_EQ(eager.cuda_graph_captures(), 0);
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaGraphs,
                         testing::Values(
                             // the step graph, then the optimizers' graph twice (before and after the new rates)
                             GraphCase{"vaegan", [](TrainConfig&) {}, 3},
                             GraphCase{"vaegan_bf16_moving_average",
                                       [](TrainConfig& c) {
                                         c.precision = Precision::kBf16;
                                         c.ema_decay = 0.9;
                                       },
                                       3},
                             GraphCase{"vae", [](TrainConfig& c) { c.model.type = ModelType::kVae; }, 3},
                             GraphCase{"gan", [](TrainConfig& c) { c.model.type = ModelType::kGan; }, 3},
                             // the augmentation's parameters are graph inputs, drawn as the eager step draws them
                             GraphCase{"vaegan_augmented",
                                       [](TrainConfig& c) {
                                         c.augment = "color,translation,cutout";
                                         c.augment_p = 0.7;
                                       },
                                       3},
                             GraphCase{"gan_augmented",
                                       [](TrainConfig& c) {
                                         c.model.type = ModelType::kGan;
                                         c.augment = "translation";
                                       },
                                       3},
                             // Adam and clipping step eagerly on the graph's gradients: the step graph only
                             GraphCase{"adam_clipped",
                                       [](TrainConfig& c) {
                                         c.optimizer = OptimizerType::kAdam;
                                         c.grad_clip = 1.0;
                                       },
                                       1}),
                         [](const testing::TestParamInfo<GraphCase>& info) { return info.param.name; });

// What cannot be captured steps without graphs; on a CPU the flag changes nothing.
TEST(CudaGraphsOff, WhereTheStepCannotBeCaptured) {
  TrainConfig c;
  c.model.latent_dim = 16;
  c.precision = Precision::kFp32;
  EXPECT_FALSE(Trainer(c, torch::kCPU).uses_cuda_graphs());
  VAEGAN_REQUIRE_CUDA();
  EXPECT_TRUE(Trainer(c, torch::kCUDA).uses_cuda_graphs());
  c.equilibrium = true;
  EXPECT_FALSE(Trainer(c, torch::kCUDA).uses_cuda_graphs());
  c.equilibrium = false;
  c.r1_gamma = 1;
  EXPECT_FALSE(Trainer(c, torch::kCUDA).uses_cuda_graphs());
}

// `vaegan train` on a GPU replays its steps, and a run resumed from a checkpoint captures again
// and ends as the uninterrupted run does.
TEST(Cuda, FitWithCudaGraphsResumesAsTheUninterruptedRun) {
  VAEGAN_REQUIRE_CUDA();
  const NoTf32 fp32;
  configure_device(torch::kCUDA, /*deterministic=*/true);
  test::TempDir dir;
  test::write_tiny_idx_dataset(dir / "data", 64, 8);
  const TrainConfig c = tiny_config(dir / "data");  // 2 epochs of 4 steps
  fit(c, dir / "whole", /*overwrite=*/false, FitObserver{}, /*resume=*/false, torch::kCUDA);
  FitObserver stop;
  int64_t steps = 0;
  stop.on_step = [&steps](const ProgressEvent& e) { steps = e.global_step; };
  stop.should_stop = [&steps] { return steps >= 5; };
  ASSERT_TRUE(fit(c, dir / "split", false, stop, false, torch::kCUDA).interrupted);
  fit(c, dir / "split", false, FitObserver{}, /*resume=*/true, torch::kCUDA);
  configure_device(torch::kCUDA, /*deterministic=*/false);
  // The resumed run warms up and captures again, so its steps 6 and 7 run eagerly where the
  // uninterrupted run replays: the same kernels, but an algorithm choice (cuBLAS's in a capture)
  // may round the last bits differently. Every number agrees to 1e-6, every other value exactly.
  const std::vector<std::string> whole = test::metric_lines(dir / "whole"), split = test::metric_lines(dir / "split");
  ASSERT_EQ(whole.size(), split.size());
  ASSERT_GE(whole.size(), 8u);
  for (size_t i = 0; i < whole.size(); ++i) {
    const nlohmann::json a = nlohmann::json::parse(whole[i]), b = nlohmann::json::parse(split[i]);
    ASSERT_EQ(a.size(), b.size()) << "line " << i;
    for (const auto& [key, value] : a.items()) {
      ASSERT_TRUE(b.contains(key)) << key << ", line " << i;
      if (value.is_number_float()) {
        EXPECT_NEAR(value.get<double>(), b[key].get<double>(), 1e-6 * std::abs(value.get<double>()) + 1e-9)
            << key << ", line " << i;
      } else {
        EXPECT_EQ(value, b[key]) << key << ", line " << i;
      }
    }
  }
}

}  // namespace
}  // namespace vaegan
