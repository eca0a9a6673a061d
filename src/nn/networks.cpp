// Encoder, Decoder and Discriminator (DESIGN.md §3) and the presets that size them.
#include <fmt/format.h>

#include <algorithm>
#include <array>

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
  TORCH_CHECK(o.fc_layers() >= 1, "Encoder: fc_layers must be at least 1");
  features = nn::Sequential();
  int64_t in = o.in_channels();
  for (int64_t c : o.channels()) {
    features->push_back(conv(in, c, o.kernel_size(), 2, /*bias=*/!o.batch_norm()));
    if (o.batch_norm()) features->push_back(nn::BatchNorm2d(c));
    features->push_back(nn::ReLU());
    in = c;
  }
  const int64_t s = downsampled(o.image_size(), static_cast<int64_t>(o.channels().size()), "Encoder");
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

// ---------------------------------------------------------------- Decoder

DecoderImpl::DecoderImpl(DecoderOptions options_) : options(std::move(options_)) { reset(); }

void DecoderImpl::reset() {
  const auto& o = options;
  layers = nn::Sequential();
  if (o.channels().empty()) {  // MLP decoder (seed 002)
    TORCH_CHECK(o.fc_layers() >= 1, "Decoder: fc_layers must be at least 1");
    fc = nn::Sequential();
    int64_t in = o.latent_dim();
    for (int64_t l = 0; l < o.fc_layers(); ++l) {
      fc->push_back(nn::Linear(in, o.fc_dim()));
      fc->push_back(nn::ReLU());
      in = o.fc_dim();
    }
    fc->push_back(nn::Linear(in, o.out_channels() * o.image_size() * o.image_size()));
  } else {
    const int64_t c0 = o.channels().front();
    const int64_t s = downsampled(o.image_size(), static_cast<int64_t>(o.channels().size()), "Decoder");
    fc = nn::Sequential(nn::Linear(nn::LinearOptions(o.latent_dim(), c0 * s * s).bias(false)),
                        nn::BatchNorm1d(c0 * s * s), nn::ReLU());
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
  }
  fc = register_module("fc", fc);
  layers = register_module("layers", layers);
}

torch::Tensor conv_transpose2d_subpixel(const torch::Tensor& x, const torch::Tensor& weight,
                                        const torch::Tensor& bias) {
  const int64_t k = weight.size(2), p = k / 2, c_in = weight.size(0), c_out = weight.size(1);
  TORCH_CHECK(k % 2 == 1 && weight.size(3) == k, "conv_transpose2d_subpixel: expected an odd square kernel, got ",
              weight.sizes());
  // For output o = 2m + r, tap t contributes input i = m + d with d = (r + p - t) / 2 whenever
  // r + p - t is even. Gather, per phase r, the tap index of each window offset d; index k
  // points at an appended zero tap.
  std::array<std::vector<int64_t>, 2> taps;
  const int64_t d_min = -((p + 1) / 2), d_max = (p + 1) / 2;  // offsets of both phases lie here
  for (int64_t r = 0; r < 2; ++r) {
    taps[r].assign(d_max - d_min + 1, k);
    for (int64_t t = 0; t < k; ++t) {
      if ((r + p - t) % 2 == 0) taps[r][(r + p - t) / 2 - d_min] = t;
    }
  }
  const torch::Tensor padded = torch::constant_pad_nd(weight, {0, 1, 0, 1});  // [C_in, C_out, k+1, k+1]
  const auto index_options = torch::TensorOptions().dtype(torch::kLong).device(weight.device());
  std::vector<torch::Tensor> phases;
  for (int64_t rh = 0; rh < 2; ++rh) {
    const torch::Tensor rows = padded.index_select(2, torch::tensor(taps[rh], index_options));
    for (int64_t rw = 0; rw < 2; ++rw) phases.push_back(rows.index_select(3, torch::tensor(taps[rw], index_options)));
  }
  const int64_t w = d_max - d_min + 1;
  // [4, C_in, C_out, w, w] -> [C_out, 4, C_in, w, w] -> [4·C_out, C_in, w, w]: channel c·4 + 2·r_h + r_w,
  // the order pixel_shuffle expects.
  torch::Tensor kernel = torch::stack(phases).permute({2, 0, 1, 3, 4}).reshape({c_out * 4, c_in, w, w});
  if (x.is_contiguous(torch::MemoryFormat::ChannelsLast)) kernel = kernel.contiguous(torch::MemoryFormat::ChannelsLast);
  const torch::Tensor b = bias.defined() ? bias.repeat_interleave(4) : torch::Tensor();
  return torch::pixel_shuffle(torch::conv2d(x, kernel, b, 1, -d_min), 2);  // [B, C_out, 2H, 2W]
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& z) { return torch::tanh(preactivation(z)); }

