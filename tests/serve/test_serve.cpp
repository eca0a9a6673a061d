// `vaegan serve` over loopback (src/serve/server.cpp, docs/serve.md): every endpoint against the
// files of a real run and the library's own computation, and the bad inputs (path traversal,
// links, encoded dots, oversized uploads, malformed JSON, damaged checkpoints).
#define CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <stb_image.h>

#include <fstream>
#include <thread>

#include "../test_util.h"
#include "vaegan/data/datasets.h"
#include "vaegan/io/fs.h"
#include "vaegan/io/image_io.h"
#include "vaegan/latent/latent_ops.h"
#include "vaegan/model/inference.h"
#include "vaegan/serve/server.h"
#include "vaegan/train/checkpoint.h"
#include "vaegan/train/config.h"
#include "vaegan/train/fit.h"

namespace vaegan {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

/// A PNG answer decoded to `uint8` `[H, W, C]`.
torch::Tensor decode_png(const std::string& bytes) {
  int w = 0, h = 0, c = 0;
  stbi_uc* px = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()),
                                      &w, &h, &c, 0);
  if (!px) return {};
  torch::Tensor t = torch::from_blob(px, {h, w, c}, torch::kUInt8).clone();
  stbi_image_free(px);
  return t;
}

/// The grid the server should answer for images `x` `[N, C, S, S]` in [-1, 1].
torch::Tensor expected_grid(const torch::Tensor& x, int64_t ncol) {
  return decode_png(png_bytes(make_grid(x, ncol, 1), "expected"));
}

/// Trains one fp32 epoch of a latent-8 VAE-GAN on `dataset` in `data_dir` into `out` (every step
/// logged, no TensorBoard; with `ema_decay` > 0 a moving average of the decoder): the run the
/// server is tested on.
void train_tiny_run(const std::string& dataset, const std::string& data_dir, const std::string& out, int64_t batch,
                    int64_t grid, int64_t channels = 1, double ema_decay = 0) {
  TrainConfig c;
  c.dataset = dataset;
  c.data_dir = data_dir;
  c.model.channels = channels;
  c.batch_size = batch;
  c.epochs = 1;
  c.log_every = 1;
  c.grid_size = grid;
  c.model.latent_dim = 8;
  c.precision = Precision::kFp32;
  c.tensorboard = "none";
  c.ema_decay = ema_decay;
  fit(c, out, /*overwrite=*/false, FitObserver{}, /*resume=*/false, torch::kCPU);
}

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::TempDir>();
    test::write_tiny_idx_dataset(*dir_ / "data", 64, 32);
    train_tiny_run("mnist", *dir_ / "data", run_dir(), /*batch=*/16, /*grid=*/4);
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::string run_dir() { return *dir_ / "run"; }

  void SetUp() override {
    server_ = std::make_unique<Server>(std::vector<std::string>{run_dir()}, ServeOptions().port(0).nearest_pool(64));
    server_->start();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }

  LoadedModel model() const { return load_model(run_dir(), torch::kCPU); }
  torch::Tensor test_images(int64_t n) const {
    const LoadedModel m = model();
    return open_dataset("mnist", *dir_ / "data", Split::kTest, 1, 32)->first_images(n);
  }
  httplib::Result post_json(const std::string& path, const std::string& body) {
    return client_->Post(path.c_str(), body, "application/json");
  }
  static void expect_error(const httplib::Result& r, int status, const std::string& mentions) {
    ASSERT_TRUE(r) << "no answer";
    EXPECT_EQ(r->status, status) << r->body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r->body;
    EXPECT_NE(j.value("error", "").find(mentions), std::string::npos) << r->body;
  }

  static std::unique_ptr<test::TempDir> dir_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<httplib::Client> client_;
};
std::unique_ptr<test::TempDir> Serve::dir_;

