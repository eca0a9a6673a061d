// `vaegan interpolate` and `vaegan attribute compute|apply`: the latent-space tools of the
// paper's §5 (seed 004's attribute vectors).
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <numeric>
#include <sstream>

#include "commands.h"
#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/data/celeba.h"
#include "vaegan/data/datasets.h"
#include "vaegan/data/image_folder_dataset.h"
#include "vaegan/io/npy.h"
#include "vaegan/latent/latent_ops.h"
#include "vaegan/train/checkpoint.h"

namespace vaegan::cli {
namespace {

/// Encoder means of `x` `[N, C, S, S]`, in batches: `[N, Z]` on the CPU.
torch::Tensor encode(LoadedModel& m, const torch::Tensor& x, torch::Device device) {
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < x.size(0); i += 256) {
    out.push_back(m.model->encode_mean(x.narrow(0, i, std::min<int64_t>(256, x.size(0) - i)).to(device)).cpu());
  }
  return torch::cat(out);
}

torch::Tensor decode(LoadedModel& m, const torch::Tensor& z, torch::Device device) {
  return m.model->decoder->forward(z.to(device)).cpu();
}

/// Parses "-1,0,1.5" into numbers; throws `InputError` naming `flag` otherwise.
std::vector<double> parse_list(const std::string& text, const char* flag) {
  std::vector<double> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    try {
      size_t used = 0;
      out.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw InputError(
          fmt::format("{}: '{}' is not a number (expected a comma-separated list like -1,0,1,2)", flag, item));
    }
  }
  if (out.empty()) throw InputError(fmt::format("{}: empty list", flag));
  return out;
}

/// Index of class `name` (a class name, or its number) among `names`.
int64_t class_index(const std::vector<std::string>& names, const std::string& name, const char* flag) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<int64_t>(i);
  }
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit) &&
      std::stoll(name) < static_cast<int64_t>(names.size())) {
    return std::stoll(name);
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  throw InputError(fmt::format("{}: no class '{}' (classes: {})", flag, name, list.empty() ? "none" : list));
}

}  // namespace

void setup_interpolate(CLI::App& app, Runner& run) {
  struct Options {
    std::string checkpoint, out, from, to, data_dir;
    std::vector<int64_t> index;
    int64_t steps = 8, rows = 8;
    uint64_t seed = 0;
    bool slerp = false;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("interpolate", "Decode points between two encoded images or two prior draws");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint or run directory")->required();
  cmd->add_option("--out", o->out, "Output: .png grid (one row per pair) or .npy")->required();
  cmd->add_option("--steps", o->steps, "Points per row, endpoints included")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  auto* from = cmd->add_option("--from", o->from, "First image file (with --to)");
  auto* to = cmd->add_option("--to", o->to, "Second image file (with --from)");
  from->needs(to);
  to->needs(from);
  auto* index = cmd->add_option("--index", o->index, "Two test-set indices I J")->expected(2)->excludes(from);
  auto* seed = cmd->add_option("--seed", o->seed, "Seed of prior pairs (the default when no images are given)");
  seed->excludes(from)->excludes(index);
  cmd->add_option("--rows", o->rows, "Prior pairs (rows) with --seed")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_flag("--slerp", o->slerp, "Spherical instead of linear interpolation");
  cmd->add_option("--data-dir", o->data_dir, "Dataset directory for --index (default: the training one)");
  add_threads_option(cmd, o->threads);
  cmd->callback([&run, o] {
    run = [o] {
      check_image_output(o->out);
      LoadedModel m = load_for_command(o->checkpoint, o->threads);
      const torch::Device device = m.device;
      torch::NoGradGuard no_grad;
      torch::Tensor a, b;  // [R, Z]
      const int64_t size = model_image_size(m.config.model), channels = m.config.model.channels;
      if (!o->from.empty()) {
        for (const auto& f : {o->from, o->to}) {
          if (!std::filesystem::is_regular_file(f)) throw InputError(fmt::format("--from/--to: {} does not exist", f));
        }
        const torch::Tensor x = to_model_range(
            torch::stack({decode_image_file(o->from, channels, size), decode_image_file(o->to, channels, size)}));
        const torch::Tensor z = encode(m, x, device);
        a = z.narrow(0, 0, 1);
        b = z.narrow(0, 1, 1);
      } else if (!o->index.empty()) {
        const auto data = model_dataset(m, o->data_dir, Split::kTest);
        for (int64_t i : o->index) {
          if (i < 0 || i >= data->size()) {
            throw InputError(fmt::format("--index: {} is outside the test set's 0..{}", i, data->size() - 1));
          }
        }
        const torch::Tensor z = encode(m, data->images(o->index), device);
        a = z.narrow(0, 0, 1);
        b = z.narrow(0, 1, 1);
      } else {
        at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o->seed);
        a = torch::randn({o->rows, m.model->latent_dim()}, gen);
        b = torch::randn({o->rows, m.model->latent_dim()}, gen);
      }
      const torch::Tensor path = interpolate_latents(a, b, o->steps, o->slerp);  // [R, K, Z]
      write_images(o->out, decode(m, path.flatten(0, 1), device), o->steps);
      spdlog::info("wrote {} interpolation row(s) of {} points to {}", a.size(0), o->steps, o->out);
      return 0;
    };
  });
}

