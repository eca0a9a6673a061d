#pragma once
/// Latent-space arithmetic of the paper's §5 (interpolation, visual attribute vectors; seed 004).

#include <torch/torch.h>

namespace vaegan {

/// Points between latents `a` and `b` (`[R, Z]` each): `[R, steps, Z]`, from `a` (t = 0) to `b`
/// (t = 1) at `steps` evenly spaced t (steps >= 2). Linear, or spherical (`slerp`, White 2016:
/// along the great circle, with norms interpolated linearly; falls back to linear where a and b
/// are (anti)parallel).
torch::Tensor interpolate_latents(const torch::Tensor& a, const torch::Tensor& b, int64_t steps, bool slerp);

/// The original code's attribute vector (DESIGN.md §2, seed 004): mean of `latents` `[N, Z]`
/// where `has` `[N]` (bool) is true minus the mean where it is false. Throws `InputError` when
/// either group is empty.
torch::Tensor attribute_vector(const torch::Tensor& latents, const torch::Tensor& has);

}  // namespace vaegan
