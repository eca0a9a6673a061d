// Discriminator Dis(x) with its feature layer Dis_l (docs/design.md, "Architectures").
#include "vaegan/nn/discriminator.h"

#include "layers.h"

namespace vaegan {
namespace nn = torch::nn;

DiscriminatorImpl::DiscriminatorImpl(DiscriminatorOptions options_) : options(std::move(options_)) { reset(); }

void DiscriminatorImpl::reset() {
  const auto& o = options;
  const int64_t n = static_cast<int64_t>(o.channels().size());
  TORCH_CHECK(n >= 1, "Discriminator: channels must not be empty");
  TORCH_CHECK(o.feature_layer() >= 1 && o.feature_layer() <= n, "Discriminator: feature_layer must be in 1..", n,
              " but is ", o.feature_layer());
  convs = nn::ModuleList();
  norms = nn::ModuleList();
  int64_t in = o.in_channels();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = o.channels()[i];
    convs->push_back(detail::conv(in, c, o.kernel_size(), i == 0 ? 1 : 2, /*bias=*/i == 0));
    if (i > 0) norms->push_back(nn::BatchNorm2d(c));
    in = c;
  }
  const int64_t s = detail::downsampled(o.image_size(), n - 1, "Discriminator");
  head = nn::Sequential(nn::Linear(nn::LinearOptions(in * s * s, o.fc_dim()).bias(false)), nn::BatchNorm1d(o.fc_dim()),
                        nn::ReLU(), nn::Linear(o.fc_dim(), 1));
  convs = register_module("convs", convs);
  norms = register_module("norms", norms);
  head = register_module("head", head);
}

DiscriminatorOutput DiscriminatorImpl::forward(const torch::Tensor& x) {
  DiscriminatorOutput out;
  torch::Tensor h = x;
  for (size_t i = 0; i < convs->size(); ++i) {
    h = convs[i]->as<nn::Conv2d>()->forward(h);                                               // [B, c_i, s_i, s_i]
    if (static_cast<int64_t>(i) + 1 == options.feature_layer()) out.features = h.flatten(1);  // [B, F]
    if (i > 0) h = norms[i - 1]->as<nn::BatchNorm2d>()->forward(h);
    h = torch::relu(h);
  }
  out.logits = head->forward(h.flatten(1));  // [B, 1]
  return out;
}

}  // namespace vaegan
