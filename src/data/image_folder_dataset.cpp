#include "vaegan/data/image_folder_dataset.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <stb_image.h>
#include <stb_image_resize.h>
// clang-format off
#include <cstdio>  // libjpeg needs FILE declared first
#include <jpeglib.h>
// clang-format on

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <csetjmp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "vaegan/core/error.h"

namespace vaegan {
namespace fs = std::filesystem;

namespace {

/// Images larger than this many pixels are refused before any pixel is decoded (a corrupt
/// header must not make us allocate gigabytes).
constexpr int64_t kMaxPixels = int64_t{1} << 26;  // 8192 x 8192

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ImageReadError(fmt::format("{}: cannot open", path));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// Converts CMYK pixels (4 per pixel, `inverted` as Adobe stores them) in place to RGB or, for
/// `channels == 1`, to gray (ITU-R BT.601 luma), with the naive transform R = (1 - C)(1 - K).
void cmyk_to_rgb_or_gray(std::vector<uint8_t>& pixels, int64_t channels, bool inverted) {
  const size_t n = pixels.size() / 4;
  for (size_t i = 0; i < n; ++i) {
    int ink[4];
    for (int k = 0; k < 4; ++k) ink[k] = inverted ? 255 - pixels[4 * i + k] : pixels[4 * i + k];
    const int r = (255 - ink[0]) * (255 - ink[3]) / 255, g = (255 - ink[1]) * (255 - ink[3]) / 255,
              b = (255 - ink[2]) * (255 - ink[3]) / 255;
    if (channels == 1) {
      pixels[i] = static_cast<uint8_t>((299 * r + 587 * g + 114 * b + 500) / 1000);
    } else {
      pixels[3 * i] = static_cast<uint8_t>(r);
      pixels[3 * i + 1] = static_cast<uint8_t>(g);
      pixels[3 * i + 2] = static_cast<uint8_t>(b);
    }
  }
  pixels.resize(n * static_cast<size_t>(channels));
}

/// Composites `n` pixels of `channels` colour values + 1 alpha value each over a white
/// background, in place, leaving `channels` values per pixel: c' = (c a + 255 (255 - a)) / 255,
/// rounded (how an image viewer shows a transparent icon; dropping alpha would show whatever
/// colour the transparent pixels store, black in most icon themes).
void composite_over_white(uint8_t* pixels, int64_t n, int64_t channels) {
  for (int64_t i = 0; i < n; ++i) {
    const int a = pixels[i * (channels + 1) + channels];
    for (int64_t k = 0; k < channels; ++k) {
      const int c = pixels[i * (channels + 1) + k];
      pixels[i * channels + k] = static_cast<uint8_t>((c * a + 255 * (255 - a) + 127) / 255);
    }
  }
}

struct JpegError {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

/// JPEG through libjpeg-turbo (robust against corrupt files; Debian's stb_image writes out of
/// bounds on some corrupt Huffman tables, found by fuzz/). Returns HWC pixels; w, h set.
/// No C++ object is created between setjmp and a possible longjmp.
void decode_jpeg(const std::string& bytes, int64_t channels, std::vector<uint8_t>& pixels, int& w, int& h,
                 std::string& error) {
  jpeg_decompress_struct info{};
  JpegError err{};
  info.err = jpeg_std_error(&err.manager);
  err.manager.error_exit = [](j_common_ptr c) {
    JpegError* e = reinterpret_cast<JpegError*>(c->err);
    (*c->err->format_message)(c, e->message);
    std::longjmp(e->jump, 1);
  };
  err.manager.output_message = [](j_common_ptr) {};  // warnings: ignored
  if (setjmp(err.jump)) {
    error = err.message;
    jpeg_destroy_decompress(&info);
    return;
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&info, TRUE);
  if (static_cast<int64_t>(info.image_width) * info.image_height > kMaxPixels) {
    std::snprintf(err.message, sizeof err.message, "%ux%u pixels is too large", info.image_width, info.image_height);
    std::longjmp(err.jump, 1);
  }
  // libjpeg converts YCbCr and gray to RGB or gray itself; CMYK (print-ready files) it can only
  // hand out as CMYK, converted below.
  const bool cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
  info.out_color_space = cmyk ? JCS_CMYK : channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  w = static_cast<int>(info.output_width);
  h = static_cast<int>(info.output_height);
  const int64_t decoded = cmyk ? 4 : channels;
  pixels.resize(static_cast<size_t>(w) * h * decoded);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = pixels.data() + static_cast<size_t>(info.output_scanline) * w * decoded;
    jpeg_read_scanlines(&info, &row, 1);
  }
  const bool inverted = info.saw_Adobe_marker;  // Adobe writes CMYK inverted (255: no ink)
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  if (cmyk) cmyk_to_rgb_or_gray(pixels, channels, inverted);
}

}  // namespace

torch::Tensor decode_image_file(const std::string& path, int64_t channels, int64_t size, int64_t crop,
                                int64_t crop_top) {
  return decode_image_bytes(read_file(path), path, channels, size, crop, crop_top);
}

torch::Tensor decode_image_bytes(const std::string& bytes, const std::string& path, int64_t channels, int64_t size,
                                 int64_t crop, int64_t crop_top) {
  TORCH_CHECK(channels == 1 || channels == 3, "decode_image_bytes: channels must be 1 or 3");
  const auto* raw = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX));
  int w = 0, h = 0, stored = 0;
  std::vector<uint8_t> jpeg_pixels;
  std::unique_ptr<stbi_uc, void (*)(void*)> stb_pixels(nullptr, stbi_image_free);
  const stbi_uc* pixels = nullptr;
  const bool jpeg = bytes.size() >= 2 && raw[0] == 0xFF && raw[1] == 0xD8;  // SOI, as stb_image tests it
  const bool png = bytes.size() >= 8 && std::memcmp(raw, "\x89PNG\r\n\x1a\n", 8) == 0;
  if (!jpeg && !png) throw ImageReadError(fmt::format("{}: neither a PNG nor a JPEG file", path));
  if (jpeg) {
    std::string error;
    decode_jpeg(bytes, channels, jpeg_pixels, w, h, error);
    if (!error.empty()) throw ImageReadError(fmt::format("{}: cannot decode JPEG ({})", path, error));
    pixels = jpeg_pixels.data();
  } else {  // PNG: stb_image (its other decoders are never reached)
    if (stbi_info_from_memory(raw, len, &w, &h, &stored) && static_cast<int64_t>(w) * h > kMaxPixels) {
      throw ImageReadError(fmt::format("{}: {}x{} pixels is too large", path, w, h));
    }
    // With an alpha channel (grey + alpha or RGBA), stb hands out `channels` + alpha, composited below.
    const bool alpha = stored == 2 || stored == 4;
    stb_pixels.reset(stbi_load_from_memory(raw, len, &w, &h, &stored, static_cast<int>(channels + (alpha ? 1 : 0))));
    if (!stb_pixels) {
      const char* reason = stbi_failure_reason();
      throw ImageReadError(fmt::format("{}: cannot decode image ({})", path, reason ? reason : "unknown reason"));
    }
    if (alpha) composite_over_white(stb_pixels.get(), static_cast<int64_t>(w) * h, channels);
    pixels = stb_pixels.get();
  }
  const int64_t c = channels;
  int64_t side = std::min(w, h);
  if (crop > 0) side = std::min(side, crop);
  const int64_t top = crop_top >= 0 ? std::min<int64_t>(crop_top, h - side) : (h - side) / 2, left = (w - side) / 2;
  const stbi_uc* origin = pixels + (top * w + left) * c;
  torch::Tensor out = torch::empty({size, size, c}, torch::kUInt8);  // HWC, as stb writes it
  if (side == size) {  // already the size: the pixels as they are (stb's filter would blur them)
    for (int64_t y = 0; y < size; ++y) {
      std::memcpy(out.data_ptr<uint8_t>() + y * size * c, origin + y * w * c, static_cast<size_t>(size * c));
    }
  } else if (stbir_resize_uint8(origin, static_cast<int>(side), static_cast<int>(side), static_cast<int>(w * c),
                                out.data_ptr<uint8_t>(), static_cast<int>(size), static_cast<int>(size),
                                static_cast<int>(size * c), static_cast<int>(c)) == 0) {
    throw ImageReadError(fmt::format("{}: cannot resize {}x{} to {}x{}", path, side, side, size, size));
  }
  return out.permute({2, 0, 1}).contiguous();  // [C, S, S]
}

