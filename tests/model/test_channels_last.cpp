// The fast paths compute the same function: the sub-pixel transposed convolution against
// LibTorch's conv_transpose2d, and a channels-last VAE-GAN against the NCHW one.
#include <gtest/gtest.h>

#include "vaegan/core/runtime.h"
#include "vaegan/model/vae_gan.h"
#include "vaegan/train/trainer.h"

namespace vaegan {
namespace {

TEST(Subpixel, MatchesConvTranspose2dInValueAndGradient) {
  torch::manual_seed(0);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  for (int64_t k : {3, 5, 7}) {
    for (bool channels_last : {false, true}) {
      SCOPED_TRACE(k);
      torch::Tensor x = torch::randn({2, 3, 5, 6}, f64);
      if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      x.requires_grad_();
      torch::Tensor w = torch::randn({3, 4, k, k}, f64).requires_grad_();
      torch::Tensor b = torch::randn({4}, f64).requires_grad_();
      torch::Tensor ref = torch::conv_transpose2d(x, w, b, 2, k / 2, 1);
      torch::Tensor out = conv_transpose2d_subpixel(x, w, b);
      ASSERT_EQ(out.sizes(), ref.sizes());
      ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 4, 10, 12}));
      EXPECT_TRUE(torch::allclose(out, ref, 1e-12, 1e-12)) << (out - ref).abs().max().item<double>();
      torch::Tensor g = torch::randn_like(ref);
      auto g_ref = torch::autograd::grad({ref}, {x, w, b}, {g});
      auto g_out = torch::autograd::grad({out}, {x, w, b}, {g});
      for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(torch::allclose(g_out[i], g_ref[i], 1e-12, 1e-12)) << "grad " << i;
    }
  }
}

TEST(ChannelsLast, VaeGanOutputsAndGradientsMatchNchw) {
  // float64: the two layouts run different kernels (NHWC vs NCHW, sub-pixel vs transposed
  // convolution). In float32 their rounding differs by ~1e-7, which is enough to flip a ReLU
  // whose input is near 0 and move a gradient of L_llike by percents (seen with LibTorch 2.15,
  // where float32 NCHW itself is 1% off float64 on the same inputs); float64 leaves only the
  // difference between the functions: relative 1e-9.
  torch::manual_seed(4);
  ModelConfig c;
  c.latent_dim = 16;
  Model nchw(c), nhwc(c);
  {
    torch::NoGradGuard no_grad;
    auto src = nchw->named_parameters(), dst = nhwc->named_parameters();
    for (auto& p : src) dst[p.key()].copy_(p.value());
  }
  nchw->to(torch::kFloat64);
  nhwc->to(torch::kFloat64);
  to_channels_last(*nhwc);
  ASSERT_TRUE(
      nhwc->encoder->features[0]->as<torch::nn::Conv2d>()->weight.is_contiguous(torch::MemoryFormat::ChannelsLast));
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor x = torch::rand({6, 1, 32, 32}, f64) * 2 - 1, eps = torch::randn({6, 16}, f64),
                zp = torch::randn({6, 16}, f64);
  const auto joint = BatchNormMode::kJoint;
  const auto options = VaeGanLossOptions().dis_on_recon(true);
  VaeGanLosses a = vae_gan_losses(vae_gan_forward(nchw, x, eps, zp, joint), options);
  VaeGanLosses b =
      vae_gan_losses(vae_gan_forward(nhwc, x.contiguous(torch::MemoryFormat::ChannelsLast), eps, zp, joint), options);
  for (auto [u, v] : {std::make_pair(a.prior, b.prior), std::make_pair(a.llike, b.llike), std::make_pair(a.dis, b.dis),
                      std::make_pair(a.adv, b.adv)}) {
    EXPECT_NEAR(u.item<double>(), v.item<double>(), 1e-9 * std::abs(u.item<double>()) + 1e-12);
  }
  VaeGanGradients ga = vae_gan_gradients(nchw, a, {}), gb = vae_gan_gradients(nhwc, b, {});
  for (auto [u, v] : {std::make_pair(&ga.encoder, &gb.encoder), std::make_pair(&ga.decoder, &gb.decoder),
                      std::make_pair(&ga.discriminator, &gb.discriminator)}) {
    ASSERT_EQ(u->size(), v->size());
    for (size_t i = 0; i < u->size(); ++i) {
      const double scale = (*u)[i].abs().max().item<double>();
      EXPECT_LE(((*u)[i] - (*v)[i]).abs().max().item<double>(), 1e-9 * scale + 1e-12) << "parameter " << i;
    }
  }
}

}  // namespace
}  // namespace vaegan
