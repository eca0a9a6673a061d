#include "vaegan/model/augment.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <sstream>
#include <vector>

#include "vaegan/core/error.h"

namespace vaegan {
namespace {

/// `[B]` float32 uniform in [low, high), or `identity` where `applied` is false.
torch::Tensor uniform_factor(int64_t b, double low, double high, const torch::Tensor& applied, double identity,
                             at::Generator& gen) {
  const torch::Tensor u = torch::rand({b}, gen) * (high - low) + low;
  return torch::where(applied, u, torch::full({b}, identity));
}

/// `[B]` int64 uniform in [low, high), or `identity` where `applied` is false.
torch::Tensor integer_draw(int64_t b, int64_t low, int64_t high, const torch::Tensor& applied, int64_t identity,
                           at::Generator& gen) {
  const torch::Tensor r = torch::randint(low, high, {b}, gen, torch::kLong);
  return torch::where(applied, r, torch::full({b}, identity, torch::kLong));
}

/// `[B, 1, 1, 1]` view of a per-image factor, in `like`'s dtype and on its device.
torch::Tensor per_image(const torch::Tensor& v, const torch::Tensor& like) {
  return v.to(like.device(), like.scalar_type()).view({-1, 1, 1, 1});
}

/// Translation side of DiffAugment: S/8 rounded.
int64_t max_shift(int64_t size) { return (size + 4) / 8; }
/// Cutout side: S/2 rounded.
int64_t cutout_side(int64_t size) { return (size + 1) / 2; }

/// Every tensor of a draw, in declaration order.
template <typename Draw>
auto fields(Draw& d) {
  return std::array{&d.brightness, &d.saturation, &d.contrast, &d.shift_y,
                    &d.shift_x,    &d.cutout_y,   &d.cutout_x, &d.cutout_on};
}

/// A draw whose every defined tensor is `f` of `d`'s (undefined ones stay undefined).
template <typename Fn>
AugmentDraw map_fields(const AugmentDraw& d, Fn&& f) {
  AugmentDraw out;
  const auto to = fields(out);
  const auto from = fields(d);
  for (size_t i = 0; i < to.size(); ++i) {
    if (from[i]->defined()) *to[i] = f(*from[i]);
  }
  return out;
}

}  // namespace

AugmentOptions parse_augment_policy(const std::string& policy) {
  AugmentOptions o;
  if (policy == "none") return o;
  std::stringstream in(policy);
  std::string name;
  std::vector<std::string> seen;
  while (std::getline(in, name, ',')) {
    for (const auto& s : seen) {
      if (s == name) throw InputError(fmt::format("--augment: '{}' is named twice in '{}'", name, policy));
    }
    seen.push_back(name);
    if (name == "color") {
      o.color(true);
    } else if (name == "translation") {
      o.translation(true);
    } else if (name == "cutout") {
      o.cutout(true);
    } else {
      throw InputError(
          fmt::format("--augment: unknown transform '{}' in '{}' (expected none, or a comma-separated list of color, "
                      "translation, cutout)",
                      name, policy));
    }
  }
  if (!o.any()) throw InputError(fmt::format("--augment: no transform in '{}' (none: no augmentation)", policy));
  return o;
}

std::string augment_policy_name(const AugmentOptions& o) {
  std::vector<std::string> names;
  if (o.color()) names.emplace_back("color");
  if (o.translation()) names.emplace_back("translation");
  if (o.cutout()) names.emplace_back("cutout");
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ","));
}

AugmentDraw AugmentDraw::narrow(int64_t first, int64_t count) const {
  return map_fields(*this, [&](const torch::Tensor& t) { return t.narrow(0, first, count); });
}

AugmentDraw AugmentDraw::to(const torch::Device& device) const {
  return map_fields(*this, [&](const torch::Tensor& t) { return t.to(device, /*non_blocking=*/false, /*copy=*/true); });
}

void AugmentDraw::copy_(const AugmentDraw& source) {
  const auto to = fields(*this);
  const auto from = fields(source);
  for (size_t i = 0; i < to.size(); ++i) {
    TORCH_CHECK(to[i]->defined() == from[i]->defined(), "AugmentDraw::copy_: the draws have different transforms");
    if (!to[i]->defined()) continue;
    TORCH_CHECK(to[i]->sizes() == from[i]->sizes(), "AugmentDraw::copy_: a draw for ", from[i]->size(0),
                " images into one for ", to[i]->size(0));
    to[i]->copy_(*from[i]);
  }
}