TEST_F(Serve, RunsListStatusCheckpointAndGrids) {
  const auto r = client_->Get("/api/runs");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const json runs = json::parse(r->body);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["name"], "run");
  EXPECT_EQ(runs[0]["model"], "vaegan");
  EXPECT_EQ(runs[0]["status"], "finished");  // 1 epoch of 4 steps, done
  {  // while a process holds the run's lock, as `train` does, the run is running
    const DirectoryLock training(run_dir(), "--out");
    EXPECT_EQ(json::parse(client_->Get("/api/runs")->body)[0]["status"], "running");
  }
  EXPECT_EQ(json::parse(client_->Get("/api/runs")->body)[0]["status"], "finished");
  // the step of the checkpoint `last` names (not `best`, which an interrupted run may lack)
  EXPECT_EQ(runs[0]["checkpoint_step"], 4);
  const std::string best = run_dir() + "/checkpoints/best";
  fs::rename(best, best + ".away");
  EXPECT_EQ(json::parse(client_->Get("/api/runs")->body)[0]["checkpoint_step"], 4);
  fs::rename(best + ".away", best);
  EXPECT_EQ(runs[0]["grid_epochs"], json::array({1}));
  const auto config = client_->Get("/api/runs/0/config");
  ASSERT_TRUE(config);
  EXPECT_EQ(json::parse(config->body), json::parse(read_file_bytes(run_dir() + "/config.json")));
  const auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("/chart.min.js"), std::string::npos);
  const auto chart = client_->Get("/chart.min.js");
  ASSERT_TRUE(chart);
  EXPECT_NE(chart->body.find("Chart.js v3"), std::string::npos);  // Debian's libjs-chart.js, embedded
}

TEST_F(Serve, MetricsAreTheFilesCompleteLinesFromAnOffset) {
  const std::string path = run_dir() + "/metrics.jsonl";
  const std::string original = read_file_bytes(path);
  std::vector<json> lines;
  for (std::istringstream in(original); !in.eof();) {
    std::string line;
    if (std::getline(in, line) && !line.empty()) lines.push_back(json::parse(line));
  }
  const auto all = client_->Get("/api/runs/0/metrics");
  ASSERT_TRUE(all);
  const json a = json::parse(all->body);
  EXPECT_EQ(a["lines"], json(lines));
  EXPECT_EQ(a["next"], lines.size());
  // a line being written (no newline yet) is not served; once complete, it is, from the offset
  std::ofstream(path, std::ios::app) << R"({"step": 99, "split": "train", "loss_dis": 0.5)";
  const json partial = json::parse(client_->Get("/api/runs/0/metrics?from=" + std::to_string(lines.size()))->body);
  EXPECT_TRUE(partial["lines"].empty());
  std::ofstream(path, std::ios::app) << "}\n";
  const json added = json::parse(client_->Get("/api/runs/0/metrics?from=" + std::to_string(lines.size()))->body);
  ASSERT_EQ(added["lines"].size(), 1u);
  EXPECT_EQ(added["lines"][0]["step"], 99);
  // an offset past the end (a resume rewrote the file shorter) starts over
  const json reset = json::parse(client_->Get("/api/runs/0/metrics?from=100000")->body);
  EXPECT_EQ(reset["from"], 0);
  EXPECT_EQ(reset["lines"].size(), lines.size() + 1);
  write_text_atomically(path, original);
  expect_error(client_->Get("/api/runs/0/metrics?from=-1"), 400, "'from'");
  expect_error(client_->Get("/api/runs/0/metrics?from=abc"), 400, "'from'");
}

TEST_F(Serve, ServesEpochGridsAndNoOtherFile) {
  const auto grid = client_->Get("/api/runs/0/images/epoch-001-samples.png");
  ASSERT_TRUE(grid);
  ASSERT_EQ(grid->status, 200);
  EXPECT_EQ(grid->body, read_file_bytes(run_dir() + "/images/epoch-001-samples.png"));
  EXPECT_EQ(grid->get_header_value("Content-Type"), "image/png");
  // a link inside images/ with a grid's name, pointing out of the run
  fs::create_symlink("/etc/passwd", run_dir() + "/images/epoch-002-samples.png");
  fs::create_symlink(run_dir() + "/config.json", run_dir() + "/images/epoch-003-samples.png");
  for (const std::string bad :
       {"/api/runs/0/images/../config.json", "/api/runs/0/images/..%2Fconfig.json",
        "/api/runs/0/images/%2e%2e/config.json", "/api/runs/0/images/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/runs/0/images/epoch-002-samples.png", "/api/runs/0/images/epoch-003-samples.png",
        "/api/runs/0/images/epoch-001-samples.png%00.txt", "/api/runs/0/images/.lock", "/api/runs/..%2F..%2Fetc/config",
        "/api/runs/1/config", "/api/runs/-1/config", "/api/runs/0x0/config", "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd", "/api/runs/0/checkpoints/last/model.pt"}) {
    const auto r = client_->Get(bad.c_str());
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, r->status == 400 ? 400 : 404) << bad;
    EXPECT_EQ(r->body.find("root:"), std::string::npos) << bad;
    EXPECT_EQ(r->body.find("\"dataset\""), std::string::npos) << bad;  // config.json's content
  }
  fs::remove(run_dir() + "/images/epoch-002-samples.png");
  fs::remove(run_dir() + "/images/epoch-003-samples.png");
}

