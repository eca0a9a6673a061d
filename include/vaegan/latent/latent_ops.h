#pragma once
/// Latent-space arithmetic of the paper's §5: interpolation and visual attribute vectors, and
/// the choice of the images an attribute vector is computed from.

#include <torch/torch.h>

#include <string>
#include <vector>

#include "vaegan/data/image_dataset.h"

namespace vaegan {

/// Points between latents `a` and `b` (`[R, Z]` each): `[R, steps, Z]`, from `a` (t = 0) to `b`
/// (t = 1) at `steps` evenly spaced t (steps >= 2). Linear, or spherical (`slerp`, White 2016:
/// along the great circle, with norms interpolated linearly; falls back to linear where a and b
/// are (anti)parallel).
torch::Tensor interpolate_latents(const torch::Tensor& a, const torch::Tensor& b, int64_t steps, bool slerp);

/// The attribute vector of the paper's §5 (as the authors' code computes it): mean of `latents` `[N, Z]`
/// where `has` `[N]` (bool) is true minus the mean where it is false. Throws `InputError` when
/// either group is empty.
torch::Tensor attribute_vector(const torch::Tensor& latents, const torch::Tensor& has);

/// Index of class `name` (a class name, or its number) among `names`. Throws `InputError` naming
/// `flag` and listing the classes when there is none.
int64_t class_index(const std::vector<std::string>& names, const std::string& name, const std::string& flag);

/// Which of the first `n` images of a dataset enter an attribute vector (`keep`, bool `[n]`) and
/// which of those have the attribute (`has`, bool `[n]`): the input of `attribute_vector`.
struct AttributeSelection {
  torch::Tensor keep;
  torch::Tensor has;
};

/// Class attribute: the first `n` images of `data` of class `to_class` have it; with
/// `from_class` those of that class lack it and all others are left out, without it every other
/// image lacks it. Throws `InputError` naming `--to-class`/`--from-class` (or `--attribute` when
/// `from_class` is empty) for an unknown class.
AttributeSelection select_by_class(const ImageDataset& data, int64_t n, const std::string& to_class,
                                   const std::string& from_class = "");

/// Named binary attribute (CelebA's `list_attr_celeba.txt` of the dataset's own folder): the
/// first `n` images of `data` with value +1 have it. Throws `InputError` naming `--attribute`
/// when `data` has no named attributes or none called `attribute`.
AttributeSelection select_by_named_attribute(const ImageDataset& data, int64_t n, const std::string& attribute);

}  // namespace vaegan
