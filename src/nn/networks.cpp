// Encoder, Decoder and Discriminator (DESIGN.md §3) and the presets that size them.
#include <fmt/format.h>

#include "vaegan/core/error.h"
#include "vaegan/nn/presets.h"

namespace vaegan {
namespace nn = torch::nn;

namespace {

/// k×k convolution with "same"-style padding; stride 2 halves H and W (for even sizes).
nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, bool bias) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(bias));
}

int64_t downsampled(int64_t size, int64_t halvings, const char* what) {
  const int64_t factor = int64_t{1} << halvings;
  TORCH_CHECK(size % factor == 0, what, ": image size ", size, " is not divisible by ", factor);
  return size / factor;
}

}  // namespace

// ---------------------------------------------------------------- Encoder

EncoderImpl::EncoderImpl(EncoderOptions options_) : options(std::move(options_)) { reset(); }

void EncoderImpl::reset() {
  const auto& o = options;
  TORCH_CHECK(!o.channels().empty(), "Encoder: channels must not be empty");
  features = nn::Sequential();
  int64_t in = o.in_channels();
  for (int64_t c : o.channels()) {
    features->push_back(conv(in, c, o.kernel_size(), 2, /*bias=*/false));
    features->push_back(nn::BatchNorm2d(c));
    features->push_back(nn::ReLU());
    in = c;
  }
  const int64_t s = downsampled(o.image_size(), static_cast<int64_t>(o.channels().size()), "Encoder");
  fc = nn::Sequential(nn::Linear(nn::LinearOptions(in * s * s, o.fc_dim()).bias(false)),
                      nn::BatchNorm1d(o.fc_dim()), nn::ReLU());
  mu = nn::Linear(o.fc_dim(), o.latent_dim());
  logvar = nn::Linear(o.fc_dim(), o.latent_dim());
  features = register_module("features", features);
  fc = register_module("fc", fc);
  mu = register_module("mu", mu);
  logvar = register_module("logvar", logvar);
}

std::tuple<torch::Tensor, torch::Tensor> EncoderImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = features->forward(x);  // [B, c_last, s, s]
  h = fc->forward(h.flatten(1));           // [B, fc_dim]
  return {mu->forward(h), logvar->forward(h)};  // [B, Z] each
}

torch::Tensor reparameterize(const torch::Tensor& mu, const torch::Tensor& logvar, const torch::Tensor& eps) {
  return mu + torch::exp(0.5 * logvar) * eps;
}

// ---------------------------------------------------------------- Decoder

DecoderImpl::DecoderImpl(DecoderOptions options_) : options(std::move(options_)) { reset(); }

void DecoderImpl::reset() {
  const auto& o = options;
  TORCH_CHECK(!o.channels().empty(), "Decoder: channels must not be empty");
  const int64_t c0 = o.channels().front();
  const int64_t s = downsampled(o.image_size(), static_cast<int64_t>(o.channels().size()), "Decoder");
  fc = nn::Sequential(nn::Linear(nn::LinearOptions(o.latent_dim(), c0 * s * s).bias(false)),
                      nn::BatchNorm1d(c0 * s * s), nn::ReLU());
  layers = nn::Sequential();
  const int64_t k = o.kernel_size();
  int64_t in = c0;
  for (int64_t c : o.channels()) {
    // stride 2, padding k/2, output_padding 1: exactly doubles H and W.
    layers->push_back(nn::ConvTranspose2d(
        nn::ConvTranspose2dOptions(in, c, k).stride(2).padding(k / 2).output_padding(1).bias(false)));
    layers->push_back(nn::BatchNorm2d(c));
    layers->push_back(nn::ReLU());
    in = c;
  }
  layers->push_back(conv(in, o.out_channels(), k, 1, /*bias=*/true));
  layers->push_back(nn::Tanh());
  fc = register_module("fc", fc);
  layers = register_module("layers", layers);
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& z) {
  const int64_t c0 = options.channels().front();
  const int64_t s = options.image_size() >> options.channels().size();
  torch::Tensor h = fc->forward(z).view({z.size(0), c0, s, s});  // [B, c0, s, s]
  return layers->forward(h);                                      // [B, C, S, S]
}

