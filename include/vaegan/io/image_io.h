#pragma once
/// Image output: conversion of model tensors to 8-bit pixels, PNG grids and folders of PNGs (stb_image_write).

#include <torch/torch.h>

#include <string>

namespace vaegan {

/// Converts images `[N, C, H, W]` with values in `[-1, 1]` (any float dtype, any device) to
/// `uint8` `[N, H, W, C]` in 0..255 on the CPU (values outside `[-1, 1]` are clamped).
torch::Tensor to_uint8_nhwc(const torch::Tensor& images);

/// Tiles images `[N, C, H, W]` in `[-1, 1]` (or already 8-bit: `uint8` `[N, H, W, C]`) into one `uint8` image
/// `[rows*(H+p)+p, cols*(W+p)+p, C]` with `ncol` columns and `padding` p pixels of gray between tiles.
torch::Tensor make_grid(const torch::Tensor& images, int64_t ncol, int64_t padding = 2);

/// Originals over reconstructions: rows of `ncol` images from `originals` `[N, C, H, W]`,
/// each followed by the row of the matching `reconstructions` `[N, C, H, W]`. Returns `[2N, C, H, W]`.
torch::Tensor interleave_rows(const torch::Tensor& originals, const torch::Tensor& reconstructions, int64_t ncol);

/// PNG encoding of a `uint8` `[H, W, C]` image (C = 1 or 3), in memory; `where` names it in the
/// `std::runtime_error` thrown when encoding fails.
std::string png_bytes(const torch::Tensor& hwc, const std::string& where);

/// Writes a `uint8` `[H, W, C]` image (C = 1 or 3) as PNG, atomically.
/// Throws `std::runtime_error` naming `path` when encoding or writing fails.
void write_png(const std::string& path, const torch::Tensor& hwc);

/// Writes images (`[N, C, H, W]` in `[-1, 1]`, or `uint8` `[N, H, W, C]`) as a folder `dir` of one
/// PNG per image, `000000.png`, `000001.png`, ... in order: the layout pytorch-fid and clean-fid
/// read (docs/evaluation.md). The folder is written under a temporary name and renamed, so it
/// appears complete or not at all. Throws `InputError` when `dir` exists and is not an empty
/// folder, `std::runtime_error` naming the file when writing fails.
void write_png_folder(const std::string& dir, const torch::Tensor& images);

/// `make_grid` followed by `write_png`.
void save_image_grid(const std::string& path, const torch::Tensor& images, int64_t ncol);

}  // namespace vaegan
