// DiffAugment's transforms (model/augment.h) against pixel-by-pixel references, closed forms and
// finite differences, and where the VAE-GAN's forward pass applies them.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <vector>

#include "vaegan/core/error.h"
#include "vaegan/model/augment.h"
#include "vaegan/model/vae_gan.h"

namespace vaegan {
namespace {

auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor longs(std::vector<int64_t> v) { return torch::tensor(v, torch::kLong); }

TEST(Augment, PolicyNamesParseAndBadOnesNameTheFlag) {
  const AugmentOptions all = parse_augment_policy("cutout,color,translation");
  EXPECT_TRUE(all.color() && all.translation() && all.cutout());
  EXPECT_EQ(augment_policy_name(all), "color,translation,cutout");
  const AugmentOptions one = parse_augment_policy("translation");
  EXPECT_TRUE(one.translation() && !one.color() && !one.cutout());
  EXPECT_FALSE(parse_augment_policy("none").any());
  EXPECT_EQ(augment_policy_name(AugmentOptions()), "none");
  for (const std::string bad : {"colour", "color,color", "", "color,,cutout", "none,color"}) {
    try {
      parse_augment_policy(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("--augment"), std::string::npos) << e.what();
    }
  }
}

TEST(Augment, TranslationMovesEachImageByItsShiftAndFillsWithZeros) {
  const int64_t b = 4, c = 2, s = 16;  // shifts up to 16 / 8 = 2
  const torch::Tensor x = torch::rand({b, c, s, s}, kF64) * 2 - 1;
  AugmentDraw d;
  d.shift_y = longs({2, -2, 0, 1});
  d.shift_x = longs({-1, 2, 0, -2});
  const torch::Tensor out = augment(x, d);
  ASSERT_EQ(out.sizes(), x.sizes());
  const auto xa = x.accessor<double, 4>();
  const auto oa = out.accessor<double, 4>();
  for (int64_t n = 0; n < b; ++n) {
    const int64_t dy = d.shift_y[n].item<int64_t>(), dx = d.shift_x[n].item<int64_t>();
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t i = 0; i < s; ++i) {
        for (int64_t j = 0; j < s; ++j) {
          const int64_t si = i - dy, sj = j - dx;  // the source pixel that moved here
          const double expected = si >= 0 && si < s && sj >= 0 && sj < s ? xa[n][ch][si][sj] : 0.0;
          ASSERT_EQ(oa[n][ch][i][j], expected) << "image " << n << " pixel " << i << "," << j;
        }
      }
    }
  }
}

TEST(Augment, CutoutZeroesTheSquareAroundItsCentreClippedToTheImage) {
  const int64_t b = 4, c = 3, s = 8;                              // side 4: rows y - 2 .. y + 1
  const torch::Tensor x = torch::rand({b, c, s, s}, kF64) + 0.5;  // no zeros of its own
  AugmentDraw d;
  d.cutout_y = longs({0, 5, 8, 3});
  d.cutout_x = longs({3, 8, 0, 3});
  d.cutout_on = torch::tensor({true, true, true, false});
  const torch::Tensor out = augment(x, d);
  const auto xa = x.accessor<double, 4>();
  const auto oa = out.accessor<double, 4>();
  for (int64_t n = 0; n < b; ++n) {
    const int64_t y = d.cutout_y[n].item<int64_t>(), cx = d.cutout_x[n].item<int64_t>();
    int64_t zeroed = 0;
    for (int64_t i = 0; i < s; ++i) {
      for (int64_t j = 0; j < s; ++j) {
        const bool hole = n != 3 && i >= y - 2 && i < y + 2 && j >= cx - 2 && j < cx + 2;
        zeroed += hole;
        for (int64_t ch = 0; ch < c; ++ch) ASSERT_EQ(oa[n][ch][i][j], hole ? 0.0 : xa[n][ch][i][j]);
      }
    }
    // the squares clipped by the border: 2x4, 4x2, 2x2 pixels; none where the draw is off
    EXPECT_EQ(zeroed, std::vector<int64_t>({8, 8, 4, 0})[static_cast<size_t>(n)]) << "image " << n;
  }
}

