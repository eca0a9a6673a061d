#pragma once
/// Reconstruction metrics per image (docs/design.md, "What vaegan does", `vaegan eval`): squared error, PSNR and SSIM,
/// all on the `[0, 1]` pixel scale (images given in `[-1, 1]` are mapped by `(x + 1) / 2`).

#include <torch/torch.h>

namespace vaegan {

/// Mean and standard error of the mean (sample standard deviation / sqrt(N)) of `values` `[N]`.
struct MeanStderr {
  double mean = 0;
  double standard_error = 0;
};
MeanStderr mean_and_standard_error(const torch::Tensor& values);

/// Mean squared error per image between `x` and `y` `[N, C, H, W]` in `[-1, 1]`, on `[0, 1]`
/// pixels: `[N]`.
torch::Tensor mse_per_image(const torch::Tensor& x, const torch::Tensor& y);

/// Peak signal-to-noise ratio per image in dB, peak 1 on `[0, 1]` pixels:
/// `10 log10(1 / MSE)`; `[N]` (infinite for identical images).
torch::Tensor psnr_per_image(const torch::Tensor& x, const torch::Tensor& y);

/// Structural similarity per image (Wang, Bovik, Sheikh, Simoncelli 2004): an 11×11 Gaussian
/// window with sigma 1.5, K1 = 0.01, K2 = 0.03, dynamic range 1 on `[0, 1]` pixels, averaged over
/// the positions where the window fits inside the image and over channels. `x`, `y`:
/// `[N, C, H, W]` in `[-1, 1]` with H, W >= 11. Returns `[N]`, 1 for identical images.
torch::Tensor ssim_per_image(const torch::Tensor& x, const torch::Tensor& y);

}  // namespace vaegan
