// Parity with an independent PyTorch implementation (tests/reference/, run with Debian's
// python3-torch): step-0 gradients of every parameter and the losses of 10 RMSprop steps.
#include <gtest/gtest.h>

#include <cstdlib>

#include "../test_util.h"
#include "vaegan/io/npy.h"
#include "vaegan/train/trainer.h"

namespace vaegan {
namespace {

bool python_torch_available() { return std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0; }

/// Runs the parity check for `c` (batch-norm mode and dis_on_recon taken from it).
void check_parity(TrainConfig c) {
  if (!python_torch_available()) {
    GTEST_SKIP() << "python3-torch (or python3-numpy) is missing: the PyTorch parity test needs "
                    "/usr/bin/python3 with torch; scripts/install-deps.sh installs it";
  }
  test::TempDir dir;
  const int64_t steps = 10, batch = 8, z = 16;
  c.model.latent_dim = z;
  c.batch_size = batch;
  c.gamma = 0.05;
  c.seed = 21;
  Trainer trainer(c, torch::kCPU);  // channels-last, sub-pixel decoder when c says so
  torch::save(trainer.model(), dir / "model.pt");
  // float64 on both sides: the implementations must agree to round-off, so a tolerance of
  // 1e-8 leaves no room for a wrong loss, routing or update rule.
  trainer.model()->to(torch::kFloat64);

  torch::manual_seed(99);
  // A structured batch (bright squares) so that the discriminator has something to tell apart.
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor x = torch::full({steps, batch, 1, 32, 32}, -1.0, f64);
  for (int64_t t = 0; t < steps; ++t) {
    for (int64_t i = 0; i < batch; ++i) x[t][i][0].narrow(0, 8 + i, 10).narrow(1, 6 + t, 12).fill_(0.8);
  }
  torch::Tensor eps = torch::randn({steps, batch, z}, f64), zp = torch::randn({steps, batch, z}, f64);
  write_npy(dir / "x.npy", x);
  write_npy(dir / "eps.npy", eps);
  write_npy(dir / "zp.npy", zp);

  // Step-0 gradients (a forward in train mode; batch-norm running statistics do not enter).
  VaeGan& model = trainer.model();
  VaeGanGradients g = vae_gan_gradients(
      model,
      vae_gan_losses(
          model->forward(x[0].contiguous(torch::MemoryFormat::ChannelsLast), eps[0], zp[0], c.batch_norm == "joint"),
          VaeGanLossOptions().dis_on_recon(c.dis_on_recon)),
      GradientOptions().gamma(c.gamma).fused(c.fused_step));
  std::vector<double> losses;
  for (int64_t t = 0; t < steps; ++t) {
    StepStats s = trainer.step(x[t], eps[t], zp[t]);
    losses.insert(losses.end(), {s.loss_prior, s.loss_llike, s.loss_dis, s.loss_adv});
  }

  const std::string cmd = std::string("/usr/bin/python3 ") + VAEGAN_SOURCE_DIR + "/tests/reference/parity.py --dir " +
                          dir.path() + " --latent 16 --gamma " + std::to_string(c.gamma) + " --lr " +
                          std::to_string(c.lr) + " --alpha " + std::to_string(c.rmsprop_alpha) + " --batch-norm " +
                          c.batch_norm + " --dis-on-recon " + (c.dis_on_recon ? "true" : "false");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  // Gradients: each tensor to 1e-8 of its largest entry.
  const std::vector<std::pair<std::string, torch::nn::Module*>> nets = {{"encoder", model->encoder.get()},
                                                                        {"decoder", model->decoder.get()},
                                                                        {"discriminator", model->discriminator.get()}};
  const std::vector<std::vector<torch::Tensor>*> grads = {&g.encoder, &g.decoder, &g.discriminator};
  size_t compared = 0;
  for (size_t n = 0; n < nets.size(); ++n) {
    const auto named = nets[n].second->named_parameters();
    ASSERT_EQ(named.size(), grads[n]->size());
    for (size_t i = 0; i < named.size(); ++i) {
      const torch::Tensor ref = read_npy(dir / ("py_grads/" + nets[n].first + "." + named[i].key() + ".npy"));
      const torch::Tensor ours = (*grads[n])[i].contiguous();
      ASSERT_EQ(ref.sizes(), ours.sizes()) << named[i].key();
      const double scale = ref.abs().max().item<double>();
      EXPECT_LE((ours - ref).abs().max().item<double>(), 1e-8 * scale + 1e-12)
          << nets[n].first << "." << named[i].key() << " (largest entry " << scale << ")";
      ++compared;
    }
  }
  EXPECT_EQ(compared, model->parameters().size());

  // Losses of 10 steps to 1e-8 relative. (In float32 this would not hold: RMSprop's first
  // updates are about lr * g / |g| for every g, so the sign of a gradient that is zero up to
  // round-off moves a weight by a full step either way.)
  const torch::Tensor ref_losses = read_npy(dir / "py_losses.npy");
  ASSERT_EQ(ref_losses.sizes(), (std::vector<int64_t>{steps, 4}));
  for (int64_t t = 0; t < steps; ++t) {
    for (int64_t k = 0; k < 4; ++k) {
      const double ref = ref_losses[t][k].item<double>(), ours = losses[t * 4 + k];
      EXPECT_NEAR(ours, ref, 1e-8 * std::abs(ref) + 1e-10) << "step " << t << " loss " << k;
    }
  }
}

TEST(Parity, DefaultStepMatchesPyTorchReference) { check_parity(TrainConfig{}); }

TEST(Parity, AlgorithmOneLiteralStepMatchesPyTorchReference) {
  TrainConfig c;  // the paper's Algorithm 1: one batch of [x; x_recon; x_prior], reconstructions in L_dis
  c.batch_norm = "joint";
  c.dis_on_recon = true;
  check_parity(c);
}

}  // namespace
}  // namespace vaegan
