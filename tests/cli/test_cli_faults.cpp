// The binary under abuse: two writers on one run directory, full disks, unwritable stderr,
// edited configurations, failed starts. Each test runs real processes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../test_util.h"
#include "cli_util.h"
#include "vaegan/core/runtime.h"

namespace vaegan {
namespace {
namespace fs = std::filesystem;
using test::Result;
using test::run_vaegan;

class CliFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "data");
    test::write_tiny_idx_dataset(dir_ / "data", 96, 40);
  }
  std::string path(const std::string& p) const { return dir_ / p; }
  /// `train` flags for the tiny dataset; `extra` adds or overrides.
  std::string train_args(const std::string& out, const std::string& extra) const {
    return "train --dataset mnist --data-dir " + path("data") + " --batch-size 16 --threads 1 --grid-size 4 " + extra +
           " --out " + out;
  }
  /// A finished one-epoch run of the MLP VAE (the fastest model) in `out`.
  void train_small(const std::string& out) const {
    const Result r = run_vaegan(train_args(out, "--model vae --arch mlp28 --epochs 1 --precision fp32"));
    ASSERT_EQ(r.code, 0) << r.output;
  }
  /// Polls `done` every 50 ms for up to `seconds`; returns whether it became true.
  static bool wait_for(const std::function<bool()>& done, double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done();
  }
  test::TempDir dir_;
};

/// Whether this process can take `dir/.lock` (i.e. no process holds it); releases it at once.
bool lock_is_free(const std::string& dir) {
  const int fd = ::open((dir + "/.lock").c_str(), O_RDWR);
  if (fd < 0) return true;
  const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);
  return free;
}

TEST_F(CliFaults, OneWriterPerRunDirectory) {
  const std::string run = path("shared-run");
  // A long run in the background; $! is its PID.
  const std::string start = std::string(VAEGAN_BINARY) + " " +
                            train_args(run, "--epochs 1000 --checkpoint-every 1 --precision fp32") + " > " + run +
                            ".log 2>&1 & echo $!";
  FILE* pipe = popen(("bash -c '" + start + "'").c_str(), "r");
  long pid = 0;
  ASSERT_EQ(fscanf(pipe, "%ld", &pid), 1);
  pclose(pipe);
  ASSERT_GT(pid, 0);
  struct Killer {
    long pid;
    ~Killer() { ::kill(static_cast<pid_t>(pid), SIGKILL); }
  } killer{pid};
  ASSERT_TRUE(wait_for([&] { return fs::exists(run + "/checkpoints/last"); }, 120))
      << "the first run never checkpointed";

  // A second writer is refused, naming the directory and the holder; the first run's files stay.
  for (const std::string& second : {train_args(run, "--epochs 1 --overwrite"), std::string("train --resume " + run)}) {
    const Result r = run_vaegan(second);
    EXPECT_EQ(r.code, 2) << second << "\n" << r.output;
    EXPECT_NE(r.output.find(run + " is being written by another vaegan process (PID " + std::to_string(pid) + ")"),
              std::string::npos)
        << r.output;
    EXPECT_TRUE(fs::exists(run + "/config.json"));
  }
  // Readers keep working.
  const Result sample = run_vaegan("sample --checkpoint " + run + " --n 4 --out " + path("s.png"));
  EXPECT_EQ(sample.code, 0) << sample.output;

  // SIGKILL: the kernel releases the lock; the directory can be taken over.
  ::kill(static_cast<pid_t>(pid), SIGKILL);
  ASSERT_TRUE(wait_for([&] { return lock_is_free(run); }, 30));
  const Result again = run_vaegan(train_args(run, "--model vae --arch mlp28 --epochs 1 --overwrite"));
  EXPECT_EQ(again.code, 0) << again.output;
}

TEST_F(CliFaults, FailedPngWriteIsAnErrorAndLeavesNoFile) {
  train_small(path("run"));
  // 20 KiB file-size limit, SIGXFSZ ignored: a write past it fails with EFBIG as on a full disk.
  const Result r = run_vaegan("sample --checkpoint " + path("run") + " --n 1000 --out " + path("big.png"),
                              "trap '' XFSZ; ulimit -f 20;");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("big.png"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("File too large"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("big.png")));
  EXPECT_FALSE(fs::exists(path(".big.png.tmp")));
}

