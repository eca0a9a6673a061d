#pragma once
/// Encoder q(z|x) of the VAE-GAN and the VAE (paper §4; Kingma & Welling 2014; docs/design.md, "Architectures").
///
/// Legend: B batch, C image channels, S image size (H = W = S), Z latent size.
/// Layers: [conv k×k stride 2 -> BN -> ReLU] per entry of `channels`, `fc_layers` times
/// [FC `fc_dim` -> BN -> ReLU], then two FC heads giving the mean and log-variance of a diagonal
/// Gaussian. With `channels` empty and `batch_norm(false)` it is the MLP encoder of Kingma & Welling 2014
/// (`mlp28`: 784 -> 512 -> 512 -> Z).

#include <torch/torch.h>

#include <tuple>
#include <vector>

namespace vaegan {

/// Options of `Encoder`; the defaults are the paper's 64×64 encoder (`paper64`).
struct EncoderOptions {
  EncoderOptions(int64_t in_channels, int64_t image_size, int64_t latent_dim)
      : in_channels_(in_channels), image_size_(image_size), latent_dim_(latent_dim) {}
  /// C: channels of the input images.
  TORCH_ARG(int64_t, in_channels);
  /// S: input height and width; must be divisible by 2^len(channels).
  TORCH_ARG(int64_t, image_size);
  /// Z: size of the latent code.
  TORCH_ARG(int64_t, latent_dim);
  /// Output channels of each stride-2 convolution.
  TORCH_ARG(std::vector<int64_t>, channels) = std::vector<int64_t>{64, 128, 256};
  /// Width of the fully connected layer before the heads (paper: 2048).
  TORCH_ARG(int64_t, fc_dim) = 2048;
  /// Number of hidden fully connected layers of width `fc_dim` (paper: 1; mlp28: 2).
  TORCH_ARG(int64_t, fc_layers) = 1;
  /// Batch norm after every convolution and hidden FC layer (paper: yes; mlp28: no).
  TORCH_ARG(bool, batch_norm) = true;
  /// Square kernel size of every convolution (paper: 5).
  TORCH_ARG(int64_t, kernel_size) = 5;
};

/// Encoder network. `forward(x)` takes images `[B, C, S, S]` in `[-1, 1]` and returns
/// `(mu, logvar)`, each `[B, Z]`.
class EncoderImpl : public torch::nn::Module {
 public:
  explicit EncoderImpl(EncoderOptions options);
  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
  void reset();

  EncoderOptions options;
  torch::nn::Sequential features{nullptr};  ///< conv stack, `[B, C, S, S]` -> `[B, c_last, s, s]` (empty: MLP)
  torch::nn::Sequential fc{nullptr};        ///< `[B, c_last*s*s]` -> `[B, fc_dim]`
  torch::nn::Linear mu{nullptr};            ///< `[B, fc_dim]` -> `[B, Z]`
  torch::nn::Linear logvar{nullptr};        ///< `[B, fc_dim]` -> `[B, Z]`
};
TORCH_MODULE(Encoder);

/// Reparameterization trick (Kingma & Welling 2014): `z = mu + exp(logvar / 2) * eps`.
/// All tensors `[B, Z]`; `eps ~ N(0, I)` is passed in so callers control randomness.
torch::Tensor reparameterize(const torch::Tensor& mu, const torch::Tensor& logvar, const torch::Tensor& eps);

}  // namespace vaegan