namespace {

/// Adds the image files below `dir` to `files`, following directory links but entering each
/// directory once (`visited`: canonical paths). Entries that cannot be examined (a link to
/// itself, a dangling link, no permission) and links back into a visited directory are skipped
/// with a warning.
void collect_image_files(const fs::path& dir, std::set<std::string>& visited, std::vector<std::string>& files) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) {
    spdlog::warn("skipping {}: cannot list it ({})", dir.string(), ec.message());
    return;
  }
  for (; it != end; it.increment(ec)) {
    if (ec) {
      spdlog::warn("skipping the rest of {}: {}", dir.string(), ec.message());
      return;
    }
    const fs::path& path = it->path();
    std::error_code status_error;
    const fs::file_status st = fs::status(path, status_error);  // follows links
    if (status_error) {
      spdlog::warn("skipping {}: {}", path.string(), status_error.message());
      continue;
    }
    if (fs::is_directory(st)) {
      const std::string canonical = fs::canonical(path, status_error).string();
      if (status_error) {
        spdlog::warn("skipping {}: {}", path.string(), status_error.message());
        continue;
      }
      if (!visited.insert(canonical).second) {
        spdlog::warn("skipping {}: it leads back into {} (a directory loop)", path.string(), canonical);
        continue;
      }
      collect_image_files(path, visited, files);
      continue;
    }
    if (!fs::is_regular_file(st)) continue;
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files.push_back(path.string());
  }
}

}  // namespace

