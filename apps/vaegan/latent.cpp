// `vaegan interpolate` and `vaegan attribute compute|apply`: the latent-space tools of the
// paper's §5.
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <numeric>
#include <sstream>

#include "commands.h"
#include "vaegan/core/error.h"
#include "vaegan/data/image_folder_dataset.h"
#include "vaegan/io/fs.h"
#include "vaegan/io/image_io.h"
#include "vaegan/io/npy.h"
#include "vaegan/latent/latent_ops.h"
#include "vaegan/model/inference.h"

namespace vaegan::cli {
namespace {

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

}  // namespace

int run_interpolate(const InterpolateArgs& a) {
  check_image_output(a.out);
  LoadedModel m = load_for_command(a.checkpoint, a.runtime);
  torch::NoGradGuard no_grad;
  torch::Tensor ends;  // [2R, Z]: the R start points, then the R end points
  if (!a.from.empty()) {
    for (const auto& f : {a.from, a.to}) {
      if (!std::filesystem::is_regular_file(f)) throw InputError(fmt::format("--from/--to: {} does not exist", f));
    }
    const int64_t size = model_image_size(m.config.model), channels = m.config.model.channels;
    const torch::Tensor x = to_model_range(
        torch::stack({decode_image_file(a.from, channels, size), decode_image_file(a.to, channels, size)}));
    ends = encode_means(m.model, x, m.device);
  } else if (!a.index.empty()) {
    const auto data = model_dataset(m, a.data_dir, Split::kTest);
    for (int64_t i : a.index) {
      if (i < 0 || i >= data->size()) {
        throw InputError(fmt::format("--index: {} is outside the test set's 0..{}", i, data->size() - 1));
      }
    }
    ends = encode_means(m.model, data->images(a.index), m.device);
  } else {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(a.seed);
    const torch::Tensor first = torch::randn({a.rows, m.model->latent_dim()}, gen);
    ends = torch::cat({first, torch::randn({a.rows, m.model->latent_dim()}, gen)});
  }
  const int64_t rows = ends.size(0) / 2;
  const torch::Tensor path = interpolate_latents(ends.narrow(0, 0, rows), ends.narrow(0, rows, rows), a.steps,
                                                 a.slerp);  // [R, K, Z]
  write_images(a.out, decode_latents(m.model, path.flatten(0, 1), m.device), a.steps);
  spdlog::info("wrote {} interpolation row(s) of {} points to {}", rows, a.steps, a.out);
  return 0;
}

int run_attribute_compute(const AttributeArgs& a) {
  if (a.attribute.empty() && a.from_class.empty()) {
    throw InputError("attribute compute: give --attribute NAME, --attribute class=NAME or --from-class/--to-class");
  }
  require_extension(a.out, {".npy"}, "--out");
  LoadedModel m = load_for_command(a.checkpoint, a.runtime);
  torch::NoGradGuard no_grad;
  const auto data = model_dataset(m, a.data_dir, Split::kTrain);
  const int64_t n = std::min(a.max_images, data->size());
  const AttributeSelection sel = !a.from_class.empty() ? select_by_class(*data, n, a.to_class, a.from_class)
                                 : a.attribute.rfind("class=", 0) == 0
                                     ? select_by_class(*data, n, a.attribute.substr(6))
                                     : select_by_named_attribute(*data, n, a.attribute);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  spdlog::info("encoding {} training images", n);
  const torch::Tensor z = encode_means(m.model, data->images(idx), m.device);
  const torch::Tensor has = sel.has.index({sel.keep});
  const torch::Tensor v = attribute_vector(z.index({sel.keep}), has);
  write_npy(a.out, v.to(torch::kFloat32).contiguous());
  spdlog::info("wrote the attribute vector (|v| = {:.3f}, {} with, {} without) to {}", v.norm().item<double>(),
               has.sum().item<int64_t>(), has.numel() - has.sum().item<int64_t>(), a.out);
  return 0;
}

int run_attribute_apply(const AttributeArgs& a) {
  check_image_output(a.out);
  const std::vector<double> strengths = parse_list(a.strengths, "--strengths");
  LoadedModel m = load_for_command(a.checkpoint, a.runtime);
  const torch::Tensor v = read_npy(a.vector).to(torch::kFloat32).flatten();
  if (v.numel() != m.model->latent_dim()) {
    throw InputError(fmt::format("--vector: {} has {} entries but the model's latent size is {}", a.vector, v.numel(),
                                 m.model->latent_dim()));
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor x = model_dataset(m, a.data_dir, Split::kTest)->first_images(a.n);  // [N, C, S, S]
  const torch::Tensor z = encode_means(m.model, x, m.device);                             // [N, Z]
  std::vector<torch::Tensor> columns = {x};
  for (double s : strengths) columns.push_back(decode_latents(m.model, z + s * v, m.device));
  const torch::Tensor grid = torch::stack(columns, 1).flatten(0, 1);  // row-major: image i, then its edits
  write_images(a.out, grid, static_cast<int64_t>(columns.size()));
  spdlog::info("wrote {} rows x {} columns (original, strengths {}) to {}", x.size(0), columns.size(), a.strengths,
               a.out);
  return 0;
}

void setup_interpolate(CLI::App& app, Runner& run) {
  auto a = std::make_shared<InterpolateArgs>();
  CLI::App* cmd = app.add_subcommand("interpolate", "Decode points between two encoded images or two prior draws");
  cmd->add_option("--checkpoint", a->checkpoint, "Checkpoint or run directory")->required();
  cmd->add_option("--out", a->out, "Output: .png grid (one row per pair) or .npy")->required();
  cmd->add_option("--steps", a->steps, "Points per row, endpoints included")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  auto* from = cmd->add_option("--from", a->from, "First image file (with --to)");
  auto* to = cmd->add_option("--to", a->to, "Second image file (with --from)");
  from->needs(to);
  to->needs(from);
  auto* index = cmd->add_option("--index", a->index, "Two test-set indices I J")->expected(2)->excludes(from);
  auto* seed = add_seed_option(cmd, a->seed, "Seed of prior pairs (the default when no images are given)");
  seed->excludes(from)->excludes(index);
  cmd->add_option("--rows", a->rows, "Prior pairs (rows) with --seed")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_flag("--slerp", a->slerp, "Spherical instead of linear interpolation");
  cmd->add_option("--data-dir", a->data_dir, "Dataset directory for --index (default: the training one)");
  add_runtime_options(cmd, a->runtime);
  cmd->callback([&run, a] { run = [a] { return run_interpolate(*a); }; });
}

void setup_attribute(CLI::App& app, Runner& run) {
  auto a = std::make_shared<AttributeArgs>();
  CLI::App* group = app.add_subcommand("attribute", "Visual attribute vectors in latent space (paper §5)");
  group->require_subcommand(1);
  CLI::App* compute = group->add_subcommand(
      "compute", "Mean latent of training images with the attribute minus the mean of those without");
  compute->add_option("--checkpoint", a->checkpoint, "Checkpoint or run directory")->required();
  compute->add_option("--out", a->out, "Vector to write (.npy, float32 [Z])")->required();
  auto* attr = compute->add_option("--attribute", a->attribute,
                                   "CelebA attribute (e.g. Smiling), or class=NAME for labelled datasets");
  auto* fc = compute->add_option("--from-class", a->from_class, "Class to move away from (with --to-class)");
  auto* tc = compute->add_option("--to-class", a->to_class, "Class to move towards (with --from-class)");
  fc->needs(tc)->excludes(attr);
  tc->needs(fc);
  compute->add_option("--max-images", a->max_images, "Training images to encode")
      ->check(CLI::Range(2, 10000000))
      ->capture_default_str();
  compute->add_option("--data-dir", a->data_dir, "Dataset directory (default: the training one)");
  add_runtime_options(compute, a->runtime);
  compute->callback([&run, a] { run = [a] { return run_attribute_compute(*a); }; });

  CLI::App* apply =
      group->add_subcommand("apply", "Add an attribute vector to encoded test images at several strengths");
  apply->add_option("--checkpoint", a->checkpoint, "Checkpoint or run directory")->required();
  apply->add_option("--vector", a->vector, "Vector from `attribute compute` (.npy [Z])")->required();
  apply->add_option("--out", a->out, "Output: .png grid (rows: images; columns: original, then strengths) or .npy")
      ->required();
  apply->add_option("--n", a->n, "Test images (rows)")->check(CLI::Range(1, 10000))->capture_default_str();
  apply->add_option("--strengths", a->strengths, "Comma-separated multiples of the vector")->capture_default_str();
  apply->add_option("--data-dir", a->data_dir, "Dataset directory (default: the training one)");
  add_runtime_options(apply, a->runtime);
  apply->callback([&run, a] { run = [a] { return run_attribute_apply(*a); }; });
}

}  // namespace vaegan::cli
