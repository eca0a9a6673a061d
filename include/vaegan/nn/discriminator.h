#pragma once
/// Convolutional discriminator of the VAE-GAN (paper §2.1 and §4; docs/design.md, "Architectures").
///
/// Layers: conv k×k stride 1 to `channels[0]` -> ReLU; per further entry of `channels` a
/// stride-2 conv -> BN -> ReLU; FC `fc_dim` -> BN -> ReLU; FC 1 (a logit, no sigmoid).
/// Besides the logit it returns the output of one convolution ("layer l", taken before its
/// batch norm), the representation `Dis_l(x)` in which the VAE-GAN measures reconstruction
/// error (paper eq. 7).

#include <torch/torch.h>

#include <vector>

namespace vaegan {

/// Options of `Discriminator`; the defaults are the paper's 64×64 discriminator (`paper64`).
struct DiscriminatorOptions {
  DiscriminatorOptions(int64_t in_channels, int64_t image_size) : in_channels_(in_channels), image_size_(image_size) {}
  /// C: channels of the input images.
  TORCH_ARG(int64_t, in_channels);
  /// S: input height and width; divisible by 2^(len(channels) - 1).
  TORCH_ARG(int64_t, image_size);
  /// Output channels of each convolution; the first has stride 1, the others stride 2.
  TORCH_ARG(std::vector<int64_t>, channels) = std::vector<int64_t>{32, 128, 256, 256};
  /// Width of the hidden fully connected layer (paper: 512).
  TORCH_ARG(int64_t, fc_dim) = 512;
  /// 1-based index of the convolution whose pre-BN output is `Dis_l` (paper: 4, the last).
  TORCH_ARG(int64_t, feature_layer) = 4;
  /// Square kernel size (paper: 5).
  TORCH_ARG(int64_t, kernel_size) = 5;
};

/// What the discriminator returns for a batch.
struct DiscriminatorOutput {
  torch::Tensor logits;    ///< `[B, 1]`: log-odds that each image is real
  torch::Tensor features;  ///< `[B, F]`: layer-l activations, flattened (F = c_l · s_l · s_l)
};

/// Discriminator network. `forward(x)` takes images `[B, C, S, S]` in `[-1, 1]`.
class DiscriminatorImpl : public torch::nn::Module {
 public:
  explicit DiscriminatorImpl(DiscriminatorOptions options);
  DiscriminatorOutput forward(const torch::Tensor& x);
  void reset();

  DiscriminatorOptions options;
  torch::nn::ModuleList convs{nullptr};  ///< convolution i (0-based)
  torch::nn::ModuleList norms{nullptr};  ///< batch norm after convolution i+1 (the first has none)
  torch::nn::Sequential head{nullptr};   ///< `[B, c_last*s*s]` -> `[B, 1]`
};
TORCH_MODULE(Discriminator);

}  // namespace vaegan
