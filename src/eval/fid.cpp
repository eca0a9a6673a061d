#include "vaegan/eval/fid.h"

#include <stdexcept>
#include <vector>

namespace vaegan {

GaussianStats gaussian_stats(const torch::Tensor& features) {
  if (features.dim() != 2 || features.size(0) < 2) {
    throw std::invalid_argument("gaussian_stats: expected features [N, F] with N >= 2");
  }
  const torch::Tensor f = features.to(torch::kFloat64);
  GaussianStats s;
  s.mean = f.mean(0);
  const torch::Tensor centred = f - s.mean;
  s.covariance = centred.t().mm(centred) / static_cast<double>(f.size(0) - 1);
  return s;
}

namespace {
/// Symmetric positive semi-definite square root through an eigendecomposition.
torch::Tensor sqrt_psd(const torch::Tensor& m) {
  auto [values, vectors] = torch::linalg_eigh(0.5 * (m + m.t()), "L");
  return vectors.mm(torch::diag(values.clamp_min(0).sqrt())).mm(vectors.t());
}
}  // namespace

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  const torch::Tensor root_a = sqrt_psd(a.covariance);
  const torch::Tensor inner = root_a.mm(b.covariance).mm(root_a);  // symmetric PSD, similar to S1 S2
  const torch::Tensor eig = torch::linalg_eigvalsh(0.5 * (inner + inner.t()), "L");
  const double trace_sqrt = eig.clamp_min(0).sqrt().sum().item<double>();
  const double mean_term = (a.mean - b.mean).pow(2).sum().item<double>();
  return mean_term + a.covariance.trace().item<double>() + b.covariance.trace().item<double>() - 2 * trace_sqrt;
}

namespace {
/// Distance of each row of `x` to its k-th nearest other row.
/// (In row chunks, so that 10,000 points need ~160 MB, not a full 800 MB distance matrix.)
constexpr int64_t kChunk = 2048;

torch::Tensor kth_neighbour_radius(const torch::Tensor& x, int64_t k) {
  std::vector<torch::Tensor> radii;
  for (int64_t i = 0; i < x.size(0); i += kChunk) {
    const torch::Tensor d = torch::cdist(x.narrow(0, i, std::min(kChunk, x.size(0) - i)), x);  // [c, N]
    radii.push_back(std::get<0>(d.topk(k + 1, 1, /*largest=*/false)).select(1, k));            // 0: the point itself
  }
  return torch::cat(radii);
}

/// Share of `points` within the ball of some row of `centres` (radius `radii`).
double coverage(const torch::Tensor& centres, const torch::Tensor& radii, const torch::Tensor& points) {
  int64_t inside = 0;
  for (int64_t i = 0; i < points.size(0); i += kChunk) {
    const torch::Tensor d = torch::cdist(points.narrow(0, i, std::min(kChunk, points.size(0) - i)), centres);
    inside += d.le(radii.unsqueeze(0)).any(1).sum().item<int64_t>();
  }
  return static_cast<double>(inside) / static_cast<double>(points.size(0));
}
}  // namespace

PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& fake, int64_t k) {
  if (real.size(0) <= k || fake.size(0) <= k) {
    throw std::invalid_argument("precision_recall: each set needs more than k points");
  }
  const torch::Tensor r = real.to(torch::kFloat64), f = fake.to(torch::kFloat64);
  return {coverage(r, kth_neighbour_radius(r, k), f), coverage(f, kth_neighbour_radius(f, k), r)};
}

}  // namespace vaegan
