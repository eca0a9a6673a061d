// Data parallelism (docs/design.md, "Data parallelism"): the environment torchrun sets, the
// collectives against closed forms, two ranks against one process that averages the two
// half-batches' gradients (every model type), and `fit` across ranks: rank 0 writes, a resume at
// another world size continues at the translated position. The ranks of these tests are threads
// of this process, each with its own c10d process group over loopback TCP; the CLI tests
// (CliDistributed.*) run real processes: --nproc, torchrun, a rank killed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include "../cli/cli_util.h"
#include "../test_util.h"
#include "vaegan/core/error.h"
#include "vaegan/dist/process_group.h"
#include "vaegan/model/augment.h"
#include "vaegan/model/gan.h"
#include "vaegan/model/vae.h"
#include "vaegan/train/checkpoint.h"
#include "vaegan/train/fit.h"
#include "vaegan/train/trainer.h"

namespace vaegan {
namespace {
namespace F = torch::nn::functional;
namespace fs = std::filesystem;
using test::TempDir;

/// A TCP port free on loopback now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// Runs `body(group)` on `world` threads, each one rank of a job over loopback; rethrows the first
/// rank's exception.
void run_ranks(int world, const std::function<void(std::shared_ptr<ProcessGroup>)>& body) {
  const int port = free_port();
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        DistributedEnv env;
        env.rank = env.local_rank = r;
        env.world_size = env.local_world_size = world;
        env.master_port = port;
        body(std::make_shared<ProcessGroup>(env, ProcessGroupOptions().timeout(std::chrono::seconds(60))));
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

/// Sets environment variables for the scope of one test, restoring them after.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                             "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT"}) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(name);
    }
    for (const auto& [name, value] : vars) ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(Distributed, ReadsTorchrunsEnvironmentAndNamesABadVariable) {
  {
    ScopedEnv env({});
    EXPECT_FALSE(distributed_env_from_environment().has_value());
  }
  {
    ScopedEnv env({{"RANK", "3"},
                   {"WORLD_SIZE", "4"},
                   {"LOCAL_RANK", "1"},
                   {"LOCAL_WORLD_SIZE", "2"},
                   {"MASTER_ADDR", "10.0.0.7"},
                   {"MASTER_PORT", "29555"},
                   {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                   {"TORCHELASTIC_RESTART_COUNT", "2"}});
    const DistributedEnv e = distributed_env_from_environment().value();
    EXPECT_EQ(e.rank, 3);
    EXPECT_EQ(e.world_size, 4);
    EXPECT_EQ(e.local_rank, 1);
    EXPECT_EQ(e.local_world_size, 2);
    EXPECT_EQ(e.master_addr, "10.0.0.7");
    EXPECT_EQ(e.master_port, 29555);
    EXPECT_TRUE(e.agent_store);
    EXPECT_EQ(e.restart_count, 2);
  }
  for (const auto& [name, value] : std::vector<std::pair<const char*, const char*>>{
           {"RANK", "4"}, {"RANK", "one"}, {"MASTER_PORT", "70000"}, {"LOCAL_WORLD_SIZE", "9"}}) {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "4"}, {name, value}});
    try {
      distributed_env_from_environment();
      ADD_FAILURE() << name << "=" << value << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

TEST(Distributed, CollectivesMatchClosedForms) {
  const int world = 3;
  run_ranks(world, [&](std::shared_ptr<ProcessGroup> g) {
    const int r = g->rank();
    // rank r holds r + 1 (float32, [2, 3]) and 10 r (float64, [4]): the means are 2 and 10
    torch::Tensor a = torch::full({2, 3}, r + 1.0, torch::kFloat32), b = torch::full({4}, 10.0 * r, torch::kFloat64);
    g->all_reduce_mean({a, b});
    EXPECT_TRUE(torch::equal(a, torch::full({2, 3}, 2.0, torch::kFloat32)));
    EXPECT_TRUE(torch::equal(b, torch::full({4}, 10.0, torch::kFloat64)));
    EXPECT_EQ(g->all_reduce_sum({1.0, static_cast<double>(r)}), (std::vector<double>{3.0, 3.0}));
    EXPECT_EQ(g->any({r == 2, false}), (std::vector<bool>{true, false}));
    torch::Tensor t = torch::full({5}, static_cast<double>(r), torch::kFloat32);
    torch::Tensor steps = torch::full({1}, r, torch::kLong);
    g->broadcast({t, steps}, 1);
    EXPECT_TRUE(torch::equal(t, torch::full({5}, 1.0, torch::kFloat32)));
    EXPECT_EQ(steps.item<int64_t>(), 1);
    EXPECT_EQ(g->broadcast(r == 0 ? std::string("rank zero\0bytes", 15) : std::string()),
              std::string("rank zero\0bytes", 15));
    EXPECT_GT(g->collective_seconds(), 0.0);
  });
}

TEST(Distributed, StartUpFailureOfOneRankStopsEveryRankWithItsName) {
  std::vector<std::string> messages(2);
  run_ranks(2, [&](std::shared_ptr<ProcessGroup> g) {
    std::exception_ptr error;
    if (g->rank() == 1) error = std::make_exception_ptr(InputError("--data-dir: no such directory"));
    try {
      check_all_ranks(g.get(), error, "at start-up");
    } catch (const std::exception& e) {
      messages[static_cast<size_t>(g->rank())] = e.what();
    }
  });
  EXPECT_EQ(messages[1], "--data-dir: no such directory");
  EXPECT_NE(messages[0].find("rank 1 failed at start-up"), std::string::npos) << messages[0];
}

// ---------------------------------------------------------------- equivalence

constexpr int64_t kRankBatch = 32, kSteps = 5;

TrainConfig equivalence_config(ModelType type) {
  TrainConfig c;
  c.model.type = type;
  c.model.latent_dim = 8;
  c.batch_size = kRankBatch;
  c.seed = 21;
  c.precision = Precision::kFp32;
  c.epochs = 2;
  if (type == ModelType::kVaeThenGan) c.pretrain_epochs = 1;
  if (type == ModelType::kVaeGan) {
    // a narrow equilibrium band, so that the rule (decided from the averaged BCEs) acts
    c.equilibrium = true;
    c.equilibrium_value = 0.69;
    c.equilibrium_margin = 0.02;
    // one backward pass per network, as the reference computes them: the fused pass rounds
    // differently, and RMSprop's first steps amplify rounding in near-zero gradients
    c.fused_step = false;
    // every transform, some images left alone: each rank's rows of every parameter of the draw
    c.augment = "color,translation,cutout";
    c.augment_p = 0.7;
  }
  return c;
}

double bce(const torch::Tensor& logits, double target) {
  return F::binary_cross_entropy_with_logits(logits, torch::full_like(logits, target)).item<double>();
}

/// Sets each parameter's gradient to the mean of `grads[h][i]` over the halves h and steps
/// network `n`'s optimizer.
void apply_mean(Trainer& t, Network n, const std::vector<torch::Tensor>& params,
                const std::vector<std::vector<torch::Tensor>>& grads) {
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor sum = grads[0][i].clone();
    for (size_t h = 1; h < grads.size(); ++h) sum += grads[h][i];
    params[i].mutable_grad() = sum / static_cast<double>(grads.size());
  }
  t.optimizer(n).step();
}

std::vector<torch::Tensor> all_grads(const torch::Tensor& loss, const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> g = torch::autograd::grad({loss}, params, {}, /*retain_graph=*/true, false, true);
  for (size_t i = 0; i < g.size(); ++i) {
    if (!g[i].defined()) g[i] = torch::zeros_like(params[i]);
  }
  return g;
}

/// The reference of two ranks: one process that runs the halves `xs` of the global batch through
/// separate forwards (batch norm per half), with the halves of the global noise, averages their
/// losses (and, for the equilibrium rule, their BCEs) and their gradients, and steps each network
/// once. Returns the averaged losses {prior, llike or pixel, dis, adv}. The global batch's
/// augmentation (`config.augment`) is drawn from `ref`'s generator after the noise, real then
/// generated, and each half gets its rows, as `Trainer::draw_augments` gives each rank.
std::vector<double> reference_step(Trainer& ref, const std::vector<torch::Tensor>& xs, const torch::Tensor& eps,
                                   const torch::Tensor& z_prior) {
  const TrainConfig& c = ref.config();
  const AugmentOptions augment = parse_augment_policy(c.augment).probability(c.augment_p);
  AugmentDraw real_augment, generated_augment;
  if (augment.any() && ref.phase() != Phase::kVae) {
    const int64_t global = eps.size(0), size = xs[0].size(2);
    real_augment = draw_augment(augment, global, size, ref.generator());
    generated_augment = draw_augment(augment, global, size, ref.generator());
  }
  Model& m = ref.model();
  const auto halves = static_cast<double>(xs.size());
  const std::vector<torch::Tensor> enc = m->encoder ? m->encoder->parameters() : std::vector<torch::Tensor>{},
                                   dec = m->decoder->parameters(),
                                   dis =
                                       m->discriminator ? m->discriminator->parameters() : std::vector<torch::Tensor>{};
  std::vector<double> losses(4, 0.0);
  std::vector<std::vector<torch::Tensor>> g_enc, g_dec, g_dis;
  auto noise = [&](const torch::Tensor& all, size_t h) {
    return all.narrow(0, static_cast<int64_t>(h) * kRankBatch, kRankBatch);
  };
  auto rows = [&](const AugmentDraw& all, size_t h) {
    return all.narrow(static_cast<int64_t>(h) * kRankBatch, kRankBatch);
  };
  if (ref.phase() == Phase::kVaeGan) {
    std::vector<VaeGanLosses> ls;
    double real = 0, generated = 0;
    for (size_t h = 0; h < xs.size(); ++h) {
      const VaeGanForward f = vae_gan_forward(m, xs[h], noise(eps, h), noise(z_prior, h), c.batch_norm, c.dis_on_recon,
                                              rows(real_augment, h), rows(generated_augment, h));
      ls.push_back(vae_gan_losses(f, ref.loss_options()));
      real += bce(f.real.logits, 1) / halves;
      generated += bce(f.prior.logits, 0) / halves;
      const std::vector<torch::Tensor> values = {ls.back().prior, ls.back().llike, ls.back().dis, ls.back().adv};
      for (size_t k = 0; k < 4; ++k) losses[k] += values[k].item<double>() / halves;
    }
    const auto [update_dis, decoder_adv] = equilibrium_gate(real, generated, c.equilibrium_value, c.equilibrium_margin);
    for (const VaeGanLosses& l : ls) {
      g_enc.push_back(all_grads(c.beta * l.prior + l.llike, enc));
      g_dec.push_back(all_grads(decoder_adv ? c.gamma * l.llike + l.adv : c.gamma * l.llike, dec));
      g_dis.push_back(all_grads(l.dis, dis));
    }
    apply_mean(ref, Network::kEncoder, enc, g_enc);
    apply_mean(ref, Network::kDecoder, dec, g_dec);
    if (update_dis) apply_mean(ref, Network::kDiscriminator, dis, g_dis);
  } else if (ref.phase() == Phase::kVae) {
    for (size_t h = 0; h < xs.size(); ++h) {
      const VaeLosses l = vae_losses(vae_forward(m, xs[h], noise(eps, h)), xs[h], c.model.recon_loss);
      losses[0] += l.prior.item<double>() / halves;
      losses[1] += l.pixel.item<double>() / halves;
      g_enc.push_back(all_grads(c.beta * l.prior + l.pixel, enc));
      g_dec.push_back(all_grads(c.beta * l.prior + l.pixel, dec));
    }
    apply_mean(ref, Network::kEncoder, enc, g_enc);
    apply_mean(ref, Network::kDecoder, dec, g_dec);
  } else {
    for (size_t h = 0; h < xs.size(); ++h) {
      const GanLosses l = gan_losses(
          gan_forward(m, xs[h], noise(z_prior, h), c.batch_norm, rows(real_augment, h), rows(generated_augment, h)),
          c.gan_loss);
      losses[2] += l.dis.item<double>() / halves;
      losses[3] += l.adv.item<double>() / halves;
      g_dec.push_back(all_grads(l.adv, dec));
      g_dis.push_back(all_grads(l.dis, dis));
    }
    apply_mean(ref, Network::kDecoder, dec, g_dec);
    apply_mean(ref, Network::kDiscriminator, dis, g_dis);
  }
  return losses;
}

std::vector<double> step_losses(const StepStats& s) {
  return {s.loss_prior, s.phase == Phase::kVae ? s.loss_pixel : s.loss_llike, s.loss_dis, s.loss_adv};
}

class DistributedEquivalence : public ::testing::TestWithParam<ModelType> {};

// Tolerance: the ranks and the reference run the same kernels on the same rows with one thread,
// and Gloo's sum of two float32 values is exact up to the order of a commutative addition, so
// the results agree to rounding: losses to 1e-6 relative, weights to 1e-6 absolute (float32).
TEST_P(DistributedEquivalence, TwoRanksMatchOneProcessAveragingTheHalfBatches) {
  torch::set_num_threads(1);
  const TrainConfig c = equivalence_config(GetParam());
  torch::manual_seed(3);
  const torch::Tensor data = torch::rand({kSteps, 2 * kRankBatch, 1, 32, 32}) * 2 - 1;
  std::vector<std::vector<std::vector<double>>> rank_losses(2);
  std::vector<std::vector<torch::Tensor>> rank_weights(2);
  std::vector<int64_t> dis_skips(2, 0), gate_actions(2, 0);
  std::mutex construction;  // a Trainer draws its initial weights from the global generator
  run_ranks(2, [&](std::shared_ptr<ProcessGroup> g) {
    std::unique_lock<std::mutex> lock(construction);
    Trainer t(c, torch::kCPU, g);
    lock.unlock();
    const auto r = static_cast<size_t>(g->rank());
    for (int64_t s = 0; s < kSteps; ++s) {
      if (c.model.type == ModelType::kVaeThenGan && s == 2) t.begin_gan_phase();
      const StepStats stats = t.step(data[s].narrow(0, g->rank() * kRankBatch, kRankBatch));
      rank_losses[r].push_back(step_losses(stats));
      dis_skips[r] += !stats.dis_updated && stats.phase == Phase::kVaeGan;
      gate_actions[r] += (!stats.dis_updated || !stats.dec_adv_updated) && stats.phase == Phase::kVaeGan;
    }
    for (const auto& p : t.model()->parameters()) rank_weights[r].push_back(p.detach().clone());
  });
  Trainer ref(c, torch::kCPU);
  const int64_t z_dim = ref.model()->latent_dim();
  for (int64_t s = 0; s < kSteps; ++s) {
    if (c.model.type == ModelType::kVaeThenGan && s == 2) ref.begin_gan_phase();
    const torch::Tensor eps = torch::randn({2 * kRankBatch, z_dim}, ref.generator());
    const torch::Tensor z_prior = torch::randn({2 * kRankBatch, z_dim}, ref.generator());
    const std::vector<double> expected = reference_step(
        ref, {data[s].narrow(0, 0, kRankBatch), data[s].narrow(0, kRankBatch, kRankBatch)}, eps, z_prior);
    for (size_t r = 0; r < 2; ++r) {
      for (size_t k = 0; k < expected.size(); ++k) {
        EXPECT_NEAR(rank_losses[r][static_cast<size_t>(s)][k], expected[k], 1e-6 * std::abs(expected[k]) + 1e-9)
            << "rank " << r << " step " << s << " loss " << k;
      }
    }
  }
  const std::vector<torch::Tensor> ref_params = ref.model()->parameters();
  for (size_t r = 0; r < 2; ++r) {
    ASSERT_EQ(rank_weights[r].size(), ref_params.size());
    for (size_t i = 0; i < ref_params.size(); ++i) {
      EXPECT_LE((rank_weights[r][i] - ref_params[i]).abs().max().item<double>(), 1e-6)
          << "rank " << r << " param " << i;
    }
  }
  EXPECT_EQ(dis_skips[0], dis_skips[1]);  // the equilibrium rule decided alike on both ranks
  EXPECT_EQ(gate_actions[0], gate_actions[1]);
  if (c.equilibrium) EXPECT_GT(gate_actions[0], 0) << "the rule never acted: the test does not cover it";
}

INSTANTIATE_TEST_SUITE_P(EveryModel, DistributedEquivalence,
                         ::testing::Values(ModelType::kVaeGan, ModelType::kVae, ModelType::kGan,
                                           ModelType::kVaeThenGan),
                         [](const auto& info) {
                           std::string name = enum_name(info.param);
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

// ---------------------------------------------------------------- fit across ranks

std::vector<nlohmann::json> training_lines(const std::string& run) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (!j.contains("split")) out.push_back(j);
  }
  return out;
}

TEST(Distributed, FitWritesOnRankZeroAndResumesOnOneRankAtTheTranslatedPosition) {
  TempDir dir;
  fs::create_directories(dir / "data");
  test::write_tiny_idx_dataset(dir / "data", 128, 16);
  TrainConfig c;
  c.dataset = "mnist";
  c.data_dir = dir / "data";
  c.model.latent_dim = 8;
  c.batch_size = 8;  // 2 ranks: global batch 16, 8 steps per epoch; 1 rank: 16
  c.epochs = 2;
  c.log_every = 1;
  c.grid_size = 4;
  c.val_images = 16;
  c.precision = Precision::kFp32;
  const std::string run = dir / "run";
  std::vector<FitResult> results(2);
  run_ranks(2, [&](std::shared_ptr<ProcessGroup> g) {
    FitObserver o;
    int64_t step = 0;
    o.on_step = [&step](const ProgressEvent& e) { step = e.global_step; };  // rank 0 only
    o.should_stop = [&step, &g] { return g->rank() == 0 && step >= 3; };    // one rank asks; all stop
    results[static_cast<size_t>(g->rank())] = fit(c, run, false, o, false, torch::kCPU, g);
  });
  for (const FitResult& r : results) {
    EXPECT_TRUE(r.interrupted);
    EXPECT_EQ(r.steps, 3);
    EXPECT_EQ(r.last_checkpoint, checkpoint_path(run, 3));
  }
  std::vector<nlohmann::json> lines = training_lines(run);
  ASSERT_EQ(lines.size(), 3u);  // each step once: only rank 0 writes
  const nlohmann::json state = nlohmann::json::parse(std::ifstream(checkpoint_path(run, 3) + "/state.json"));
  EXPECT_EQ(state.at("world_size"), 2);
  EXPECT_EQ(state.at("order_position"), 3 * 16);
  // One process continues: 48 of the epoch's 128 images are used, so it is at step 48 / 8 = 6 of
  // its 16 and ends the epoch after 10 more steps.
  const FitResult resumed = fit(c, run, false, FitObserver{}, /*resume=*/true, torch::kCPU);
  EXPECT_EQ(resumed.steps, 3 + 10 + 16);
  lines = training_lines(run);
  ASSERT_EQ(lines.size(), 29u);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].at("step"), static_cast<int64_t>(i) + 1);
    EXPECT_EQ(lines[i].at("epoch"), i < 13 ? 0 : 1) << lines[i].dump();
  }
}