std::vector<std::string> list_image_files(const std::string& root) {
  std::error_code ec;
  fs::directory_iterator probe(root, ec);
  if (ec) throw InputError(fmt::format("{}: cannot list ({})", root, ec.message()));
  std::vector<std::string> files;
  std::set<std::string> visited = {fs::canonical(root, ec).string()};
  collect_image_files(root, visited, files);
  std::sort(files.begin(), files.end());
  return files;
}

ImageFolderDataset::ImageFolderDataset(const std::string& root_in, Split split, int64_t channels, int64_t image_size,
                                       double val_fraction)
    : source_(root_in), channels_(channels), image_size_(image_size) {
  if (channels != 1 && channels != 3) throw InputError(fmt::format("--channels: must be 1 or 3, got {}", channels));
  fs::path root(root_in);
  if (!fs::is_directory(root)) throw InputError(fmt::format("--data-dir: {} is not a directory", root_in));
  const bool has_splits = fs::is_directory(root / "train") && fs::is_directory(root / "test");
  if (has_splits) {
    root /= split == Split::kTrain ? "train" : "test";
    source_ = root.string();
  }
  files_ = list_image_files(root.string());
  if (files_.empty()) {
    throw InputError(
        fmt::format("--data-dir: {} holds no image file (looked for .png, .jpg, .jpeg, recursively)", root.string()));
  }
  // Class subfolders: every file one or more levels below a first-level folder.
  std::map<std::string, int64_t> classes;
  bool all_in_subfolders = true;
  std::vector<std::string> first_level;
  for (const auto& f : files_) {
    const fs::path rel = fs::path(f).lexically_relative(root);
    if (std::distance(rel.begin(), rel.end()) < 2) {
      all_in_subfolders = false;
      break;
    }
    first_level.push_back(rel.begin()->string());
    classes.emplace(first_level.back(), 0);
  }
  labels_.assign(files_.size(), -1);
  if (all_in_subfolders) {
    int64_t k = 0;
    for (auto& [name, index] : classes) {
      index = k++;
      class_names_.push_back(name);
    }
    for (size_t i = 0; i < files_.size(); ++i) labels_[i] = classes.at(first_level[i]);
  }
  if (!has_splits && val_fraction > 0) hold_out(split, val_fraction);
}

void ImageFolderDataset::hold_out(Split split, double val_fraction) {
  const auto n = static_cast<int64_t>(files_.size());
  const int64_t held = std::max<int64_t>(1, std::llround(static_cast<double>(n) * val_fraction));
  if (held >= n) {
    throw InputError(
        fmt::format("--val-fraction: {} of the {} images in {} leaves none to train on", val_fraction, n, source_));
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(kValidationSplitSeed);
  const torch::Tensor order = torch::randperm(n, gen, torch::kLong).contiguous();
  std::vector<bool> is_held(static_cast<size_t>(n), false);
  const int64_t* picked = order.data_ptr<int64_t>();
  for (int64_t i = 0; i < held; ++i) is_held[static_cast<size_t>(picked[i])] = true;
  std::vector<std::string> files;
  std::vector<int64_t> labels;
  for (size_t i = 0; i < files_.size(); ++i) {
    if (is_held[i] != (split == Split::kTest)) continue;
    files.push_back(files_[i]);
    labels.push_back(labels_[i]);
  }
  files_ = std::move(files);
  labels_ = std::move(labels);
  source_ = fmt::format("{} ({} split: {} of {} images, --val-fraction {})", source_, enum_name(split), files_.size(),
                        n, val_fraction);
}

ImageFolderDataset::ImageFolderDataset(std::vector<std::string> files, std::vector<int64_t> labels, std::string source,
                                       int64_t channels, int64_t image_size, int64_t crop, int64_t crop_top)
    : files_(std::move(files)),
      labels_(std::move(labels)),
      source_(std::move(source)),
      channels_(channels),
      image_size_(image_size),
      crop_(crop),
      crop_top_(crop_top) {
  if (labels_.empty()) labels_.assign(files_.size(), -1);
  TORCH_CHECK(labels_.size() == files_.size(), "ImageFolderDataset: one label per file expected");
}

torch::Tensor ImageFolderDataset::image(int64_t i) const {
  if (i < 0 || i >= size()) throw std::out_of_range(fmt::format("{}: no image {}", source_, i));
  return decode_image_file(files_[static_cast<size_t>(i)], channels_, image_size_, crop_, crop_top_);
}

int64_t ImageFolderDataset::label(int64_t i) const { return labels_.at(static_cast<size_t>(i)); }

std::string ImageFolderDataset::summary() const {
  return fmt::format("{} image files from {} ({}{}x{}x{})", size(), source_,
                     class_names_.empty() ? "" : fmt::format("{} classes, ", class_names_.size()), channels_,
                     image_size_, image_size_);
}

}  // namespace vaegan
