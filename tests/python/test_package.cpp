// The Python package (python/vaegan: `vaegan.load`) against the C++ networks: checkpoints of every
// model type and preset, written by `save_checkpoint` and loaded back by `load_model` (the path
// every command takes), run on the same inputs and noise on both sides (tests/python/package_parity.py).
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "vaegan/io/npy.h"
#include "vaegan/train/checkpoint.h"
#include "vaegan/train/trainer.h"

namespace vaegan {
namespace {

struct PackageCase {
  ModelType type;
  std::string arch;
  int64_t channels, image_size;
  double ema_decay = 0;  ///< > 0: the checkpoint has decoder-ema.pt, which both sides must decode with
  /// 1: a run written before the presets had revisions (small32's Z = 64); Python reads its
  /// config.json without the key, as such a run's is. 2: small32's Z = 32, with the key.
  int preset_version = kPresetVersion;
  int64_t feature_layer = 0;  ///< 0: the preset's (3 small32, 4 paper64), which Python must resolve alike
};

TEST(Parity, PythonPackageMatchesTheCppNetworks) {
  if (std::system((std::string(VAEGAN_PYTHON) + " -c 'import torch, numpy' >/dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << "torch (or numpy) is missing for " << VAEGAN_PYTHON;
  }
  const std::vector<PackageCase> cases = {{ModelType::kVaeGan, "small32", 1, 0},
                                          {ModelType::kVaeGan, "paper64", 3, 0},
                                          {ModelType::kVae, "small32", 1, 0},
                                          {ModelType::kVae, "mlp28", 1, 0},
                                          {ModelType::kGan, "small32", 1, 0},
                                          {ModelType::kGan, "paper64", 1, 0},
                                          {ModelType::kVaeThenGan, "small32", 3, 64, 0, kPresetVersion, 2},
                                          {ModelType::kVaeGan, "small32", 1, 0, 0.5},
                                          {ModelType::kVaeGan, "small32", 1, 0, 0, 1},
                                          {ModelType::kVaeGan, "small32", 1, 0, 0, 2}};
  test::TempDir dir;
  torch::manual_seed(5);
  for (size_t i = 0; i < cases.size(); ++i) {
    const PackageCase& k = cases[i];
    SCOPED_TRACE(enum_name(k.type) + " " + k.arch);
    TrainConfig c;
    c.model.type = k.type;
    c.model.arch = k.arch;
    c.model.channels = k.channels;
    c.model.image_size = k.image_size;
    c.model.feature_layer = k.feature_layer;
    c.batch_size = 4;
    c.ema_decay = k.ema_decay;
    c.model.preset_version = k.preset_version;
    c.precision = Precision::kFp32;
    const std::string run_dir = dir / std::to_string(i);
    std::filesystem::create_directories(run_dir);
    {
      Trainer trainer(c, torch::kCPU);
      const int64_t s = model_image_size(c.model);
      trainer.step(torch::rand({4, k.channels, s, s}) * 2 - 1);  // batch-norm statistics away from (0, 1)
      TrainingState state;
      state.step = 1;
      save_checkpoint(run_dir, trainer, state);
    }
    LoadedModel m = load_model(run_dir, torch::kCPU);  // eval mode, channels-last as the commands run it
    ASSERT_EQ(m.decoder_weights, k.ema_decay > 0 ? DecoderWeights::kEma : DecoderWeights::kTrained);
    Model& model = m.model;
    const int64_t s = model_image_size(c.model);
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::rand({3, k.channels, s, s}) * 2 - 1, z = torch::randn({3, model->latent_dim()});
    write_npy(run_dir + "/x.npy", x);
    write_npy(run_dir + "/z.npy", z);
    write_npy(run_dir + "/decode.npy", model->decoder->forward(z));
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);  // as `vaegan sample --seed 7` draws
    write_npy(run_dir + "/sample.npy", model->decoder->forward(torch::randn({5, model->latent_dim()}, gen)));
    if (model->encoder) {
      const auto [mu, logvar] = model->encoder->forward(x);
      write_npy(run_dir + "/mu.npy", mu);
      write_npy(run_dir + "/logvar.npy", logvar);
      write_npy(run_dir + "/reconstruct.npy", model->reconstruct(x));
    }
    if (model->discriminator) {
      const DiscriminatorOutput d = model->discriminator->forward(x);
      write_npy(run_dir + "/dis_logits.npy", d.logits);
      write_npy(run_dir + "/dis_features.npy", d.features);
    }
    if (k.preset_version == 2) ASSERT_EQ(model->latent_dim(), 32);
    if (k.preset_version == 1) {
      ASSERT_EQ(model->latent_dim(), 64);
      const std::filesystem::path config_path = std::filesystem::path(resolve_checkpoint(run_dir)) / "config.json";
      nlohmann::json j = nlohmann::json::parse(std::ifstream(config_path));
      j["model"].erase("preset_version");
      std::ofstream(config_path) << j.dump(2);
    }
  }
  const std::string cmd = std::string(VAEGAN_PYTHON) + " " + VAEGAN_SOURCE_DIR + "/tests/python/package_parity.py " +
                          dir.path() + " " + std::to_string(cases.size());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace
}  // namespace vaegan
