#pragma once
/// Convolutional decoder p(x|z), also the GAN's generator (paper §2.2 and §4;
/// docs/design.md, "Architectures").
///
/// Layers: FC to `channels[0] × s × s` (s = S / 2^len(channels)) -> BN -> ReLU, then per entry
/// of `channels` a stride-2 transposed convolution (k×k, doubles H and W) -> BN -> ReLU, then a
/// k×k convolution to C channels and tanh, so outputs lie in `[-1, 1]`.
/// With `channels` empty it is the MLP decoder of Kingma & Welling 2014 (`mlp28`): `fc_layers` times
/// [FC `fc_dim` -> ReLU], FC to C·S·S, tanh. (Seed 002 ends in a sigmoid on `[0, 1]`; tanh on
/// `[-1, 1]` is the same model: `2·sigmoid(2a) - 1 = tanh(a)`.)

#include <torch/torch.h>
#include <torch/version.h>

#include <vector>

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
  /// MLP mode only (`channels` empty): width and number of the hidden FC layers (mlp28: 512, 2).
  TORCH_ARG(int64_t, fc_dim) = 512;
  TORCH_ARG(int64_t, fc_layers) = 2;
};

/// Stride-2 transposed convolution `conv_transpose2d(x, weight, bias, stride 2, padding k/2,
/// output_padding 1)` computed exactly as one ordinary convolution followed by a pixel shuffle
/// (sub-pixel decomposition, Shi et al. 2016): output pixel (2m + r_h, 2n + r_w) only sees the
/// kernel taps of phase (r_h, r_w), so the four phases' taps are gathered into a
/// `[4·C_out, C_in, w, w]` kernel (w = 2·floor((k+1)/4) + 1: 3 for k = 5; missing taps are
/// zero) and the phases are
/// interleaved with `pixel_shuffle(2)`. Same function and gradients as the transposed
/// convolution (up to summation order), but it runs on LibTorch's fast convolution path,
/// which in LibTorch 1.13 the CPU transposed convolution does not (it is ~6x slower there,
/// see docs/performance.md).
/// x: `[B, C_in, H, W]`; weight: `[C_in, C_out, k, k]` (ConvTranspose2d layout), k odd;
/// bias: `[C_out]` or undefined. Returns `[B, C_out, 2H, 2W]`.
torch::Tensor conv_transpose2d_subpixel(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

/// Whether the decoder computes its transposed convolutions as `conv_transpose2d_subpixel`
/// when its weights are channels-last: with LibTorch 1.x, whose CPU `conv_transpose2d` is slow;
/// not with 2.x, whose oneDNN and cuDNN operators are faster than the sub-pixel form
/// (docs/performance.md). Decided when vaegan is compiled.
constexpr bool kSubpixelTransposedConvolutions = TORCH_VERSION_MAJOR < 2;

/// Decoder network. `forward(z)` maps latents `[B, Z]` to images `[B, C, S, S]` in `[-1, 1]`.
/// When its weights are channels-last (`to_channels_last`), it computes in NHWC layout, its
/// transposed convolutions as `conv_transpose2d_subpixel` where
/// `kSubpixelTransposedConvolutions`.
class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(DecoderOptions options);
  /// `tanh(preactivation(z))`: images `[B, C, S, S]` in `[-1, 1]`.
  torch::Tensor forward(const torch::Tensor& z);
  /// The output before the final tanh, `a` `[B, C, S, S]`. As a Bernoulli decoder on `[0, 1]`
  /// pixels its logits are `2a` (`sigmoid(2a) = (tanh(a) + 1) / 2`), see
  /// `pixel_reconstruction_loss`.
  torch::Tensor preactivation(const torch::Tensor& z);
  void reset();

  DecoderOptions options;
  torch::nn::Sequential fc{nullptr};      ///< `[B, Z]` -> `[B, c0*s*s]` (MLP: `[B, C*S*S]`)
  torch::nn::Sequential layers{nullptr};  ///< `[B, c0, s, s]` -> `[B, C, S, S]` before tanh (MLP: empty)
};
TORCH_MODULE(Decoder);

}  // namespace vaegan