// ---------------------------------------------------------------- processes

using test::Result;
using test::run_vaegan;

/// A process of `vaegan ARGS` started in the background, its output into `log`.
pid_t spawn_vaegan(const std::string& args, const std::string& log) {
  const std::string cmd =
      "export CUDA_VISIBLE_DEVICES=; exec '" + std::string(VAEGAN_BINARY) + "' " + args + " >'" + log + "' 2>&1";
  const char* argv[] = {"bash", "-c", cmd.c_str(), nullptr};
  pid_t pid = 0;
  EXPECT_EQ(::posix_spawnp(&pid, "bash", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  return pid;
}

/// The pid of the child of `parent` whose environment has RANK=`rank` (0 if none).
pid_t rank_pid(pid_t parent, int rank) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string pid, comm, state, ppid;
    stat >> pid >> comm >> state >> ppid;
    if (ppid != std::to_string(parent)) continue;
    std::ifstream environ_file(entry.path() / "environ", std::ios::binary);
    const std::string env((std::istreambuf_iterator<char>(environ_file)), {});
    if (env.find(std::string("RANK=") + std::to_string(rank) + '\0') != std::string::npos &&
        env.find(std::string("LOCAL_RANK=") + std::to_string(rank) + '\0') != std::string::npos) {
      return static_cast<pid_t>(std::stol(name));
    }
  }
  return 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

/// Steps of the training lines of `run`'s metrics, in order.
std::vector<int64_t> logged_steps(const std::string& run) {
  std::vector<int64_t> steps;
  for (const auto& j : training_lines(run)) steps.push_back(j.at("step").get<int64_t>());
  return steps;
}

class CliDistributed : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "data");
    test::write_tiny_idx_dataset(dir_ / "data", 64, 16);
  }
  std::string train_args(const std::string& extra) const {
    return "train --dataset mnist --data-dir " + dir_ / "data" +
           " --latent-dim 8 --batch-size 8 --val-images 16 --grid-size 4 --precision fp32 --log-every 1 " + extra;
  }
  /// Starts `vaegan train --nproc 2` for 10 epochs of 4 steps (2 ranks x 8 of 64 images) into
  /// `run`, output into `log`, and returns the launcher's pid once the first checkpoint exists.
  pid_t start_two_ranks(const std::string& run, const std::string& log) const {
    const pid_t launcher = spawn_vaegan(train_args("--epochs 10 --nproc 2 --dist-timeout 20 --out " + run), log);
    const auto start = std::chrono::steady_clock::now();
    while (!fs::exists(run + "/checkpoints/last") &&
           std::chrono::steady_clock::now() - start < std::chrono::seconds(120)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return launcher;
  }
  TempDir dir_;
};

