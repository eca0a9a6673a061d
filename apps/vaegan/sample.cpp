// `vaegan sample`: decode draws from the prior N(0, I).
#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include "commands.h"
#include "vaegan/io/image_io.h"
#include "vaegan/model/inference.h"

namespace vaegan::cli {

int run_sample(const SampleArgs& a) {
  check_image_output(a.out);
  LoadedModel m = load_for_command(a.checkpoint, a.runtime);
  torch::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(a.seed);
  const torch::Tensor z = torch::randn({a.n, m.model->latent_dim()}, gen);  // [N, Z]
  // Decoded 256 at a time and kept as 8-bit pixels: N·S²·C bytes for the output, the
  // activations of one chunk, however large N is.
  const torch::Tensor pixels = map_batches(z, 256, m.device, [&](const torch::Tensor& zb) {
    return to_uint8_nhwc(m.model->decoder->forward(zb));
  });  // [N, S, S, C] uint8
  write_images(a.out, pixels, 8);
  spdlog::info("wrote {} samples from {} to {}", a.n, m.directory, a.out);
  return 0;
}

void setup_sample(CLI::App& app, Runner& run) {
  auto a = std::make_shared<SampleArgs>();
  CLI::App* cmd = app.add_subcommand("sample", "Decode samples from the prior");
  cmd->add_option("--checkpoint", a->checkpoint, "Checkpoint or run directory")->required();
  cmd->add_option("--n", a->n, "Number of samples")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--out", a->out,
                  "Output: grid .png, uint8 [N, H, W, C] .npy, or DIR/ (one PNG per sample, for pytorch-fid)")
      ->required();
  add_seed_option(cmd, a->seed, "Seed of the prior draws");
  add_runtime_options(cmd, a->runtime);
  cmd->callback([&run, a] { run = [a] { return run_sample(*a); }; });
}

}  // namespace vaegan::cli
