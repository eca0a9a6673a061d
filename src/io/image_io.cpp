#include "vaegan/io/image_io.h"

#include <fmt/format.h>
#include <stb_image_write.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "vaegan/core/error.h"
#include "vaegan/io/fs.h"

namespace vaegan {

torch::Tensor to_uint8_nhwc(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4, "to_uint8_nhwc: expected [N, C, H, W] but got ", images.sizes());
  return images.detach()
      .to(torch::kCPU, torch::kFloat32)
      .clamp(-1, 1)
      .add(1)
      .mul(127.5)
      .round()
      .to(torch::kUInt8)
      .permute({0, 2, 3, 1})
      .contiguous();
}

torch::Tensor make_grid(const torch::Tensor& images, int64_t ncol, int64_t padding) {
  // [N, H, W, C] uint8: given as such, or converted from [N, C, H, W] in [-1, 1]
  const torch::Tensor px = images.scalar_type() == torch::kUInt8 ? images : to_uint8_nhwc(images);
  const int64_t n = px.size(0), h = px.size(1), w = px.size(2), c = px.size(3);
  ncol = std::max<int64_t>(1, std::min(ncol, n));
  const int64_t nrow = (n + ncol - 1) / ncol;
  torch::Tensor grid =
      torch::full({nrow * (h + padding) + padding, ncol * (w + padding) + padding, c}, 128, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = padding + (i / ncol) * (h + padding), left = padding + (i % ncol) * (w + padding);
    grid.narrow(0, top, h).narrow(1, left, w).copy_(px[i]);
  }
  return grid;
}

torch::Tensor interleave_rows(const torch::Tensor& originals, const torch::Tensor& reconstructions, int64_t ncol) {
  TORCH_CHECK(originals.sizes() == reconstructions.sizes(), "interleave_rows: originals ", originals.sizes(),
              " and reconstructions ", reconstructions.sizes(), " differ in shape");
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < originals.size(0); i += ncol) {
    const int64_t n = std::min(ncol, originals.size(0) - i);
    rows.push_back(originals.narrow(0, i, n));
    rows.push_back(reconstructions.narrow(0, i, n));
  }
  return torch::cat(rows);
}

std::string png_bytes(const torch::Tensor& hwc, const std::string& where) {
  TORCH_CHECK(hwc.dim() == 3 && hwc.scalar_type() == torch::kUInt8, "png_bytes: expected uint8 [H, W, C]");
  torch::Tensor px = hwc.contiguous();
  const int h = static_cast<int>(px.size(0)), w = static_cast<int>(px.size(1)), c = static_cast<int>(px.size(2));
  // Encoded in memory, then written with checked writes: stb's own file writer ignores failed
  // writes, so a full disk would leave a truncated PNG behind a success.
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (stbi_write_png_to_func(append, &bytes, w, h, c, px.data_ptr<uint8_t>(), w * c) == 0) {
    throw std::runtime_error(fmt::format("{}: cannot encode PNG ({}x{}x{})", where, w, h, c));
  }
  return bytes;
}

void write_png(const std::string& path, const torch::Tensor& hwc) { write_text_atomically(path, png_bytes(hwc, path)); }

void write_png_folder(const std::string& dir_in, const torch::Tensor& images) {
  namespace fs = std::filesystem;
  const torch::Tensor px = images.scalar_type() == torch::kUInt8 ? images : to_uint8_nhwc(images);
  TORCH_CHECK(px.dim() == 4, "write_png_folder: expected [N, H, W, C] but got ", px.sizes());
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::error_code ec;
  if (fs::exists(dir) && !(fs::is_directory(dir) && fs::is_empty(dir, ec))) {
    throw InputError(fmt::format(
        "{}: exists and is not an empty folder (a folder of images gets exactly the images written: remove it or name "
        "another)",
        dir_in));
  }
  // Written under a temporary name and renamed: the folder appears whole or not at all.
  const std::string tmp = fmt::format("{}.tmp-{}", dir, getpid());
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot create: {}", tmp, ec.message()));
  try {
    for (int64_t i = 0; i < px.size(0); ++i) {
      const std::string path = fmt::format("{}/{:06d}.png", tmp, i);
      const std::string bytes = png_bytes(px[i], path);
      std::ofstream out(path, std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      out.close();
      if (!out) throw std::runtime_error(fmt::format("{}: write failed", path));
    }
    fs::remove(dir, ec);  // an empty folder of that name
    fs::rename(tmp, dir);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

void save_image_grid(const std::string& path, const torch::Tensor& images, int64_t ncol) {
  write_png(path, make_grid(images, ncol));
}

}  // namespace vaegan
