// Parity with an independent PyTorch implementation (tests/reference/, run with the build's
// Python: Debian's python3-torch, or the virtual environment's torch 2.x for a LibTorch 2.x
// build): step-0 gradients of every parameter and the losses of 10 RMSprop steps, on the CPU
// (label parity) and on a GPU (CudaParity, label cuda).
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>

#include "../test_util.h"
#include "vaegan/io/npy.h"
#include "vaegan/model/augment.h"
#include "vaegan/train/trainer.h"

namespace vaegan {
namespace {

bool python_torch_available() {
  return std::system((std::string(VAEGAN_PYTHON) + " -c 'import torch, numpy' >/dev/null 2>&1").c_str()) == 0;
}

/// The losses of `s` that the reference reports for `model` (see parity.py).
std::vector<double> reported_losses(ModelType model, const StepStats& s) {
  if (model == ModelType::kVae) return {s.loss_prior, s.loss_pixel};
  if (model == ModelType::kGan) return {s.loss_dis, s.loss_adv};
  return {s.loss_prior, s.loss_llike, s.loss_dis, s.loss_adv};
}

/// The learning rate network `n` starts with under `c` (its own, or `lr`).
double lr_of(const TrainConfig& c, Network n) {
  const double own = n == Network::kEncoder ? c.lr_encoder : n == Network::kDecoder ? c.lr_decoder : c.lr_discriminator;
  return own > 0 ? own : c.lr;
}

/// Runs the parity check for `c` (model, preset, batch-norm mode, dis_on_recon, recon loss,
/// translation taken from it): step-0 gradients of every parameter and the losses of 10 RMSprop steps, both
/// sides computing on `device`.
/// `gates_held` (when given) receives how many updates the equilibrium rule held back in the 10
/// steps.
void check_parity(TrainConfig c, torch::Device device = torch::kCPU, int* gates_held = nullptr) {
  if (!python_torch_available()) {
    GTEST_SKIP() << "torch (or numpy) is missing for " << VAEGAN_PYTHON
                 << ": the PyTorch parity test needs it; scripts/install-deps.sh installs python3-torch";
  }
  test::TempDir dir;
  const int64_t steps = 10, batch = 8, z = 16;
  c.model.latent_dim = z;
  c.batch_size = batch;
  c.gamma = 0.05;
  c.seed = 21;
  c.precision = Precision::kFp32;
  Trainer trainer(c, device);  // channels-last, sub-pixel decoder when c says so
  torch::save(trainer.model(), dir / "model.pt");
  // float64 on both sides: the implementations must agree to round-off, so a tolerance of
  // 1e-8 leaves no room for a wrong loss, routing or update rule.
  trainer.model()->to(torch::kFloat64);

  torch::manual_seed(99);
  // A structured batch (bright squares) so that the discriminator has something to tell apart.
  const int64_t size = model_image_size(c.model);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor x = torch::full({steps, batch, 1, size, size}, -1.0, f64);
  for (int64_t t = 0; t < steps; ++t) {
    for (int64_t i = 0; i < batch; ++i) x[t][i][0].narrow(0, 8 + i, 10).narrow(1, 6 + t, 12).fill_(0.8);
  }
  torch::Tensor eps = torch::randn({steps, batch, z}, f64), zp = torch::randn({steps, batch, z}, f64);
  write_npy(dir / "x.npy", x);
  write_npy(dir / "eps.npy", eps);
  write_npy(dir / "zp.npy", zp);
  // The translations the trainer draws (`Trainer::draw_augments`: from its generator, seeded with
  // c.seed, real images' then generated images' draw in every step with a discriminator), drawn
  // here again for the reference, which translates image by image (vaegan_ref.translate).
  const AugmentOptions augment = parse_augment_policy(c.augment).probability(c.augment_p);
  ASSERT_FALSE(augment.color() || augment.cutout()) << "the reference implements translation only";
  const bool translated = augment.translation() && c.model.type != ModelType::kVae;
  if (translated) {
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(c.seed);
    torch::Tensor shifts = torch::zeros({steps, 2, batch, 2}, f64);
    for (int64_t t = 0; t < steps; ++t) {
      for (int64_t k = 0; k < 2; ++k) {
        const AugmentDraw d = draw_augment(augment, batch, size, g);
        shifts[t][k] = torch::stack({d.shift_y, d.shift_x}, 1).to(torch::kFloat64);
      }
    }
    ASSERT_GT(shifts.abs().sum().item<double>(), 0);
    write_npy(dir / "shifts.npy", shifts);
  }

  // The step assigns each parameter's gradient to .grad before its optimizer steps, so after the
  // first step .grad holds the step-0 gradients (batch-norm running statistics do not enter).
  std::vector<double> losses;
  std::vector<std::pair<bool, bool>> gates;
  Model& model = trainer.model();
  std::vector<std::pair<std::string, std::vector<torch::Tensor>>> grads;
  for (int64_t t = 0; t < steps; ++t) {
    const StepStats s = trainer.step(x[t], eps[t], zp[t]);
    const std::vector<double> l = reported_losses(c.model.type, s);
    losses.insert(losses.end(), l.begin(), l.end());
    gates.emplace_back(s.dis_updated, s.dec_adv_updated);
    if (t > 0) continue;
    // step 0 must update every network, so that .grad holds each one's gradient
    if (c.model.type == ModelType::kVaeGan) {
      ASSERT_TRUE(s.dis_updated && s.dec_adv_updated) << "the equilibrium rule held a network back at step 0";
    }
    for (const auto& child : model->named_children()) {
      std::vector<torch::Tensor> g;
      for (const auto& p : child.value()->parameters()) g.push_back(p.grad().clone());
      grads.emplace_back(child.key(), g);
    }
  }

  const std::string cmd =
      std::string(VAEGAN_PYTHON) + " " + VAEGAN_SOURCE_DIR + "/tests/reference/parity.py --dir " + dir.path() +
      " --model " + enum_name(c.model.type) + " --preset " + c.model.arch + " --recon-loss " +
      enum_name(c.model.recon_loss) + " --latent 16 --feature-layer " +
      std::to_string(make_network_options(c.model).discriminator.feature_layer()) + " --gamma " +
      std::to_string(c.gamma) + " --lr " + std::to_string(c.lr) + " --alpha " + std::to_string(c.rmsprop_alpha) +
      " --batch-norm " + enum_name(c.batch_norm) + " --dis-on-recon " + (c.dis_on_recon ? "true" : "false") +
      " --device " + (device.is_cuda() ? "cuda" : "cpu") + " --optimizer " + enum_name(c.optimizer) +
      fmt::format(" --lr-networks {},{},{} --betas {},{} --weight-decay {} --grad-clip {}", lr_of(c, Network::kEncoder),
                  lr_of(c, Network::kDecoder), lr_of(c, Network::kDiscriminator), c.adam_beta1, c.adam_beta2,
                  c.weight_decay, c.grad_clip) +
      fmt::format(" --gan-loss {} --real-weight {} --label-smoothing {}", enum_name(c.gan_loss), c.dis_real_weight,
                  c.label_smoothing) +
      (translated ? " --translation" : "") +
      (c.equilibrium ? fmt::format(" --equilibrium {},{},{}", c.equilibrium_value, c.equilibrium_margin,
                                   enum_name(c.equilibrium_skip))
                     : std::string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  // Gradients: each tensor to 1e-8 of its largest entry.
  size_t compared = 0;
  for (const auto& [name, g] : grads) {
    const auto named = model->named_children()[name]->named_parameters();
    ASSERT_EQ(named.size(), g.size());
    for (size_t i = 0; i < named.size(); ++i) {
      const torch::Tensor ref = read_npy(dir / ("py_grads/" + name + "." + named[i].key() + ".npy"));
      const torch::Tensor ours = g[i].cpu().contiguous();
      ASSERT_EQ(ref.sizes(), ours.sizes()) << named[i].key();
      const double scale = ref.abs().max().item<double>();
      EXPECT_LE((ours - ref).abs().max().item<double>(), 1e-8 * scale + 1e-12)
          << name << "." << named[i].key() << " (largest entry " << scale << ")";
      ++compared;
    }
  }
  EXPECT_EQ(compared, model->parameters().size());

  // Losses of 10 steps to 1e-8 relative. (In float32 this would not hold: RMSprop's first
  // updates are about lr * g / |g| for every g, so the sign of a gradient that is zero up to
  // round-off moves a weight by a full step either way.)
  const torch::Tensor ref_losses = read_npy(dir / "py_losses.npy");
  const int64_t k = static_cast<int64_t>(losses.size()) / steps;
  ASSERT_EQ(ref_losses.sizes(), (std::vector<int64_t>{steps, k}));
  for (int64_t t = 0; t < steps; ++t) {
    for (int64_t j = 0; j < k; ++j) {
      const double ref = ref_losses[t][j].item<double>(), ours = losses[t * k + j];
      EXPECT_NEAR(ours, ref, 1e-8 * std::abs(ref) + 1e-10) << "step " << t << " loss " << j;
    }
  }

  // The equilibrium rule's decisions, step by step.
  if (c.model.type != ModelType::kVaeGan) return;
  const torch::Tensor ref_gates = read_npy(dir / "py_gates.npy");
  ASSERT_EQ(ref_gates.sizes(), (std::vector<int64_t>{steps, 2}));
  for (int64_t t = 0; t < steps; ++t) {
    EXPECT_EQ(gates[t].first, ref_gates[t][0].item<double>() != 0) << "step " << t << ": discriminator updated";
    EXPECT_EQ(gates[t].second, ref_gates[t][1].item<double>() != 0) << "step " << t << ": decoder's L_adv used";
  }
  if (gates_held != nullptr) {
    *gates_held = 0;
    for (const auto& [dis, dec] : gates) *gates_held += !dis + !dec;
  }
}

TEST(Parity, DefaultStepMatchesPyTorchReference) { check_parity(TrainConfig{}); }

TEST(Parity, AlgorithmOneLiteralStepMatchesPyTorchReference) {
  TrainConfig c;  // the paper's Algorithm 1: one batch of [x; x_recon; x_prior], reconstructions in L_dis
  c.batch_norm = BatchNormMode::kJoint;
  c.dis_on_recon = true;
  check_parity(c);
}

/// The parity check of `--recipe original` (at small32: the test's images are small; the
/// recipe's losses and rules do not depend on the preset) as `adjust` changes it, with the
/// equilibrium band `value ± margin`, narrow enough that the rule acts within the 10 steps: a
/// test in which it never acted could not see a wrong rule.
void check_recipe_parity(double value, double margin, const std::function<void(TrainConfig&)>& adjust) {
  TrainConfig c;
  apply_recipe(Recipe::kOriginal, c);
  c.model.arch = "small32";
  c.lr = 3e-4;
  c.equilibrium_value = value;
  c.equilibrium_margin = margin;
  adjust(c);
  int held = 0;
  check_parity(c, torch::kCPU, &held);
  EXPECT_GT(held, 0) << "the equilibrium rule never acted";
}

TEST(Parity, AuthorsRecipeStepMatchesPyTorchReference) {
  // The authors' batch-norm groups, minimax decoder term, real-versus-generated weighting,
  // weight decay and equilibrium rule. The rule holds the discriminator back here (with real
  // and prior images normalised together the decoder does not get ahead in 10 steps);
  // Trainer.AuthorsEquilibriumRuleSkipsTheWholeDecoderUpdate covers the decoder's side.
  check_recipe_parity(0.73, 0.05, [](TrainConfig& c) { c.dis_real_weight = 0.66; });
}

TEST(Parity, OriginalBatchNormGroupsWithReconstructionsInLDisMatchPyTorchReference) {
  check_recipe_parity(0.75, 0.09, [](TrainConfig& c) {
    c.dis_on_recon = true;  // [x; x_recon; x_prior] for the GAN losses
    c.equilibrium_skip = EquilibriumSkip::kAdversarial;
  });
}

TEST(Parity, ConvolutionalVaeWithSquaredErrorMatchesPyTorchReference) {
  TrainConfig c;
  c.model.type = ModelType::kVae;
  c.model.recon_loss = ReconLoss::kMse;
  check_parity(c);
}

TEST(Parity, MlpVaeWithBceMatchesPyTorchReference) {
  TrainConfig c;  // the MLP VAE of Kingma & Welling 2014
  c.model.type = ModelType::kVae;
  c.model.arch = "mlp28";
  c.model.recon_loss = ReconLoss::kBce;
  check_parity(c);
}

TEST(Parity, GanStepMatchesPyTorchReference) {
  TrainConfig c;
  c.model.type = ModelType::kGan;
  check_parity(c);
}

TEST(Parity, AdamWithPerNetworkRatesWeightDecayAndClippingMatchesPyTorchReference) {
  TrainConfig c;                       // torch.optim.Adam per network, a discriminator at a tenth of the rate,
  c.optimizer = OptimizerType::kAdam;  // L2 weight decay, and gradient norms clipped to 0.5
  c.lr = 2e-4;
  c.lr_discriminator = 2e-5;
  c.adam_beta1 = 0.5;
  c.adam_beta2 = 0.99;
  c.weight_decay = 1e-3;
  c.grad_clip = 0.5;
  check_parity(c);
}

TEST(Parity, OneSidedLabelSmoothingMatchesPyTorchReference) {
  TrainConfig c;  // the real images' target 0.9 in L_dis (Salimans et al. 2016), with the authors' weighting
  c.label_smoothing = 0.1;
  c.dis_real_weight = 0.66;
  check_parity(c);
}

TEST(Parity, GanStepWithOneSidedLabelSmoothingMatchesPyTorchReference) {
  TrainConfig c;
  c.model.type = ModelType::kGan;
  c.label_smoothing = 0.2;
  check_parity(c);
}

TEST(Parity, GanStepWithJointBatchNormMatchesPyTorchReference) {
  TrainConfig c;
  c.model.type = ModelType::kGan;
  c.batch_norm = BatchNormMode::kJoint;
  check_parity(c);
}

// The same checks with both implementations on the GPU, in float64 (to 1e-8, as on the CPU:
// cuDNN's float64 kernels sum in other orders, which moves results by ~1e-15 relative). Where
// there is no GPU they skip.
TEST(CudaParity, DefaultStepMatchesPyTorchReference) {
  VAEGAN_REQUIRE_CUDA();
  check_parity(TrainConfig{}, torch::kCUDA);
}

TEST(CudaParity, AlgorithmOneLiteralStepMatchesPyTorchReference) {
  VAEGAN_REQUIRE_CUDA();
  TrainConfig c;
  c.batch_norm = BatchNormMode::kJoint;
  c.dis_on_recon = true;
  check_parity(c, torch::kCUDA);
}

TEST(CudaParity, VaeAndGanStepsMatchPyTorchReference) {
  VAEGAN_REQUIRE_CUDA();
  TrainConfig vae;
  vae.model.type = ModelType::kVae;
  check_parity(vae, torch::kCUDA);
  TrainConfig gan;
  gan.model.type = ModelType::kGan;
  check_parity(gan, torch::kCUDA);
}

}  // namespace
}  // namespace vaegan
