// Fault tolerance of `fit`: a run stopped at any step and resumed equals the uninterrupted run
// (metrics to the last digit, final weights bit for bit); damaged checkpoints are refused and
// resume falls back; NaN/Inf updates are skipped.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../test_util.h"
#include "vaegan/core/error.h"
#include "vaegan/train/checkpoint.h"
#include "vaegan/train/fit.h"
#include "vaegan/train/trainer.h"

namespace vaegan {
namespace {
namespace fs = std::filesystem;

/// All weights and buffers of the newest checkpoint of `run_dir`, then those of the moving average
/// of its decoder when it has one.
std::vector<torch::Tensor> final_weights(const std::string& run_dir) {
  std::vector<torch::Tensor> out;
  for (DecoderWeights w : {DecoderWeights::kTrained, DecoderWeights::kAuto}) {
    LoadedModel m = load_model(run_dir, torch::kCPU, w);
    if (w == DecoderWeights::kAuto && m.decoder_weights != DecoderWeights::kEma) break;
    for (const auto& p : m.model->decoder->named_parameters()) out.push_back(p.value().contiguous());
    for (const auto& b : m.model->decoder->named_buffers()) out.push_back(b.value().contiguous());
    if (w == DecoderWeights::kAuto) break;
    for (const auto& p : m.model->named_parameters()) out.push_back(p.value().contiguous());
    for (const auto& b : m.model->named_buffers()) out.push_back(b.value().contiguous());
  }
  return out;
}

class Resume : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "data");
    test::write_tiny_idx_dataset(dir_ / "data", 64, 8);  // batch 16: 4 steps per epoch
    config_.dataset = "mnist";
    config_.data_dir = dir_ / "data";
    config_.batch_size = 16;
    config_.epochs = 3;
    config_.log_every = 1;
    config_.grid_size = 4;
    config_.seed = 11;
    config_.precision = Precision::kFp32;  // both runs must train in the same numerics
    config_.horizontal_flip = true;
  }

  /// Trains `c` into `out`, stopping after step `stop_at` (0: never) as SIGINT would.
  FitResult train(const TrainConfig& c, const std::string& out, int64_t stop_at, bool resume = false) {
    FitObserver o;
    int64_t step = 0;
    o.on_step = [&step](const ProgressEvent& e) { step = e.global_step; };
    if (stop_at > 0) o.should_stop = [&step, stop_at] { return step >= stop_at; };
    return fit(c, out, /*overwrite=*/true, o, resume, torch::kCPU);  // bit-exact: the CPU
  }

  void expect_resume_equals_uninterrupted(const TrainConfig& c, const std::vector<int64_t>& stops) {
    const std::string reference = dir_ / "reference";
    ASSERT_EQ(train(c, reference, 0).steps, 12);
    const std::vector<std::string> ref_metrics = test::metric_lines(reference);
    const std::vector<torch::Tensor> ref_weights = final_weights(reference);
    for (int64_t k : stops) {
      const std::string out = dir_ / ("stopped-at-" + std::to_string(k));
      const FitResult first = train(c, out, k);
      EXPECT_TRUE(first.interrupted) << k;
      EXPECT_EQ(first.steps, k);
      const FitResult rest = train(c, out, 0, /*resume=*/true);
      EXPECT_EQ(rest.steps, 12) << k;
      EXPECT_EQ(test::metric_lines(out), ref_metrics) << "stopped after step " << k;
      const std::vector<torch::Tensor> w = final_weights(out);
      ASSERT_EQ(w.size(), ref_weights.size());
      for (size_t i = 0; i < w.size(); ++i)
        EXPECT_TRUE(torch::equal(w[i], ref_weights[i])) << "tensor " << i << ", k " << k;
    }
  }

  test::TempDir dir_;
  TrainConfig config_;
};

TEST_F(Resume, VaeGanStoppedAnywhereEqualsTheUninterruptedRun) {
  // mid-epoch (1, 6, 11) and at an epoch boundary (4, 8)
  expect_resume_equals_uninterrupted(config_, {1, 4, 6, 11});
}

TEST_F(Resume, VaeThenGanResumesInEitherPhase) {
  TrainConfig c = config_;
  c.model.type = ModelType::kVaeThenGan;
  c.pretrain_epochs = 1;
  c.lr_decay = 0.5;                                  // the schedule must survive too
  expect_resume_equals_uninterrupted(c, {3, 4, 7});  // 4: the boundary where the GAN phase begins
}