void setup_attribute(CLI::App& app, Runner& run) {
  struct Options {
    std::string checkpoint, out, attribute, from_class, to_class, vector, data_dir, strengths = "-1,0,1,2";
    int64_t max_images = 10000, n = 16;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* group = app.add_subcommand("attribute", "Visual attribute vectors in latent space (paper §5)");
  group->require_subcommand(1);
  CLI::App* compute = group->add_subcommand(
      "compute", "Mean latent of training images with the attribute minus the mean of those without");
  compute->add_option("--checkpoint", o->checkpoint, "Checkpoint or run directory")->required();
  compute->add_option("--out", o->out, "Vector to write (.npy, float32 [Z])")->required();
  auto* attr = compute->add_option("--attribute", o->attribute,
                                   "CelebA attribute (e.g. Smiling), or class=NAME for labelled datasets");
  auto* fc = compute->add_option("--from-class", o->from_class, "Class to move away from (with --to-class)");
  auto* tc = compute->add_option("--to-class", o->to_class, "Class to move towards (with --from-class)");
  fc->needs(tc)->excludes(attr);
  tc->needs(fc);
  compute->add_option("--max-images", o->max_images, "Training images to encode")
      ->check(CLI::Range(2, 10000000))
      ->capture_default_str();
  compute->add_option("--data-dir", o->data_dir, "Dataset directory (default: the training one)");
  add_threads_option(compute, o->threads);
  compute->callback([&run, o] {
    run = [o] {
      if (o->attribute.empty() && o->from_class.empty()) {
        throw InputError("attribute compute: give --attribute NAME, --attribute class=NAME or --from-class/--to-class");
      }
      if (o->out.size() < 4 || o->out.compare(o->out.size() - 4, 4, ".npy") != 0) {
        throw InputError(fmt::format("--out: {} must end in .npy", o->out));
      }
      LoadedModel m = load_for_command(o->checkpoint, o->threads);
      const torch::Device device = m.device;
      torch::NoGradGuard no_grad;
      const auto data = model_dataset(m, o->data_dir, Split::kTrain);
      const int64_t n = std::min(o->max_images, data->size());
      std::vector<int64_t> idx(static_cast<size_t>(n));
      std::iota(idx.begin(), idx.end(), 0);
      torch::Tensor has, keep = torch::ones({n}, torch::kBool);
      const bool is_class = o->attribute.rfind("class=", 0) == 0;
      if (!o->from_class.empty() || is_class) {
        const auto names = data->class_names();
        torch::Tensor labels = torch::empty({n}, torch::kLong);
        for (int64_t i = 0; i < n; ++i) labels[i] = data->label(i);
        if (is_class) {
          has = labels.eq(class_index(names, o->attribute.substr(6), "--attribute"));
        } else {
          const int64_t a = class_index(names, o->from_class, "--from-class");
          const int64_t b = class_index(names, o->to_class, "--to-class");
          has = labels.eq(b);
          keep = labels.eq(a).logical_or(has);
        }
      } else {
        const auto* celeba = dynamic_cast<const CelebADataset*>(data.get());
        if (!celeba || !celeba->attributes().defined()) {
          throw InputError(
              fmt::format("--attribute: {} has no named attributes (CelebA with list_attr_celeba.txt "
                          "has); use --attribute class=NAME or --from-class/--to-class",
                          m.config.dataset));
        }
        const int64_t col = read_celeba_attributes(m.config.data_dir + "/list_attr_celeba.txt").index(o->attribute);
        has = celeba->attributes().narrow(0, 0, n).select(1, col).gt(0);
      }
      spdlog::info("encoding {} training images", n);
      const torch::Tensor z = encode(m, data->images(idx), device);
      const torch::Tensor v = attribute_vector(z.index({keep}), has.index({keep}));
      write_npy(o->out, v.to(torch::kFloat32).contiguous());
      spdlog::info("wrote the attribute vector (|v| = {:.3f}, {} with, {} without) to {}", v.norm().item<double>(),
                   has.index({keep}).sum().item<int64_t>(),
                   keep.sum().item<int64_t>() - has.index({keep}).sum().item<int64_t>(), o->out);
      return 0;
    };
  });

  CLI::App* apply =
      group->add_subcommand("apply", "Add an attribute vector to encoded test images at several strengths");
  apply->add_option("--checkpoint", o->checkpoint, "Checkpoint or run directory")->required();
  apply->add_option("--vector", o->vector, "Vector from `attribute compute` (.npy [Z])")->required();
  apply->add_option("--out", o->out, "Output: .png grid (rows: images; columns: original, then strengths) or .npy")
      ->required();
  apply->add_option("--n", o->n, "Test images (rows)")->check(CLI::Range(1, 10000))->capture_default_str();
  apply->add_option("--strengths", o->strengths, "Comma-separated multiples of the vector")->capture_default_str();
  apply->add_option("--data-dir", o->data_dir, "Dataset directory (default: the training one)");
  add_threads_option(apply, o->threads);
  apply->callback([&run, o] {
    run = [o] {
      check_image_output(o->out);
      const std::vector<double> strengths = parse_list(o->strengths, "--strengths");
      LoadedModel m = load_for_command(o->checkpoint, o->threads);
      const torch::Device device = m.device;
      const torch::Tensor v = read_npy(o->vector).to(torch::kFloat32).flatten();
      if (v.numel() != m.model->latent_dim()) {
        throw InputError(fmt::format("--vector: {} has {} entries but the model's latent size is {}", o->vector,
                                     v.numel(), m.model->latent_dim()));
      }
      torch::NoGradGuard no_grad;
      const torch::Tensor x = model_dataset(m, o->data_dir, Split::kTest)->first_images(o->n);  // [N, C, S, S]
      const torch::Tensor z = encode(m, x, device);                                             // [N, Z]
      std::vector<torch::Tensor> columns = {x};
      for (double s : strengths) columns.push_back(decode(m, z + s * v, device));
      const torch::Tensor grid = torch::stack(columns, 1).flatten(0, 1);  // row-major: image i, then its edits
      write_images(o->out, grid, static_cast<int64_t>(columns.size()));
      spdlog::info("wrote {} rows x {} columns (original, strengths {}) to {}", x.size(0), columns.size(), o->strengths,
                   o->out);
      return 0;
    };
  });
}

}  // namespace vaegan::cli