TEST_F(CliFaults, UnwritableStderrStillGivesTheExitCode) {
  for (const std::string prefix : {"exec 2>/dev/full;", "exec 2>&-;"}) {
    Result r = run_vaegan("sample --checkpoint " + path("nowhere") + " --n 4 --out " + path("x.png"), prefix);
    EXPECT_EQ(r.code, 2) << prefix << "\n" << r.output;
    r = run_vaegan("sample --n 0", prefix);  // a CLI11 parse error
    EXPECT_EQ(r.code, 2) << prefix << "\n" << r.output;
  }
}

TEST_F(CliFaults, ResumeRefusesAConfigThatNoLongerMatchesItsCheckpoint) {
  const std::string run = path("run");
  train_small(run);
  const nlohmann::json original = nlohmann::json::parse(std::ifstream(run + "/config.json"));
  for (const auto& [key, value] : {std::make_pair(std::string("lr"), nlohmann::json(0.001)),
                                   std::make_pair(std::string("model"), nlohmann::json::object())}) {
    nlohmann::json edited = original;
    if (key == "model") {
      edited["model"]["latent_dim"] = 7;
    } else {
      edited[key] = value;
    }
    std::ofstream(run + "/config.json") << edited.dump(2);
    const Result r = run_vaegan("train --resume " + run);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("differs from the copy in"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("key '" + key + "'"), std::string::npos) << r.output;
  }
}

TEST_F(CliFaults, WeightsOfAnotherArchitectureAreNamedAtLoad) {
  // A format-1 checkpoint (no checksums) whose config.json was edited after training.
  const std::string run = path("run");
  train_small(run);
  std::string last;
  std::ifstream(run + "/checkpoints/last") >> last;
  const std::string ck = run + "/checkpoints/" + last;
  fs::remove(ck + "/checksums.json");
  nlohmann::json state = nlohmann::json::parse(std::ifstream(ck + "/state.json"));
  state["format_version"] = 1;
  std::ofstream(ck + "/state.json") << state.dump();
  nlohmann::json config = nlohmann::json::parse(std::ifstream(ck + "/config.json"));
  config["model"]["latent_dim"] = 7;
  std::ofstream(ck + "/config.json") << config.dump();
  const Result r = run_vaegan("sample --checkpoint " + ck + " --n 4 --out " + path("x.png"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("model.pt"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("do not belong together"), std::string::npos) << r.output;
}

TEST_F(CliFaults, FailedStartLeavesNothingThatBlocksTheNextStart) {
  const std::string folder = path("unreadable");
  for (const char* split : {"train", "test"}) {
    fs::create_directories(folder + "/" + split + "/c");
    for (int i = 0; i < 4; ++i) std::ofstream(folder + "/" + split + "/c/" + std::to_string(i) + ".png") << "junk";
  }
  const std::string args =
      "train --dataset folder --data-dir " + folder + " --batch-size 2 --epochs 1 --out " + path("run");
  for (int attempt = 0; attempt < 2; ++attempt) {
    const Result r = run_vaegan(args);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_EQ(r.output.find("already holds a run"), std::string::npos) << "attempt " << attempt << "\n" << r.output;
    EXPECT_FALSE(fs::exists(path("run/config.json")));
    EXPECT_FALSE(fs::exists(path("run/checkpoints")));
  }
}

TEST_F(CliFaults, ResumeRemovesUnfinishedCheckpointsAndPlotReadsALiveLog) {
  const std::string run = path("run");
  train_small(run);
  fs::create_directories(run + "/checkpoints/.tmp-step-0000099");                      // a writer killed mid-checkpoint
  std::ofstream(run + "/metrics.jsonl", std::ios::app) << R"({"step": 7, "loss_pri)";  // a line being written
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    const Result plot = run_vaegan("plot " + run + " --out " + path("curves.png"));
    EXPECT_EQ(plot.code, 0) << plot.output;
  }
  const Result r = run_vaegan("train --resume " + run);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(fs::exists(run + "/checkpoints/.tmp-step-0000099"));
}

TEST_F(CliFaults, GnuplotMessagesStayOutOfTheOutput) {
  // One logged step: gnuplot warns about an empty x range; none of it may reach stdout.
  const Result r = run_vaegan(train_args(path("run"), "--model vae --arch mlp28 --max-steps 1"), "exec 2>/dev/null;");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.output, "") << "stdout of train:\n" << r.output;
}

/// A folder of twelve 16×16 PNGs in classes a and b, plus a/bad.png that is not an image.
std::string write_folder_with_a_bad_image(const std::string& dir) {
  for (int i = 0; i < 6; ++i) {
    test::write_image(dir + "/a/" + std::to_string(i) + ".png", 16, 16);
    test::write_image(dir + "/b/" + std::to_string(i) + ".png", 16, 16);
  }
  std::ofstream(dir + "/a/bad.png") << "junk";
  // --val-fraction 0: both splits are every file, so the one held-out image cannot be the bad one
  return "train --dataset folder --data-dir " + dir + " --model vae --image-size 16 --threads 1 --val-fraction 0 ";
}

