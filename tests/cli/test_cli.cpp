// End to end: the `vaegan` binary on a tiny IDX dataset, every artefact of the run directory,
// and the exit codes and messages of bad input.
#include <gtest/gtest.h>
#include <stb_image.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "cli_util.h"
#include "vaegan/io/npy.h"

namespace vaegan {
namespace {

using test::Result;

Result run(const std::string& args) { return test::run_vaegan(args); }

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    std::filesystem::create_directories(dir_->path() + "/data");
    test::write_tiny_idx_dataset(dir_->path() + "/data", 96, 40);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string data() { return dir_->path() + "/data"; }
  static std::string path(const std::string& p) { return dir_->path() + "/" + p; }
  static test::TempDir* dir_;
};
test::TempDir* Cli::dir_ = nullptr;

/// The training lines of RUN/metrics.jsonl (`validation`: the validation lines instead).
std::vector<nlohmann::json> read_metrics(const std::string& run_dir, bool validation = false) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("split") == validation) lines.push_back(std::move(j));
  }
  return lines;
}

TEST_F(Cli, TrainWritesTheWholeRunDirectoryThenSampleAndReconstructUseIt) {
  namespace fs = std::filesystem;
  const std::string runs = path("run");
  Result r = run("train --dataset fashion-mnist --data-dir " + data() +
                 " --epochs 2 --batch-size 16 --log-every 2 --grid-size 16 --threads 2 --out " + runs);
  ASSERT_EQ(r.code, 0) << r.output;

  // config.json: the resolved config
  std::ifstream cf(runs + "/config.json");
  const nlohmann::json config = nlohmann::json::parse(cf);
  EXPECT_EQ(config.at("format_version"), 2);
  EXPECT_EQ(config.at("model").at("arch"), "small32");
  EXPECT_EQ(config.at("batch_size"), 16);
  EXPECT_EQ(config.at("data_dir"), data());
  // --precision auto is resolved before it is saved
  EXPECT_TRUE(config.at("precision") == "fp32" || config.at("precision") == "bf16") << config.at("precision");

  // metrics.jsonl: 96 / 16 = 6 steps per epoch, a line every 2 steps, and a validation line
  // after each epoch with the test split's losses
  const std::vector<nlohmann::json> lines = read_metrics(runs);
  ASSERT_EQ(lines.size(), 6u);
  const std::vector<nlohmann::json> val = read_metrics(runs, /*validation=*/true);
  ASSERT_EQ(val.size(), 2u);
  EXPECT_EQ(val[1].at("step"), 12);
  for (const char* key : {"val_loss_prior", "val_loss_llike", "val_loss_dis", "val_loss_adv", "val_mse", "val_score"}) {
    EXPECT_TRUE(val[1].contains(key)) << key;
  }
  EXPECT_EQ(val[1].at("val_score"), val[1].at("val_mse"));
  EXPECT_EQ(lines.back().at("step"), 12);
  EXPECT_EQ(lines.back().at("epoch"), 1);
  for (const char* key : {"loss_prior", "loss_llike", "loss_dis", "loss_adv", "d_real", "d_recon", "d_prior",
                          "lr_encoder", "lr_decoder", "lr_discriminator", "images_per_sec", "dis_updates_skipped"}) {
    EXPECT_TRUE(lines.back().contains(key)) << key;
  }
  EXPECT_GT(lines.back().at("loss_llike").get<double>(), 0.0);

  // images: originals over reconstructions (16 + 16 tiles, 8 per row) and 16 samples
  for (int epoch : {1, 2}) {
    for (auto [name, rows] : {std::make_pair("reconstructions", 4), std::make_pair("samples", 2)}) {
      const std::string png = runs + "/images/epoch-00" + std::to_string(epoch) + "-" + name + ".png";
      int w = 0, h = 0, c = 0;
      ASSERT_EQ(stbi_info(png.c_str(), &w, &h, &c), 1) << png;
      EXPECT_EQ(w, 8 * 34 + 2) << png;
      EXPECT_EQ(h, rows * 34 + 2) << png;
      EXPECT_EQ(c, 1) << png;
    }
  }

  // checkpoint: named by `last`, complete, no temporary left
  std::ifstream lf(runs + "/checkpoints/last");
  std::string last;
  lf >> last;
  EXPECT_EQ(last, "step-0000012");
  for (const char* f : {"model.pt", "optimizer-encoder.pt", "optimizer-decoder.pt", "optimizer-discriminator.pt",
                        "state.json", "config.json"}) {
    EXPECT_TRUE(fs::is_regular_file(runs + "/checkpoints/" + last + "/" + f)) << f;
  }
  for (const auto& e : fs::directory_iterator(runs + "/checkpoints")) {
    EXPECT_EQ(e.path().filename().string().rfind(".tmp", 0), std::string::npos) << e.path();
  }
  const auto model_time = fs::last_write_time(runs + "/checkpoints/" + last + "/model.pt");

  // sample -> .npy: uint8 [N, H, W, C]
  r = run("sample --checkpoint " + runs + " --n 5 --out " + path("s.npy"));
  ASSERT_EQ(r.code, 0) << r.output;
  torch::Tensor s = read_npy(path("s.npy"));
  EXPECT_EQ(s.scalar_type(), torch::kUInt8);
  EXPECT_EQ(s.sizes(), (std::vector<int64_t>{5, 32, 32, 1}));
  EXPECT_GT(s.max().item<int>() - s.min().item<int>(), 0);
  // the same seed gives the same samples
  r = run("sample --checkpoint " + runs + "/checkpoints/" + last + " --n 5 --out " + path("s2.npy"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(torch::equal(read_npy(path("s2.npy")), s));

  // reconstruct -> .npy (reconstructions only, dataset order) and .png (originals over them)
  r = run("reconstruct --checkpoint " + runs + " --n 7 --out " + path("r.npy"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_npy(path("r.npy")).sizes(), (std::vector<int64_t>{7, 32, 32, 1}));
  r = run("reconstruct --checkpoint " + runs + " --n 7 --out " + path("r.png"));
  ASSERT_EQ(r.code, 0) << r.output;
  int w = 0, h = 0, c = 0;
  ASSERT_EQ(stbi_info(path("r.png").c_str(), &w, &h, &c), 1);
  EXPECT_EQ(h, 2 * 34 + 2);  // one row of originals, one of reconstructions
  EXPECT_EQ(fs::last_write_time(runs + "/checkpoints/" + last + "/model.pt"), model_time);

  // the run directory is not overwritten by accident
  r = run("train --dataset fashion-mnist --data-dir " + data() + " --epochs 1 --out " + runs);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--overwrite"), std::string::npos) << r.output;
  // ... and the refusal leaves the run as it was
  EXPECT_TRUE(fs::exists(runs + "/config.json"));
  EXPECT_EQ(fs::last_write_time(runs + "/checkpoints/" + last + "/model.pt"), model_time);
}

// --ema-decay: the run keeps decoder-ema.pt, and the tools decode with it unless told
// `--decoder-weights trained`; asking for an average a run did not keep exits 2 naming the file.
TEST_F(Cli, ToolsDecodeWithTheDecodersMovingAverageByDefault) {
  namespace fs = std::filesystem;
  const std::string runs = path("ema-run"), plain = path("plain-run");
  Result r = run("train --dataset fashion-mnist --data-dir " + data() +
                 " --max-steps 3 --batch-size 16 --grid-size 4 --threads 2 --ema-decay 0.5 --out " + runs);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::is_regular_file(runs + "/checkpoints/step-0000003/decoder-ema.pt"));
  for (const std::string w : {"auto", "ema", "trained"}) {
    r = run("sample --checkpoint " + runs + " --n 4 --decoder-weights " + w + " --out " + path("ema-" + w + ".npy"));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(r.output.find("moving average") != std::string::npos, w != "trained") << r.output;
  }
  const torch::Tensor by_default = read_npy(path("ema-auto.npy")), by_average = read_npy(path("ema-ema.npy")),
                      by_trained = read_npy(path("ema-trained.npy"));
  EXPECT_TRUE(torch::equal(by_default, by_average));
  EXPECT_FALSE(torch::equal(by_average, by_trained));

  r = run("train --dataset fashion-mnist --data-dir " + data() + " --max-steps 1 --batch-size 16 --threads 2 --out " +
          plain);
  ASSERT_EQ(r.code, 0) << r.output;
  r = run("sample --checkpoint " + plain + " --n 4 --decoder-weights ema --out " + path("none.npy"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--decoder-weights ema"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("decoder-ema.pt"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("none.npy")));
}

TEST_F(Cli, BadInputExitsTwoWithAMessageNamingTheCulprit) {
  const std::string base = "train --dataset fashion-mnist --data-dir " + data() + " --out " + path("bad") + " ";
  struct Case {
    std::string args, must_contain;
  };
  const std::vector<Case> cases = {
      {base + "--batch-size 1", "--batch-size"},
      {base + "--lr -0.1", "--lr"},
      {base + "--arch huge", "--arch"},
      {base + "--arch mlp28", "mlp28"},  // the MLP preset is the plain VAE's only
      {base + "--model vae-then-gan --epochs 1", "--epochs"},
      {base + "--pretrain-epochs 2", "--pretrain-epochs"},
      {base + "--image-size 30", "--image-size"},
      {base + "--channels 3", "--channels"},
      {"train --dataset fashion-mnist --data-dir " + data() + " --out /proc/vaegan-cannot-write", "--out"},
      {base + "--keep-checkpoints 0", "--keep-checkpoints"},
      {base + "--resume " + path("run"), "--out"},  // --out and --resume exclude each other
      {base + "--epochs 0", "--epochs"},
      {base + "--precision fp16", "--precision"},
      {base + "--batch-size 1000", "--batch-size"},
      {"train --dataset fashion-mnist --data-dir " + path("nothing-here") + " --out " + path("bad2"), "nothing-here"},
      {"sample --checkpoint " + path("no-such-run") + " --n 4 --out " + path("x.png"), "no-such-run"},
      {"sample --checkpoint " + path("run") + " --n 4 --out " + path("x.jpg"), "--out"},
      {"sample --n 4 --out " + path("x.png"), "--checkpoint"},
      {"frobnicate", "frobnicate"},
  };
  for (const auto& c : cases) {
    Result r = run(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.must_contain), std::string::npos) << c.args << "\n" << r.output;
  }
}

TEST_F(Cli, TruncatedDataFileIsAUsageError) {
  const std::string bad = path("truncated");
  std::filesystem::create_directories(bad);
  for (const char* f : {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"}) {
    std::filesystem::copy_file(data() + "/" + f, bad + "/" + f);
  }
  std::ofstream(bad + "/train-images-idx3-ubyte", std::ios::binary)
      .write("\x00\x00\x08\x03\x00\x00\x00\x10\x00\x00\x00\x1c\x00\x00\x00\x1c\x01\x02", 18);
  Result r = run("train --dataset fashion-mnist --data-dir " + bad + " --out " + path("bad3"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("train-images-idx3-ubyte: truncated IDX body"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(path("bad3") + "/checkpoints")) << "no run directory for failed input";
}

TEST_F(Cli, EveryModelTrainsAndItsCheckpointServesTheTools) {
  namespace fs = std::filesystem;
  const std::string common =
      "train --dataset mnist --data-dir " + data() + " --batch-size 16 --log-every 1 --threads 2 ";
  // plain VAE, the MLP VAE of Kingma & Welling 2014: 28x28, losses of the VAE only
  Result r = run(common + "--model vae --arch mlp28 --epochs 1 --out " + path("m-vae"));
  ASSERT_EQ(r.code, 0) << r.output;
  std::vector<nlohmann::json> m = read_metrics(path("m-vae"));
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m.back().at("phase"), "vae");
  EXPECT_GT(m.back().at("loss_pixel").get<double>(), 0.0);
  EXPECT_FALSE(m.back().contains("loss_dis"));
  EXPECT_TRUE(fs::exists(path("m-vae") + "/images/epoch-001-reconstructions.png"));
  r = run("reconstruct --checkpoint " + path("m-vae") + " --n 4 --out " + path("m-vae/r.npy"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_npy(path("m-vae/r.npy")).sizes(), (std::vector<int64_t>{4, 28, 28, 1}));

  // GAN: samples but no reconstructions, and reconstruct refuses it by name
  r = run(common + "--model gan --epochs 1 --precision bf16 --out " + path("m-gan"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(path("m-gan") + "/config.json")).at("precision"), "bf16");
  m = read_metrics(path("m-gan"));
  EXPECT_EQ(m.back().at("phase"), "gan");
  EXPECT_TRUE(m.back().contains("d_prior"));
  EXPECT_FALSE(m.back().contains("loss_prior"));
  EXPECT_TRUE(fs::exists(path("m-gan") + "/images/epoch-001-samples.png"));
  EXPECT_FALSE(fs::exists(path("m-gan") + "/images/epoch-001-reconstructions.png"));
  EXPECT_EQ(run("sample --checkpoint " + path("m-gan") + " --n 4 --out " + path("m-gan/s.png")).code, 0);
  r = run("reconstruct --checkpoint " + path("m-gan") + " --n 4 --out " + path("m-gan/r.png"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("no encoder"), std::string::npos) << r.output;

  // VAE then GAN: one run directory, both phases in metrics.jsonl, the GAN phase after epoch 1
  r = run(common + "--model vae-then-gan --epochs 3 --pretrain-epochs 1 --out " + path("m-vtg"));
  ASSERT_EQ(r.code, 0) << r.output;
  m = read_metrics(path("m-vtg"));
  ASSERT_EQ(m.size(), 18u);  // 96 / 16 = 6 steps per epoch, one line each
  EXPECT_EQ(m[5].at("phase"), "vae");
  EXPECT_EQ(m[5].at("epoch"), 0);
  EXPECT_EQ(m[6].at("phase"), "gan");
  EXPECT_EQ(m[17].at("phase"), "gan");
  EXPECT_TRUE(fs::exists(path("m-vtg") + "/images/epoch-003-samples.png"));
}

TEST_F(Cli, TrainsOnCifarCelebAAndImageFolders) {
  namespace fs = std::filesystem;
  const std::string cifar = path("cifar"), celeba = path("celeba"), folder = path("folder");
  fs::create_directories(cifar);
  for (int i = 1; i <= 5; ++i) test::write_cifar(cifar + "/data_batch_" + std::to_string(i) + ".bin", 4);
  test::write_cifar(cifar + "/test_batch.bin", 4);
  fs::create_directories(celeba);
  test::write_celeba(celeba, 12);
  test::write_image(folder + "/a/wide.png", 50, 20);
  test::write_image(folder + "/a/small.jpg", 9, 9);
  test::write_image(folder + "/b/tall.png", 16, 40);
  test::write_image(folder + "/b/big.jpg", 120, 100);
  std::ofstream(folder + "/b/corrupt.png") << "not an image";
  const std::string common = " --batch-size 4 --threads 2 --grid-size 4 ";
  struct Case {
    std::string name, args;
    int64_t channels, size;
  };
  const std::vector<Case> cases = {
      {"cifar10", "--dataset cifar10 --data-dir " + cifar, 3, 32},
      {"celeba", "--dataset celeba --data-dir " + celeba + " --image-size 32 --flip", 3, 32},
      // --val-fraction 0: five files, one corrupt, so a held-out one could be the corrupt one
      {"folder", "--dataset folder --data-dir " + folder + " --channels 1 --image-size 16 --val-fraction 0", 1, 16},
  };
  // every model on every dataset kind
  for (const auto& c : cases) {
    for (const std::string model : {"vaegan", "vae", "gan", "vae-then-gan"}) {
      const std::string out = path("d-" + c.name + "-" + model);
      const std::string epochs = model == "vae-then-gan" ? " --epochs 2 " : " --epochs 1 ";
      Result r = run("train --model " + model + " " + c.args + common + epochs + "--out " + out);
      ASSERT_EQ(r.code, 0) << c.name << " " << model << "\n" << r.output;
      std::ifstream cf(out + "/config.json");
      const nlohmann::json config = nlohmann::json::parse(cf);
      EXPECT_EQ(config.at("model").at("channels"), c.channels) << c.name;
      r = run("sample --checkpoint " + out + " --n 2 --out " + out + "/s.npy");
      ASSERT_EQ(r.code, 0) << c.name << " " << model << "\n" << r.output;
      EXPECT_EQ(read_npy(out + "/s.npy").sizes(), (std::vector<int64_t>{2, c.size, c.size, c.channels}));
      if (model == "gan") continue;
      r = run("reconstruct --checkpoint " + out + " --n 3 --out " + out + "/r.npy");
      ASSERT_EQ(r.code, 0) << c.name << " " << model << "\n" << r.output;
      EXPECT_EQ(read_npy(out + "/r.npy").sizes(), (std::vector<int64_t>{3, c.size, c.size, c.channels})) << c.name;
    }
  }
  // The folder's corrupt file was skipped during training with one warning naming it.
  Result again =
      run("train --dataset folder --data-dir " + folder + " --channels 1 --image-size 16 --val-fraction 0 --model vae" +
          common + "--out " + path("d-folder2"));
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("skipping unreadable image"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("corrupt.png"), std::string::npos) << again.output;
}

TEST_F(Cli, EvalClassifierInterpolateAndAttributeTools) {
  const std::string run_dir = path("tools-vae");
  Result r = run("train --model vae --arch mlp28 --latent-dim 8 --dataset mnist --data-dir " + data() +
                 " --epochs 1 --batch-size 16 --threads 2 --out " + run_dir);
  ASSERT_EQ(r.code, 0) << r.output;
  // loss curves: written by train after each epoch, and for several runs by `vaegan plot`
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    EXPECT_TRUE(std::filesystem::exists(run_dir + "/plots/losses.png"));
    r = run("plot " + run_dir + " " + run_dir + " --out " + path("curves.png"));
    ASSERT_EQ(r.code, 0) << r.output;
    int w = 0, h = 0, c = 0;
    stbi_uc* px = stbi_load(path("curves.png").c_str(), &w, &h, &c, 0);
    ASSERT_NE(px, nullptr);
    stbi_image_free(px);
    EXPECT_GT(w, 100);
  }
  r = run("plot " + path("nowhere") + " --out " + path("curves.png"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("nowhere"), std::string::npos) << r.output;
  // classifier + eval
  r = run("classifier train --dataset mnist --data-dir " + data() +
          " --image-size 16 --epochs 1 --batch-size 16 --out " + path("cls"));
  ASSERT_EQ(r.code, 0) << r.output;
  r = run("eval --checkpoint " + run_dir + " --classifier " + path("cls") + " --iw-samples 3 --n-samples 20 --out " +
          path("eval.json"));
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream ef(path("eval.json"));
  const nlohmann::json e = nlohmann::json::parse(ef);
  EXPECT_EQ(e.at("reconstruction").at("images"), 40);
  EXPECT_GT(e.at("reconstruction").at("psnr_db").at("mean").get<double>(), 0.0);
  EXPECT_EQ(e.at("likelihood").at("iw_samples"), 3);
  EXPECT_LT(e.at("likelihood").at("elbo").at("nats_per_image").get<double>(), 0.0);
  EXPECT_EQ(e.at("samples").at("extractor").at("kind"), "vaegan-classifier");
  EXPECT_EQ(e.at("samples").at("prior_samples"), 20);
  EXPECT_GE(e.at("samples").at("frechet_distance").get<double>(), 0.0);
  const double agreement = e.at("reconstruction").at("class_agreement").get<double>();
  EXPECT_TRUE(agreement >= 0 && agreement <= 1 && std::abs(agreement * 40 - std::round(agreement * 40)) < 1e-9)
      << agreement;  // a share of the 40 test images
  // a user-supplied TorchScript feature extractor (scripted with the build's Python torch, which matches its LibTorch)
  const std::string script = path("features.pt");
  if (std::system((std::string(VAEGAN_PYTHON) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0) {
    ASSERT_EQ(std::system((std::string(VAEGAN_PYTHON) + " " + std::string(VAEGAN_SOURCE_DIR) +
                           "/tests/reference/make_features.py " + script)
                              .c_str()),
              0);
    r = run("eval --checkpoint " + run_dir + " --features " + script + " --n-samples 20 --out " + path("eval2.json"));
    ASSERT_EQ(r.code, 0) << r.output;
    std::ifstream ef2(path("eval2.json"));
    const nlohmann::json e2 = nlohmann::json::parse(ef2);
    EXPECT_EQ(e2.at("samples").at("extractor").at("kind"), "torchscript");
    EXPECT_GE(e2.at("samples").at("frechet_distance").get<double>(), 0.0);
    EXPECT_FALSE(e2.at("reconstruction").contains("class_agreement"));  // no classifier, no classes
  }
  r = run("eval --checkpoint " + run_dir + " --features " + path("no-such.pt") + " --out " + path("eval3.json"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("no-such.pt"), std::string::npos) << r.output;
  // interpolate: prior pairs, test indices, image files
  ASSERT_EQ(run("interpolate --checkpoint " + run_dir + " --steps 5 --rows 3 --seed 1 --out " + path("i.npy")).code, 0);
  EXPECT_EQ(read_npy(path("i.npy")).sizes(), (std::vector<int64_t>{15, 28, 28, 1}));
  ASSERT_EQ(run("interpolate --checkpoint " + run_dir + " --steps 4 --index 0 7 --slerp --out " + path("j.npy")).code,
            0);
  EXPECT_EQ(read_npy(path("j.npy")).sizes(), (std::vector<int64_t>{4, 28, 28, 1}));
  test::write_image(path("a.png"), 30, 20);
  test::write_image(path("b.png"), 28, 28);
  r = run("interpolate --checkpoint " + run_dir + " --steps 3 --from " + path("a.png") + " --to " + path("b.png") +
          " --out " + path("k.png"));
  EXPECT_EQ(r.code, 0) << r.output;
  r = run("interpolate --checkpoint " + run_dir + " --steps 3 --from " + path("none.png") + " --to " + path("b.png") +
          " --out " + path("k.png"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("none.png"), std::string::npos) << r.output;
  // attribute vectors from classes, then applied at three strengths
  r = run("attribute compute --checkpoint " + run_dir + " --attribute class=3 --out " + path("v.npy"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_npy(path("v.npy")).sizes(), (std::vector<int64_t>{8}));
  r = run("attribute compute --checkpoint " + run_dir + " --from-class 1 --to-class 2 --out " + path("w.npy"));
  ASSERT_EQ(r.code, 0) << r.output;
  r = run("attribute apply --checkpoint " + run_dir + " --vector " + path("v.npy") +
          " --n 4 --strengths -1,0,2 --out " + path("edit.npy"));
  ASSERT_EQ(r.code, 0) << r.output;
  const torch::Tensor edit = read_npy(path("edit.npy"));
  EXPECT_EQ(edit.sizes(), (std::vector<int64_t>{16, 28, 28, 1}));  // 4 rows: original + 3 strengths
  // strength 0 decodes the posterior mean: the reconstruction
  ASSERT_EQ(run("reconstruct --checkpoint " + run_dir + " --n 4 --out " + path("rec.npy")).code, 0);
  EXPECT_TRUE(
      torch::equal(edit.index({torch::indexing::Slice(2, torch::indexing::None, 4)}), read_npy(path("rec.npy"))));
  // errors name the culprit
  r = run("attribute compute --checkpoint " + run_dir + " --attribute Smiling --out " + path("s.npy"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("class=NAME"), std::string::npos) << r.output;
  r = run("attribute compute --checkpoint " + run_dir + " --attribute class=Zebra --out " + path("s.npy"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("Zebra"), std::string::npos) << r.output;
  r = run("attribute apply --checkpoint " + run_dir + " --vector " + path("i.npy") + " --out " + path("e.png"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("latent size is 8"), std::string::npos) << r.output;
  r = run("attribute apply --checkpoint " + run_dir + " --vector " + path("v.npy") + " --strengths 1,x --out " +
          path("e.png"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--strengths"), std::string::npos) << r.output;
}

TEST_F(Cli, AttributeComputeReadsTheAttributesOfTheDataDirItIsGiven) {
  // A CelebA run whose data folder moved after training: --data-dir names the new place, and the
  // attribute names must come from there too (they were read from the training run's folder).
  namespace fs = std::filesystem;
  const std::string before = path("celeba-before-move"), after = path("celeba-after-move"), out = path("attr-run");
  fs::create_directories(before);
  test::write_celeba(before, 12);
  Result r = run("train --model vae --dataset celeba --data-dir " + before +
                 " --image-size 32 --latent-dim 6 --batch-size 4 --epochs 1 --threads 2 --grid-size 4 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  fs::rename(before, after);
  r = run("attribute compute --checkpoint " + out + " --attribute Smiling --data-dir " + after + " --out " +
          path("smiling.npy"));
  ASSERT_EQ(r.code, 0) << r.output;
  const torch::Tensor v = read_npy(path("smiling.npy"));
  EXPECT_EQ(v.numel(), 6);
  EXPECT_TRUE(torch::isfinite(v).all().item<bool>());
  // training split = partition 0 = images 0, 3, 6, 9; Smiling = the even ones
  EXPECT_NE(r.output.find("2 with, 2 without"), std::string::npos) << r.output;
  r = run("attribute compute --checkpoint " + out + " --attribute Frowning --data-dir " + after + " --out " +
          path("frowning.npy"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("Frowning"), std::string::npos) << r.output;
}

TEST_F(Cli, SigintCheckpointsAndResumeFinishesTheRun) {
  const std::string out = path("interrupted");
  // The conv VAE (~40 ms a step), not the MLP: the MLP's 120 steps could all finish between the
  // first metrics line and the signal on a loaded machine.
  const std::string train = std::string(VAEGAN_BINARY) + " train --model vae --dataset mnist --data-dir " + data() +
                            " --batch-size 8 --epochs 10 --log-every 1 --threads 1 --out " + out;
  // Start, wait for the first metrics line, then Ctrl-C.
  const std::string script = train + " > " + out + ".log 2>&1 & pid=$!; while [ ! -s " + out +
                             "/metrics.jsonl ]; do sleep 0.05; done; kill -INT $pid; wait $pid; exit $?";
  const int status = std::system(("sh -c '" + script + "'").c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  std::ifstream log(out + ".log");
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("interrupted by SIGINT"), std::string::npos) << text;
  EXPECT_NE(text.find("vaegan train --resume " + out), std::string::npos) << text;
  Result r = run("train --resume " + out + " --threads 1");
  ASSERT_EQ(r.code, 0) << r.output;
  std::vector<nlohmann::json> m = read_metrics(out);
  EXPECT_EQ(m.back().at("step"), 120);  // 10 epochs of 96 / 8
  for (size_t i = 0; i < m.size(); ++i) ASSERT_EQ(m[i].at("step"), static_cast<int64_t>(i) + 1) << "one line per step";
  r = run("train --resume " + path("never-trained") + " --threads 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("never-trained"), std::string::npos) << r.output;
}

TEST_F(Cli, DivergenceStopsAfterMaxBadStepsWithoutUpdating) {
  // beta = 1e300 is inf once it multiplies the fp32 KL: every gradient is Inf/NaN.
  const std::string out = path("diverged");
  Result r = run("train --model vae --arch mlp28 --dataset mnist --data-dir " + data() +
                 " --batch-size 8 --epochs 1 --log-every 100 --threads 1 --beta 1e300 --max-bad-steps 3 --out " + out);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("--max-bad-steps 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no checkpoint of " + out + " was written yet"), std::string::npos) << r.output;
  const std::vector<nlohmann::json> m = read_metrics(out);
  ASSERT_EQ(m.size(), 1u);  // the line of the step that stopped it
  EXPECT_EQ(m[0].at("step"), 3);
  EXPECT_EQ(m[0].at("bad_steps"), 3);
  EXPECT_FALSE(std::filesystem::exists(out + "/checkpoints/last"));
}

TEST_F(Cli, FailedCheckpointWriteLeavesNoHalfCheckpoint) {
  // A file-size limit makes every write past 1 MiB fail with EFBIG, as a full disk fails with
  // ENOSPC: the model file of the first checkpoint (~3 MB) cannot be written.
  const std::string out = path("disk-full");
  const std::string train = std::string(VAEGAN_BINARY) + " train --model vae --arch mlp28 --dataset mnist --data-dir " +
                            data() + " --batch-size 8 --epochs 1 --threads 1 --out " + out;
  const std::string script = "ulimit -f 1024; trap \"\" XFSZ; " + train + " > " + out + ".log 2>&1";
  const int status = std::system(("bash -c '" + script + "'").c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::ifstream log(out + ".log");
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find(out + "/checkpoints"), std::string::npos) << text;
  // nothing that looks like a checkpoint was left behind: no step directory, no temporary one, no `last`
  if (std::filesystem::exists(out + "/checkpoints")) {
    for (const auto& e : std::filesystem::directory_iterator(out + "/checkpoints")) ADD_FAILURE() << e.path();
  }
  Result r = run("train --resume " + out + " --threads 1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(out), std::string::npos) << r.output;
}

TEST_F(Cli, HelpShowsDefaults) {
  Result r = run("train --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("--gamma"), std::string::npos);
  EXPECT_NE(r.output.find("0.01"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace vaegan
