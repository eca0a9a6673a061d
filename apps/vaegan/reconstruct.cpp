// `vaegan reconstruct`: encode dataset images (posterior mean) and decode them.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.h"
#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/data/datasets.h"
#include "vaegan/io/image_io.h"
#include "vaegan/train/checkpoint.h"

namespace vaegan::cli {

void setup_reconstruct(CLI::App& app, Runner& run) {
  struct Options {
    std::string checkpoint, out, split = "test", data_dir;
    int64_t n = 32;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("reconstruct", "Reconstruct dataset images through the encoder and decoder");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint or run directory")->required();
  cmd->add_option("--n", o->n, "Number of images, from the start of the split")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Output: .png (originals over reconstructions) or .npy (reconstructions)")
      ->required();
  cmd->add_option("--split", o->split, "Dataset split")->check(CLI::IsMember({"train", "test"}))->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "Dataset directory (default: the one the model was trained on)");
  add_threads_option(cmd, o->threads);
  cmd->callback([&run, o] {
    run = [o] {
      check_image_output(o->out);
      LoadedModel m = load_for_command(o->checkpoint, o->threads);
      const torch::Device device = m.device;
      if (!m.model->encoder) {
        throw InputError(fmt::format("--checkpoint: {} is a {} model, which has no encoder to reconstruct with",
                                     m.directory, m.config.model.type));
      }
      const std::shared_ptr<ImageDataset> data =
          model_dataset(m, o->data_dir, o->split == "train" ? Split::kTrain : Split::kTest);
      const torch::Tensor x = data->first_images(o->n);  // [N, C, S, S]
      const int64_t n = x.size(0);
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor> chunks;
      for (int64_t i = 0; i < n; i += 256) {  // bounded memory for large N
        const torch::Tensor xb = x.narrow(0, i, std::min<int64_t>(256, n - i)).to(device);
        chunks.push_back(m.model->reconstruct(xb).cpu());
      }
      const torch::Tensor recon = torch::cat(chunks);
      const bool npy = o->out.compare(o->out.size() - 4, 4, ".npy") == 0;
      // .npy: reconstructions only, in dataset order; .png: originals over reconstructions
      write_images(o->out, npy ? recon : interleave_rows(x, recon, 8), 8);
      spdlog::info("wrote {} reconstructions of {} ({} split) to {}", n, data->summary(), o->split, o->out);
      return 0;
    };
  });
}

}  // namespace vaegan::cli
