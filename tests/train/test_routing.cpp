// The routing table of docs/design.md, "The algorithm": each network receives the gradient of its own objective
// and nothing else. Checked in float64 against separately computed autograd gradients and
// against central finite differences of the objectives.
#include <gtest/gtest.h>

#include <limits>

#include "vaegan/train/trainer.h"

namespace vaegan {
namespace {

constexpr double kGamma = 0.3;  // not 1, so a missing or doubled gamma shows

struct Fixture {
  Model model{nullptr};
  torch::Tensor x, eps, z_prior;
  VaeGanLossOptions options = VaeGanLossOptions().dis_on_recon(true);  // Algorithm 1
  bool joint = true;

  Fixture() {
    torch::manual_seed(11);
    ModelConfig c;
    c.latent_dim = 8;
    model = Model(c);
    model->to(torch::kFloat64);
    model->train();
    x = torch::rand({4, 1, 32, 32}, torch::kFloat64) * 2 - 1;
    eps = torch::randn({4, 8}, torch::kFloat64);
    z_prior = torch::randn({4, 8}, torch::kFloat64);
  }
  VaeGanLosses losses() {
    return vae_gan_losses(
        vae_gan_forward(model, x, eps, z_prior, joint ? BatchNormMode::kJoint : BatchNormMode::kSeparate), options);
  }
};

std::vector<torch::Tensor> grad(const torch::Tensor& loss, const std::vector<torch::Tensor>& params) {
  auto g = torch::autograd::grad({loss}, params, {}, true, false, true);
  for (size_t i = 0; i < g.size(); ++i) {
    if (!g[i].defined()) g[i] = torch::zeros_like(params[i]);
  }
  return g;
}

void expect_all_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    // float64 throughout; the two computations differ only in summation order
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-9, 1e-12))
        << what << " parameter " << i << " max diff " << (a[i] - b[i]).abs().max().item<double>();
  }
}

bool all_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (!torch::allclose(a[i], b[i], 1e-9, 1e-12)) return false;
  }
  return true;
}

std::vector<torch::Tensor> add(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, double sa) {
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < a.size(); ++i) out.push_back(sa * a[i] + b[i]);
  return out;
}

TEST(Routing, EachNetworkGetsExactlyItsOwnObjective) {
  struct Variant {
    bool dis_on_recon;
    GanLoss form;
    bool joint_batches;
    bool fused;
  };
  const std::vector<Variant> variants = {
      {true, GanLoss::kNonSaturating, true, false},  {false, GanLoss::kNonSaturating, true, false},
      {true, GanLoss::kMinimax, true, false},        {false, GanLoss::kMinimax, true, false},
      {true, GanLoss::kNonSaturating, false, false}, {false, GanLoss::kNonSaturating, false, false},
      {true, GanLoss::kNonSaturating, true, true},   {false, GanLoss::kMinimax, true, true},
      {true, GanLoss::kNonSaturating, false, true},  {false, GanLoss::kNonSaturating, false, true}};
  for (size_t v = 0; v < variants.size(); ++v) {
    SCOPED_TRACE(v);
    Fixture fx;
    fx.joint = variants[v].joint_batches;
    fx.options.dis_on_recon(variants[v].dis_on_recon).gan_loss(variants[v].form);
    VaeGanLosses l = fx.losses();
    VaeGanGradients g = vae_gan_gradients(fx.model, l, GradientOptions().gamma(kGamma).fused(variants[v].fused));

    // Independent references on a fresh forward, one loss at a time.
    const auto enc = fx.model->encoder->parameters();
    const auto dec = fx.model->decoder->parameters();
    const auto dis = fx.model->discriminator->parameters();
    VaeGanLosses r = fx.losses();
    expect_all_close(g.encoder, add(grad(r.prior, enc), grad(r.llike, enc), 1.0), "encoder");
    expect_all_close(g.decoder, add(grad(r.llike, dec), grad(r.adv, dec), kGamma), "decoder");
    expect_all_close(g.discriminator, grad(r.dis, dis), "discriminator");

    // The test can tell a leak: each forbidden loss does reach that network.
    // (L_adv reaches the encoder only through reconstructions or shared batch statistics)
    if (variants[v].dis_on_recon || variants[v].joint_batches) {
      EXPECT_FALSE(all_close(g.encoder, add(grad(r.adv, enc), g.encoder, 1.0))) << "L_adv reaches the encoder";
    }
    EXPECT_FALSE(all_close(g.decoder, add(grad(r.dis, dec), g.decoder, 1.0))) << "L_dis reaches the decoder";
    EXPECT_FALSE(all_close(g.discriminator, add(grad(r.llike, dis), g.discriminator, 1.0)))
        << "L_llike reaches the discriminator";
    EXPECT_FALSE(all_close(g.discriminator, add(grad(r.adv, dis), g.discriminator, 1.0)))
        << "L_adv reaches the discriminator";
  }
}