TEST_F(CliFaults, UnreadableImageIsWarnedAboutOnce) {
  // No train/ and test/: both splits are the same files, and the grids read the test split.
  const std::string train = write_folder_with_a_bad_image(path("folder"));
  const Result r = run_vaegan(train + "--batch-size 4 --epochs 2 --out " + path("run"));
  EXPECT_EQ(r.code, 0) << r.output;
  size_t warnings = 0;
  for (size_t at = r.output.find("skipping unreadable image"); at != std::string::npos;
       at = r.output.find("skipping unreadable image", at + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 1u) << r.output;
}

TEST_F(CliFaults, AnEpochShortenedByUnreadableImagesIsLogged) {
  // 14 files, 2 of them unreadable, batches of 7: an epoch of 2 steps gets 1.
  const std::string train = write_folder_with_a_bad_image(path("folder"));
  std::ofstream(path("folder/b/bad2.png")) << "junk";
  const Result r = run_vaegan(train + "--batch-size 7 --epochs 1 --out " + path("run"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("epoch 1 ended after 1 of 2 steps: 2 training images could not be read"), std::string::npos)
      << r.output;
}

TEST_F(CliFaults, LoaderThreadsThatCannotStartLeaveTheirShareToTheOthers) {
  // 1 GiB stacks in a 12 GiB address space: only about ten threads can start. fp32: in bf16 the
  // first forward pass has oneDNN generate its matmul code while the decoding threads hold the
  // address space, and Debian's oneDNN 2.6.3 (libdnnl2) crashes in __itt_pt_write when that mmap
  // fails (seen in about 1 run in 3 with two such runs side by side; never in fp32 in 20).
  const std::string train = write_folder_with_a_bad_image(path("folder"));
  const Result r =
      run_vaegan(train + "--batch-size 4 --epochs 1 --loader-threads 64 --precision fp32 --out " + path("run"),
                 "ulimit -s 1000000; ulimit -v 12000000;");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("--loader-threads 64: only"), std::string::npos) << r.output;
}

TEST_F(CliFaults, AddressSpaceLimitsEndTheRunWithAMessage) {
  // From far too little (refused before training) to barely enough: exit 0, or 1 with a message
  // that names the limit; never a crash (-1: killed by a signal) or a hang (124: timeout). The
  // limits are above the address space this test process (linked like vaegan) occupies, which
  // differs between LibTorch builds (a CUDA build maps several GB of libraries at start-up).
  const int64_t base = address_space_used() / (1024 * 1024);
  for (const int64_t mib : {base + 200, base + 450, base + 650, base + 850}) {
    const std::string prefix = "ulimit -v " + std::to_string(mib * 1024) + "; timeout 300";
    const Result r =
        run_vaegan(train_args(path("run-" + std::to_string(mib)), "--max-steps 2 --precision fp32"), prefix);
    EXPECT_TRUE(r.code == 0 || r.code == 1) << mib << " MiB: exit " << r.code << "\n" << r.output;
    if (r.code == 1) EXPECT_NE(r.output.find("ulimit -v"), std::string::npos) << mib << " MiB:\n" << r.output;
  }
}

TEST_F(CliFaults, ResumeSaysWhichFlagsItIgnores) {
  const std::string run = path("run");
  train_small(run);
  const Result r = run_vaegan("train --resume " + run + " --epochs 5 --max-steps 3");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("ignoring --epochs, --max-steps"), std::string::npos) << r.output;
}

TEST_F(CliFaults, FlagRangesReadAsUsersReadThem) {
  struct Case {
    std::string args, must_contain;
  };
  const std::vector<Case> cases = {
      {train_args(path("r1"), "--latent-dim 100000"), "--latent-dim: must be in 0..4096"},
      {train_args(path("r2"), "--r1-gamma 1 --r1-interval 0"), "--r1-interval: must be >= 1"},
      {train_args(path("a1"), "--augment color,colour"), "--augment: unknown transform 'colour'"},
      {train_args(path("a2"), "--augment cutout --augment-p 1.5"), "--augment-p: must be in [0, 1]"},
      {train_args(path("l1"), "--label-smoothing 0.5"), "--label-smoothing: must be in [0, 0.5)"},
      {"sample --checkpoint " + path("none") + " --n 4 --out " + path("x.png") + " --seed -1",
       "--seed: must be an integer >= 0, got '-1'"},
      {"eval --checkpoint " + path("none") + " --out " + path("e.json") + " --n-test -5", "must be an integer >= 0"},
      {"sample --checkpoint " + path("none") + " --n 4 --out " + path("x.png") + " --threads -2", "--threads"},
  };
  for (const auto& c : cases) {
    const Result r = run_vaegan(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.must_contain), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("179769"), std::string::npos) << "DBL_MAX in full:\n" << r.output;
    EXPECT_LT(r.output.size(), 400u) << r.output;
  }
}

