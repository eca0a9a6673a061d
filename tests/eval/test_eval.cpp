// Evaluation numerics against closed forms, hand-computed cases and scipy; latent-space arithmetic.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "../test_util.h"
#include "vaegan/core/error.h"
#include "vaegan/eval/evaluate.h"
#include "vaegan/eval/fid.h"
#include "vaegan/eval/metrics.h"
#include "vaegan/io/npy.h"
#include "vaegan/latent/latent_ops.h"
#include "vaegan/model/losses.h"

namespace vaegan {
namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

TEST(FrechetDistance, MatchesTheClosedFormOfDiagonalGaussians) {
  // Exact statistics given directly: FD = |m1 - m2|^2 + sum_i (s1_i + s2_i - 2 sqrt(s1_i s2_i)).
  const torch::Tensor m1 = torch::tensor({0.0, 1.0, -2.0}, kF64), m2 = torch::tensor({1.0, 1.0, 0.5}, kF64);
  const torch::Tensor v1 = torch::tensor({1.0, 4.0, 0.25}, kF64), v2 = torch::tensor({9.0, 1.0, 0.25}, kF64);
  const double expected = (1 + 0 + 6.25) + (1 + 9 - 2 * 3) + (4 + 1 - 2 * 2) + (0.25 + 0.25 - 2 * 0.25);
  EXPECT_NEAR(frechet_distance({m1, torch::diag(v1)}, {m2, torch::diag(v2)}), expected, 1e-10);
  // A rotation of both covariances changes nothing (the trace term is basis-free).
  const double c = std::cos(0.3), s = std::sin(0.3);
  const torch::Tensor r = torch::tensor({c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0}, kF64).view({3, 3});
  EXPECT_NEAR(frechet_distance({m1, r.mm(torch::diag(v1)).mm(r.t())}, {m2, r.mm(torch::diag(v2)).mm(r.t())}), expected,
              1e-9);
  // Identical statistics: 0.
  const GaussianStats g = gaussian_stats(torch::randn({50, 4}, kF64));
  EXPECT_NEAR(frechet_distance(g, g), 0.0, 1e-9);
}

TEST(FrechetDistance, MatchesScipySqrtmOnFixedFeatures) {
  if (std::system((std::string(VAEGAN_PYTHON) + " -c 'import scipy' >/dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << "python3-scipy is missing; scripts/install-deps.sh installs it";
  }
  test::TempDir dir;
  torch::manual_seed(5);
  // Correlated, non-Gaussian features of different scales, as a network would give.
  const torch::Tensor a = torch::relu(torch::randn({300, 8}, kF64).mm(torch::randn({8, 8}, kF64)));
  const torch::Tensor b = torch::relu(torch::randn({250, 8}, kF64).mm(torch::randn({8, 8}, kF64)) + 0.5);
  write_npy(dir / "a.npy", a);
  write_npy(dir / "b.npy", b);
  const std::string cmd = std::string(VAEGAN_PYTHON) + " " + VAEGAN_SOURCE_DIR + "/tests/reference/frechet.py " +
                          (dir / "a.npy") + " " + (dir / "b.npy");
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  double scipy_value = -1;
  ASSERT_EQ(fscanf(pipe, "%lf", &scipy_value), 1);
  ASSERT_EQ(pclose(pipe), 0);
  EXPECT_NEAR(frechet_distance(gaussian_stats(a), gaussian_stats(b)), scipy_value, 1e-7 * std::abs(scipy_value));
}

TEST(PrecisionRecall, CountsPointsInsideTheOtherSetsBalls) {
  // Real: 0, 1, 2, 3, 4 on a line; with k = 1 every real ball has radius 1 and covers [-1, 5].
  const torch::Tensor real = torch::tensor({0.0, 1.0, 2.0, 3.0, 4.0}, kF64).view({5, 1});
  // Fake: three points inside the real support, two far away (a tight cluster at 100).
  const torch::Tensor fake = torch::tensor({0.5, 2.5, 4.9, 100.0, 100.1}, kF64).view({5, 1});
  const PrecisionRecall pr = precision_recall(real, fake, 1);
  EXPECT_DOUBLE_EQ(pr.precision, 3.0 / 5.0);
  // Fake 1-NN radii: 0.5 -> 2.0, 2.5 -> 2.0, 4.9 -> 2.4, 100 -> 0.1, 100.1 -> 0.1; the balls of
  // 0.5, 2.5, 4.9 cover [-1.5, 7.3]: all five real points.
  EXPECT_DOUBLE_EQ(pr.recall, 1.0);
  // Mode collapse: all fakes at one real point: full precision, recall of that neighbourhood only.
  const torch::Tensor collapsed = torch::tensor({2.0, 2.0, 2.0, 2.0}, kF64).view({4, 1});
  const PrecisionRecall c = precision_recall(real, collapsed, 1);
  EXPECT_DOUBLE_EQ(c.precision, 1.0);
  EXPECT_DOUBLE_EQ(c.recall, 1.0 / 5.0);  // radius 0: only the real point at 2
}

TEST(ReconstructionMetrics, PsnrAndSsimHandComputed) {
  // Constant images a and b on [0, 1]: MSE = (a - b)^2; SSIM has no structure term, so it is
  // the luminance term (2ab + C1) / (a^2 + b^2 + C1) times (C2 / C2).
  const double a = 0.25, b = 0.75;
  const torch::Tensor x = torch::full({1, 1, 16, 16}, 2 * a - 1, kF64),
                      y = torch::full({1, 1, 16, 16}, 2 * b - 1, kF64);
  EXPECT_NEAR(mse_per_image(x, y).item<double>(), 0.25, 1e-12);
  EXPECT_NEAR(psnr_per_image(x, y).item<double>(), 10 * std::log10(1 / 0.25), 1e-9);
  const double c1 = 1e-4;
  EXPECT_NEAR(ssim_per_image(x, y).item<double>(), (2 * a * b + c1) / (a * a + b * b + c1), 1e-9);
  // Identical textured images: SSIM 1; an inverted texture around the same mean: negative.
  torch::manual_seed(1);
  const torch::Tensor t = torch::rand({2, 3, 20, 20}, kF64) * 2 - 1;
  EXPECT_NEAR(ssim_per_image(t, t).min().item<double>(), 1.0, 1e-12);
  EXPECT_LT(ssim_per_image(t, -t).max().item<double>(), 0.0);
  const MeanStderr m = mean_and_standard_error(torch::tensor({1.0, 2.0, 3.0, 4.0}, kF64));
  EXPECT_DOUBLE_EQ(m.mean, 2.5);
  EXPECT_NEAR(m.standard_error, std::sqrt(5.0 / 3.0) / 2.0, 1e-12);  // sample sd sqrt(5/3), / sqrt(4)
}

TEST(VaeBounds, ImportanceWeightingTightensTheElboAndMatchesTheLossAtOneSample) {
  ModelConfig mc;
  mc.type = ModelType::kVae;
  mc.arch = "mlp28";
  mc.latent_dim = 4;
  torch::manual_seed(3);
  Model model(mc);
  model->to(torch::kFloat64);
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand({6, 1, 28, 28}, kF64) * 2 - 1;
  at::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(7);
  auto [elbo, iw] = vae_bounds(model, x, ReconLoss::kBce, 200, g1);
  // IW bound >= ELBO in expectation (Burda et al. 2016); with K = 200 per image by a margin.
  EXPECT_GT(iw.mean().item<double>(), elbo.mean().item<double>());
  // The ELBO is minus the training loss for the same noise: -(KL + L_pixel).
  at::Generator g2 = at::make_generator<at::CPUGeneratorImpl>(7);
  auto [elbo2, unused] = vae_bounds(model, x, ReconLoss::kBce, 0, g2);
  at::Generator g3 = at::make_generator<at::CPUGeneratorImpl>(7);
  const torch::Tensor eps = torch::randn({6, 4}, g3).to(torch::kFloat64);
  auto [mu, logvar] = model->encoder->forward(x);
  const torch::Tensor pre = model->decoder->preactivation(reparameterize(mu, logvar, eps));
  const double loss = (kl_divergence(mu, logvar) + pixel_reconstruction_loss(pre, x, ReconLoss::kBce)).item<double>();
  EXPECT_NEAR(elbo2.mean().item<double>(), -loss, 1e-6 * std::abs(loss));
  EXPECT_FALSE(unused.defined());
}

TEST(LatentOps, InterpolationEndpointsAndSlerpNorms) {
  const torch::Tensor a = torch::tensor({{1.0, 0.0}}, kF64), b = torch::tensor({{0.0, 2.0}}, kF64);
  const torch::Tensor lin = interpolate_latents(a, b, 5, false);  // [1, 5, 2]
  EXPECT_TRUE(torch::allclose(lin[0][0], a[0]));
  EXPECT_TRUE(torch::allclose(lin[0][4], b[0]));
  EXPECT_TRUE(torch::allclose(lin[0][2], torch::tensor({0.5, 1.0}, kF64)));
  const torch::Tensor sl = interpolate_latents(a, b, 5, true);
  EXPECT_TRUE(torch::allclose(sl[0][0], a[0]));
  EXPECT_TRUE(torch::allclose(sl[0][4], b[0]));
  // halfway on the quarter circle, norm halfway between 1 and 2: 1.5 * (cos 45°, sin 45°)
  EXPECT_TRUE(torch::allclose(sl[0][2], torch::tensor({1.5 / std::sqrt(2.0), 1.5 / std::sqrt(2.0)}, kF64)));
  // parallel endpoints fall back to the straight line
  const torch::Tensor par = interpolate_latents(a, 3 * a, 3, true);
  EXPECT_TRUE(torch::allclose(par[0][1], 2 * a[0]));
}

TEST(LatentOps, AttributeVectorIsTheDifferenceOfGroupMeans) {
  const torch::Tensor z = torch::tensor({{1.0, 0.0}, {3.0, 2.0}, {0.0, 0.0}, {0.0, 4.0}}, kF64);
  const torch::Tensor has = torch::tensor({true, true, false, false});
  EXPECT_TRUE(torch::allclose(attribute_vector(z, has), torch::tensor({2.0, -1.0}, kF64)));
  EXPECT_THROW(attribute_vector(z, torch::zeros({4}, torch::kBool)), InputError);
}

// feature_distance_per_image against the closed form of a linear extractor phi(x) = 2 * flatten(x):
// 4 * the squared pixel differences summed per image, over a batch boundary (5 images, batches of 2).
TEST(Metrics, FeatureDistanceOfALinearExtractorIsItsClosedForm) {
  auto extract = [](const torch::Tensor& x) { return 2 * x.flatten(1); };
  const torch::Tensor originals = torch::rand({5, 1, 4, 4}) * 2 - 1, recon = torch::rand({5, 1, 4, 4}) * 2 - 1;
  const torch::Tensor d = feature_distance_per_image(extract, originals, recon, 2);
  ASSERT_EQ(d.sizes(), (std::vector<int64_t>{5}));
  EXPECT_EQ(d.scalar_type(), torch::kFloat64);
  for (int64_t i = 0; i < 5; ++i) {
    double expected = 0;
    const torch::Tensor a = originals[i].flatten(), b = recon[i].flatten();
    for (int64_t k = 0; k < a.numel(); ++k) {
      const double diff = 2.0 * a[k].item<double>() - 2.0 * b[k].item<double>();
      expected += diff * diff;
    }
    EXPECT_NEAR(d[i].item<double>(), expected, 1e-5 * expected) << i;
  }
  EXPECT_EQ(feature_distance_per_image(extract, originals, originals, 2).abs().max().item<double>(), 0.0);
  EXPECT_THROW(feature_distance_per_image(extract, originals, recon.narrow(0, 0, 4), 2), c10::Error);
}

// class_agreement against counting by hand: a "classifier" that says whether an image's mean is
// positive; originals +,+,-,-,+ and reconstructions +,-,-,+,+ agree on 3 of 5, in batches of 2.
TEST(Metrics, ClassAgreementCountsMatchingPredictions) {
  auto classify = [](const torch::Tensor& x) { return x.mean({1, 2, 3}).gt(0).to(torch::kLong); };
  const std::vector<double> o = {0.5, 0.2, -0.3, -0.9, 0.1}, r = {0.4, -0.2, -0.1, 0.3, 0.9};
  torch::Tensor originals = torch::empty({5, 1, 4, 4}), recon = torch::empty({5, 1, 4, 4});
  for (int64_t i = 0; i < 5; ++i) {
    originals[i].fill_(o[static_cast<size_t>(i)]);
    recon[i].fill_(r[static_cast<size_t>(i)]);
  }
  EXPECT_DOUBLE_EQ(class_agreement(classify, originals, recon, 2), 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(class_agreement(classify, originals, originals, 2), 1.0);
  EXPECT_THROW(class_agreement(classify, originals, recon.narrow(0, 0, 4), 2), c10::Error);
}

}  // namespace
}  // namespace vaegan
