#include "vaegan/data/idx_dataset.h"

#include <fmt/format.h>
#include <zlib.h>

#include <array>
#include <filesystem>
#include <memory>
#include <vector>

#include "vaegan/core/error.h"

namespace vaegan {
namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

/// Reads exactly `n` bytes or returns how many were read (gzread handles plain files too).
int64_t read_bytes(gzFile f, uint8_t* dst, int64_t n, const std::string& path) {
  int64_t done = 0;
  while (done < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n - done, 1 << 30));
    const int got = gzread(f, dst + done, chunk);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      throw InputError(fmt::format("{}: cannot read IDX data ({})", path, msg ? msg : "zlib error"));
    }
    if (got == 0) break;
    done += got;
  }
  return done;
}

uint32_t big_endian_u32(const uint8_t* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

}  // namespace

torch::Tensor read_idx(const std::string& path, int64_t expected_dims) {
  if (!std::filesystem::is_regular_file(path)) {
    throw InputError(fmt::format("{}: file not found (expected an IDX file)", path));
  }
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) throw InputError(fmt::format("{}: cannot open for reading", path));

  std::array<uint8_t, 4> magic{};
  if (read_bytes(f.get(), magic.data(), 4, path) != 4) {
    throw InputError(fmt::format("{}: truncated IDX header (expected 4 magic bytes)", path));
  }
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08) {
    throw InputError(fmt::format(
        "{}: not an unsigned-byte IDX file (expected magic 00 00 08 NN but found {:02x} {:02x} {:02x} {:02x})", path,
        magic[0], magic[1], magic[2], magic[3]));
  }
  const int64_t ndims = magic[3];
  if (ndims < 1 || ndims > 4) {
    throw InputError(fmt::format("{}: IDX header declares {} dimensions (expected 1 to 4)", path, ndims));
  }
  if (expected_dims > 0 && ndims != expected_dims) {
    throw InputError(
        fmt::format("{}: expected an IDX file with {} dimensions but found {}", path, expected_dims, ndims));
  }
  std::vector<uint8_t> header(4 * ndims);
  if (read_bytes(f.get(), header.data(), 4 * ndims, path) != 4 * ndims) {
    throw InputError(fmt::format("{}: truncated IDX header (expected {} dimension sizes)", path, ndims));
  }
  std::vector<int64_t> sizes;
  int64_t total = 1;
  for (int64_t d = 0; d < ndims; ++d) {
    const int64_t s = big_endian_u32(header.data() + 4 * d);
    if (s == 0 || s > (int64_t{1} << 31) || total > (int64_t{1} << 34) / s) {
      throw InputError(fmt::format("{}: implausible IDX dimension {} of size {}", path, d, s));
    }
    total *= s;
    sizes.push_back(s);
  }
  // Memory grows with the bytes actually present, not with what a (possibly corrupt) header
  // claims: read in chunks of at most 64 MiB (found by fuzzing: a 20-byte file declaring 13 GB).
  std::vector<uint8_t> body;
  int64_t got = 0;
  while (got < total) {
    const int64_t chunk = std::min<int64_t>(total - got, int64_t{1} << 26);
    body.resize(static_cast<size_t>(got + chunk));
    const int64_t n = read_bytes(f.get(), body.data() + got, chunk, path);
    got += n;
    if (n < chunk) break;
  }
  if (got != total) {
    throw InputError(fmt::format("{}: truncated IDX body (header says {} bytes, found {})", path, total, got));
  }
  torch::Tensor data = torch::from_blob(body.data(), sizes, torch::kUInt8).clone();
  uint8_t extra = 0;
  if (read_bytes(f.get(), &extra, 1, path) != 0) {
    throw InputError(fmt::format("{}: IDX body longer than the header's {} bytes", path, total));
  }
  return data;
}

void write_idx(const std::string& path, const torch::Tensor& data) {
  TORCH_CHECK(data.scalar_type() == torch::kUInt8, "write_idx: expected uint8 data");
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  GzFile f(gzopen(path.c_str(), gz ? "wb" : "wbT"));
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open for writing", path));
  std::vector<uint8_t> header = {0, 0, 0x08, static_cast<uint8_t>(data.dim())};
  for (int64_t s : data.sizes()) {
    for (int shift = 24; shift >= 0; shift -= 8) header.push_back(static_cast<uint8_t>(s >> shift));
  }
  torch::Tensor body = data.contiguous();
  if (gzwrite(f.get(), header.data(), header.size()) != static_cast<int>(header.size()) ||
      (body.numel() > 0 &&
       gzwrite(f.get(), body.data_ptr<uint8_t>(), static_cast<unsigned>(body.numel())) != body.numel())) {
    throw std::runtime_error(fmt::format("{}: write failed", path));
  }
}

IdxDataset::IdxDataset(const std::string& images_path, const std::string& labels_path, int64_t image_size) {
  torch::Tensor raw = read_idx(images_path, 3);     // [N, h, w] uint8
  torch::Tensor labels = read_idx(labels_path, 1);  // [N] uint8
  if (raw.size(0) != labels.size(0)) {
    throw InputError(fmt::format("{} has {} images but {} has {} labels (expected equal counts)", images_path,
                                 raw.size(0), labels_path, labels.size(0)));
  }
  const int64_t h = raw.size(1), w = raw.size(2);
  if (image_size < h || image_size < w) {
    throw InputError(fmt::format("{}: images are {}x{}, larger than --image-size {}", images_path, h, w, image_size));
  }
  // [N, 1, h, w] -> [N, 1, S, S], black (0, i.e. -1 in model range) around the centre
  pixels_ = fit_image_size(raw.unsqueeze(1), image_size, /*pad=*/true).contiguous();
  labels_ = labels.to(torch::kInt64);
}

IdxDataset IdxDataset::from_directory(const std::string& data_dir, Split split, int64_t image_size) {
  namespace fs = std::filesystem;
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  auto find = [&](const std::string& kind, const std::string& idx) {
    const std::vector<std::string> names = {
        prefix + "-" + kind + "-" + idx + "-ubyte", prefix + "-" + kind + "-" + idx + "-ubyte.gz",
        prefix + "-" + kind + "." + idx + "-ubyte", prefix + "-" + kind + "." + idx + "-ubyte.gz"};
    for (const auto& n : names) {
      const fs::path p = fs::path(data_dir) / n;
      if (fs::is_regular_file(p)) return p.string();
    }
    throw InputError(fmt::format("{}: no {} file found (looked for {}[.gz])", data_dir, kind, names[0]));
  };
  const std::string images = find("images", "idx3");  // images first: the error names them first
  const std::string labels = find("labels", "idx1");
  return IdxDataset(images, labels, image_size);
}

torch::Tensor IdxDataset::images() const { return to_model_range(pixels_); }

}  // namespace vaegan
