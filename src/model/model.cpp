#include "vaegan/model/model.h"

#include <fmt/format.h>

#include <cmath>

#include "vaegan/core/error.h"

namespace vaegan {

ModelImpl::ModelImpl(const ModelConfig& config_) : config(config_) {
  NetworkOptions o = make_network_options(config);
  if (config.has_encoder()) encoder = register_module("encoder", Encoder(o.encoder));
  decoder = register_module("decoder", Decoder(o.decoder));
  if (config.has_discriminator()) discriminator = register_module("discriminator", Discriminator(o.discriminator));
}

torch::Tensor ModelImpl::encode_mean(const torch::Tensor& x) {
  if (!encoder) {
    throw InputError(fmt::format("a {} model has no encoder: this needs a vaegan, vae or vae-then-gan checkpoint",
                                 enum_name(config.type)));
  }
  return std::get<0>(encoder->forward(x));
}

torch::Tensor ModelImpl::reconstruct(const torch::Tensor& x) { return decoder->forward(encode_mean(x)); }

void initialize_weights(torch::nn::Module& model, WeightInit init) {
  if (init == WeightInit::kPytorch) return;
  torch::NoGradGuard no_grad;
  model.apply([](torch::nn::Module& m) {
    torch::Tensor weight, bias;
    if (auto* linear = m.as<torch::nn::Linear>()) {
      weight = linear->weight, bias = linear->bias;
    } else if (auto* conv = m.as<torch::nn::Conv2d>()) {
      weight = conv->weight, bias = conv->bias;
    } else if (auto* deconv = m.as<torch::nn::ConvTranspose2d>()) {
      weight = deconv->weight, bias = deconv->bias;
    } else {
      return;
    }
    const double fan_in = static_cast<double>(weight.numel() / weight.size(0));
    const double bound = 1.0 / std::sqrt(3.0 * fan_in);
    weight.uniform_(-bound, bound);
    if (bias.defined()) bias.zero_();
  });
}

namespace {

/// Sizes along dim 0 of `inputs`, for splitting a joint output.
std::vector<int64_t> batch_sizes(std::initializer_list<torch::Tensor> inputs) {
  std::vector<int64_t> sizes;
  for (const auto& t : inputs) sizes.push_back(t.size(0));
  return sizes;
}

}  // namespace

std::vector<torch::Tensor> decode_each(Decoder& decoder, std::initializer_list<torch::Tensor> z, BatchNormMode mode) {
  if (mode != BatchNormMode::kJoint) {
    std::vector<torch::Tensor> out;
    for (const auto& zi : z) out.push_back(decoder->forward(zi));  // [B_i, C, S, S]
    return out;
  }
  return decoder->forward(torch::cat(std::vector<torch::Tensor>(z))).split_with_sizes(batch_sizes(z));
}

std::vector<DiscriminatorOutput> discriminate_each(Discriminator& discriminator, std::initializer_list<torch::Tensor> x,
                                                   BatchNormMode mode) {
  std::vector<DiscriminatorOutput> out;
  if (mode == BatchNormMode::kSeparate) {
    for (const auto& xi : x) out.push_back(discriminator->forward(xi));
    return out;
  }
  const DiscriminatorOutput d = discriminator->forward(torch::cat(std::vector<torch::Tensor>(x)));  // [sum B_i, ...]
  const std::vector<int64_t> sizes = batch_sizes(x);
  const std::vector<torch::Tensor> logits = d.logits.split_with_sizes(sizes),
                                   features = d.features.split_with_sizes(sizes);
  for (size_t i = 0; i < sizes.size(); ++i) out.push_back(DiscriminatorOutput{logits[i], features[i]});
  return out;
}

}  // namespace vaegan
