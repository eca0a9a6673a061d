#include <gtest/gtest.h>

#include "vaegan/core/error.h"
#include "vaegan/model/vae_gan.h"

namespace vaegan {
namespace {

TEST(Networks, Small32Shapes) {
  torch::manual_seed(0);
  Model m(ModelConfig{});
  torch::Tensor x = torch::rand({3, 1, 32, 32}) * 2 - 1;
  VaeGanForward f = vae_gan_forward(m, x, torch::randn({3, 16}), torch::randn({3, 16}), BatchNormMode::kJoint);
  EXPECT_EQ(f.mu.sizes(), (std::vector<int64_t>{3, 16}));  // Z = 16 (preset revision 3)
  EXPECT_EQ(f.logvar.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(f.x_recon.sizes(), (std::vector<int64_t>{3, 1, 32, 32}));
  EXPECT_EQ(f.x_prior.sizes(), (std::vector<int64_t>{3, 1, 32, 32}));
  EXPECT_EQ(f.real.logits.sizes(), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(f.prior.features.sizes(), (std::vector<int64_t>{3, 128 * 8 * 8}));  // layer 3: [B, 128, 8, 8]
  EXPECT_LE(f.x_prior.abs().max().item<float>(), 1.0f);                         // tanh output
  // The discriminator's features for x_recon are those of Dis run on x_recon alone
  // (eval mode removes the batch coupling of batch norm).
  m->eval();
  VaeGanForward e = vae_gan_forward(m, x, torch::zeros({3, 16}), torch::randn({3, 16}), BatchNormMode::kJoint);
  EXPECT_TRUE(torch::allclose(e.recon.features, m->discriminator->forward(e.x_recon).features, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(e.x_recon, m->decoder->forward(e.mu), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(m->reconstruct(x), e.x_recon, 1e-5, 1e-5));  // eps = 0: z = mu
}

TEST(Networks, Paper64MatchesThePaperShapes) {
  ModelConfig c;
  c.arch = "paper64";
  c.channels = 3;
  NetworkOptions o = make_network_options(c);
  EXPECT_EQ(o.encoder.channels(), (std::vector<int64_t>{64, 128, 256}));
  EXPECT_EQ(o.encoder.fc_dim(), 2048);
  EXPECT_EQ(o.encoder.latent_dim(), 128);
  EXPECT_EQ(o.decoder.channels(), (std::vector<int64_t>{256, 128, 32}));
  EXPECT_EQ(o.discriminator.channels(), (std::vector<int64_t>{32, 128, 256, 256}));
  EXPECT_EQ(o.discriminator.fc_dim(), 512);

  torch::manual_seed(0);
  Discriminator dis(o.discriminator);
  DiscriminatorOutput d = dis->forward(torch::zeros({2, 3, 64, 64}));
  EXPECT_EQ(d.features.sizes(), (std::vector<int64_t>{2, 256 * 8 * 8}));  // 4th conv: [B, 256, 8, 8]
  Decoder dec(o.decoder);
  EXPECT_EQ(dec->forward(torch::randn({2, 128})).sizes(), (std::vector<int64_t>{2, 3, 64, 64}));
  Encoder enc(o.encoder);
  EXPECT_EQ(std::get<0>(enc->forward(torch::zeros({2, 3, 64, 64}))).sizes(), (std::vector<int64_t>{2, 128}));
  // The paper's first FC of the encoder: 256 * 8 * 8 -> 2048 (paper appendix: 33.5 M weights).
  EXPECT_EQ(enc->fc[0]->as<torch::nn::Linear>()->weight.sizes(), (std::vector<int64_t>{2048, 256 * 8 * 8}));
}

TEST(Networks, FeatureLayerOptionPicksThatConvolution) {
  ModelConfig c;
  c.feature_layer = 2;
  Model m(c);
  EXPECT_EQ(m->discriminator->forward(torch::zeros({2, 1, 32, 32})).features.size(1), 64 * 16 * 16);
}

// 0, the default, means the preset's layer: small32's 3rd convolution ([B, 128, 8, 8]), paper64's
// 4th ([B, 256, 8, 8], the authors' recon_depth).
TEST(Networks, FeatureLayerZeroIsThePresets) {
  ModelConfig c;
  ASSERT_EQ(c.feature_layer, 0);
  EXPECT_EQ(Model(c)->discriminator->forward(torch::zeros({2, 1, 32, 32})).features.size(1), 128 * 8 * 8);
  c.arch = "paper64";
  EXPECT_EQ(make_network_options(c).discriminator.feature_layer(), 4);
  c.feature_layer = 1;
  EXPECT_EQ(make_network_options(c).discriminator.feature_layer(), 1);
  c.feature_layer = -1;
  EXPECT_THROW(make_network_options(c), InputError);
}

// Earlier revisions of the presets (runs written before small32's Z became 32, then 16) keep
// their Z for small32 and change nothing else; an explicit latent size wins over any revision.
TEST(Networks, PresetRevisionsDifferOnlyInSmall32LatentSize) {
  ModelConfig c;
  EXPECT_EQ(make_network_options(c).decoder.latent_dim(), 16);
  EXPECT_EQ(make_network_options(c).encoder.latent_dim(), 16);
  for (const auto& [revision, z] : std::vector<std::pair<int, int64_t>>{{1, 64}, {2, 32}}) {
    c.preset_version = revision;
    EXPECT_EQ(make_network_options(c).decoder.latent_dim(), z) << revision;
    EXPECT_EQ(make_network_options(c).encoder.latent_dim(), z) << revision;
  }
  c.latent_dim = 8;
  EXPECT_EQ(make_network_options(c).decoder.latent_dim(), 8);
  for (const std::string arch : {"paper64", "mlp28"}) {
    ModelConfig current;
    current.type = ModelType::kVae;
    current.arch = arch;
    for (int revision = 1; revision < kPresetVersion; ++revision) {
      ModelConfig earlier = current;
      earlier.preset_version = revision;
      EXPECT_EQ(make_network_options(earlier).decoder.latent_dim(), make_network_options(current).decoder.latent_dim())
          << arch << " revision " << revision;
    }
  }
  for (int bad : {0, kPresetVersion + 1}) {
    c.preset_version = bad;
    try {
      make_network_options(c);
      ADD_FAILURE() << "preset_version " << bad << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("model.preset_version"), std::string::npos) << e.what();
    }
  }
}

TEST(Networks, RejectsBadConfigs) {
  ModelConfig c;
  c.arch = "huge";
  EXPECT_THROW(make_network_options(c), InputError);
  c = ModelConfig{};
  c.feature_layer = 5;
  EXPECT_THROW(make_network_options(c), InputError);
  c = ModelConfig{};
  c.channels = 2;
  EXPECT_THROW(make_network_options(c), InputError);
}

}  // namespace
}  // namespace vaegan
