#pragma once
/// Process-wide runtime settings: threads and device.

#include <torch/torch.h>

namespace vaegan {

/// Sets LibTorch's intra-op thread count. `threads <= 0` means all online cores
/// (`std::thread::hardware_concurrency`). Returns the count that was set.
int configure_threads(int threads);

/// Stores every 4-D parameter and buffer of `module` in channels-last (NHWC) memory format,
/// in place. Values are unchanged; convolutions then run on LibTorch's faster NHWC kernels when
/// their inputs are channels-last too.
void to_channels_last(torch::nn::Module& module);

/// The device to train on: CUDA when this LibTorch was built with it and a GPU is visible,
/// else CPU.
torch::Device default_device();

}  // namespace vaegan