TEST_F(Serve, SamplesArePriorDrawsOfTheSeedDecoded) {
  const auto r = client_->Get("/api/runs/0/samples?seed=3&n=4");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  LoadedModel m = model();
  torch::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const torch::Tensor z = torch::randn({4, 8}, gen);
  EXPECT_TRUE(decode_png(r->body).equal(expected_grid(m.model->decoder->forward(z), 4)));
  const auto other = client_->Get("/api/runs/0/samples?seed=4&n=4");
  EXPECT_NE(other->body, r->body);
  expect_error(client_->Get("/api/runs/0/samples?n=65"), 400, "'n'");
  expect_error(client_->Get("/api/runs/0/samples?seed=x"), 400, "'seed'");
}

TEST_F(Serve, InterpolationRunsFromATestImageToAnother) {
  LoadedModel m = model();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = test_images(16);
  const torch::Tensor mu = encode_means(m.model, x, torch::kCPU);
  const auto strip = client_->Get("/api/runs/0/test-images?n=16");
  ASSERT_TRUE(strip);
  EXPECT_TRUE(decode_png(strip->body).equal(expected_grid(x, 16)));
  auto at = [&](double t, const std::string& mode) {
    const auto r = post_json("/api/runs/0/interpolate",
                             json{{"a", {{"test", 2}}}, {"b", {{"test", 5}}}, {"t", t}, {"mode", mode}}.dump());
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r ? decode_png(r->body) : torch::Tensor();
  };
  const auto decoded = [&](const torch::Tensor& z) { return expected_grid(m.model->decoder->forward(z), 1); };
  EXPECT_TRUE(at(0.0, "linear").equal(decoded(mu.narrow(0, 2, 1))));
  EXPECT_TRUE(at(1.0, "slerp").equal(decoded(mu.narrow(0, 5, 1))));
  EXPECT_TRUE(at(0.5, "linear").equal(decoded(0.5 * (mu.narrow(0, 2, 1) + mu.narrow(0, 5, 1)))));
  const torch::Tensor slerp = interpolate_latents(mu.narrow(0, 2, 1), mu.narrow(0, 5, 1), 101, true)[0][30];
  EXPECT_TRUE(at(0.3, "slerp").equal(decoded(slerp.unsqueeze(0))));
  // a latent given as numbers
  std::vector<double> z0(mu[7].data_ptr<float>(), mu[7].data_ptr<float>() + 8);
  const auto given =
      post_json("/api/runs/0/interpolate", json{{"a", {{"z", z0}}}, {"b", {{"test", 5}}}, {"t", 0.0}}.dump());
  ASSERT_TRUE(given);
  EXPECT_TRUE(decode_png(given->body).equal(decoded(mu.narrow(0, 7, 1))));
  // bad requests name what is wrong
  expect_error(post_json("/api/runs/0/interpolate", R"({"a": {"test": 0}, "b": {"test": 1}, "t": 2})"), 400, "'t'");
  expect_error(post_json("/api/runs/0/interpolate", R"({"a": {"test": 0}, "b": {"test": 1}})"), 400, "'t'");
  expect_error(
      post_json("/api/runs/0/interpolate", R"({"a": {"test": 0}, "b": {"test": 1}, "t": 0.5, "mode": "cubic"})"), 400,
      "'mode'");
  expect_error(post_json("/api/runs/0/interpolate", R"({"a": {"test": 0}, "b": {"test": 1}, "t": 0.5, "mode": 5})"),
               400, "'mode'");
  expect_error(post_json("/api/runs/0/interpolate", R"({"b": {"test": 1}, "t": 0.5})"), 400, "'a'");
  expect_error(post_json("/api/runs/0/interpolate", R"({"a": {"test": 99}, "b": {"test": 1}, "t": 0.5})"), 400,
               "'a.test'");
  expect_error(post_json("/api/runs/0/interpolate", R"({"a": {"z": [1, 2]}, "b": {"test": 1}, "t": 0.5})"), 400,
               "'a.z'");
  expect_error(post_json("/api/runs/0/interpolate", R"({"a": {"test": 0}, "b": )"), 400, "JSON");
}

