// `vaegan sample`: decode draws from the prior N(0, I).
#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include "commands.h"
#include "vaegan/core/runtime.h"
#include "vaegan/train/checkpoint.h"

namespace vaegan::cli {

void setup_sample(CLI::App& app, Runner& run) {
  struct Options {
    std::string checkpoint, out;
    int64_t n = 64;
    uint64_t seed = 0;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("sample", "Decode samples from the prior");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint or run directory")->required();
  cmd->add_option("--n", o->n, "Number of samples")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--out", o->out, "Output: grid .png or uint8 [N, H, W, C] .npy")->required();
  cmd->add_option("--seed", o->seed, "Seed of the prior draws")->capture_default_str();
  add_threads_option(cmd, o->threads);
  cmd->callback([&run, o] {
    run = [o] {
      check_image_output(o->out);
      LoadedModel m = load_for_command(o->checkpoint, o->threads);
      const torch::Device device = m.device;
      torch::NoGradGuard no_grad;
      at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o->seed);
      const torch::Tensor z = torch::randn({o->n, m.model->latent_dim()}, gen);  // [N, Z]
      const torch::Tensor images = m.model->decoder->forward(z.to(device));      // [N, C, S, S]
      write_images(o->out, images, 8);
      spdlog::info("wrote {} samples from {} to {}", o->n, m.directory, o->out);
      return 0;
    };
  });
}

}  // namespace vaegan::cli