TEST_F(Resume, AdamWithPerNetworkRatesResumesExactly) {
  // Adam's moments and step counts are restored, and so are the per-network rates as decayed
  TrainConfig c = config_;
  c.optimizer = OptimizerType::kAdam;
  c.lr_discriminator = c.lr / 10;
  c.weight_decay = 1e-4;
  c.grad_clip = 1.0;
  c.lr_decay = 0.5;
  expect_resume_equals_uninterrupted(c, {2, 4, 9});
}

TEST_F(Resume, DecoderMovingAverageAndAugmentationResumeExactly) {
  // the average and its update count (the warm-up's n) come back with the checkpoint, and the
  // augmentation's draws continue the generator's stream where it stopped
  TrainConfig c = config_;
  c.ema_decay = 0.6;
  c.augment = "color,translation,cutout";
  c.augment_p = 0.7;
  expect_resume_equals_uninterrupted(c, {2, 4, 9});
}

TEST_F(Resume, TimeStopsResumeExactlyWhereTheyStopped) {
  // --max-minutes so small that every run stops after its first step, mid-epoch or at an epoch's
  // end: eight runs of one step each must equal one uninterrupted run of eight.
  TrainConfig c = config_;
  c.epochs = 2;
  const std::string reference = dir_ / "reference-time";
  ASSERT_EQ(train(c, reference, 0).steps, 8);
  TrainConfig timed = c;
  timed.max_minutes = 1e-9;
  const std::string out = dir_ / "time-stops";
  FitResult r = fit(timed, out, /*overwrite=*/true, FitObserver{}, /*resume=*/false, torch::kCPU);
  EXPECT_TRUE(r.stopped_by_time);
  EXPECT_EQ(r.steps, 1);
  EXPECT_EQ(r.epochs, 0);  // the first epoch is not done
  for (int64_t step = 2; step <= 8; ++step) {
    r = fit(timed, out, /*overwrite=*/false, FitObserver{}, /*resume=*/true, torch::kCPU);
    EXPECT_EQ(r.steps, step);
  }
  EXPECT_EQ(test::metric_lines(out), test::metric_lines(reference));
  const std::vector<torch::Tensor> w = final_weights(out), ref = final_weights(reference);
  ASSERT_EQ(w.size(), ref.size());
  for (size_t i = 0; i < w.size(); ++i) EXPECT_TRUE(torch::equal(w[i], ref[i])) << "tensor " << i;
}

TEST_F(Resume, DamagedNewestCheckpointIsRefusedAndResumeFallsBack) {
  TrainConfig c = config_;
  c.checkpoint_every = 1;
  c.keep_checkpoints = 3;
  const std::string out = dir_ / "damaged";
  ASSERT_TRUE(train(c, out, 6).interrupted);
  const std::string newest = resolve_checkpoint(out);
  EXPECT_EQ(fs::path(newest).filename(), "step-0000006");
  {  // flip every bit of one byte of the weights (writing a fixed value may leave it as it was)
    std::fstream f(newest + "/model.pt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(100);
    const char byte = static_cast<char>(f.get());
    f.seekp(100);
    f.put(static_cast<char>(~byte));
  }
  try {
    load_model(out, torch::kCPU);
    FAIL() << "a damaged checkpoint must be refused";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("model.pt does not match its checksum"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::path(newest_valid_checkpoint(out)).filename(), "step-0000005");
  // Resuming from step 5 still ends where the uninterrupted run ends.
  EXPECT_EQ(train(c, out, 0, true).steps, 12);
  // keep_checkpoints bounds the directory
  int count = 0;
  for (const auto& e : fs::directory_iterator(out + "/checkpoints")) {
    count += e.is_directory() && e.path().filename().string().rfind("step-", 0) == 0;
  }
  EXPECT_EQ(count, 3);
  EXPECT_TRUE(fs::exists(out + "/checkpoints/best/model.pt"));  // kept besides them
  // without any valid checkpoint, resume is a clear usage error
  fs::remove_all(out + "/checkpoints");
  EXPECT_THROW(train(c, out, 0, true), InputError);
}

TEST_F(Resume, NonFiniteStepIsSkippedWithoutTouchingTheWeights) {
  Trainer t(config_, torch::kCPU);
  std::vector<torch::Tensor> before;
  for (const auto& p : t.model()->parameters()) before.push_back(p.detach().clone());
  torch::Tensor x = torch::rand({16, 1, 32, 32}) * 2 - 1;
  x[3][0][5][5] = std::numeric_limits<float>::quiet_NaN();
  const StepStats s = t.step(x);
  EXPECT_TRUE(s.update_skipped);
  const auto after = t.model()->parameters();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i])) << i;
  EXPECT_FALSE(t.step(torch::rand({16, 1, 32, 32}) * 2 - 1).update_skipped);
}

}  // namespace
}  // namespace vaegan