TEST_F(Serve, AttributeVectorOfAClassIsAppliedWithItsStrength) {
  LoadedModel m = model();
  torch::NoGradGuard no_grad;
  const torch::Tensor mu = encode_means(m.model, test_images(16), torch::kCPU);
  const auto classes = client_->Get("/api/runs/0/classes");
  ASSERT_TRUE(classes);
  const json names = json::parse(classes->body);
  ASSERT_EQ(names.size(), 10u);
  // the vector as `vaegan attribute compute` forms it over the same 64 training images
  const auto train = open_dataset("mnist", *dir_ / "data", Split::kTrain, 1, 32);
  const AttributeSelection sel = select_by_class(*train, 64, "3");
  const torch::Tensor pool = encode_means(m.model, train->first_images(64), torch::kCPU);
  const torch::Tensor v = attribute_vector(pool.index({sel.keep}), sel.has.index({sel.keep}));
  for (double s : {0.0, 1.5}) {
    const auto r =
        post_json("/api/runs/0/attribute", json{{"a", {{"test", 1}}}, {"to_class", names[3]}, {"strength", s}}.dump());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_TRUE(decode_png(r->body).equal(expected_grid(m.model->decoder->forward(mu.narrow(0, 1, 1) + s * v), 1)));
  }
  expect_error(post_json("/api/runs/0/attribute", R"({"a": {"test": 1}, "to_class": "Zebra"})"), 400, "Zebra");
  expect_error(post_json("/api/runs/0/attribute", R"({"a": {"test": 1}, "to_class": "3", "from_class": 4})"), 400,
               "'from_class'");
  expect_error(post_json("/api/runs/0/attribute", R"({"a": {"test": 1}})"), 400, "'to_class'");
  expect_error(post_json("/api/runs/0/attribute", R"({"a": {"test": 1}, "to_class": "3", "strength": 9})"), 400,
               "'strength'");
}