TEST_F(CliDistributed, KilledRankEndsTheJobAndTheRunResumesOnOneOrTwoRanks) {
  const std::string run = dir_ / "run", log = dir_ / "log";
  const pid_t launcher = start_two_ranks(run, log);
  const pid_t rank1 = rank_pid(launcher, 1);
  ASSERT_GT(rank1, 0) << read_file(log);
  ASSERT_EQ(::kill(rank1, SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  int status = 0;
  ASSERT_EQ(::waitpid(launcher, &status, 0), launcher);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  const std::string output = read_file(log);
  EXPECT_LT(seconds, 20.0) << output;  // within --dist-timeout
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_NE(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("rank 1 exited with code 137"), std::string::npos) << output;
  EXPECT_NE(output.find("rank 1 did not answer (lost)"), std::string::npos) << output;
  EXPECT_NE(output.find("the last checkpoint is"), std::string::npos) << output;
  for (const auto& entry : fs::directory_iterator(run + "/checkpoints")) {
    EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u) << "half-written " << entry.path();
  }
  const LoadedModel last = load_model(run, torch::kCPU);  // verifies every file's checksum
  const int64_t checkpoint_step = last.state.step;
  ASSERT_GT(checkpoint_step, 0);

  // The run continues from that checkpoint, on two ranks and (a copy) on one.
  fs::copy(run, dir_ / "run1", fs::copy_options::recursive);
  for (const auto& [resume_run, extra] :
       std::vector<std::pair<std::string, std::string>>{{run, " --nproc 2"}, {dir_ / "run1", ""}}) {
    const Result r = run_vaegan("train --resume " + resume_run + extra);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("resuming " + resume_run + " from " + checkpoint_path(resume_run, checkpoint_step)),
              std::string::npos)
        << r.output;
    const std::vector<int64_t> steps = logged_steps(resume_run);
    for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i], static_cast<int64_t>(i) + 1) << resume_run;
    const LoadedModel done = load_model(resume_run, torch::kCPU);
    EXPECT_EQ(done.state.epoch, 10);
    // 2 ranks: 4 steps per epoch; 1 rank: 8 per epoch after the checkpoint's epoch boundary
    EXPECT_EQ(done.state.step, extra.empty() ? checkpoint_step + (10 - checkpoint_step / 4) * 8 : 40) << resume_run;
  }
}

