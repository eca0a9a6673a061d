// `vaegan encode`: the posterior q(z|x) of every image of a dataset split or a folder, as arrays.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <numeric>

#include "commands.h"
#include "vaegan/core/error.h"
#include "vaegan/data/image_folder_dataset.h"
#include "vaegan/io/fs.h"
#include "vaegan/io/npy.h"

namespace vaegan::cli {

int run_encode(const EncodeArgs& a) {
  require_extension(a.out, {".npz"}, "--out");
  LoadedModel m = load_for_command(a.checkpoint, a.runtime);
  if (!m.model->encoder) {
    throw InputError(fmt::format("--checkpoint: {} is a {} model, which has no encoder", m.directory,
                                 enum_name(m.config.model.type)));
  }
  const std::shared_ptr<ImageDataset> data =
      a.input.empty() ? model_dataset(m, a.data_dir, a.split)
                      : std::make_shared<ImageFolderDataset>(a.input, a.split, m.config.model.channels,
                                                             model_image_size(m.config.model));
  const int64_t n = a.n > 0 ? std::min(a.n, data->size()) : data->size();
  std::vector<torch::Tensor> mu, logvar;
  std::vector<int64_t> labels(static_cast<size_t>(n));
  torch::NoGradGuard no_grad;
  const int64_t chunk = 256;
  for (int64_t start = 0; start < n; start += chunk) {
    std::vector<int64_t> indices(static_cast<size_t>(std::min(chunk, n - start)));
    std::iota(indices.begin(), indices.end(), start);
    for (int64_t i : indices) labels[static_cast<size_t>(i)] = data->label(i);
    // an unreadable image ends the command (ImageReadError names it): the arrays are in dataset order
    const auto [mu_b, logvar_b] = m.model->encoder->forward(data->images(indices).to(m.device));
    mu.push_back(mu_b.to(torch::kCPU, torch::kFloat));
    logvar.push_back(logvar_b.to(torch::kCPU, torch::kFloat));
  }
  write_npz(a.out, {{"mu", torch::cat(mu)}, {"logvar", torch::cat(logvar)}, {"labels", torch::tensor(labels)}});
  spdlog::info("wrote mu, logvar [{}, {}] and labels [{}] of {} to {}", n, m.model->latent_dim(), n, data->summary(),
               a.out);
  return 0;
}

void setup_encode(CLI::App& app, Runner& run) {
  auto a = std::make_shared<EncodeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "encode", "Write the posterior means and log-variances of a dataset split or a folder of images as .npz");
  cmd->add_option("--checkpoint", a->checkpoint, "Checkpoint or run directory")->required();
  cmd->add_option("--out", a->out, "Output .npz: mu, logvar (float32 [N, Z]) and labels (int64 [N], -1: none)")
      ->required();
  add_enum_option(cmd, "--split", a->split, "Dataset split (of the run's dataset, or of --input)");
  cmd->add_option("--data-dir", a->data_dir, "Dataset directory (default: the one the model was trained on)");
  cmd->add_option("--input", a->input,
                  "A folder of PNG/JPEG images to encode instead (class subfolders give labels; train/ and test/ "
                  "subfolders are the splits)");
  cmd->add_option("--n", a->n, "Images from the start of the split (0: all)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000000}))
      ->capture_default_str();
  add_runtime_options(cmd, a->runtime, /*threads=*/true, /*decoder_weights=*/false);
  cmd->callback([&run, a] { run = [a] { return run_encode(*a); }; });
}

}  // namespace vaegan::cli