TEST_F(CliFaults, ThreadsBeyondFourPerCoreAreCapped) {
  const Result r =
      run_vaegan("train --dataset mnist --data-dir " + path("data") +
                 " --model vae --arch mlp28 --batch-size 16 --max-steps 2 --threads 1000 --out " + path("run"));
  EXPECT_EQ(r.code, 0) << r.output;
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  EXPECT_NE(r.output.find("--threads 1000: more than 4 per core of the " + std::to_string(cores) + " here"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("with " + std::to_string(4 * cores) + " threads"), std::string::npos) << r.output;
}

/// Peak resident memory, in MiB, of `vaegan ARGS` (GNU time's %M).
double peak_rss_mib(const std::string& args, const std::string& log) {
  const Result r = run_vaegan(args, "/usr/bin/time -f %M -o " + log);
  EXPECT_EQ(r.code, 0) << r.output;
  double kib = 0;
  std::ifstream(log) >> kib;
  return kib / 1024;
}

TEST_F(CliFaults, SampleMemoryDoesNotGrowWithTheActivationsOfEveryImage) {
  if (std::system("test -x /usr/bin/time") != 0) GTEST_SKIP() << "GNU time (Debian package time) is missing";
  const std::string run = path("run");
  train_small(run);
  const double few =
      peak_rss_mib("sample --checkpoint " + run + " --n 256 --threads 1 --out " + path("few.npy"), path("few.time"));
  const double many = peak_rss_mib("sample --checkpoint " + run + " --n 20000 --threads 1 --out " + path("many.npy"),
                                   path("many.time"));
  // 19,744 more samples: 15 MiB more of 8-bit output. Decoding them in one pass held every
  // sample's activations (about 18 KiB each for this MLP: 350 MiB more, measured).
  EXPECT_LT(many - few, 100) << "peak RSS " << few << " MiB for 256 samples, " << many << " MiB for 20000";
}

TEST_F(CliFaults, DeviceFlagOnEveryCommandRefusesWhatIsNotThere) {
  train_small(path("run"));
  // a name that is no device: exit 2 naming the flag, before anything is read or written
  for (const std::string cmd :
       {"sample --checkpoint " + path("run") + " --out " + path("s.png"),
        "reconstruct --checkpoint " + path("run") + " --out " + path("r.png"),
        "eval --checkpoint " + path("run") + " --out " + path("e.json"), train_args(path("new"), "--epochs 1")}) {
    const Result r = run_vaegan(cmd + " --device tpu");
    EXPECT_EQ(r.code, 2) << cmd << "\n" << r.output;
    EXPECT_NE(r.output.find("--device tpu: unknown device"), std::string::npos) << r.output;
  }
  EXPECT_FALSE(fs::exists(path("s.png")));
  EXPECT_FALSE(fs::exists(path("new")));
  // a GPU that is not there (CI machines have none): exit 2 with the reason
  if (!torch::cuda::is_available()) {
    const Result r = run_vaegan("sample --checkpoint " + path("run") + " --out " + path("s.png") + " --device cuda:0");
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("--device cuda:0: "), std::string::npos) << r.output;
  }
  // --device cpu and --deterministic work, and --resume accepts them without a warning
  const Result s = run_vaegan("sample --checkpoint " + path("run") + " --out " + path("s.png") +
                              " --device cpu --deterministic --n 4");
  EXPECT_EQ(s.code, 0) << s.output;
  const Result r = run_vaegan("train --resume " + path("run") + " --device cpu --deterministic");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.find("ignoring"), std::string::npos) << r.output;
}

