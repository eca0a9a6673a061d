#pragma once
/// Convolutional decoder p(x|z), also the GAN's generator (paper §2.2 and §4, seed 001;
/// DESIGN.md §3).
///
/// Layers: FC to `channels[0] × s × s` (s = S / 2^len(channels)) -> BN -> ReLU, then per entry
/// of `channels` a stride-2 transposed convolution (k×k, doubles H and W) -> BN -> ReLU, then a
/// k×k convolution to C channels and tanh, so outputs lie in `[-1, 1]`.

#include <vector>

#include <torch/torch.h>

namespace vaegan {

/// Options of `Decoder`; the defaults are the paper's 64×64 decoder (`paper64`).
struct DecoderOptions {
  DecoderOptions(int64_t latent_dim, int64_t out_channels, int64_t image_size)
      : latent_dim_(latent_dim), out_channels_(out_channels), image_size_(image_size) {}
  /// Z: size of the latent code.
  TORCH_ARG(int64_t, latent_dim);
  /// C: channels of the generated images.
  TORCH_ARG(int64_t, out_channels);
  /// S: output height and width; divisible by 2^len(channels).
  TORCH_ARG(int64_t, image_size);
  /// Channels of the FC output map followed by those of each transposed convolution:
  /// the paper's FC 8·8·256 then convT 256, 128, 32.
  TORCH_ARG(std::vector<int64_t>, channels) = std::vector<int64_t>{256, 128, 32};
  /// Square kernel size (paper: 5).
  TORCH_ARG(int64_t, kernel_size) = 5;
};

/// Decoder network. `forward(z)` maps latents `[B, Z]` to images `[B, C, S, S]` in `[-1, 1]`.
class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(DecoderOptions options);
  torch::Tensor forward(const torch::Tensor& z);
  void reset();

  DecoderOptions options;
  torch::nn::Sequential fc{nullptr};      ///< `[B, Z]` -> `[B, c0*s*s]`
  torch::nn::Sequential layers{nullptr};  ///< `[B, c0, s, s]` -> `[B, C, S, S]`
};
TORCH_MODULE(Decoder);

}  // namespace vaegan
