// Losses against closed forms, hand-computed values, Monte Carlo and finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "vaegan/core/error.h"
#include "vaegan/model/losses.h"

namespace vaegan {
namespace {

auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

TEST(Losses, KlMatchesClosedFormOfTwoGaussians) {
  // KL(N(m1, s1^2) || N(m2, s2^2)) = log(s2/s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2, per
  // dimension, here with m2 = 0, s2 = 1; computed from the standard deviation, not logvar.
  const std::vector<std::vector<double>> mu = {{0.0, 1.5, -0.3}, {2.0, -1.0, 0.25}};
  const std::vector<std::vector<double>> sd = {{1.0, 0.5, 2.0}, {0.1, 1.3, 0.9}};
  double expected = 0;
  for (size_t b = 0; b < mu.size(); ++b) {
    for (size_t j = 0; j < mu[b].size(); ++j) {
      expected += std::log(1.0 / sd[b][j]) + (sd[b][j] * sd[b][j] + mu[b][j] * mu[b][j]) / 2.0 - 0.5;
    }
  }
  expected /= 2;  // batch mean
  torch::Tensor m = torch::tensor({0.0, 1.5, -0.3, 2.0, -1.0, 0.25}, kF64).view({2, 3});
  torch::Tensor s = torch::tensor({1.0, 0.5, 2.0, 0.1, 1.3, 0.9}, kF64).view({2, 3});
  EXPECT_NEAR(kl_divergence(m, 2 * s.log()).item<double>(), expected, 1e-12);
  // Standard normal posterior: zero.
  EXPECT_NEAR(kl_divergence(torch::zeros({4, 8}), torch::zeros({4, 8})).item<double>(), 0.0, 1e-7);
}

TEST(Losses, KlAgreesWithMonteCarloEstimate) {
  // KL = E_q[log q(z) - log p(z)], estimated with 400k draws from q.
  torch::manual_seed(0);
  const double m = 0.7, s = 0.6;
  torch::Tensor z = m + s * torch::randn({400000}, kF64);
  torch::Tensor log_q = -0.5 * ((z - m) / s).pow(2) - std::log(s) - 0.5 * std::log(2 * M_PI);
  torch::Tensor log_p = -0.5 * z.pow(2) - 0.5 * std::log(2 * M_PI);
  const double mc = (log_q - log_p).mean().item<double>();
  const double kl =
      kl_divergence(torch::full({1, 1}, m, kF64), torch::full({1, 1}, 2 * std::log(s), kF64)).item<double>();
  EXPECT_NEAR(kl, mc, 5e-3);
}

TEST(Losses, FeatureReconstructionLossHandComputed) {
  torch::Tensor recon = torch::tensor({1.0, 2.0, 3.0, 4.0}, kF64).view({2, 2});
  torch::Tensor real = torch::tensor({0.0, 0.0, 1.0, 1.0}, kF64).view({2, 2});
  // per sample: 0.5 * (1 + 4) = 2.5 and 0.5 * (4 + 9) = 6.5; mean 4.5
  EXPECT_DOUBLE_EQ(feature_reconstruction_loss(recon, real).item<double>(), 4.5);
  // features with spatial dims are flattened per sample
  EXPECT_DOUBLE_EQ(feature_reconstruction_loss(recon.view({2, 1, 2, 1}), real.view({2, 1, 2, 1})).item<double>(), 4.5);
}

TEST(Losses, PixelReconstructionLossHandComputed) {
  // Two images of two pixels; preactivations a, targets x in [-1, 1].
  const std::vector<double> a = {0.3, -1.2, 2.0, 0.0}, x = {1.0, -1.0, 0.5, -0.2};
  double bce[2] = {0, 0}, mse[2] = {0, 0};
  for (int i = 0; i < 4; ++i) {
    const double p = 1 / (1 + std::exp(-2 * a[i])), t = (x[i] + 1) / 2;  // [0, 1] scale
    bce[i / 2] += -(t * std::log(p) + (1 - t) * std::log(1 - p));
    mse[i / 2] += std::pow((std::tanh(a[i]) + 1) / 2 - t, 2);
  }
  const torch::Tensor ta = torch::tensor(a, kF64).view({2, 1, 1, 2}), tx = torch::tensor(x, kF64).view({2, 1, 1, 2});
  EXPECT_NEAR(pixel_reconstruction_loss(ta, tx, ReconLoss::kBce).item<double>(), (bce[0] + bce[1]) / 2, 1e-12);
  EXPECT_NEAR(pixel_reconstruction_loss(ta, tx, ReconLoss::kMse).item<double>(), (mse[0] + mse[1]) / 2, 1e-12);
  // Large preactivations stay finite (computed from logits, not from a clamped probability).
  const torch::Tensor big = torch::full({1, 1, 1, 1}, 60.0, kF64), dark = torch::full({1, 1, 1, 1}, -1.0, kF64);
  EXPECT_NEAR(pixel_reconstruction_loss(big, dark, ReconLoss::kBce).item<double>(), 120.0, 1e-9);
  EXPECT_THROW(parse_enum<ReconLoss>("l1"), InputError);
}

double bce1(double l) { return std::log1p(std::exp(-l)); }  // -log sigmoid(l)
double bce0(double l) { return std::log1p(std::exp(l)); }   // -log(1 - sigmoid(l))

TEST(Losses, BinaryCrossEntropyTermsHandComputed) {
  const std::vector<double> r = {2.0, -1.0}, x = {0.5, 3.0}, p = {-2.0, 0.0};
  auto t = [](const std::vector<double>& v) { return torch::tensor(v, kF64).view({-1, 1}); };
  auto mean = [](const std::vector<double>& v, double (*f)(double)) { return (f(v[0]) + f(v[1])) / 2; };
  EXPECT_NEAR(discriminator_loss(t(r), t(x), t(p)).item<double>(), mean(r, bce1) + mean(x, bce0) + mean(p, bce0),
              1e-12);
  EXPECT_NEAR(discriminator_loss(t(r), torch::Tensor(), t(p)).item<double>(), mean(r, bce1) + mean(p, bce0), 1e-12);
  EXPECT_NEAR(adversarial_loss(t(x), t(p), GanLoss::kNonSaturating).item<double>(), mean(x, bce1) + mean(p, bce1),
              1e-12);
  EXPECT_NEAR(adversarial_loss(t(x), t(p), GanLoss::kMinimax).item<double>(), -(mean(x, bce0) + mean(p, bce0)), 1e-12);
  EXPECT_NEAR(adversarial_loss(torch::Tensor(), t(p), GanLoss::kMinimax).item<double>(), -mean(p, bce0), 1e-12);
  // the authors' weighting of real against generated images: 2 (r BCE(real) + (1 - r) G), G the
  // mean over all generated images; r = 0.5 without reconstructions is the plain sum
  EXPECT_NEAR(discriminator_loss(t(r), t(x), t(p), 0.66).item<double>(),
              2 * (0.66 * mean(r, bce1) + 0.34 * (mean(x, bce0) + mean(p, bce0)) / 2), 1e-12);
  EXPECT_NEAR(discriminator_loss(t(r), torch::Tensor(), t(p), 0.5).item<double>(),
              discriminator_loss(t(r), torch::Tensor(), t(p)).item<double>(), 1e-12);
  EXPECT_THROW(discriminator_loss(t(r), torch::Tensor(), t(p), 1.0), c10::Error);
  // one-sided label smoothing s: the real term is BCE(real, 1 - s) = (1 - s)(-log sigmoid(l)) + s(-log(1 - sigmoid(l)))
  auto smoothed = [](double l) { return 0.9 * bce1(l) + 0.1 * bce0(l); };
  EXPECT_NEAR(discriminator_loss(t(r), t(x), t(p), 0, 0.1).item<double>(),
              (smoothed(r[0]) + smoothed(r[1])) / 2 + mean(x, bce0) + mean(p, bce0), 1e-12);
  EXPECT_NEAR(discriminator_loss(t(r), t(x), t(p), 0.66, 0.1).item<double>(),
              2 * (0.66 * (smoothed(r[0]) + smoothed(r[1])) / 2 + 0.34 * (mean(x, bce0) + mean(p, bce0)) / 2), 1e-12);
  EXPECT_THROW(discriminator_loss(t(r), torch::Tensor(), t(p), 0, 0.5), c10::Error);
  EXPECT_THROW(discriminator_loss(t(r), torch::Tensor(), t(p), 0, -0.1), c10::Error);
  // stable for large logits (sigmoid followed by log would give inf)
  EXPECT_NEAR(discriminator_loss(t({200.0, 200.0}), torch::Tensor(), t({-200.0, -200.0})).item<double>(), 0.0, 1e-12);
}

TEST(Losses, GradientsMatchFiniteDifferences) {
  torch::manual_seed(3);
  torch::Tensor mu = torch::randn({3, 4}, kF64).requires_grad_();
  torch::Tensor logvar = torch::randn({3, 4}, kF64).requires_grad_();
  torch::Tensor a = torch::randn({3, 5}, kF64).requires_grad_();
  torch::Tensor b = torch::randn({3, 5}, kF64);
  auto loss = [&] { return kl_divergence(mu, logvar) + feature_reconstruction_loss(a, b); };
  torch::Tensor l = loss();
  auto grads = torch::autograd::grad({l}, {mu, logvar, a});
  const double h = 1e-6;
  std::vector<torch::Tensor> inputs = {mu, logvar, a};
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    torch::Tensor flat = inputs[k].view({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double orig = flat[i].item<double>();
      flat[i] = orig + h;
      const double up = loss().item<double>();
      flat[i] = orig - h;
      const double down = loss().item<double>();
      flat[i] = orig;
      EXPECT_NEAR(grads[k].view({-1})[i].item<double>(), (up - down) / (2 * h), 1e-6)
          << "input " << k << " index " << i;
    }
  }
}

TEST(Losses, ParsesGanLossNames) {
  EXPECT_EQ(parse_enum<GanLoss>("minimax"), GanLoss::kMinimax);
  EXPECT_EQ(parse_enum<GanLoss>("non-saturating"), GanLoss::kNonSaturating);
  EXPECT_THROW(parse_enum<GanLoss>("wasserstein"), InputError);
}

}  // namespace
}  // namespace vaegan
