// `vaegan serve`: cpp-httplib server over run directories (docs/serve.md is the API's reference).
#include "vaegan/serve/server.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <stb_image.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "vaegan/core/enum_names.h"
#include "vaegan/core/error.h"
#include "vaegan/data/celeba.h"
#include "vaegan/data/datasets.h"
#include "vaegan/data/image_folder_dataset.h"
#include "vaegan/io/fs.h"
#include "vaegan/io/image_io.h"
#include "vaegan/latent/latent_ops.h"
#include "vaegan/model/inference.h"
#include "vaegan/train/checkpoint.h"
#include "vaegan/train/config.h"

// The page and Chart.js, embedded at build time (src/serve/assets.cpp).
extern "C" const char vaegan_page_begin[], vaegan_page_end[], vaegan_chartjs_begin[], vaegan_chartjs_end[];

namespace vaegan {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

/// A request the server refuses: an HTTP status and a message naming the parameter.
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

constexpr int64_t kMaxSamples = 64, kMaxStrip = 32, kMaxNeighbours = 8;
const std::regex kGridName(R"(epoch-([0-9]{1,9})-(reconstructions|samples)\.png)");

/// `read_file_bytes` of a run's file, a 404 naming the file when it cannot be read.
std::string read_small_file(const fs::path& p) {
  try {
    return read_file_bytes(p.string());
  } catch (const std::runtime_error&) {
    throw HttpError(404, fmt::format("{}: not found", p.filename().string()));
  }
}

/// The complete lines of `metrics.jsonl` (a line still being written has no newline yet and
/// is left out; a line that does not parse is skipped).
std::vector<json> metric_lines(const fs::path& p) {
  std::vector<json> out;
  std::ifstream in(p, std::ios::binary);
  const std::string text(std::istreambuf_iterator<char>(in), {});
  size_t start = 0;
  for (size_t nl = text.find('\n'); nl != std::string::npos; start = nl + 1, nl = text.find('\n', start)) {
    json j = json::parse(text.begin() + static_cast<std::ptrdiff_t>(start),
                         text.begin() + static_cast<std::ptrdiff_t>(nl), nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

/// Whether some process holds the `flock` on `run/.lock` (`DirectoryLock`): then `train` is
/// writing the run. Read from the kernel's table of locks, /proc/locks ("N: FLOCK ADVISORY WRITE
/// PID MAJ:MIN:INODE ..."), so that looking never takes the lock a starting `train` needs.
bool run_is_locked(const fs::path& run) {
  struct stat st {};
  if (::stat((run / ".lock").c_str(), &st) != 0) return false;
  std::ifstream locks("/proc/locks");
  for (std::string line; std::getline(locks, line);) {
    std::istringstream words(line);
    std::string index, kind, mode, access, pid, file;
    if (!(words >> index >> kind >> mode >> access >> pid >> file) || kind != "FLOCK") continue;
    unsigned major_id = 0, minor_id = 0;
    unsigned long long inode = 0;
    if (std::sscanf(file.c_str(), "%x:%x:%llu", &major_id, &minor_id, &inode) == 3 && inode == st.st_ino &&
        major_id == major(st.st_dev) && minor_id == minor(st.st_dev)) {
      return true;
    }
  }
  return false;
}

/// An integer query parameter in [lo, hi] (`fallback` when absent); 400 naming it otherwise.
int64_t int_param(const httplib::Request& req, const std::string& name, int64_t lo, int64_t hi, int64_t fallback) {
  if (!req.has_param(name)) return fallback;
  const std::string v = req.get_param_value(name);
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size() && x >= lo && x <= hi) return x;
  } catch (const std::exception&) {
  }
  throw HttpError(400, fmt::format("parameter '{}': expected an integer in [{}, {}], got '{}'", name, lo, hi, v));
}

/// A number of a JSON body in [lo, hi]; 400 naming the field otherwise.
double json_number(const json& body, const std::string& name, double lo, double hi, std::optional<double> fallback) {
  if (!body.contains(name)) {
    if (fallback) return *fallback;
    throw HttpError(400, fmt::format("field '{}' is missing", name));
  }
  const json& v = body.at(name);
  if (!v.is_number() || !(v.get<double>() >= lo && v.get<double>() <= hi)) {
    throw HttpError(400, fmt::format("field '{}': expected a number in [{}, {}], got {}", name, lo, hi, v.dump()));
  }
  return v.get<double>();
}

/// A string of a JSON body (`fallback` when absent); 400 naming the field when it is not a string.
std::string json_string(const json& body, const std::string& name, const std::string& fallback) {
  if (!body.contains(name)) return fallback;
  if (!body.at(name).is_string()) {
    throw HttpError(400, fmt::format("field '{}': expected a string, got {}", name, body.at(name).dump()));
  }
  return body.at(name).get<std::string>();
}

json parse_body(const httplib::Request& req) {
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) throw HttpError(400, "the request body is not a JSON object");
  return body;
}

/// What an attribute vector can be formed for: the class names of `data`, or CelebA's named
/// attributes (`list_attr_celeba.txt`) where it has no classes.
std::vector<std::string> attribute_names(const ImageDataset& data) {
  if (const auto* celeba = dynamic_cast<const CelebADataset*>(&data)) return celeba->attribute_names();
  return data.class_names();
}

/// One run directory and what the explorer has computed for its newest checkpoint.
struct Run {
  fs::path dir;
  std::string name;
  std::mutex mutex;                      // guards everything below
  std::string checkpoint;                // the loaded checkpoint directory
  fs::file_time_type checkpoint_time{};  // its model.pt's modification time
  std::optional<LoadedModel> model;
  std::shared_ptr<ImageDataset> test, train;
  torch::Tensor test_images;                        // [K, C, S, S] in [-1, 1], the strip
  torch::Tensor pool_images, pool_means;            // the first training images and their posterior means
  std::map<std::string, torch::Tensor> attributes;  // "to|from" -> attribute vector [Z]
};

}  // namespace

