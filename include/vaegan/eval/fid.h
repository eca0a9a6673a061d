#pragma once
/// Sample quality in a feature space: the Fréchet distance between Gaussians fitted to two sets
/// of features (Heusel et al. 2017, "FID" when the features are Inception's) and k-NN precision
/// and recall (Kynkäänniemi et al. 2019).

#include <torch/torch.h>

namespace vaegan {

/// Mean `[F]` and unbiased covariance `[F, F]` (divided by N - 1) of features `[N, F]`, float64.
/// Throws `std::invalid_argument` for N < 2.
struct GaussianStats {
  torch::Tensor mean;
  torch::Tensor covariance;
};
GaussianStats gaussian_stats(const torch::Tensor& features);

/// `|m1 - m2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`. The trace of the matrix square root is computed
/// as the sum of the square roots of the eigenvalues of `S1^(1/2) S2 S1^(1/2)` (symmetric, so
/// `eigh` applies; tiny negative eigenvalues from round-off count as 0).
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

/// k-NN precision and recall of generated features against real ones.
struct PrecisionRecall {
  double precision = 0;  ///< share of generated points inside some real point's k-NN ball
  double recall = 0;     ///< share of real points inside some generated point's k-NN ball
};
/// Each point's ball has the radius of the distance to its k-th nearest neighbour within its own
/// set (itself excluded). `real` `[N, F]`, `fake` `[M, F]`, N, M > k.
PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& fake, int64_t k = 3);

}  // namespace vaegan