TEST(Augment, ColorTransformsHaveTheirClosedForms) {
  const int64_t b = 3, c = 3, s = 5;
  const torch::Tensor x = torch::rand({b, c, s, s}, kF64) * 2 - 1;
  AugmentDraw d;
  d.brightness = torch::tensor({0.3, -0.5, 0.0}, torch::kFloat32);
  d.saturation = torch::ones({b});
  d.contrast = torch::ones({b});
  // brightness alone: every pixel moves by the image's offset
  torch::Tensor out = augment(x, d);
  for (int64_t n = 0; n < b; ++n) {
    EXPECT_TRUE(torch::allclose(out[n], x[n] + d.brightness[n].item<double>(), 0, 1e-7)) << n;
  }
  // saturation 0: every channel of a pixel becomes the pixel's mean over the channels
  d.brightness = torch::zeros({b});
  d.saturation = torch::zeros({b});
  out = augment(x, d);
  const torch::Tensor grey = x.mean(1, true).expand_as(x);
  EXPECT_TRUE(torch::allclose(out, grey, 0, 1e-12));
  // contrast k: the image's mean stays, every deviation from it is k times as large
  d.saturation = torch::ones({b});
  d.contrast = torch::tensor({0.5f, 1.5f, 1.0f});
  out = augment(x, d);
  for (int64_t n = 0; n < b; ++n) {
    const double k = d.contrast[n].item<double>(), mean = x[n].mean().item<double>();
    EXPECT_NEAR(out[n].mean().item<double>(), mean, 1e-12);
    EXPECT_TRUE(torch::allclose(out[n] - mean, k * (x[n] - mean), 0, 1e-12)) << n;
  }
}

TEST(Augment, GradientsMatchFiniteDifferences) {
  // The generator learns through the transforms: the gradient of a weighted sum of the output
  // with respect to the input, against central differences (every transform is affine in x).
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const AugmentOptions all = parse_augment_policy("color,translation,cutout");
  const AugmentDraw d = draw_augment(all, 2, 8, gen);
  const torch::Tensor x = (torch::rand({2, 3, 8, 8}, kF64) * 2 - 1).requires_grad_(true);
  const torch::Tensor w = torch::randn({2, 3, 8, 8}, kF64);
  const torch::Tensor grad = torch::autograd::grad({(augment(x, d) * w).sum()}, {x})[0];
  const torch::Tensor flat = x.detach().clone().view({-1});
  const double h = 1e-4;
  double worst = 0;
  for (int64_t i = 0; i < flat.numel(); i += 7) {
    const double keep = flat[i].item<double>();
    flat[i] = keep + h;
    const double up = (augment(flat.view(x.sizes()), d) * w).sum().item<double>();
    flat[i] = keep - h;
    const double down = (augment(flat.view(x.sizes()), d) * w).sum().item<double>();
    flat[i] = keep;
    worst = std::max(worst, std::abs((up - down) / (2 * h) - grad.reshape({-1})[i].item<double>()));
  }
  EXPECT_LT(worst, 1e-8);
  EXPECT_GT(grad.abs().sum().item<double>(), 0);
}

TEST(Augment, DrawsStayInTheirRangesRepeatFromTheSeedAndProbabilityZeroIsTheIdentity) {
  const AugmentOptions all = parse_augment_policy("color,translation,cutout");
  at::Generator a = at::make_generator<at::CPUGeneratorImpl>(5), a2 = at::make_generator<at::CPUGeneratorImpl>(5);
  const int64_t n = 4000, s = 32;
  const AugmentDraw d = draw_augment(all, n, s, a), again = draw_augment(all, n, s, a2);
  EXPECT_TRUE(torch::equal(d.brightness, again.brightness) && torch::equal(d.shift_x, again.shift_x) &&
              torch::equal(d.cutout_y, again.cutout_y));
  const auto range = [](const torch::Tensor& t) {
    return std::make_pair(t.min().item<double>(), t.max().item<double>());
  };
  const auto near = [](std::pair<double, double> got, double low, double high, double slack) {
    return got.first >= low && got.second <= high && got.first < low + slack && got.second > high - slack;
  };
  EXPECT_TRUE(near(range(d.brightness), -0.5, 0.5, 0.01));
  EXPECT_TRUE(near(range(d.saturation), 0.0, 2.0, 0.01));
  EXPECT_TRUE(near(range(d.contrast), 0.5, 1.5, 0.01));
  EXPECT_TRUE(near(range(d.shift_y), -4, 4, 0.5) && near(range(d.shift_x), -4, 4, 0.5));  // S/8
  EXPECT_TRUE(near(range(d.cutout_y), 0, 32, 0.5) && near(range(d.cutout_x), 0, 32, 0.5));
  EXPECT_TRUE(d.cutout_on.all().item<bool>());
  // p = 0.5: about half the images get each transform, the others its identity
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(6);
  const AugmentDraw half = draw_augment(AugmentOptions(all).probability(0.5), n, s, g);
  EXPECT_NEAR(half.cutout_on.to(torch::kFloat64).mean().item<double>(), 0.5, 0.03);
  EXPECT_NEAR((half.saturation == 1.0f).to(torch::kFloat64).mean().item<double>(), 0.5, 0.03);
  // p = 0: the transforms are drawn (the same stream) and change nothing (up to float32
  // rounding: the colour transforms still run with offset 0 and factors 1)
  const AugmentDraw none = draw_augment(AugmentOptions(all).probability(0), 2, 8, g);
  const torch::Tensor x = torch::rand({2, 3, 8, 8});
  EXPECT_TRUE(torch::allclose(augment(x, none), x, 0, 1e-6));
  EXPECT_THROW(augment(torch::rand({3, 3, 8, 8}), none), c10::Error);
}

