#pragma once
// Layer helpers shared by the network files of src/nn/ (not part of the public API).
#include <torch/torch.h>

namespace vaegan::detail {

/// k×k convolution with "same"-style padding; stride 2 halves H and W (for even sizes).
inline torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, bool bias) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(bias));
}

/// `size / 2^halvings`; `TORCH_CHECK`s that `size` divides evenly (`what` names the network).
inline int64_t downsampled(int64_t size, int64_t halvings, const char* what) {
  const int64_t factor = int64_t{1} << halvings;
  TORCH_CHECK(size % factor == 0, what, ": image size ", size, " is not divisible by ", factor);
  return size / factor;
}

}  // namespace vaegan::detail
