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
#include "vaegan/io/npy.h"

namespace vaegan {
namespace {

struct Result {
  int code;
  std::string output;  // stdout and stderr
};

Result run(const std::string& args) {
  const std::string cmd = std::string(VAEGAN_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

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

TEST_F(Cli, TrainWritesTheWholeRunDirectoryThenSampleAndReconstructUseIt) {
  namespace fs = std::filesystem;
  const std::string runs = path("run");
  Result r = run("train --dataset fashion-mnist --data-dir " + data() +
                 " --epochs 2 --batch-size 16 --log-every 2 --grid-size 16 --threads 2 --out " + runs);
  ASSERT_EQ(r.code, 0) << r.output;

  // config.json: the resolved config
  std::ifstream cf(runs + "/config.json");
  const nlohmann::json config = nlohmann::json::parse(cf);
  EXPECT_EQ(config.at("format_version"), 1);
  EXPECT_EQ(config.at("model").at("arch"), "small32");
  EXPECT_EQ(config.at("batch_size"), 16);
  EXPECT_EQ(config.at("data_dir"), data());

  // metrics.jsonl: 96 / 16 = 6 steps per epoch, a line every 2 steps
  std::ifstream mf(runs + "/metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(mf, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 6u);
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
      {base + "--epochs 0", "--epochs"},
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

TEST_F(Cli, HelpShowsDefaults) {
  Result r = run("train --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("--gamma"), std::string::npos);
  EXPECT_NE(r.output.find("0.01"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace vaegan
