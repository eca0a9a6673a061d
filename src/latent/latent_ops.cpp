#include "vaegan/latent/latent_ops.h"

#include <fmt/format.h>

#include "vaegan/core/error.h"

namespace vaegan {

torch::Tensor interpolate_latents(const torch::Tensor& a, const torch::Tensor& b, int64_t steps, bool slerp) {
  TORCH_CHECK(steps >= 2, "interpolate_latents: steps must be at least 2");
  TORCH_CHECK(a.sizes() == b.sizes() && a.dim() == 2, "interpolate_latents: expected two [R, Z] of one shape");
  const torch::Tensor t = torch::linspace(0, 1, steps, a.options()).view({1, steps, 1});  // [1, T, 1]
  const torch::Tensor a3 = a.unsqueeze(1), b3 = b.unsqueeze(1);                           // [R, 1, Z]
  const torch::Tensor linear = a3 + t * (b3 - a3);
  if (!slerp) return linear;
  const torch::Tensor na = a3.norm(2, 2, true), nb = b3.norm(2, 2, true);  // [R, 1, 1]
  const torch::Tensor cos = ((a3 / na) * (b3 / nb)).sum(2, true).clamp(-1, 1);
  const torch::Tensor omega = torch::acos(cos), so = torch::sin(omega);
  const torch::Tensor unit =
      (torch::sin((1 - t) * omega) * (a3 / na) + torch::sin(t * omega) * (b3 / nb)) / so.clamp_min(1e-7);
  const torch::Tensor spherical = unit * (na + t * (nb - na));
  return torch::where(so.abs() < 1e-6, linear, spherical);
}

torch::Tensor attribute_vector(const torch::Tensor& latents, const torch::Tensor& has) {
  const torch::Tensor mask = has.to(torch::kBool);
  const int64_t with = mask.sum().item<int64_t>(), without = mask.numel() - with;
  if (with == 0 || without == 0) {
    throw InputError(fmt::format("--attribute: {} of {} images have the attribute; both groups must be non-empty", with,
                                 mask.numel()));
  }
  return latents.index({mask}).mean(0) - latents.index({mask.logical_not()}).mean(0);
}

}  // namespace vaegan
