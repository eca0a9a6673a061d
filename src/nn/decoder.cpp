// Decoder p(x|z) (the generator) and the sub-pixel transposed convolution (docs/design.md, "Architectures").
#include "vaegan/nn/decoder.h"

#include <array>

#include "layers.h"

namespace vaegan {
namespace nn = torch::nn;

DecoderImpl::DecoderImpl(DecoderOptions options_) : options(std::move(options_)) { reset(); }

void DecoderImpl::reset() {
  const auto& o = options;
  layers = nn::Sequential();
  if (o.channels().empty()) {  // MLP decoder (mlp28)
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
    const int64_t s = detail::downsampled(o.image_size(), static_cast<int64_t>(o.channels().size()), "Decoder");
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
    layers->push_back(detail::conv(in, o.out_channels(), k, 1, /*bias=*/true));
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
  // With channels-last weights (see to_channels_last) on LibTorch 1.x the transposed
  // convolutions take the sub-pixel path: 1.x computes conv_transpose2d on the CPU with im2col
  // and GEMMs, several times slower than a convolution (docs/performance.md). LibTorch 2.x runs
  // it on oneDNN (CPU) or cuDNN, 1.5-1.9x faster than the sub-pixel form: its own operator there.
  const auto* first = layers[0]->as<nn::ConvTranspose2d>();
  const bool subpixel =
      kSubpixelTransposedConvolutions && first && first->weight.is_contiguous(torch::MemoryFormat::ChannelsLast);
  if (first && first->weight.is_contiguous(torch::MemoryFormat::ChannelsLast)) {
    h = h.contiguous(torch::MemoryFormat::ChannelsLast);
  }
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

}  // namespace vaegan