AugmentDraw draw_augment(const AugmentOptions& o, int64_t b, int64_t size, at::Generator& gen) {
  AugmentDraw d;
  const auto applied = [&] { return torch::rand({b}, gen) < o.probability(); };
  if (o.color()) {
    d.brightness = uniform_factor(b, -0.5, 0.5, applied(), 0.0, gen);
    d.saturation = uniform_factor(b, 0.0, 2.0, applied(), 1.0, gen);
    d.contrast = uniform_factor(b, 0.5, 1.5, applied(), 1.0, gen);
  }
  if (o.translation()) {
    const int64_t r = max_shift(size);
    const torch::Tensor on = applied();
    d.shift_y = integer_draw(b, -r, r + 1, on, 0, gen);
    d.shift_x = integer_draw(b, -r, r + 1, on, 0, gen);
  }
  if (o.cutout()) {
    // centres 0 .. S (0 .. S - 1 for an odd side), so that the square can reach every border
    const int64_t high = size + (1 - cutout_side(size) % 2);
    d.cutout_on = applied();
    d.cutout_y = torch::randint(0, high, {b}, gen, torch::kLong);
    d.cutout_x = torch::randint(0, high, {b}, gen, torch::kLong);
  }
  return d;
}

torch::Tensor augment(const torch::Tensor& images, const AugmentDraw& d) {
  if (!d.any()) return images;
  TORCH_CHECK(images.dim() == 4, "augment: expected images [B, C, S, S], got ", images.sizes());
  const int64_t b = images.size(0), s = images.size(2);
  for (const torch::Tensor* t : {&d.brightness, &d.shift_y, &d.cutout_on}) {
    TORCH_CHECK(!t->defined() || t->size(0) == b, "augment: a draw for ", t->size(0), " images, got ", b);
  }
  torch::Tensor x = images;
  if (d.brightness.defined()) {
    x = x + per_image(d.brightness, x);
    const torch::Tensor channel_mean = x.mean(1, /*keepdim=*/true);
    x = (x - channel_mean) * per_image(d.saturation, x) + channel_mean;
    const torch::Tensor image_mean = x.mean({1, 2, 3}, /*keepdim=*/true);
    x = (x - image_mean) * per_image(d.contrast, x) + image_mean;
  }
  if (d.shift_y.defined()) {
    // out[b, c, i, j] = padded[b, c, i + r - dy_b, j + r - dx_b]: the content moves down by dy
    // and right by dx, and zeros come in from the padding
    const int64_t r = max_shift(s);
    const torch::Tensor padded =
        torch::constant_pad_nd(x, {r, r, r, r}, 0).permute({0, 2, 3, 1});  // [B, S+2r, S+2r, C]
    const auto opts = torch::TensorOptions().dtype(torch::kLong).device(x.device());
    const torch::Tensor base = torch::arange(s, opts) + r;
    const torch::Tensor rows = (base.unsqueeze(0) - d.shift_y.to(x.device()).unsqueeze(1)).unsqueeze(2);  // [B, S, 1]
    const torch::Tensor cols = (base.unsqueeze(0) - d.shift_x.to(x.device()).unsqueeze(1)).unsqueeze(1);  // [B, 1, S]
    const torch::Tensor batch = torch::arange(b, opts).view({b, 1, 1});
    x = padded.index({batch, rows, cols}).permute({0, 3, 1, 2});  // [B, C, S, S], channels-last in memory
  }
  if (d.cutout_on.defined()) {
    const int64_t side = cutout_side(s), half = side / 2;
    const auto opts = torch::TensorOptions().dtype(torch::kLong).device(x.device());
    const torch::Tensor pos = torch::arange(s, opts).unsqueeze(0);                        // [1, S]
    const torch::Tensor y0 = (d.cutout_y.to(x.device()) - half).unsqueeze(1);             // [B, 1]
    const torch::Tensor x0 = (d.cutout_x.to(x.device()) - half).unsqueeze(1);             // [B, 1]
    const torch::Tensor in_rows = (pos >= y0).logical_and(pos < y0 + side).unsqueeze(2);  // [B, S, 1]
    const torch::Tensor in_cols = (pos >= x0).logical_and(pos < x0 + side).unsqueeze(1);  // [B, 1, S]
    const torch::Tensor hole = in_rows.logical_and(in_cols).logical_and(d.cutout_on.to(x.device()).view({b, 1, 1}));
    x = x * hole.logical_not().unsqueeze(1).to(x.scalar_type());
  }
  return x;
}

}  // namespace vaegan