TEST_F(CliFaults, ConfigFileIsStrictAndFlagsOverrideIt) {
  auto write = [this](const std::string& name, const std::string& text) {
    std::ofstream(path(name)) << text;
    return path(name);
  };
  struct Case {
    std::string json, must_contain;
  };
  const std::vector<Case> bad = {
      {R"({"lr_encodr": 0.001})", "unknown key 'lr_encodr'"},
      {R"({"model": {"latnet_dim": 8}})", "model: unknown key 'latnet_dim'"},
      {R"({"batch_size": "sixteen"})", "batch_size"},
      {R"({"optimizer": "sgd"})", "optimizer"},
      {R"([1, 2])", "expected a JSON object"},
      {R"({"epochs": 1, "lr": 2.0})", "--lr: must be in (0, 1)"},
  };
  for (const auto& c : bad) {
    const Result r = run_vaegan(train_args(path("bad"), "--config " + write("bad.json", c.json)));
    EXPECT_EQ(r.code, 2) << c.json << "\n" << r.output;
    EXPECT_NE(r.output.find(c.must_contain), std::string::npos) << c.json << "\n" << r.output;
    EXPECT_FALSE(fs::exists(path("bad"))) << c.json;
  }
  // the file's values, with the flags given beside it on top
  const std::string cfg =
      write("good.json", R"({"epochs": 3, "batch_size": 32, "optimizer": "adam", "lr_discriminator": 3e-05,
                            "model": {"type": "vae", "arch": "mlp28"}, "precision": "fp32"})");
  const Result r = run_vaegan("train --config " + cfg + " --dataset mnist --data-dir " + path("data") +
                              " --epochs 1 --threads 1 --grid-size 4 --out " + path("a"));
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json saved = nlohmann::json::parse(std::ifstream(path("a/config.json")));
  EXPECT_EQ(saved.at("epochs"), 1);       // flag
  EXPECT_EQ(saved.at("batch_size"), 32);  // file
  EXPECT_EQ(saved.at("optimizer"), "adam");
  EXPECT_EQ(saved.at("lr_discriminator"), 3e-05);
  EXPECT_EQ(saved.at("model").at("type"), "vae");
  // a run's own config.json repeats it: the same metrics, step for step
  const Result again = run_vaegan("train --config " + path("a/config.json") + " --out " + path("b"));
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_FALSE(test::metric_lines(path("a")).empty());
  EXPECT_EQ(test::metric_lines(path("a")), test::metric_lines(path("b")));
}

TEST_F(CliFaults, RecipeOriginalSetsTheAuthorsSettingsAndFlagsOverrideIt) {
  const Result bad = run_vaegan(train_args(path("bad"), "--recipe authors"));
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--recipe"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(path("bad")));
  // small32 and batch 16 over the recipe's paper64 and 64; 4 steps with an annealing period of 2
  const Result r = run_vaegan(train_args(path("run"),
                                         "--recipe original --arch small32 --max-steps 4 "
                                         "--lr-anneal-period 2 --log-every 1 --precision fp32"));
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json saved = nlohmann::json::parse(std::ifstream(path("run/config.json")));
  EXPECT_EQ(saved.at("model").at("arch"), "small32");  // flags
  EXPECT_EQ(saved.at("batch_size"), 16);
  EXPECT_EQ(saved.at("batch_norm"), "original");  // the recipe
  EXPECT_EQ(saved.at("init"), "original");
  EXPECT_EQ(saved.at("gan_loss"), "minimax");
  EXPECT_EQ(saved.at("equilibrium"), true);
  EXPECT_EQ(saved.at("equilibrium_skip"), "decoder");
  EXPECT_EQ(saved.at("dis_real_weight"), 0.5);
  EXPECT_EQ(saved.at("celeba_protocol"), "original");
  EXPECT_EQ(saved.at("lr_schedule"), "anneal");
  // the learning rate after each step follows the annealing of the periods done (2 steps each)
  const double lr0 = 0.025 / 64, final_ratio = 1e-5 / 0.025;
  std::vector<nlohmann::json> lines;
  for (const std::string& text : test::metric_lines(path("run"))) {
    if (!nlohmann::json::parse(text).contains("split")) lines.push_back(nlohmann::json::parse(text));
  }
  ASSERT_EQ(lines.size(), 4u);  // and one validation line at the end
  for (const nlohmann::json& line : lines) {
    const int64_t periods = line.at("step").get<int64_t>() / 2;
    const double expected = lr0 * (1 - std::pow(static_cast<double>(periods) / 250, 0.75) * (1 - final_ratio));
    EXPECT_NEAR(line.at("lr_decoder").get<double>(), expected, 1e-15) << line.dump();
    EXPECT_TRUE(line.contains("mse")) << line.dump();  // the VAE-GAN's pixel error is logged
    EXPECT_GT(line.at("mse").get<double>(), 0.0);
  }
}

}  // namespace
}  // namespace vaegan
