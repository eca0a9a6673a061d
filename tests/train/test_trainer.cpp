#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/data/datasets.h"
#include "vaegan/train/checkpoint.h"
#include "vaegan/train/fit.h"
#include "vaegan/train/trainer.h"

namespace vaegan {
namespace {

TrainConfig tiny_config() {
  TrainConfig c;
  c.model.latent_dim = 8;
  c.batch_size = 8;
  c.seed = 5;
  c.precision = Precision::kFp32;  // these tests compare numerics: never what `auto` picks
  return c;
}

std::vector<torch::Tensor> snapshot(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  for (const auto& b : m.buffers()) out.push_back(b.detach().clone());
  return out;
}

TEST(Trainer, StepChangesEveryNetworksWeights) {
  Trainer t(tiny_config(), torch::kCPU);
  auto enc = snapshot(*t.model()->encoder), dec = snapshot(*t.model()->decoder),
       dis = snapshot(*t.model()->discriminator);
  StepStats s = t.step(torch::rand({8, 1, 32, 32}) * 2 - 1);
  EXPECT_TRUE(std::isfinite(s.loss_prior + s.loss_llike + s.loss_dis + s.loss_adv));
  EXPECT_GT(s.d_real, 0.0);
  EXPECT_LT(s.d_real, 1.0);
  auto count_changed = [](torch::nn::Module& m, const std::vector<torch::Tensor>& before) {
    size_t changed = 0;
    const auto params = m.parameters();
    for (size_t i = 0; i < params.size(); ++i) changed += !torch::equal(params[i], before[i]);
    return std::make_pair(changed, params.size());
  };
  for (auto [m, before] : {std::make_pair(static_cast<torch::nn::Module*>(t.model()->encoder.get()), enc),
                           std::make_pair(static_cast<torch::nn::Module*>(t.model()->decoder.get()), dec),
                           std::make_pair(static_cast<torch::nn::Module*>(t.model()->discriminator.get()), dis)}) {
    auto [changed, total] = count_changed(*m, before);
    EXPECT_EQ(changed, total) << m->name();
  }
}

TEST(Trainer, EquilibriumGate) {
  // (update_discriminator, decoder_adversarial)
  EXPECT_EQ(equilibrium_gate(0.7, 0.7, 0.68, 0.35), std::make_pair(true, true));
  EXPECT_EQ(equilibrium_gate(0.2, 0.7, 0.68, 0.35), std::make_pair(false, true));  // discriminator ahead
  EXPECT_EQ(equilibrium_gate(0.7, 1.2, 0.68, 0.35), std::make_pair(true, false));  // decoder ahead
  EXPECT_EQ(equilibrium_gate(0.2, 1.2, 0.68, 0.35), std::make_pair(true, true));   // both: do both
}

TEST(Trainer, DiscriminatorSkippedWhenGateCloses) {
  TrainConfig c = tiny_config();
  c.equilibrium = true;
  c.equilibrium_value = 100.0;  // every BCE is far below: the discriminator is always "ahead"
  c.equilibrium_margin = 0.0;
  Trainer t(c, torch::kCPU);
  auto dis = snapshot(*t.model()->discriminator);
  StepStats s = t.step(torch::rand({8, 1, 32, 32}) * 2 - 1);
  EXPECT_FALSE(s.dis_updated);
  EXPECT_TRUE(s.dec_adv_updated);
  const auto params = t.model()->discriminator->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], dis[i]));
}

TEST(Trainer, AuthorsEquilibriumRuleSkipsTheWholeDecoderUpdate) {
  // equilibrium 0, margin 0: every BCE is above it, so the decoder is always "ahead"
  TrainConfig c = tiny_config();
  c.equilibrium = true;
  c.equilibrium_value = 0.0;
  c.equilibrium_margin = 0.0;
  for (EquilibriumSkip skip : {EquilibriumSkip::kDecoder, EquilibriumSkip::kAdversarial}) {
    c.equilibrium_skip = skip;
    Trainer t(c, torch::kCPU);
    auto enc = snapshot(*t.model()->encoder), dec = snapshot(*t.model()->decoder),
         dis = snapshot(*t.model()->discriminator);
    StepStats s = t.step(torch::rand({8, 1, 32, 32}) * 2 - 1);
    EXPECT_TRUE(s.dis_updated);
    EXPECT_FALSE(s.dec_adv_updated);
    auto unchanged = [](torch::nn::Module& m, const std::vector<torch::Tensor>& before) {
      const auto params = m.parameters();
      size_t same = 0;
      for (size_t i = 0; i < params.size(); ++i) same += torch::equal(params[i], before[i]);
      return same == params.size();
    };
    // kDecoder: the decoder keeps every weight; kAdversarial: it still steps on gamma * L_llike.
    EXPECT_EQ(unchanged(*t.model()->decoder, dec), skip == EquilibriumSkip::kDecoder) << enum_name(skip);
    EXPECT_FALSE(unchanged(*t.model()->encoder, enc)) << enum_name(skip);
    EXPECT_FALSE(unchanged(*t.model()->discriminator, dis)) << enum_name(skip);
  }
}

