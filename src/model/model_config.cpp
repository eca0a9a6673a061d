#include "vaegan/model/model_config.h"

#include <fmt/format.h>

#include "vaegan/core/error.h"

namespace vaegan {

int64_t model_image_size(const ModelConfig& config) {
  return config.image_size > 0 ? config.image_size : preset_image_size(config.arch);
}

NetworkOptions make_network_options(const ModelConfig& config) {
  preset_image_size(config.arch);  // an unknown preset is named first
  if (config.arch == "mlp28" && config.type != ModelType::kVae) {
    throw InputError(fmt::format("--arch: mlp28 is the plain VAE's MLP and needs --model vae, got --model {}",
                                 enum_name(config.type)));
  }
  return preset_network_options(config.arch, config.channels, config.image_size, config.latent_dim,
                                config.feature_layer, config.preset_version);
}

}  // namespace vaegan