struct Server::State {
  ServeOptions options;
  std::vector<std::unique_ptr<Run>> runs;
  httplib::Server http;
  std::thread thread;
  int port = 0;

  Run& run_of(const httplib::Request& req) {
    const std::string id = req.matches[1];
    int64_t i = -1;
    try {
      size_t used = 0;
      i = std::stoll(id, &used);
      if (used != id.size()) i = -1;
    } catch (const std::exception&) {
    }
    if (i < 0 || i >= static_cast<int64_t>(runs.size())) {
      throw HttpError(404, fmt::format("run '{}': no such run (there are {})", id, runs.size()));
    }
    return *runs[static_cast<size_t>(i)];
  }

  /// The run's newest checkpoint, loaded (again when training wrote a newer one). Holds
  /// `r.mutex`. 409 when the run has no checkpoint yet or it does not verify.
  LoadedModel& model_of(Run& r) {
    std::string dir;
    try {
      dir = resolve_checkpoint(r.dir.string());
    } catch (const InputError& e) {
      throw HttpError(409, fmt::format("run {}: no checkpoint to explore yet ({})", r.name, e.what()));
    }
    std::error_code ec;
    const fs::file_time_type t = fs::last_write_time(fs::path(dir) / "model.pt", ec);
    if (!r.model || dir != r.checkpoint || t != r.checkpoint_time) {
      try {
        r.model.emplace(load_model(dir, options.device(), options.decoder_weights()));
      } catch (const std::exception& e) {
        r.model.reset();
        throw HttpError(409, fmt::format("run {}: cannot load its checkpoint: {}", r.name, e.what()));
      }
      r.checkpoint = dir;
      r.checkpoint_time = t;
      r.pool_means = torch::Tensor();
      r.attributes.clear();
      spdlog::info("serve: {} loaded from {}", r.name, dir);
    }
    return *r.model;
  }

  std::shared_ptr<ImageDataset>& dataset_of(Run& r, LoadedModel& m, Split split) {
    std::shared_ptr<ImageDataset>& d = split == Split::kTest ? r.test : r.train;
    if (!d) {
      try {
        d = open_dataset(m.config.dataset, m.config.data_dir, split, m.config.model.channels,
                         model_image_size(m.config.model), dataset_options(m.config));
      } catch (const std::exception& e) {
        throw HttpError(409, fmt::format("run {}: cannot open its dataset: {}", r.name, e.what()));
      }
    }
    return d;
  }

  const torch::Tensor& test_images_of(Run& r, LoadedModel& m) {
    if (!r.test_images.defined()) r.test_images = dataset_of(r, m, Split::kTest)->first_images(kMaxStrip);
    return r.test_images;
  }