TEST(Trainer, OriginalInitDrawsTheAuthorsUniformWeightsAndZeroBiases) {
  // deeppy's AutoFiller: U(-a, a), a = 1 / sqrt(3 fan_in), so a standard deviation of a / sqrt(3)
  TrainConfig c = tiny_config();
  c.init = WeightInit::kOriginal;
  Trainer t(c, torch::kCPU);
  int64_t weights = 0, biases = 0;
  t.model()->apply([&](const std::string& name, torch::nn::Module& m) {
    for (const auto& p : m.named_parameters(/*recurse=*/false)) {
      const torch::Tensor v = p.value().detach().to(torch::kFloat64);
      const bool batch_norm = m.as<torch::nn::BatchNorm1d>() || m.as<torch::nn::BatchNorm2d>();
      if (batch_norm) {
        EXPECT_TRUE(torch::equal(v, torch::full_like(v, p.key() == "weight" ? 1.0 : 0.0))) << name << "." << p.key();
      } else if (p.key() == "bias") {
        EXPECT_EQ(v.abs().max().item<double>(), 0.0) << name;
        ++biases;
      } else {
        const double bound = 1.0 / std::sqrt(3.0 * static_cast<double>(v.numel() / v.size(0)));
        EXPECT_LE(v.abs().max().item<double>(), bound) << name;
        if (v.numel() >= 1000) {  // enough draws for the moments: std within 5 %, mean near 0
          EXPECT_NEAR(v.std().item<double>(), bound / std::sqrt(3.0), 0.05 * bound / std::sqrt(3.0)) << name;
          EXPECT_LT(std::abs(v.mean().item<double>()), 0.05 * bound) << name;
        }
        ++weights;
      }
    }
  });
  EXPECT_GE(weights, 10);
  EXPECT_GE(biases, 3);
  // LibTorch's default init draws non-zero biases: the option changed something
  Trainer d(tiny_config(), torch::kCPU);
  EXPECT_GT(d.model()->encoder->mu->bias.abs().max().item<double>(), 0.0);
}

TEST(Trainer, LearningRateDecay) {
  TrainConfig c = tiny_config();
  c.lr_decay = 0.5;
  Trainer t(c, torch::kCPU);
  t.decay_learning_rates(1);
  t.decay_learning_rates(2);
  for (Network n : kNetworks) EXPECT_DOUBLE_EQ(t.learning_rate(n), c.lr * 0.25);
}

TEST(Trainer, AuthorsAnnealingScheduleFollowsItsClosedForm) {
  // deeppy's GammaAnnealer(0.02, 1e-5, 150, gamma=0.75) as the authors' aegan.py uses it, over
  // the batch size: 0.02 / 64 = 3.125e-4 at the start
  TrainConfig c = tiny_config();
  c.lr_schedule = LrSchedule::kAnneal;
  c.lr = 0.02 / 64;
  c.lr_discriminator = c.lr / 10;  // each network anneals from its own start
  Trainer t(c, torch::kCPU);
  for (int64_t e : {1, 10, 75, 149, 150, 151, 400}) {
    t.decay_learning_rates(e);
    const double ee = static_cast<double>(std::min<int64_t>(e, 150));
    const double authors = 0.02 - std::pow(ee / 150, 0.75) * (0.02 - 1e-5);  // their value(e)
    EXPECT_NEAR(t.learning_rate(Network::kEncoder), authors / 64, 1e-15) << e;
    EXPECT_NEAR(t.learning_rate(Network::kDiscriminator), authors / 640, 1e-15) << e;
  }
  EXPECT_NEAR(t.learning_rate(Network::kDecoder), 1e-5 / 64, 1e-15);  // the final rate stays
}

// With a moving average of the decoder (--ema-decay) validation decodes with it, as the checkpoint's
// loader does: the logged val_mse is the one load_model's model gives, either way.
class FitValidation : public ::testing::TestWithParam<double> {};