// ---------------------------------------------------------------- Discriminator

DiscriminatorImpl::DiscriminatorImpl(DiscriminatorOptions options_) : options(std::move(options_)) { reset(); }

void DiscriminatorImpl::reset() {
  const auto& o = options;
  const int64_t n = static_cast<int64_t>(o.channels().size());
  TORCH_CHECK(n >= 1, "Discriminator: channels must not be empty");
  TORCH_CHECK(o.feature_layer() >= 1 && o.feature_layer() <= n, "Discriminator: feature_layer must be in 1..", n,
              " but is ", o.feature_layer());
  convs = nn::ModuleList();
  norms = nn::ModuleList();
  int64_t in = o.in_channels();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = o.channels()[i];
    convs->push_back(conv(in, c, o.kernel_size(), i == 0 ? 1 : 2, /*bias=*/i == 0));
    if (i > 0) norms->push_back(nn::BatchNorm2d(c));
    in = c;
  }
  const int64_t s = downsampled(o.image_size(), n - 1, "Discriminator");
  head = nn::Sequential(nn::Linear(nn::LinearOptions(in * s * s, o.fc_dim()).bias(false)),
                        nn::BatchNorm1d(o.fc_dim()), nn::ReLU(), nn::Linear(o.fc_dim(), 1));
  convs = register_module("convs", convs);
  norms = register_module("norms", norms);
  head = register_module("head", head);
}

DiscriminatorOutput DiscriminatorImpl::forward(const torch::Tensor& x) {
  DiscriminatorOutput out;
  torch::Tensor h = x;
  for (size_t i = 0; i < convs->size(); ++i) {
    h = convs[i]->as<nn::Conv2d>()->forward(h);  // [B, c_i, s_i, s_i]
    if (static_cast<int64_t>(i) + 1 == options.feature_layer()) out.features = h.flatten(1);  // [B, F]
    if (i > 0) h = norms[i - 1]->as<nn::BatchNorm2d>()->forward(h);
    h = torch::relu(h);
  }
  out.logits = head->forward(h.flatten(1));  // [B, 1]
  return out;
}

// ---------------------------------------------------------------- presets

const std::vector<std::string>& arch_names() {
  static const std::vector<std::string> names = {"small32", "paper64"};
  return names;
}

int64_t preset_image_size(const std::string& arch) {
  if (arch == "small32") return 32;
  if (arch == "paper64") return 64;
  throw InputError(fmt::format("--arch: unknown architecture '{}' (expected small32 or paper64)", arch));
}

NetworkOptions make_network_options(const ModelConfig& config) {
  const int64_t size = preset_image_size(config.arch);
  const bool small = config.arch == "small32";
  const int64_t z = config.latent_dim > 0 ? config.latent_dim : (small ? 64 : 128);
  if (config.latent_dim < 0) throw InputError(fmt::format("--latent-dim: must be positive, got {}", config.latent_dim));
  if (config.channels != 1 && config.channels != 3) {
    throw InputError(fmt::format("--channels: must be 1 or 3, got {}", config.channels));
  }
  if (config.feature_layer < 1 || config.feature_layer > 4) {
    throw InputError(fmt::format("--feature-layer: must be in 1..4, got {}", config.feature_layer));
  }
  const int64_t c = config.channels;
  NetworkOptions o{EncoderOptions(c, size, z), DecoderOptions(z, c, size), DiscriminatorOptions(c, size)};
  o.discriminator.feature_layer(config.feature_layer);
  if (small) {
    o.encoder.channels({32, 64, 128}).fc_dim(1024);
    o.decoder.channels({128, 64, 16});
    o.discriminator.channels({16, 64, 128, 128}).fc_dim(256);
  }
  return o;
}

}  // namespace vaegan