  static void require_encoder(const Run& r, const LoadedModel& m) {
    if (!m.model->encoder) {
      throw HttpError(409, fmt::format("run {}: a {} model has no encoder", r.name, enum_name(m.config.model.type)));
    }
  }

  /// The posterior means of the first `nearest_pool` training images (computed once per checkpoint).
  void ensure_pool(Run& r, LoadedModel& m) {
    if (r.pool_means.defined()) return;
    if (!r.pool_images.defined()) r.pool_images = dataset_of(r, m, Split::kTrain)->first_images(options.nearest_pool());
    r.pool_means = encode_means(m.model, r.pool_images, m.device);
  }

  /// A latent given in a JSON body as {"test": i} (the mean of test image i) or {"z": [...]}.
  torch::Tensor latent_of(Run& r, LoadedModel& m, const json& body, const std::string& name) {
    if (!body.contains(name) || !body.at(name).is_object()) {
      throw HttpError(400, fmt::format("field '{}': expected {{\"test\": INDEX}} or {{\"z\": [numbers]}}", name));
    }
    const json& v = body.at(name);
    const int64_t z_dim = m.model->latent_dim();
    if (v.contains("z")) {
      const json& z = v.at("z");
      if (!z.is_array() || static_cast<int64_t>(z.size()) != z_dim) {
        throw HttpError(400, fmt::format("field '{}.z': expected {} numbers", name, z_dim));
      }
      std::vector<float> values;
      for (const json& x : z) {
        if (!x.is_number() || !std::isfinite(x.get<double>())) {
          throw HttpError(400, fmt::format("field '{}.z': expected finite numbers", name));
        }
        values.push_back(x.get<float>());
      }
      return torch::tensor(values).reshape({1, z_dim});
    }
    require_encoder(r, m);
    const torch::Tensor& strip = test_images_of(r, m);
    const int64_t i = v.contains("test") && v.at("test").is_number_integer() ? v.at("test").get<int64_t>() : -1;
    if (i < 0 || i >= strip.size(0)) {
      throw HttpError(400, fmt::format("field '{}.test': expected an integer in [0, {}]", name, strip.size(0) - 1));
    }
    return encode_means(m.model, strip.narrow(0, i, 1), m.device);
  }

  /// Decoded `z` `[N, Z]` as a PNG grid of `ncol` columns.
  static std::string decode_png(LoadedModel& m, const torch::Tensor& z, int64_t ncol) {
    return png_bytes(make_grid(decode_latents(m.model, z.to(torch::kFloat), m.device), ncol, 1), "decoded images");
  }

  /// An uploaded PNG/JPEG at the model's size, `[1, C, S, S]` in [-1, 1]; 413/415 otherwise.
  torch::Tensor upload_of(const httplib::Request& req, const LoadedModel& m) const {
    if (req.body.empty()) throw HttpError(400, "the request body is empty: send a PNG or JPEG file");
    int64_t w = 0, h = 0;
    const auto* b = reinterpret_cast<const unsigned char*>(req.body.data());
    const size_t n = req.body.size();
    // the size the file declares, before anything is decoded: a PNG's IHDR fields (stb_image
    // refuses to report sizes it would not decode), a JPEG's frame header through stb_image
    if (n >= 24 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) {
      w = (int64_t{b[16]} << 24) | (b[17] << 16) | (b[18] << 8) | b[19];
      h = (int64_t{b[20]} << 24) | (b[21] << 16) | (b[22] << 8) | b[23];
    } else if (int jw = 0, jh = 0, jc = 0;
               stbi_info_from_memory(b, static_cast<int>(std::min<size_t>(n, INT32_MAX)), &jw, &jh, &jc)) {
      w = jw, h = jh;
    }
    if (w * h > options.max_upload_pixels()) {
      throw HttpError(
          413, fmt::format("the image has {}x{} pixels; at most {} are accepted", w, h, options.max_upload_pixels()));
    }
    try {
      const torch::Tensor img =
          decode_image_bytes(req.body, "the uploaded image", m.config.model.channels, model_image_size(m.config.model));
      return to_model_range(img.unsqueeze(0));
    } catch (const ImageReadError& e) {
      throw HttpError(415, e.what());
    }
  }

  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  /// `h`, with its errors turned into JSON answers {"error": message} of their status.
  static httplib::Server::Handler guarded(Handler h) {
    return [h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
      int status = 500;
      std::string message;
      try {
        h(req, res);
        return;
      } catch (const HttpError& e) {
        status = e.status;
        message = e.what();
      } catch (const InputError& e) {
        status = 409;
        message = e.what();
      } catch (const std::exception& e) {
        message = e.what();
      }
      if (status >= 500) spdlog::warn("serve: {} {}: {}", req.method, req.path, message);
      res.status = status;
      res.set_content(json{{"error", message}}.dump(), "application/json");
    };
  }

