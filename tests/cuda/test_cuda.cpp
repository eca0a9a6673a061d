// CUDA: device placement, CPU <-> GPU agreement and checkpoints, bf16 autocast and deterministic
// mode on a GPU (CTest label `cuda`; every test skips with a message where no GPU is visible).
// The parity of the GPU step with the PyTorch reference is CudaParity.* in
// tests/train/test_parity.cpp. scripts/gpu-check.sh runs this label on a lent GPU machine.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace vaegan
