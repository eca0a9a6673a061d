// Encoder q(z|x) (docs/design.md, "Architectures").
#include "vaegan/nn/encoder.h"

#include "layers.h"

namespace vaegan {
namespace nn = torch::nn;

EncoderImpl::EncoderImpl(EncoderOptions options_) : options(std::move(options_)) { reset(); }

void EncoderImpl::reset() {
  const auto& o = options;
  TORCH_CHECK(o.fc_layers() >= 1, "Encoder: fc_layers must be at least 1");
  features = nn::Sequential();
  int64_t in = o.in_channels();
  for (int64_t c : o.channels()) {
    features->push_back(detail::conv(in, c, o.kernel_size(), 2, /*bias=*/!o.batch_norm()));
    if (o.batch_norm()) features->push_back(nn::BatchNorm2d(c));
    features->push_back(nn::ReLU());
    in = c;
  }
  const int64_t s = detail::downsampled(o.image_size(), static_cast<int64_t>(o.channels().size()), "Encoder");
  fc = nn::Sequential();
  in *= s * s;
  for (int64_t l = 0; l < o.fc_layers(); ++l) {
    fc->push_back(nn::Linear(nn::LinearOptions(in, o.fc_dim()).bias(!o.batch_norm())));
    if (o.batch_norm()) fc->push_back(nn::BatchNorm1d(o.fc_dim()));
    fc->push_back(nn::ReLU());
    in = o.fc_dim();
  }
  mu = nn::Linear(o.fc_dim(), o.latent_dim());
  logvar = nn::Linear(o.fc_dim(), o.latent_dim());
  features = register_module("features", features);
  fc = register_module("fc", fc);
  mu = register_module("mu", mu);
  logvar = register_module("logvar", logvar);
}

std::tuple<torch::Tensor, torch::Tensor> EncoderImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = features->is_empty() ? x : features->forward(x);  // [B, c_last, s, s]
  h = fc->forward(h.flatten(1));                                      // [B, fc_dim]
  return {mu->forward(h), logvar->forward(h)};                        // [B, Z] each
}

torch::Tensor reparameterize(const torch::Tensor& mu, const torch::Tensor& logvar, const torch::Tensor& eps) {
  return mu + torch::exp(0.5 * logvar) * eps;
}

}  // namespace vaegan
