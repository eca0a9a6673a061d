#pragma once
/// Differentiable augmentation of what the discriminator sees (DiffAugment: Zhao, Liu, Lin, Zhu
/// and Han 2020, "Differentiable Augmentation for Data-Efficient GAN Training", arXiv 2006.10738,
/// §3 and its "color + translation + cutout" policy): every image the discriminator judges, real
/// or generated, is transformed by random, differentiable operations, so the generator's
/// gradient passes through them and the discriminator cannot memorise a small training set.
/// docs/design.md, "Stabilisers", says where the VAE-GAN applies them.
///
/// Legend: B batch, C channels, S image size.

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <string>

namespace vaegan {

/// Which transforms `draw_augment` draws (`--augment`), and how often.
struct AugmentOptions {
  /// Whether any transform is on.
  bool any() const { return color_ || translation_ || cutout_; }
  /// Brightness (add a per-image offset in [-0.5, 0.5)), saturation (scale each pixel's
  /// deviation from its channel mean by a factor in [0, 2)), contrast (scale each image's
  /// deviation from its mean by a factor in [0.5, 1.5)), in that order.
  TORCH_ARG(bool, color) = false;
  /// Shift each image by whole pixels, up to S/8 in each direction, filling with 0.
  TORCH_ARG(bool, translation) = false;
  /// Set a square of side S/2 (rounded) at a random centre, clipped to the image, to 0.
  TORCH_ARG(bool, cutout) = false;
  /// Probability that each transform is applied to each image (drawn independently; 1: always,
  /// as DiffAugment; below 1: as the augmentation probability p of Karras et al. 2020, ADA).
  TORCH_ARG(double, probability) = 1.0;
};

/// Parses a policy: `none`, or a comma-separated list of `color`, `translation`, `cutout` (each
/// at most once). Throws `InputError` naming `--augment` and the unknown or repeated name.
AugmentOptions parse_augment_policy(const std::string& policy);

/// The policy's name as `parse_augment_policy` reads it (`none`, or the transforms in the order
/// color, translation, cutout).
std::string augment_policy_name(const AugmentOptions& options);

/// One draw of the random parameters of each image's transforms, on the CPU. An undefined
/// tensor means the transform is off; an image the probability skipped has the identity's
/// parameters (offset 0, factors 1, shift 0, no cutout).
struct AugmentDraw {
  torch::Tensor brightness;          ///< `[B]` float32: added to every pixel
  torch::Tensor saturation;          ///< `[B]` float32: factor on the deviation from the channel mean
  torch::Tensor contrast;            ///< `[B]` float32: factor on the deviation from the image mean
  torch::Tensor shift_y, shift_x;    ///< `[B]` int64: rows and columns the content moves (down, right)
  torch::Tensor cutout_y, cutout_x;  ///< `[B]` int64: centre of the square (its first row is y - S/4)
  torch::Tensor cutout_on;           ///< `[B]` bool: whether the image gets the square

  /// Whether any transform is drawn.
  bool any() const { return brightness.defined() || shift_y.defined() || cutout_on.defined(); }
  /// The rows `first .. first + count - 1` of every tensor (a rank's share of a global draw).
  AugmentDraw narrow(int64_t first, int64_t count) const;
  /// A copy of every tensor on `device` (a CUDA graph's input buffers).
  AugmentDraw to(const torch::Device& device) const;
  /// Copies `source`'s parameters into this draw's tensors, in place (a CUDA graph's inputs
  /// before a replay). Throws `c10::Error` when the two do not have the same transforms and
  /// batch size.
  void copy_(const AugmentDraw& source);
};

/// Draws the parameters of `batch` images of size `size` from `generator` (CPU). The number and
/// order of the draws depend only on `options` and `batch`, so a run's noise stream is
/// reproducible. Nothing is drawn when no transform is on.
AugmentDraw draw_augment(const AugmentOptions& options, int64_t batch, int64_t size, at::Generator& generator);

/// Applies `draw` to `images` `[B, C, S, S]` (values in `[-1, 1]`; the result may leave that
/// range, as DiffAugment's does): color, then translation, then cutout. Differentiable with
/// respect to `images`; returns `images` itself when `draw` has nothing. Throws `c10::Error`
/// when the batch size differs from the draw's.
torch::Tensor augment(const torch::Tensor& images, const AugmentDraw& draw);

}  // namespace vaegan
