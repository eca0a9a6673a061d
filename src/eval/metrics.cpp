#include "vaegan/eval/metrics.h"

#include <cmath>

namespace vaegan {

MeanStderr mean_and_standard_error(const torch::Tensor& values) {
  const torch::Tensor v = values.to(torch::kFloat64).flatten();
  MeanStderr out;
  out.mean = v.mean().item<double>();
  const int64_t n = v.numel();
  out.standard_error = n > 1 ? v.std().item<double>() / std::sqrt(static_cast<double>(n)) : 0.0;
  return out;
}

namespace {
torch::Tensor unit(const torch::Tensor& x) { return (x.to(torch::kFloat64) + 1) * 0.5; }  // [-1, 1] -> [0, 1]
}  // namespace

torch::Tensor mse_per_image(const torch::Tensor& x, const torch::Tensor& y) {
  return (unit(x) - unit(y)).pow(2).flatten(1).mean(1);
}

torch::Tensor psnr_per_image(const torch::Tensor& x, const torch::Tensor& y) {
  return -10.0 * torch::log10(mse_per_image(x, y));
}

torch::Tensor ssim_per_image(const torch::Tensor& x, const torch::Tensor& y) {
  TORCH_CHECK(x.sizes() == y.sizes() && x.dim() == 4, "ssim_per_image: expected two [N, C, H, W] of one shape");
  TORCH_CHECK(x.size(2) >= 11 && x.size(3) >= 11, "ssim_per_image: images must be at least 11x11");
  const int64_t c = x.size(1);
  const torch::Tensor r = torch::arange(11, torch::kFloat64) - 5;
  torch::Tensor g = torch::exp(-r.pow(2) / (2 * 1.5 * 1.5));
  g = g / g.sum();
  const torch::Tensor window = torch::outer(g, g).expand({c, 1, 11, 11}).contiguous();  // depthwise
  auto blur = [&](const torch::Tensor& t) {
    return torch::nn::functional::conv2d(t, window, torch::nn::functional::Conv2dFuncOptions().groups(c));
  };  // valid positions only
  const torch::Tensor a = unit(x), b = unit(y);
  const torch::Tensor mu_a = blur(a), mu_b = blur(b);
  const torch::Tensor var_a = blur(a * a) - mu_a.pow(2), var_b = blur(b * b) - mu_b.pow(2);
  const torch::Tensor cov = blur(a * b) - mu_a * mu_b;
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  const torch::Tensor map =
      ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.pow(2) + mu_b.pow(2) + c1) * (var_a + var_b + c2));
  return map.flatten(1).mean(1);
}

}  // namespace vaegan
