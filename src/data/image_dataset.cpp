#include "vaegan/data/image_dataset.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "vaegan/core/error.h"

namespace vaegan {
namespace F = torch::nn::functional;

torch::Tensor to_model_range(const torch::Tensor& images) {
  return images.to(torch::kFloat32).mul(1.0 / 127.5).sub(1.0);
}

torch::Tensor to_uint8_range(const torch::Tensor& images) {
  return images.detach().to(torch::kFloat32).add(1.0).mul(127.5).round().clamp(0, 255).to(torch::kUInt8);
}

torch::Tensor ImageDataset::images(const std::vector<int64_t>& indices) const {
  const torch::Tensor all = in_memory();
  if (all.defined()) return to_model_range(all.index_select(0, torch::tensor(indices, torch::kLong)));
  std::vector<torch::Tensor> list;
  list.reserve(indices.size());
  for (int64_t i : indices) list.push_back(image(i));
  if (list.empty()) return torch::empty({0, channels(), image_size(), image_size()});
  return to_model_range(torch::stack(list));  // [K, C, S, S]
}

torch::Tensor ImageDataset::first_images(int64_t n) const {
  if (in_memory().defined()) return to_model_range(in_memory().narrow(0, 0, std::max<int64_t>(0, std::min(n, size()))));
  std::vector<torch::Tensor> list;
  for (int64_t i = 0; i < size() && static_cast<int64_t>(list.size()) < n; ++i) {
    try {
      list.push_back(image(i));
    } catch (const ImageReadError& e) {
      mark_unreadable(i, e.what());
    }
  }
  if (list.empty()) throw InputError(fmt::format("{}: none of the images could be read", summary()));
  return to_model_range(torch::stack(list));  // [K, C, S, S]
}

void ImageDataset::mark_unreadable(int64_t i, const std::string& error) const {
  {
    std::lock_guard<std::mutex> lock(unreadable_mutex_);
    unreadable_.insert(i);
  }
  static std::mutex warned_mutex;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> lock(warned_mutex);
  if (warned.insert(error).second) spdlog::warn("skipping unreadable image: {}", error);
}

int64_t ImageDataset::unreadable_count() const {
  std::lock_guard<std::mutex> lock(unreadable_mutex_);
  return static_cast<int64_t>(unreadable_.size());
}

TensorImageDataset::TensorImageDataset(torch::Tensor images, torch::Tensor labels, std::string source,
                                       std::vector<std::string> class_names)
    : images_(std::move(images)), source_(std::move(source)), class_names_(std::move(class_names)) {
  if (images_.dim() != 4 || images_.scalar_type() != torch::kUInt8 || images_.size(2) != images_.size(3)) {
    throw std::invalid_argument(fmt::format("{}: expected uint8 images [N, C, S, S], got {} {}", source_,
                                            std::string(c10::toString(images_.scalar_type())),
                                            c10::str(images_.sizes())));
  }
  images_ = images_.contiguous();
  labels_ = labels.defined() ? labels.to(torch::kLong) : torch::full({images_.size(0)}, -1, torch::kLong);
  if (labels_.dim() != 1 || labels_.size(0) != images_.size(0)) {
    throw std::invalid_argument(
        fmt::format("{}: {} images but {} labels", source_, images_.size(0), c10::str(labels_.sizes())));
  }
}

torch::Tensor TensorImageDataset::image(int64_t i) const {
  if (i < 0 || i >= size()) throw std::out_of_range(fmt::format("{}: no image {}", source_, i));
  return images_[i];
}

int64_t TensorImageDataset::label(int64_t i) const {
  if (i < 0 || i >= size()) throw std::out_of_range(fmt::format("{}: no image {}", source_, i));
  return labels_[i].item<int64_t>();
}

std::string TensorImageDataset::summary() const {
  return fmt::format("{} images {}x{}x{} from {}", size(), channels(), image_size(), image_size(), source_);
}

torch::Tensor fit_image_size(const torch::Tensor& images, int64_t size, bool pad) {
  TORCH_CHECK(images.dim() == 4, "fit_image_size: expected [N, C, H, W], got ", images.sizes());
  const int64_t h = images.size(2), w = images.size(3);
  if (h == size && w == size) return images;
  if (pad && h <= size && w <= size) {
    const int64_t top = (size - h) / 2, left = (size - w) / 2;
    return torch::constant_pad_nd(images, {left, size - w - left, top, size - h - top}, 0);
  }
  const int64_t side = std::min(h, w);
  torch::Tensor square = images.narrow(2, (h - side) / 2, side).narrow(3, (w - side) / 2, side);
  // In chunks: the float copy of a whole dataset would be 4x its bytes.
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += 1024) {
    const torch::Tensor chunk = square.narrow(0, i, std::min<int64_t>(1024, images.size(0) - i)).to(torch::kFloat32);
    const torch::Tensor resized = F::interpolate(chunk, F::InterpolateFuncOptions()
                                                            .size(std::vector<int64_t>{size, size})
                                                            .mode(torch::kBilinear)
                                                            .align_corners(false)
                                                            .antialias(side > size));
    out.push_back(resized.round().clamp(0, 255).to(torch::kUInt8));
  }
  return torch::cat(out);
}

}  // namespace vaegan
