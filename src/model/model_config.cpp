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
  const int64_t preset_z = preset_latent_dim(config.arch, config.preset_version);  // validates the revision
  const int64_t z = config.latent_dim == 0 ? preset_z : config.latent_dim;
  return preset_network_options(config.arch, config.channels, config.image_size, z, config.feature_layer);
}

}  // namespace vaegan