TEST_F(CliDistributed, SigintToOneRankStopsEveryRankAfterACheckpoint) {
  const std::string run = dir_ / "run", log = dir_ / "log";
  const pid_t launcher = start_two_ranks(run, log);
  const pid_t rank1 = rank_pid(launcher, 1);
  ASSERT_GT(rank1, 0) << read_file(log);
  ASSERT_EQ(::kill(rank1, SIGINT), 0);  // rank 1 alone: the ranks must agree to stop
  int status = 0;
  ASSERT_EQ(::waitpid(launcher, &status, 0), launcher);
  const std::string output = read_file(log);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 130) << output;
  EXPECT_NE(output.find("interrupted by another rank's signal"), std::string::npos) << output;  // rank 0
  const LoadedModel last = load_model(run, torch::kCPU);
  const std::vector<int64_t> steps = logged_steps(run);
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(last.state.step, steps.back());  // the checkpoint is of the step the ranks stopped at
  EXPECT_LT(last.state.epoch, 10);
}

TEST_F(CliDistributed, TorchrunStartsTheRanks) {
  // The torchrun of the build's own PyTorch (Debian's 1.13, or .venv's 2.x): its agent hosts the
  // rendezvous store, whose protocol must be the one this LibTorch's TCPStore speaks.
  const std::string python = VAEGAN_PYTHON;
  if (std::system(("'" + python + "' -c 'import torch.distributed.run' >/dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << python << " has no torch.distributed.run (torchrun)";
  }
  const std::string run = dir_ / "run";
  // Debian's torchrun 1.13 on Python 3.11 fails to parse its own default --redirects/--tee
  // ("'NoneType' object has no attribute 'get'"): passing 1 (stdout) works around it.
  const std::string torchrun = "timeout 300 '" + python + "' -m torch.distributed.run --nproc_per_node 2 " +
                               "--redirects 1 --tee 1 --master_port " + std::to_string(free_port()) + " --no_python";
  const Result r =
      run_vaegan(train_args("--max-steps 6 --dist-timeout 60 --out " + run), "export OMP_NUM_THREADS=1; " + torchrun);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("rank 0 of 2 joined the job"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("global batch 16"), std::string::npos) << r.output;
  EXPECT_EQ(logged_steps(run), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(load_model(run, torch::kCPU).state.step, 6);
}

}  // namespace
}  // namespace vaegan