TEST_P(FitValidation, ValidatesEveryEpochKeepsTheBestCheckpointAndStopsEarly) {
  test::TempDir dir;
  std::filesystem::create_directories(dir / "data");
  test::write_tiny_idx_dataset(dir / "data", 96, 40);
  TrainConfig c;
  c.ema_decay = GetParam();
  c.dataset = "mnist";
  c.data_dir = dir / "data";
  c.model.type = ModelType::kVae;
  c.model.arch = "mlp28";
  c.batch_size = 16;
  c.lr = 3e-3;  // large steps: the validation score goes up as well as down
  c.epochs = 8;
  c.early_stop_patience = 1;
  c.grid_size = 4;
  c.threads = 1;
  c.precision = Precision::kFp32;
  const FitResult r = fit(c, dir / "run", false, {});
  std::vector<nlohmann::json> val;
  {
    std::ifstream in(dir / "run/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      nlohmann::json j = nlohmann::json::parse(line);
      if (j.value("split", "") == "validation") val.push_back(j);
    }
  }
  ASSERT_EQ(static_cast<int64_t>(val.size()), r.epochs);  // one validation per epoch
  // The stop the rule implies, recomputed from the logged scores: the first epoch whose score is
  // not below every earlier one (patience 1), else the last epoch.
  size_t expected_epochs = val.size(), best = 0;
  for (size_t k = 0; k < val.size(); ++k) {
    const double score = val[k].at("val_score").get<double>();
    EXPECT_NEAR(score, val[k].at("val_loss_prior").get<double>() + val[k].at("val_loss_pixel").get<double>(), 1e-9);
    if (k > 0 && score >= val[best].at("val_score").get<double>()) {
      expected_epochs = k + 1;
      break;
    }
    if (k == 0 || score < val[best].at("val_score").get<double>()) best = k;
  }
  EXPECT_EQ(static_cast<size_t>(r.epochs), expected_epochs);
  EXPECT_EQ(r.early_stopped, expected_epochs < 8u);
  EXPECT_TRUE(r.early_stopped) << "the scores kept improving: the test did not see a stop";
  // checkpoints/best is the epoch of the lowest score, and its model gives the logged val_mse
  ASSERT_EQ(r.best_checkpoint, dir / "run/checkpoints/best");
  EXPECT_DOUBLE_EQ(r.best_score, val[best].at("val_score").get<double>());
  LoadedModel m = load_model(r.best_checkpoint, torch::kCPU);
  EXPECT_EQ(m.decoder_weights, c.ema_decay > 0 ? DecoderWeights::kEma : DecoderWeights::kTrained);
  EXPECT_EQ(m.state.step, val[best].at("step").get<int64_t>());
  const torch::Tensor x = open_dataset("mnist", c.data_dir, Split::kTest, 1, 28)->first_images(40);
  torch::NoGradGuard no_grad;
  const double mse = (m.model->reconstruct(x) - x).pow(2).mean().item<double>();
  EXPECT_NEAR(mse, val[best].at("val_mse").get<double>(), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Fit, FitValidation, ::testing::Values(0.0, 0.9));

TEST(Trainer, SameSeedSameSteps) {
  torch::Tensor x = torch::rand({8, 1, 32, 32}) * 2 - 1;
  Trainer a(tiny_config(), torch::kCPU), b(tiny_config(), torch::kCPU);
  for (int i = 0; i < 2; ++i) {
    StepStats sa = a.step(x), sb = b.step(x);
    EXPECT_EQ(sa.loss_llike, sb.loss_llike);
    EXPECT_EQ(sa.loss_dis, sb.loss_dis);
  }
}

// A caller's NoGradGuard (around an evaluation, say) must neither break a step nor change it,
// and its mode holds again after the step.
TEST(Trainer, StepInsideANoGradGuardEqualsTheStepOutside) {
  torch::Tensor x = torch::rand({8, 1, 32, 32}) * 2 - 1;
  Trainer a(tiny_config(), torch::kCPU), b(tiny_config(), torch::kCPU);
  const StepStats sa = a.step(x);
  StepStats sb;
  {
    torch::NoGradGuard no_grad;
    sb = b.step(x);
    EXPECT_FALSE(torch::GradMode::is_enabled());
  }
  EXPECT_EQ(sa.loss_llike, sb.loss_llike);
  EXPECT_EQ(sa.loss_dis, sb.loss_dis);
  const auto pa = a.model()->parameters(), pb = b.model()->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
}

// The moving average of the decoder against the recurrence computed here in float64 from the
// trained decoder after each step: ema = d * ema + (1 - d) * decoder, d = min(decay, (1 + n) / (10 + n)).
// decay 0.15 takes the warm-up branch on the first update (0.1) and the cap on the others.
TEST(Trainer, DecoderMovingAverageFollowsItsRecurrence) {
  TrainConfig c = tiny_config();
  c.ema_decay = 0.15;
  Trainer t(c, torch::kCPU);
  ASSERT_TRUE(t.ema_decoder());
  std::vector<torch::Tensor> expected;
  for (const auto& p : t.model()->decoder->parameters()) expected.push_back(p.detach().to(torch::kFloat64));
  torch::Tensor x = torch::rand({8, 1, 32, 32}) * 2 - 1;
  for (int n = 0; n < 4; ++n) {
    t.step(x);
    const double d = std::min(0.15, (1.0 + n) / (10.0 + n));
    const auto current = t.model()->decoder->parameters();
    for (size_t i = 0; i < expected.size(); ++i) {
      expected[i] = d * expected[i] + (1 - d) * current[i].detach().to(torch::kFloat64);
    }
  }
  EXPECT_EQ(t.ema_updates(), 4);
  const auto average = t.ema_decoder()->parameters();
  ASSERT_EQ(average.size(), expected.size());
  for (size_t i = 0; i < average.size(); ++i) {
    EXPECT_FALSE(average[i].requires_grad());
    EXPECT_TRUE(torch::allclose(average[i].to(torch::kFloat64), expected[i], /*rtol=*/1e-5, /*atol=*/1e-6))
        << "parameter " << i << ": largest difference "
        << (average[i].to(torch::kFloat64) - expected[i]).abs().max().item<double>();
    // the average is not the trained decoder (every step moved it away)
    EXPECT_FALSE(torch::equal(average[i], t.model()->decoder->parameters()[i])) << "parameter " << i;
  }
  const auto average_buffers = t.ema_decoder()->buffers(), buffers = t.model()->decoder->buffers();
  for (size_t i = 0; i < buffers.size(); ++i) EXPECT_TRUE(torch::equal(average_buffers[i], buffers[i]));
  // the average never changes training: the trained weights equal those of a run without it
  TrainConfig without = tiny_config();
  without.ema_decay = 0;
  Trainer plain(without, torch::kCPU);
  EXPECT_FALSE(plain.ema_decoder());
  for (int n = 0; n < 4; ++n) plain.step(x);
  const auto pa = plain.model()->parameters(), pb = t.model()->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
}

// The R1 penalty against central finite differences in float64, on the discriminator in training
// mode (batch-norm statistics of the batch): its value from the finite-difference gradient of the
// summed logits with respect to every pixel, and its gradient with respect to discriminator
// weights (the double backward) from finite differences of the penalty itself.
TEST(R1Penalty, MatchesFiniteDifferences) {
  torch::manual_seed(11);
  Trainer t(tiny_config(), torch::kCPU);
  Discriminator d = t.model()->discriminator;
  d->to(torch::kFloat64);
  d->train();
  const double gamma = 3.0, h = 1e-6;
  const torch::Tensor x = torch::rand({2, 1, 32, 32}, torch::kFloat64) * 2 - 1;
  const auto summed_logits = [&](const torch::Tensor& images) {
    torch::NoGradGuard no_grad;
    return d->forward(images).logits.sum().item<double>();
  };
  const torch::Tensor penalty = r1_penalty(d, x, gamma);
  torch::Tensor dx = torch::zeros_like(x);
  auto flat_x = x.view(-1);
  auto flat_dx = dx.view(-1);
  for (int64_t k = 0; k < flat_x.numel(); ++k) {
    const double v = flat_x[k].item<double>();
    flat_x[k] = v + h;
    const double up = summed_logits(x);
    flat_x[k] = v - h;
    const double down = summed_logits(x);
    flat_x[k] = v;
    flat_dx[k] = (up - down) / (2 * h);
  }
  const double expected = 0.5 * gamma * dx.pow(2).flatten(1).sum(1).mean().item<double>();
  EXPECT_GT(expected, 0);
  EXPECT_NEAR(penalty.item<double>(), expected, 1e-6 * expected);
  // d penalty / d w for entries of the first convolution's and the last layer's weights (the
  // logit's bias does not reach the penalty)
  const auto params = d->parameters();
  size_t last = params.size() - 1;
  while (params[last].dim() < 2) --last;
  const std::vector<torch::Tensor> grads = torch::autograd::grad({penalty}, {params.front(), params[last]});
  int checked = 0;
  for (size_t p : {size_t{0}, last}) {
    torch::Tensor w = params[p].detach().view(-1);
    const torch::Tensor g = grads[p == 0 ? 0 : 1].reshape(-1);
    for (int64_t k : {int64_t{0}, w.numel() / 2, w.numel() - 1}) {
      const double v = w[k].item<double>();
      w[k] = v + h;
      const double up = r1_penalty(d, x, gamma).item<double>();
      w[k] = v - h;
      const double down = r1_penalty(d, x, gamma).item<double>();
      w[k] = v;
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(g[k].item<double>(), numeric, 1e-5 * std::abs(numeric) + 1e-7) << "parameter " << p << " entry " << k;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 6);
}

// --r1-gamma changes the discriminator's update only: the same step with and without it leaves
// the encoder, the decoder and the discriminator's batch-norm statistics equal and moves the
// discriminator's weights differently.
TEST(Trainer, R1PenaltyChangesOnlyTheDiscriminatorsUpdate) {
  for (ModelType type : {ModelType::kVaeGan, ModelType::kGan}) {
    TrainConfig c = tiny_config();
    c.model.type = type;
    Trainer plain(c, torch::kCPU);
    c.r1_gamma = 10;
    Trainer penalised(c, torch::kCPU);
    const torch::Tensor x = torch::rand({8, 1, 32, 32}) * 2 - 1;
    plain.step(x);
    penalised.step(x);
    for (Network n : {Network::kEncoder, Network::kDecoder, Network::kDiscriminator}) {
      if (n == Network::kEncoder && type == ModelType::kGan) continue;
      torch::nn::Module& a = n == Network::kEncoder   ? *plain.model()->encoder
                             : n == Network::kDecoder ? static_cast<torch::nn::Module&>(*plain.model()->decoder)
                                                      : *plain.model()->discriminator;
      torch::nn::Module& b = n == Network::kEncoder   ? *penalised.model()->encoder
                             : n == Network::kDecoder ? static_cast<torch::nn::Module&>(*penalised.model()->decoder)
                                                      : *penalised.model()->discriminator;
      bool all_equal = true;
      const auto pa = a.parameters(), pb = b.parameters();
      for (size_t i = 0; i < pa.size(); ++i) all_equal = all_equal && torch::equal(pa[i], pb[i]);
      EXPECT_EQ(all_equal, n != Network::kDiscriminator) << enum_name(type) << " " << enum_name(n);
    }
    // the penalty's extra forward pass leaves the batch-norm running statistics as the step's own left them
    const auto ba = plain.model()->discriminator->buffers(), bb = penalised.model()->discriminator->buffers();
    ASSERT_FALSE(ba.empty());
    for (size_t i = 0; i < ba.size(); ++i)
      EXPECT_TRUE(torch::equal(ba[i], bb[i])) << enum_name(type) << " buffer " << i;
  }
}

/// Whether the discriminators of `a` and `b` have equal weights (bit for bit).
bool same_discriminator(Trainer& a, Trainer& b) {
  const auto pa = a.model()->discriminator->parameters(), pb = b.model()->discriminator->parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    if (!torch::equal(pa[i], pb[i])) return false;
  return true;
}

/// `from`'s whole training state (weights, optimizer states, generator) copied into `to`, a
/// trainer of another configuration.
void copy_training_state(Trainer& from, Trainer& to) {
  CheckpointFiles files = checkpoint_files(from, TrainingState{});
  files["config.json"] = nlohmann::json(to.config()).dump(2) + "\n";  // restore checks the config
  restore_checkpoint_files(files, to, "in memory");
}

// Lazy R1 (--r1-interval N): the discriminator's update carries N times the penalty when it has
// taken a multiple of N updates and none otherwise, i.e. it equals an every-step R1 of weight
// N * gamma on updates 0, N, 2N, ... and the unpenalised update on the others.
TEST(Trainer, LazyR1PenalisesEveryNthDiscriminatorUpdateWeightedNTimes) {
  TrainConfig c = tiny_config();
  c.r1_gamma = 5;
  c.r1_interval = 2;
  Trainer lazy(c, torch::kCPU);
  c.r1_interval = 1;
  c.r1_gamma = 10;
  Trainer every(c, torch::kCPU);
  c.r1_gamma = 0;
  Trainer plain(c, torch::kCPU);
  torch::manual_seed(4);
  const torch::Tensor x1 = torch::rand({8, 1, 32, 32}) * 2 - 1, x2 = torch::rand({8, 1, 32, 32}) * 2 - 1,
                      x3 = torch::rand({8, 1, 32, 32}) * 2 - 1;
  // update 0: penalised, weight 2 * 5
  lazy.step(x1);
  every.step(x1);
  EXPECT_TRUE(same_discriminator(lazy, every));
  EXPECT_EQ(lazy.updates_taken(Network::kDiscriminator), 1);
  // update 1: not penalised
  copy_training_state(lazy, plain);
  lazy.step(x2);
  plain.step(x2);
  EXPECT_TRUE(same_discriminator(lazy, plain));
  // update 2: penalised again (the plain trainer's update differs, so the penalty is not zero)
  copy_training_state(lazy, every);
  copy_training_state(lazy, plain);
  lazy.step(x3);
  every.step(x3);
  plain.step(x3);
  EXPECT_TRUE(same_discriminator(lazy, every));
  EXPECT_FALSE(same_discriminator(lazy, plain));
}

TEST(Precision, AutocastGuardRunsLinearLayersInBf16AndRestoresTheState) {
  const torch::Tensor x = torch::randn({4, 8}), w = torch::randn({3, 8});
  namespace F = torch::nn::functional;
  {
    AutocastGuard on(torch::kCPU, true);
    EXPECT_EQ(F::linear(x, w).scalar_type(), torch::kBFloat16);
    {
      AutocastGuard inert(torch::kCPU, false);  // a disabled guard changes nothing
      EXPECT_EQ(F::linear(x, w).scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ((x * 2).scalar_type(), torch::kFloat32);  // ops outside autocast's lists keep their type
  }
  EXPECT_EQ(F::linear(x, w).scalar_type(), torch::kFloat32);
}

/// All gradients of `g` flattened into one vector.
torch::Tensor flat(const std::vector<torch::Tensor>& g) {
  std::vector<torch::Tensor> parts;
  for (const auto& t : g) parts.push_back(t.flatten());
  return torch::cat(parts);
}

TEST(Precision, Bf16GradientsPointWhereFp32GradientsPoint) {
  Trainer t(tiny_config(), torch::kCPU);
  torch::manual_seed(3);
  const torch::Tensor x = torch::rand({8, 1, 32, 32}) * 2 - 1, eps = torch::randn({8, 8}), zp = torch::randn({8, 8});
  auto gradients = [&](bool bf16) {
    VaeGanForward f;
    VaeGanLosses l;
    {
      AutocastGuard autocast(torch::kCPU, bf16);
      f = vae_gan_forward(t.model(), x, eps, zp, BatchNormMode::kSeparate);
      l = vae_gan_losses(f, VaeGanLossOptions().dis_on_recon(true));
    }
    EXPECT_EQ(l.llike.scalar_type(), torch::kFloat32);  // losses in fp32 either way
    if (bf16) EXPECT_EQ(f.x_recon.scalar_type(), torch::kBFloat16);
    return vae_gan_gradients(t.model(), l, GradientOptions());
  };
  const VaeGanGradients g32 = gradients(false), g16 = gradients(true);
  auto cosine = [](const torch::Tensor& a, const torch::Tensor& b) {
    return (a.dot(b) / (a.norm() * b.norm())).item<double>();
  };
  // bf16 keeps 8 bits of mantissa. PyTorch's own autocast, on tests/reference/vaegan_ref.py's small32
  // at batch 8 and 64, gives cosines of 0.96-0.98 against its fp32 gradients; this tiny config
  // (latent 8, batch 8) gives 0.93-0.99 here. A wrong cast or a lost term gives far less.
  EXPECT_GT(cosine(flat(g32.encoder), flat(g16.encoder)), 0.9);
  EXPECT_GT(cosine(flat(g32.decoder), flat(g16.decoder)), 0.9);
  EXPECT_GT(cosine(flat(g32.discriminator), flat(g16.discriminator)), 0.9);
  for (const auto& g : g16.decoder) EXPECT_EQ(g.scalar_type(), torch::kFloat32);
}

TEST(Precision, Bf16StepsTrackFp32AndKeepFp32MasterWeights) {
  for (const ModelType type : {ModelType::kVaeGan, ModelType::kVae, ModelType::kGan}) {
    SCOPED_TRACE(enum_name(type));
    TrainConfig c = tiny_config();
    c.model.type = type;
    Trainer fp32(c, torch::kCPU);
    c.precision = Precision::kBf16;
    Trainer bf16(c, torch::kCPU);  // same seed: same initial weights
    torch::manual_seed(4);
    const torch::Tensor x = torch::rand({8, 1, 32, 32}) * 2 - 1, eps = torch::randn({8, 8}), zp = torch::randn({8, 8});
    for (int step = 0; step < 2; ++step) {
      const StepStats a = fp32.step(x, eps, zp), b = bf16.step(x, eps, zp);
      EXPECT_NE(a.loss_sum(), b.loss_sum()) << ": autocast did not run";
      for (auto [va, vb] : {std::make_pair(a.loss_prior, b.loss_prior), std::make_pair(a.loss_llike, b.loss_llike),
                            std::make_pair(a.loss_pixel, b.loss_pixel), std::make_pair(a.loss_dis, b.loss_dis),
                            std::make_pair(a.loss_adv, b.loss_adv)}) {
        EXPECT_NEAR(vb, va, 0.05 * std::abs(va) + 1e-2) << " step " << step;
      }
    }
    for (const auto& p : bf16.model()->parameters()) {
      EXPECT_EQ(p.scalar_type(), torch::kFloat32);
      ASSERT_TRUE(p.grad().defined());
      EXPECT_EQ(p.grad().scalar_type(), torch::kFloat32);
    }
    for (const auto& [key, state] : bf16.optimizer(Network::kDecoder).state()) {
      const auto& rms = static_cast<const torch::optim::RMSpropParamState&>(*state);
      EXPECT_EQ(rms.square_avg().scalar_type(), torch::kFloat32);
    }
  }
}

TEST(Checkpoint, RoundTripGivesIdenticalOutputsAndLoadingChangesNothing) {
  test::TempDir dir;
  Trainer t(tiny_config(), torch::kCPU);
  t.step(torch::rand({8, 1, 32, 32}) * 2 - 1);  // move batch-norm statistics off their defaults
  const std::string ck = save_checkpoint(dir.path(), t, TrainingState{1, 0});
  EXPECT_EQ(resolve_checkpoint(dir.path()), ck);

  LoadedModel m = load_model(dir.path(), torch::kCPU);
  EXPECT_EQ(m.state.step, 1);
  EXPECT_EQ(m.config.model.latent_dim, 8);
  torch::NoGradGuard no_grad;
  t.model()->eval();
  torch::Tensor z = torch::randn({5, 8}), x = torch::rand({5, 1, 32, 32}) * 2 - 1;
  auto before = snapshot(*m.model);
  EXPECT_TRUE(torch::equal(m.model->decoder->forward(z), t.model()->decoder->forward(z)));
  EXPECT_TRUE(torch::equal(m.model->encode_mean(x), t.model()->encode_mean(x)));
  EXPECT_TRUE(torch::equal(m.model->discriminator->forward(x).logits, t.model()->discriminator->forward(x).logits));
  // sampling and reconstructing (eval mode) change no weight and no batch-norm statistic
  auto after = snapshot(*m.model);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i]));
}

// `load_model` decodes with the moving average when the checkpoint has one (auto, ema) and with
// the trained weights on request; asking for an average a run did not keep is an input error.
TEST(Checkpoint, LoadsTheDecoderWeightsAsked) {
  test::TempDir dir;
  TrainConfig c = tiny_config();
  c.ema_decay = 0.5;
  Trainer t(c, torch::kCPU);
  for (int i = 0; i < 2; ++i) t.step(torch::rand({8, 1, 32, 32}) * 2 - 1);
  save_checkpoint(dir.path(), t, TrainingState{2, 0});
  torch::NoGradGuard no_grad;
  t.model()->eval();
  const torch::Tensor z = torch::randn({5, 8});
  const torch::Tensor by_average = t.ema_decoder()->forward(z), by_trained = t.model()->decoder->forward(z);
  ASSERT_FALSE(torch::equal(by_average, by_trained));
  for (DecoderWeights w : {DecoderWeights::kAuto, DecoderWeights::kEma, DecoderWeights::kTrained}) {
    LoadedModel m = load_model(dir.path(), torch::kCPU, w);
    const bool average = w != DecoderWeights::kTrained;
    EXPECT_EQ(m.decoder_weights, average ? DecoderWeights::kEma : DecoderWeights::kTrained);
    EXPECT_TRUE(torch::equal(m.model->decoder->forward(z), average ? by_average : by_trained)) << enum_name(w);
  }
  test::TempDir plain_dir;
  TrainConfig without = tiny_config();
  without.ema_decay = 0;
  Trainer plain(without, torch::kCPU);
  save_checkpoint(plain_dir.path(), plain, TrainingState{0, 0});
  EXPECT_EQ(load_model(plain_dir.path(), torch::kCPU).decoder_weights, DecoderWeights::kTrained);
  try {
    load_model(plain_dir.path(), torch::kCPU, DecoderWeights::kEma);
    ADD_FAILURE() << "no error for a checkpoint without decoder-ema.pt";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--decoder-weights ema"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("decoder-ema.pt"), std::string::npos) << e.what();
  }
}

// A decoder-ema.pt of another architecture (here: latent size 16 beside a latent-8 model), with
// a valid checksum, is refused by name when loading and resuming, as model.pt would be; LibTorch's
// loader alone would take the other shapes silently.
TEST(Checkpoint, RefusesADecoderAverageOfAnotherShape) {
  test::TempDir dir, other_dir;
  TrainConfig c = tiny_config();
  c.ema_decay = 0.5;
  TrainConfig wide = c;
  wide.model.latent_dim = 16;
  Trainer t(c, torch::kCPU), other(wide, torch::kCPU);
  const std::string ck = save_checkpoint(dir.path(), t, TrainingState{0, 0});
  const std::string other_ck = save_checkpoint(other_dir.path(), other, TrainingState{0, 0});
  std::filesystem::copy_file(other_ck + "/decoder-ema.pt", ck + "/decoder-ema.pt",
                             std::filesystem::copy_options::overwrite_existing);
  nlohmann::json sums = nlohmann::json::parse(std::ifstream(ck + "/checksums.json")),
                 other_sums = nlohmann::json::parse(std::ifstream(other_ck + "/checksums.json"));
  sums["crc32"]["decoder-ema.pt"] = other_sums["crc32"]["decoder-ema.pt"];
  std::ofstream(ck + "/checksums.json") << sums.dump();
  EXPECT_NO_THROW(load_model(dir.path(), torch::kCPU, DecoderWeights::kTrained));
  auto expect_refused = [](const std::function<void()>& load) {
    try {
      load();
      ADD_FAILURE() << "no error for a decoder-ema.pt of latent size 16";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("decoder-ema.pt"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("do not belong together"), std::string::npos) << e.what();
    }
  };
  expect_refused([&] { load_model(dir.path(), torch::kCPU); });
  Trainer resumed(c, torch::kCPU);
  expect_refused([&] { restore_checkpoint(ck, resumed); });
}

TEST(Checkpoint, KeepsOnlyTheNewestAndRefusesMissingOnes) {
  test::TempDir dir;
  Trainer t(tiny_config(), torch::kCPU);
  for (int64_t s : {1, 2, 3}) save_checkpoint(dir.path(), t, TrainingState{s, 0}, /*keep=*/2);
  EXPECT_FALSE(std::filesystem::exists(dir / "checkpoints/step-0000001"));
  EXPECT_TRUE(std::filesystem::exists(dir / "checkpoints/step-0000002"));
  EXPECT_EQ(resolve_checkpoint(dir.path()), dir / "checkpoints/step-0000003");
  EXPECT_THROW(load_model(dir / "nowhere", torch::kCPU), InputError);
  std::filesystem::remove(dir / "checkpoints/step-0000003/model.pt");
  EXPECT_THROW(load_model(dir.path(), torch::kCPU), InputError);
}

// Translation became the default after `--augment` existed: a run's config.json from before
// (format_version, no `augment`) resumes as it trained, without augmentation; a config by hand
// gets the default; the authors' recipe has none.
TEST(Config, AugmentationDefaultsToTranslationExceptForConfigsWrittenWithoutIt) {
  EXPECT_EQ(TrainConfig{}.augment, "translation");
  nlohmann::json j;
  to_json(j, TrainConfig{});
  EXPECT_EQ(parse_config(j.dump(), "new/config.json").augment, "translation");
  j.erase("augment");
  EXPECT_EQ(parse_config(j.dump(), "old/config.json").augment, "none");
  EXPECT_EQ(parse_config(R"({"epochs": 3})", "mine.json").augment, "translation");
  EXPECT_EQ(parse_config(R"({"epochs": 3, "augment": "cutout"})", "mine.json").augment, "cutout");
  TrainConfig authors;
  apply_recipe(Recipe::kOriginal, authors);
  EXPECT_EQ(authors.augment, "none");
}

// small32's preset Z became 32, then 16, after runs had been written with 64 by a latent size of 0:
// a run's config.json from before the key (format_version, a `model` object without
// `preset_version`) builds and resumes with Z = 64, one of revision 2 with Z = 32; a config by hand
// gets the current presets; the revision round-trips.
TEST(Config, ConfigsWrittenBeforePresetRevisionsKeepSmall32LatentSize64) {
  nlohmann::json j;
  to_json(j, TrainConfig{});
  EXPECT_EQ(j.at("model").at("preset_version"), kPresetVersion);
  EXPECT_EQ(make_network_options(parse_config(j.dump(), "new/config.json").model).decoder.latent_dim(), 16);
  j["model"]["preset_version"] = 2;
  EXPECT_EQ(make_network_options(parse_config(j.dump(), "v2/config.json").model).decoder.latent_dim(), 32);
  j["model"].erase("preset_version");
  const TrainConfig old = parse_config(j.dump(), "old/config.json");
  EXPECT_EQ(old.model.preset_version, 1);
  EXPECT_EQ(make_network_options(old.model).decoder.latent_dim(), 64);
  EXPECT_EQ(parse_config(nlohmann::json(old).dump(), "resaved/config.json").model.preset_version, 1);
  EXPECT_EQ(parse_config(R"({"model": {"arch": "small32"}})", "mine.json").model.preset_version, kPresetVersion);
  EXPECT_THROW(validate(parse_config(R"({"model": {"preset_version": 9}})", "mine.json")), InputError);
}

}  // namespace
}  // namespace vaegan