// A CUDA graph's input buffers (Trainer::graph_step): a draw copied into another one's tensors
// transforms images as the original draw does; rows narrow as a rank's share; mismatches throw.
TEST(Augment, DrawsCopyIntoBuffersAndNarrowToRows) {
  const AugmentOptions all = parse_augment_policy("color,translation,cutout");
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(7);
  const AugmentDraw d = draw_augment(all, 6, 16, g);
  AugmentDraw buffers = draw_augment(all, 6, 16, g).to(torch::kCPU);
  ASSERT_FALSE(torch::equal(buffers.shift_x, d.shift_x) && torch::equal(buffers.cutout_y, d.cutout_y));
  const void* shift_data = buffers.shift_x.data_ptr();
  buffers.copy_(d);
  EXPECT_EQ(buffers.shift_x.data_ptr(), shift_data) << "copy_ must write in place";
  const torch::Tensor x = torch::rand({6, 3, 16, 16});
  EXPECT_TRUE(torch::equal(augment(x, buffers), augment(x, d)));
  // to() copies: new tensors with the same values
  const AugmentDraw copied = d.to(torch::kCPU);
  EXPECT_NE(copied.shift_x.data_ptr(), d.shift_x.data_ptr());
  EXPECT_TRUE(torch::equal(augment(x, copied), augment(x, d)));
  // rows 2..4 of a draw transform images 2..4 as the whole draw does
  EXPECT_TRUE(torch::equal(augment(x.narrow(0, 2, 3), d.narrow(2, 3)), augment(x, d).narrow(0, 2, 3)));
  AugmentDraw translation_only = draw_augment(parse_augment_policy("translation"), 6, 16, g);
  EXPECT_THROW(translation_only.copy_(d), c10::Error);  // other transforms
  AugmentDraw smaller = draw_augment(all, 4, 16, g);
  EXPECT_THROW(smaller.copy_(d), c10::Error);  // other batch size
}

TEST(Augment, TheDiscriminatorSeesEachReconstructionTransformedAsItsOriginal) {
  torch::manual_seed(0);
  ModelConfig mc;
  mc.channels = 3;
  Model model(mc);
  model->eval();  // batch-norm running statistics: each image's output does not depend on the batch
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const AugmentOptions all = parse_augment_policy("color,translation,cutout");
  const AugmentDraw real = draw_augment(all, 4, 32, gen), prior = draw_augment(all, 4, 32, gen);
  const torch::Tensor x = torch::rand({4, 3, 32, 32}) * 2 - 1;
  const torch::Tensor eps = torch::randn({4, model->latent_dim()}), z_prior = torch::randn({4, model->latent_dim()});
  torch::NoGradGuard no_grad;
  const VaeGanForward f = vae_gan_forward(model, x, eps, z_prior, BatchNormMode::kSeparate, false, real, prior);
  const VaeGanForward plain = vae_gan_forward(model, x, eps, z_prior);
  EXPECT_TRUE(torch::equal(f.x_recon, plain.x_recon) && torch::equal(f.x_prior, plain.x_prior));
  const DiscriminatorOutput dx = model->discriminator->forward(augment(x, real));
  const DiscriminatorOutput dr = model->discriminator->forward(augment(f.x_recon, real));
  const DiscriminatorOutput dp = model->discriminator->forward(augment(f.x_prior, prior));
  EXPECT_TRUE(torch::allclose(f.real.logits, dx.logits) && torch::allclose(f.real.features, dx.features));
  EXPECT_TRUE(torch::allclose(f.recon.features, dr.features));
  EXPECT_TRUE(torch::allclose(f.prior.logits, dp.logits));
  EXPECT_FALSE(torch::allclose(f.real.logits, plain.real.logits));  // the transforms did something
}

}  // namespace
}  // namespace vaegan