torch::Tensor DecoderImpl::preactivation(const torch::Tensor& z) {
  const int64_t b = z.size(0), size = options.image_size();
  if (layers->is_empty()) return fc->forward(z).view({b, options.out_channels(), size, size});  // MLP
  const int64_t c0 = options.channels().front();
  const int64_t s = size >> options.channels().size();
  torch::Tensor h = fc->forward(z).view({b, c0, s, s});  // [B, c0, s, s]
  // With channels-last weights (see to_channels_last) the transposed convolutions take the
  // sub-pixel path, several times faster on CPU; otherwise LibTorch's own.
  const auto* first = layers[0]->as<nn::ConvTranspose2d>();
  const bool subpixel = first && first->weight.is_contiguous(torch::MemoryFormat::ChannelsLast);
  if (subpixel) h = h.contiguous(torch::MemoryFormat::ChannelsLast);
  for (auto& layer : *layers) {
    auto* convt = layer.ptr()->as<nn::ConvTranspose2d>();
    if (convt && subpixel) {
      h = conv_transpose2d_subpixel(h, convt->weight, convt->bias);  // [B, c, 2s, 2s]
    } else {
      h = layer.forward(h);
    }
  }
  return h;  // [B, C, S, S]
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
  head = nn::Sequential(nn::Linear(nn::LinearOptions(in * s * s, o.fc_dim()).bias(false)), nn::BatchNorm1d(o.fc_dim()),
                        nn::ReLU(), nn::Linear(o.fc_dim(), 1));
  convs = register_module("convs", convs);
  norms = register_module("norms", norms);
  head = register_module("head", head);
}

DiscriminatorOutput DiscriminatorImpl::forward(const torch::Tensor& x) {
  DiscriminatorOutput out;
  torch::Tensor h = x;
  for (size_t i = 0; i < convs->size(); ++i) {
    h = convs[i]->as<nn::Conv2d>()->forward(h);                                               // [B, c_i, s_i, s_i]
    if (static_cast<int64_t>(i) + 1 == options.feature_layer()) out.features = h.flatten(1);  // [B, F]
    if (i > 0) h = norms[i - 1]->as<nn::BatchNorm2d>()->forward(h);
    h = torch::relu(h);
  }
  out.logits = head->forward(h.flatten(1));  // [B, 1]
  return out;
}

// ---------------------------------------------------------------- presets

const std::vector<std::string>& arch_names() {
  static const std::vector<std::string> names = {"small32", "paper64", "mlp28"};
  return names;
}

const std::vector<std::string>& model_type_names() {
  static const std::vector<std::string> names = {"vaegan", "vae", "gan", "vae-then-gan"};
  return names;
}

int64_t preset_image_size(const std::string& arch) {
  if (arch == "small32") return 32;
  if (arch == "paper64") return 64;
  if (arch == "mlp28") return 28;
  throw InputError(fmt::format("--arch: unknown architecture '{}' (expected small32, paper64 or mlp28)", arch));
}

int64_t model_image_size(const ModelConfig& config) {
  return config.image_size > 0 ? config.image_size : preset_image_size(config.arch);
}

NetworkOptions make_network_options(const ModelConfig& config) {
  const auto& types = model_type_names();
  if (std::find(types.begin(), types.end(), config.type) == types.end()) {
    throw InputError(
        fmt::format("--model: unknown model '{}' (expected vaegan, vae, gan or vae-then-gan)", config.type));
  }
  const int64_t native = preset_image_size(config.arch);
  const int64_t size = model_image_size(config);
  const bool mlp = config.arch == "mlp28";
  if (config.image_size < 0) throw InputError(fmt::format("--image-size: must be positive, got {}", config.image_size));
  if (!mlp && size % 8 != 0) {
    throw InputError(fmt::format("--image-size: {} needs a multiple of 8, got {}", config.arch, size));
  }
  if (mlp && config.type != "vae") {
    throw InputError(
        fmt::format("--arch: mlp28 is the plain VAE of seed 002 and needs --model vae, got --model {}", config.type));
  }
  if (config.latent_dim < 0) throw InputError(fmt::format("--latent-dim: must be positive, got {}", config.latent_dim));
  if (config.channels != 1 && config.channels != 3) {
    throw InputError(fmt::format("--channels: must be 1 or 3, got {}", config.channels));
  }
  if (config.feature_layer < 1 || config.feature_layer > 4) {
    throw InputError(fmt::format("--feature-layer: must be in 1..4, got {}", config.feature_layer));
  }
  const int64_t preset_z = mlp ? 20 : native == 32 ? 64 : 128;
  const int64_t z = config.latent_dim > 0 ? config.latent_dim : preset_z;
  const int64_t c = config.channels;
  NetworkOptions o{EncoderOptions(c, size, z), DecoderOptions(z, c, size), DiscriminatorOptions(c, size)};
  o.discriminator.feature_layer(config.feature_layer);
  if (config.arch == "small32") {
    o.encoder.channels({32, 64, 128}).fc_dim(1024);
    o.decoder.channels({128, 64, 16});
    o.discriminator.channels({16, 64, 128, 128}).fc_dim(256);
  } else if (mlp) {
    o.encoder.channels({}).fc_dim(512).fc_layers(2).batch_norm(false);
    o.decoder.channels({}).fc_dim(512).fc_layers(2);
  }
  return o;
}

}  // namespace vaegan