  void routes() {
    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(vaegan_page_begin, vaegan_page_end), "text/html; charset=utf-8");
    });
    http.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    http.Get("/chart.min.js", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(vaegan_chartjs_begin, vaegan_chartjs_end), "text/javascript");
    });
    http.Get("/api/runs", guarded([this](const httplib::Request&, httplib::Response& res) {
               json out = json::array();
               for (size_t i = 0; i < runs.size(); ++i) out.push_back(describe(i));
               res.set_content(out.dump(), "application/json");
             }));
    http.Get(R"(/api/runs/([^/]+)/config)", guarded([this](const httplib::Request& req, httplib::Response& res) {
               res.set_content(read_small_file(run_of(req).dir / "config.json"), "application/json");
             }));
    http.Get(R"(/api/runs/([^/]+)/metrics)", guarded([this](const httplib::Request& req, httplib::Response& res) {
               const Run& r = run_of(req);
               const std::vector<json> lines = metric_lines(r.dir / "metrics.jsonl");
               const auto total = static_cast<int64_t>(lines.size());
               // a resume rewrites the file shorter: a client's offset past its end starts over
               int64_t from = int_param(req, "from", 0, int64_t{1} << 40, 0);
               if (from > total) from = 0;
               json out = {{"from", from}, {"next", total}, {"lines", json::array()}};
               for (int64_t i = from; i < total; ++i) out["lines"].push_back(lines[static_cast<size_t>(i)]);
               res.set_content(out.dump(), "application/json");
             }));
    http.Get(R"(/api/runs/([^/]+)/images/(.*))", guarded([this](const httplib::Request& req, httplib::Response& res) {
               const Run& r = run_of(req);
               const std::string name = req.matches[2];
               if (!std::regex_match(name, kGridName)) {
                 throw HttpError(404, fmt::format("'{}': not an epoch grid (epoch-NNN-reconstructions.png or "
                                                  "epoch-NNN-samples.png)",
                                                  name));
               }
               const fs::path p = r.dir / "images" / name;
               std::error_code ec;
               if (!fs::is_regular_file(fs::symlink_status(p, ec)))
                 throw HttpError(404, fmt::format("{}: not found", name));
               res.set_content(read_small_file(p), "image/png");
             }));
    http.Get(R"(/api/runs/([^/]+)/samples)", guarded([this](const httplib::Request& req, httplib::Response& res) {
               Run& r = run_of(req);
               const int64_t n = int_param(req, "n", 1, kMaxSamples, 16);
               const int64_t seed = int_param(req, "seed", 0, (int64_t{1} << 53), 0);
               std::lock_guard<std::mutex> lock(r.mutex);
               torch::NoGradGuard no_grad;
               LoadedModel& m = model_of(r);
               at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
               const torch::Tensor z = torch::randn({n, m.model->latent_dim()}, gen);  // as `vaegan sample --seed`
               res.set_content(decode_png(m, z, std::min<int64_t>(n, 8)), "image/png");
             }));
    http.Get(R"(/api/runs/([^/]+)/test-images)", guarded([this](const httplib::Request& req, httplib::Response& res) {
               Run& r = run_of(req);
               const int64_t n = int_param(req, "n", 1, kMaxStrip, 16);
               std::lock_guard<std::mutex> lock(r.mutex);
               const torch::Tensor& strip = test_images_of(r, model_of(r));
               res.set_content(
                   png_bytes(make_grid(strip.narrow(0, 0, std::min(n, strip.size(0))), n, 1), "test images"),
                   "image/png");
             }));
    http.Get(R"(/api/runs/([^/]+)/classes)", guarded([this](const httplib::Request& req, httplib::Response& res) {
               Run& r = run_of(req);
               std::lock_guard<std::mutex> lock(r.mutex);
               LoadedModel& m = model_of(r);
               res.set_content(json(attribute_names(*dataset_of(r, m, Split::kTrain))).dump(), "application/json");
             }));
    http.Post(R"(/api/runs/([^/]+)/interpolate)", guarded([this](const httplib::Request& req, httplib::Response& res) {
                Run& r = run_of(req);
                const json body = parse_body(req);
                const double t = json_number(body, "t", 0.0, 1.0, std::nullopt);
                const std::string mode = json_string(body, "mode", "linear");
                if (mode != "linear" && mode != "slerp")
                  throw HttpError(400, "field 'mode': expected \"linear\" or \"slerp\"");
                std::lock_guard<std::mutex> lock(r.mutex);
                torch::NoGradGuard no_grad;
                LoadedModel& m = model_of(r);
                const torch::Tensor a = latent_of(r, m, body, "a"), b = latent_of(r, m, body, "b");
                // t on a grid of 1/100: interpolate_latents' evenly spaced points
                const torch::Tensor path = interpolate_latents(a, b, 101, mode == "slerp");  // [1, 101, Z]
                const torch::Tensor z = path[0].narrow(0, static_cast<int64_t>(std::lround(t * 100)), 1);
                res.set_content(decode_png(m, z, 1), "image/png");
              }));
    http.Post(R"(/api/runs/([^/]+)/attribute)", guarded([this](const httplib::Request& req, httplib::Response& res) {
                Run& r = run_of(req);
                const json body = parse_body(req);
                const double strength = json_number(body, "strength", -4.0, 4.0, 1.0);
                const std::string to = json_string(body, "to_class", ""), from = json_string(body, "from_class", "");
                if (to.empty()) throw HttpError(400, "field 'to_class': expected a class or attribute name");
                std::lock_guard<std::mutex> lock(r.mutex);
                torch::NoGradGuard no_grad;
                LoadedModel& m = model_of(r);
                const torch::Tensor a = latent_of(r, m, body, "a");
                torch::Tensor& v = r.attributes[to + "|" + from];
                if (!v.defined()) {  // as `vaegan attribute compute`, over the explorer's training images
                  ensure_pool(r, m);
                  const int64_t n = r.pool_means.size(0);
                  AttributeSelection sel;
                  try {
                    const ImageDataset& train = *dataset_of(r, m, Split::kTrain);
                    sel = train.class_names().empty() ? select_by_named_attribute(train, n, to)
                                                      : select_by_class(train, n, to, from);
                    v = attribute_vector(r.pool_means.index({sel.keep}), sel.has.index({sel.keep}));
                  } catch (const InputError& e) {
                    r.attributes.erase(to + "|" + from);
                    throw HttpError(400, e.what());
                  }
                }
                res.set_content(decode_png(m, a + strength * v.to(a.dtype()), 1), "image/png");
              }));
    http.Post(R"(/api/runs/([^/]+)/encode)", guarded([this](const httplib::Request& req, httplib::Response& res) {
                Run& r = run_of(req);
                std::lock_guard<std::mutex> lock(r.mutex);
                torch::NoGradGuard no_grad;
                LoadedModel& m = model_of(r);
                require_encoder(r, m);
                const torch::Tensor mu =
                    encode_means(m.model, upload_of(req, m), m.device).to(torch::kDouble).contiguous();
                res.set_content(
                    json{{"z", std::vector<double>(mu.data_ptr<double>(), mu.data_ptr<double>() + mu.numel())}}.dump(),
                    "application/json");
              }));
    http.Post(R"(/api/runs/([^/]+)/reconstruct)", guarded([this](const httplib::Request& req, httplib::Response& res) {
                Run& r = run_of(req);
                const int64_t k = int_param(req, "neighbours", 0, kMaxNeighbours, 4);
                std::lock_guard<std::mutex> lock(r.mutex);
                torch::NoGradGuard no_grad;
                LoadedModel& m = model_of(r);
                require_encoder(r, m);
                const torch::Tensor x = upload_of(req, m);
                const torch::Tensor mu = encode_means(m.model, x, m.device);
                std::vector<torch::Tensor> row = {x, decode_latents(m.model, mu, m.device)};
                if (k > 0) {
                  ensure_pool(r, m);
                  const torch::Tensor d =
                      (r.pool_means - mu).pow(2).sum(1);  // squared Euclidean distance in latent space
                  const torch::Tensor nearest = std::get<1>(d.topk(std::min(k, d.size(0)), 0, /*largest=*/false));
                  row.push_back(r.pool_images.index_select(0, nearest));
                }
                res.set_content(png_bytes(make_grid(torch::cat(row), 2 + k, 1), "reconstruction"), "image/png");
              }));
  }

  /// `/api/runs`' entry of run `i`.
  json describe(size_t i) const {
    const Run& r = *runs[i];
    json config = json::parse(read_small_file(r.dir / "config.json"), nullptr, false);
    json out = {{"id", i}, {"name", r.name}, {"path", r.dir.string()}};
    if (config.is_discarded()) config = json::object();
    out["model"] = config.contains("model") ? config["model"].value("type", "") : "";
    out["arch"] = config.contains("model") ? config["model"].value("arch", "") : "";
    out["dataset"] = config.value("dataset", "");
    out["epochs"] = config.value("epochs", 0);
    // the newest checkpoint, as the explorer loads it (`resolve_checkpoint`: checkpoints/last)
    json state = json::object();
    std::error_code ec;
    try {
      state = json::parse(read_small_file(fs::path(resolve_checkpoint(r.dir.string())) / "state.json"), nullptr, false);
    } catch (const std::exception&) {  // none yet, or one being replaced: no step to show
    }
    if (!state.is_object()) state = json::object();
    const int64_t step = state.value("step", int64_t{0}), epoch = state.value("epoch", int64_t{0});
    const int64_t max_steps = config.value("max_steps", int64_t{0});
    out["checkpoint_step"] = state.contains("step") ? json(step) : json(nullptr);
    out["status"] = run_is_locked(r.dir) ? "running"
                    : (epoch >= config.value("epochs", int64_t{1}) || (max_steps > 0 && step >= max_steps))
                        ? "finished"
                        : "interrupted";
    std::set<int64_t> epochs;
    for (fs::directory_iterator it(r.dir / "images", ec), end; !ec && it != end; it.increment(ec)) {
      std::smatch mt;
      const std::string name = it->path().filename().string();
      if (std::regex_match(name, mt, kGridName)) epochs.insert(std::stoll(mt[1]));
    }
    out["grid_epochs"] = epochs;
    return out;
  }
};

