#include "vaegan/model/inference.h"

#include <stdexcept>

namespace vaegan {

torch::Tensor map_batches(const torch::Tensor& x, int64_t batch_size, torch::Device device,
                          const std::function<torch::Tensor(const torch::Tensor&)>& f) {
  if (batch_size < 1) throw std::invalid_argument("map_batches: batch_size must be at least 1");
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < x.size(0); i += batch_size) {
    out.push_back(f(x.narrow(0, i, std::min(batch_size, x.size(0) - i)).to(device)).cpu());
  }
  return torch::cat(out);
}

torch::Tensor encode_means(Model& model, const torch::Tensor& x, torch::Device device, int64_t batch_size) {
  return map_batches(x, batch_size, device, [&](const torch::Tensor& xb) { return model->encode_mean(xb); });
}

torch::Tensor decode_latents(Model& model, const torch::Tensor& z, torch::Device device, int64_t batch_size) {
  return map_batches(z, batch_size, device, [&](const torch::Tensor& zb) { return model->decoder->forward(zb); });
}

torch::Tensor reconstruct_images(Model& model, const torch::Tensor& x, torch::Device device, int64_t batch_size) {
  return map_batches(x, batch_size, device, [&](const torch::Tensor& xb) { return model->reconstruct(xb); });
}

}  // namespace vaegan