TEST_F(Serve, UploadIsEncodedReconstructedAndMatchedToItsNearestTrainingImages) {
  LoadedModel m = model();
  torch::NoGradGuard no_grad;
  const auto train = open_dataset("mnist", *dir_ / "data", Split::kTrain, 1, 32);
  const torch::Tensor x = train->first_images(64);
  // training image 10 as a PNG file: its nearest training image is itself (or an equal one)
  const std::string png = png_bytes(to_uint8_nhwc(x.narrow(0, 10, 1))[0], "upload");
  const auto enc = client_->Post("/api/runs/0/encode", png, "image/png");
  ASSERT_TRUE(enc);
  ASSERT_EQ(enc->status, 200) << enc->body;
  const torch::Tensor mu = encode_means(m.model, x, torch::kCPU);
  const std::vector<double> z = json::parse(enc->body)["z"];
  ASSERT_EQ(z.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(z[i], mu[10][static_cast<int64_t>(i)].item<double>(), 1e-5);
  const auto rec = client_->Post("/api/runs/0/reconstruct?neighbours=3", png, "image/png");
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->status, 200) << rec->body;
  const torch::Tensor nearest = std::get<1>((mu - mu[10]).pow(2).sum(1).topk(3, 0, false));
  const torch::Tensor row =
      torch::cat({x.narrow(0, 10, 1), m.model->decoder->forward(mu.narrow(0, 10, 1)), x.index_select(0, nearest)});
  // the nearest is image 10 itself or one equal to it (the tiny dataset's images depend only on
  // their label, and topk orders ties as it likes)
  EXPECT_TRUE(x[nearest[0].item<int64_t>()].equal(x[10]));
  EXPECT_EQ((mu[nearest[0].item<int64_t>()] - mu[10]).abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(decode_png(rec->body).equal(expected_grid(row, 5)));
  // bad uploads
  expect_error(client_->Post("/api/runs/0/reconstruct", "not an image", "image/png"), 415, "neither a PNG nor a JPEG");
  expect_error(client_->Post("/api/runs/0/encode", "", "image/png"), 400, "empty");
  std::string huge = png.substr(0, 24);  // a PNG header claiming 100000 x 100000 pixels
  for (int at : {16, 20}) {
    huge[at] = 0, huge[at + 1] = 1, huge[at + 2] = static_cast<char>(0x86), huge[at + 3] = static_cast<char>(0xA0);
  }
  expect_error(client_->Post("/api/runs/0/reconstruct", huge, "image/png"), 413, "100000x100000");
  // a server that takes at most 1,000 pixels refuses a 32x32 PNG and a 64x64 JPEG by their headers
  std::string jpeg;
  std::vector<uint8_t> grey(64 * 64, 128);
  stbi_write_jpg_to_func(
      [](void* out, void* data, int size) { static_cast<std::string*>(out)->append(static_cast<char*>(data), size); },
      &jpeg, 64, 64, 1, grey.data(), 90);
  ASSERT_EQ(client_->Post("/api/runs/0/encode", jpeg, "image/jpeg")->status, 200);
  Server small({run_dir()}, ServeOptions().port(0).max_upload_pixels(1000));
  small.start();
  httplib::Client small_client("127.0.0.1", small.port());
  expect_error(small_client.Post("/api/runs/0/encode", png, "image/png"), 413, "32x32");
  expect_error(small_client.Post("/api/runs/0/encode", jpeg, "image/jpeg"), 413, "64x64");
  const auto too_big = client_->Post("/api/runs/0/reconstruct", std::string((8 << 20) + 1, 'x'), "image/png");
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
  expect_error(client_->Post("/api/runs/0/reconstruct?neighbours=99", png, "image/png"), 400, "'neighbours'");
}

TEST_F(Serve, ADamagedCheckpointIsAnErrorAndTheServerGoesOn) {
  const auto fine = client_->Get("/api/runs/0/samples?seed=1&n=2");
  ASSERT_TRUE(fine);
  ASSERT_EQ(fine->status, 200);
  // damage every checkpoint's weights (same size, other bytes): none verifies
  std::vector<std::pair<std::string, std::string>> saved;
  for (const auto& e : fs::directory_iterator(run_dir() + "/checkpoints")) {
    const std::string p = e.path().string() + "/model.pt";
    if (fs::is_symlink(e.path()) || !fs::exists(p)) continue;
    saved.emplace_back(p, read_file_bytes(p));
    std::string bytes = saved.back().second;
    bytes[bytes.size() / 2] ^= 0x55;
    write_text_atomically(p, bytes);
  }
  ASSERT_FALSE(saved.empty());
  const auto damaged = client_->Get("/api/runs/0/samples?seed=1&n=2");
  ASSERT_TRUE(damaged);
  EXPECT_EQ(damaged->status, 409);
  EXPECT_NE(damaged->body.find("checkpoint"), std::string::npos) << damaged->body;
  for (const auto& [p, bytes] : saved) write_text_atomically(p, bytes);
  const auto again = client_->Get("/api/runs/0/samples?seed=1&n=2");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(again->body, fine->body);
}

TEST_F(Serve, ConcurrentClientsGetConsistentAnswers) {
  const std::string expected = client_->Get("/api/runs/0/samples?seed=5&n=4")->body;
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      httplib::Client client("127.0.0.1", server_->port());
      for (int i = 0; i < 20; ++i) {
        const auto s = client.Get("/api/runs/0/samples?seed=5&n=4");
        const auto runs = client.Get("/api/runs");
        if (!s || s->status != 200 || s->body != expected || !runs || runs->status != 200) ++wrong;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(ServeSetup, CelebAAttributeVectorsAreFormedFromItsNamedAttributes) {
  test::TempDir dir;
  test::write_celeba(dir.path(), 18);  // Smiling for even images, Young for none
  train_tiny_run("celeba", dir.path(), dir / "run", /*batch=*/3, /*grid=*/2, /*channels=*/3);
  Server server({dir / "run"}, ServeOptions().port(0));
  server.start();
  httplib::Client client("127.0.0.1", server.port());
  const auto names = client.Get("/api/runs/0/classes");
  ASSERT_TRUE(names);
  EXPECT_EQ(json::parse(names->body), json::array({"Smiling", "Young"}));
  LoadedModel m = load_model(dir / "run", torch::kCPU);
  torch::NoGradGuard no_grad;
  const auto train =
      open_dataset("celeba", dir.path(), Split::kTrain, 3, model_image_size(m.config.model), dataset_options(m.config));
  const int64_t n = train->size();
  const AttributeSelection sel = select_by_named_attribute(*train, n, "Smiling");
  const torch::Tensor pool = encode_means(m.model, train->first_images(n), torch::kCPU);
  const torch::Tensor v = attribute_vector(pool.index({sel.keep}), sel.has.index({sel.keep}));
  const torch::Tensor a = encode_means(
      m.model,
      open_dataset("celeba", dir.path(), Split::kTest, 3, model_image_size(m.config.model), dataset_options(m.config))
          ->first_images(1),
      torch::kCPU);
  const auto r = client.Post("/api/runs/0/attribute", R"({"a": {"test": 0}, "to_class": "Smiling", "strength": 2})",
                             "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(decode_png(r->body).equal(expected_grid(m.model->decoder->forward(a + 2 * v), 1)));
  // no image of the pool is Young: no vector, and the message says why
  const auto young =
      client.Post("/api/runs/0/attribute", R"({"a": {"test": 0}, "to_class": "Young"})", "application/json");
  ASSERT_TRUE(young);
  EXPECT_EQ(young->status, 400) << young->body;
}

// The explorer decodes with the decoder's moving average when the run kept one, and with the
// trained decoder when `ServeOptions::decoder_weights` (`vaegan serve --decoder-weights`) says so.
TEST(ServeSetup, DecodesWithTheDecoderWeightsItIsToldTo) {
  test::TempDir dir;
  test::write_tiny_idx_dataset(dir / "data", 32, 8);
  train_tiny_run("mnist", dir / "data", dir / "run", /*batch=*/8, /*grid=*/2, /*channels=*/1, /*ema_decay=*/0.5);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const torch::Tensor z = torch::randn({4, 8}, gen);
  std::vector<torch::Tensor> answers;
  for (DecoderWeights w : {DecoderWeights::kAuto, DecoderWeights::kTrained}) {
    Server server({dir / "run"}, ServeOptions().port(0).decoder_weights(w));
    server.start();
    httplib::Client client("127.0.0.1", server.port());
    const auto r = client.Get("/api/runs/0/samples?seed=3&n=4");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    LoadedModel m = load_model(dir / "run", torch::kCPU, w);
    EXPECT_EQ(m.decoder_weights, w == DecoderWeights::kAuto ? DecoderWeights::kEma : DecoderWeights::kTrained);
    torch::NoGradGuard no_grad;
    answers.push_back(decode_png(r->body));
    EXPECT_TRUE(answers.back().equal(expected_grid(m.model->decoder->forward(z), 4))) << enum_name(w);
  }
  EXPECT_FALSE(answers[0].equal(answers[1]));
}

TEST(ServeSetup, RefusesADirectoryThatIsNotARunAndAPortInUse) {
  test::TempDir dir;
  try {
    Server s({dir.path()});
    FAIL() << "accepted a directory without config.json";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path()), std::string::npos) << e.what();
  }
  std::ofstream(dir / "config.json") << "{}";
  Server first({dir.path()}, ServeOptions().port(0));
  first.start();
  Server second({dir.path()}, ServeOptions().port(first.port()));
  try {
    second.start();
    FAIL() << "bound a port in use";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--port " + std::to_string(first.port())), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vaegan