Server::Server(std::vector<std::string> run_dirs, ServeOptions options) : state_(std::make_unique<State>()) {
  state_->options = options;
  if (run_dirs.empty()) throw InputError("serve: give at least one run directory");
  for (const std::string& d : run_dirs) {
    std::error_code ec;
    if (!fs::is_regular_file(fs::path(d) / "config.json", ec)) {
      throw InputError(
          fmt::format("{}: not a run directory (no config.json): give directories `vaegan train --out` "
                      "wrote",
                      d));
    }
    auto r = std::make_unique<Run>();
    r->dir = fs::canonical(d, ec);
    r->name = r->dir.filename().string();
    state_->runs.push_back(std::move(r));
  }
  const size_t threads = static_cast<size_t>(std::max(1, options.threads()));
  state_->http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  state_->http.set_payload_max_length(options.max_upload_bytes());
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second server on a
  // port in use binds too and the kernel splits the connections between the two
  state_->http.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  state_->routes();
}

Server::~Server() {
  stop();
  if (state_->thread.joinable()) state_->thread.join();
}

void Server::start() {
  State& s = *state_;
  const std::string& host = s.options.host();
  s.port = s.options.port() == 0 ? s.http.bind_to_any_port(host) : s.options.port();
  if (s.port < 0 || (s.options.port() != 0 && !s.http.bind_to_port(host, s.port))) {
    throw InputError(
        fmt::format("--host {} --port {}: cannot listen there (in use, or not an address of this "
                    "machine)",
                    host, s.options.port()));
  }
  // the socket listens from here on: connections wait in its backlog until the loop accepts them
  s.thread = std::thread([&s] { s.http.listen_after_bind(); });
  // cpp-httplib's stop() does nothing before the accept loop runs: wait for it, so that a stop
  // right after start (a signal, a test) is never lost
  for (int i = 0; i < 10000 && !s.http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

int Server::port() const { return state_->port; }

void Server::wait() {
  if (state_->thread.joinable()) state_->thread.join();
}

void Server::stop() { state_->http.stop(); }

}  // namespace vaegan
