// `vaegan reconstruct`: encode dataset images (posterior mean) and decode them.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.h"
#include "vaegan/core/error.h"
#include "vaegan/io/fs.h"
#include "vaegan/io/image_io.h"
#include "vaegan/model/inference.h"

namespace vaegan::cli {

int run_reconstruct(const ReconstructArgs& a) {
  check_image_output(a.out);
  LoadedModel m = load_for_command(a.checkpoint, a.runtime);
  if (!m.model->encoder) {
    throw InputError(fmt::format("--checkpoint: {} is a {} model, which has no encoder to reconstruct with",
                                 m.directory, enum_name(m.config.model.type)));
  }
  const std::shared_ptr<ImageDataset> data = model_dataset(m, a.data_dir, a.split);
  const torch::Tensor x = data->first_images(a.n);  // [N, C, S, S]
  torch::NoGradGuard no_grad;
  const torch::Tensor recon = reconstruct_images(m.model, x, m.device);
  // .npy and folders: reconstructions only, in dataset order; .png: originals over reconstructions
  const bool grid = !is_folder_output(a.out) && !has_extension(a.out, ".npy");
  write_images(a.out, grid ? interleave_rows(x, recon, 8) : recon, 8);
  spdlog::info("wrote {} reconstructions of {} ({} split) to {}", x.size(0), data->summary(), enum_name(a.split),
               a.out);
  return 0;
}

void setup_reconstruct(CLI::App& app, Runner& run) {
  auto a = std::make_shared<ReconstructArgs>();
  CLI::App* cmd = app.add_subcommand("reconstruct", "Reconstruct dataset images through the encoder and decoder");
  cmd->add_option("--checkpoint", a->checkpoint, "Checkpoint or run directory")->required();
  cmd->add_option("--n", a->n, "Number of images, from the start of the split")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option(
         "--out", a->out,
         "Output: .png (originals over reconstructions), .npy (reconstructions) or DIR/ (one PNG per reconstruction)")
      ->required();
  add_enum_option(cmd, "--split", a->split, "Dataset split");
  cmd->add_option("--data-dir", a->data_dir, "Dataset directory (default: the one the model was trained on)");
  add_runtime_options(cmd, a->runtime);
  cmd->callback([&run, a] { run = [a] { return run_reconstruct(*a); }; });
}

}  // namespace vaegan::cli