TEST(Routing, EquilibriumGatesDropTheirTerms) {
  for (bool fused : {false, true}) {
    SCOPED_TRACE(fused);
    Fixture fx;
    VaeGanGradients g =
        vae_gan_gradients(fx.model, fx.losses(),
                          GradientOptions().gamma(kGamma).decoder_adversarial(false).discriminator(false).fused(fused));
    EXPECT_TRUE(g.discriminator.empty());
    VaeGanLosses r = fx.losses();
    std::vector<torch::Tensor> expected;
    for (const auto& t : grad(r.llike, fx.model->decoder->parameters())) expected.push_back(kGamma * t);
    expect_all_close(g.decoder, expected, "decoder without L_adv");
  }
}

TEST(Routing, BetaWeighsTheKlInTheEncoderOnly) {
  for (bool fused : {false, true}) {
    SCOPED_TRACE(fused);
    Fixture fx;
    VaeGanGradients g =
        vae_gan_gradients(fx.model, fx.losses(), GradientOptions().gamma(kGamma).beta(2.5).fused(fused));
    VaeGanLosses r = fx.losses();
    const auto enc = fx.model->encoder->parameters();
    expect_all_close(g.encoder, add(grad(r.prior, enc), grad(r.llike, enc), 2.5), "encoder with beta");
    expect_all_close(
        g.decoder,
        add(grad(r.llike, fx.model->decoder->parameters()), grad(r.adv, fx.model->decoder->parameters()), kGamma),
        "decoder");
  }
}

/// A central difference and the size of its round-off error.
struct CentralDifference {
  double value;
  /// `4 eps |f| / h`: each evaluation of f is rounded to a few ulps of |f| (L_llike is a sum of
  /// ~1,000 nats over 8,192 features per image at small32's default layer, so the quotient's
  /// round-off reaches ~2e-5 with float64's eps = 2.2e-16 and h = 1e-8).
  double roundoff;
};

/// Central difference of `objective` with respect to one element of `param`.
CentralDifference finite_difference(torch::Tensor param, int64_t index, const std::function<double()>& objective) {
  // Small step: the networks are piecewise smooth (ReLU), and with h = 1e-4 or 1e-6 some
  // pre-activations cross zero inside the interval; float64 keeps the round-off small.
  const double h = 1e-8;
  torch::NoGradGuard no_grad;
  torch::Tensor flat = param.view({-1});
  const double orig = flat[index].item<double>();
  flat[index] = orig + h;
  const double up = objective();
  flat[index] = orig - h;
  const double down = objective();
  flat[index] = orig;
  const double magnitude = std::max(std::abs(up), std::abs(down));
  return {(up - down) / (2 * h), 4 * std::numeric_limits<double>::epsilon() * magnitude / h};
}

TEST(Routing, GradientsMatchFiniteDifferencesOfEachObjective) {
  for (bool joint : {true, false}) {
    SCOPED_TRACE(joint);
    Fixture fx;
    fx.joint = joint;
    VaeGanGradients g = vae_gan_gradients(fx.model, fx.losses(), GradientOptions().gamma(kGamma));
    auto enc_objective = [&] {
      VaeGanLosses l = fx.losses();
      return (l.prior + l.llike).item<double>();
    };
    auto dec_objective = [&] {
      VaeGanLosses l = fx.losses();
      return (kGamma * l.llike + l.adv).item<double>();
    };
    auto dis_objective = [&] { return fx.losses().dis.item<double>(); };
    struct Case {
      const char* name;
      std::vector<torch::Tensor> params;
      const std::vector<torch::Tensor>* grads;
      std::function<double()> objective;
    };
    const std::vector<Case> cases = {
        {"encoder", fx.model->encoder->parameters(), &g.encoder, enc_objective},
        {"decoder", fx.model->decoder->parameters(), &g.decoder, dec_objective},
        {"discriminator", fx.model->discriminator->parameters(), &g.discriminator, dis_objective}};
    for (const auto& c : cases) {
      // first, a middle and the last parameter tensor; two elements each
      for (size_t p : {size_t{0}, c.params.size() / 2, c.params.size() - 1}) {
        for (int64_t index : {int64_t{0}, c.params[p].numel() / 3}) {
          const double analytic = (*c.grads)[p].view({-1})[index].item<double>();
          const CentralDifference numeric = finite_difference(c.params[p], index, c.objective);
          EXPECT_NEAR(analytic, numeric.value, 1e-5 * std::max(1.0, std::abs(numeric.value)) + numeric.roundoff)
              << c.name << " parameter " << p << " element " << index;
        }
      }
    }
  }
}

}  // namespace
}  // namespace vaegan
