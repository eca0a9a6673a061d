// The architecture presets (docs/design.md, "Architectures").
#include "vaegan/nn/presets.h"

#include <fmt/format.h>

#include <iterator>

#include "vaegan/core/error.h"

namespace vaegan {

const std::vector<std::string>& arch_names() {
  static const std::vector<std::string> names = {"small32", "paper64", "mlp28"};
  return names;
}

int64_t preset_image_size(const std::string& arch) {
  if (arch == "small32") return 32;
  if (arch == "paper64") return 64;
  if (arch == "mlp28") return 28;
  throw InputError(fmt::format("--arch: unknown architecture '{}' (expected small32, paper64 or mlp28)", arch));
}

// small32's Z in each revision of the presets, oldest first (nn/presets.h, `kPresetVersion`).
constexpr int64_t kSmall32LatentDims[] = {64, 32, 16};
static_assert(std::size(kSmall32LatentDims) == kPresetVersion, "one small32 latent size per preset revision");

int64_t preset_latent_dim(const std::string& arch, int preset_version) {
  const int64_t size = preset_image_size(arch);
  if (preset_version < 1 || preset_version > kPresetVersion) {
    throw InputError(
        fmt::format("model.preset_version: must be in 1..{} (the preset revisions this build knows), got {}",
                    kPresetVersion, preset_version));
  }
  if (size == 32) return kSmall32LatentDims[preset_version - 1];
  return size == 28 ? 20 : 128;
}

int64_t preset_feature_layer(const std::string& arch) { return preset_image_size(arch) == 32 ? 3 : 4; }

NetworkOptions preset_network_options(const std::string& arch, int64_t channels, int64_t image_size, int64_t latent_dim,
                                      int64_t feature_layer, int preset_version) {
  const bool mlp = arch == "mlp28";
  if (image_size < 0 || image_size > 1024) {
    throw InputError(fmt::format("--image-size: must be in 0..1024 (0: the preset's), got {}", image_size));
  }
  const int64_t size = image_size > 0 ? image_size : preset_image_size(arch);
  if (!mlp && size % 8 != 0) {
    throw InputError(fmt::format("--image-size: {} needs a multiple of 8, got {}", arch, size));
  }
  if (latent_dim < 0 || latent_dim > kMaxLatentDim) {
    throw InputError(
        fmt::format("--latent-dim: must be in 0..{} (0: the preset's), got {}", kMaxLatentDim, latent_dim));
  }
  if (channels != 1 && channels != 3) throw InputError(fmt::format("--channels: must be 1 or 3, got {}", channels));
  if (feature_layer < 0 || feature_layer > 4) {
    throw InputError(fmt::format("--feature-layer: must be in 0..4 (0: the preset's), got {}", feature_layer));
  }
  const int64_t preset_z = preset_latent_dim(arch, preset_version);  // validates the revision, whatever Z
  const int64_t z = latent_dim > 0 ? latent_dim : preset_z;
  NetworkOptions o{EncoderOptions(channels, size, z), DecoderOptions(z, channels, size),
                   DiscriminatorOptions(channels, size)};
  o.discriminator.feature_layer(feature_layer > 0 ? feature_layer : preset_feature_layer(arch));
  if (arch == "small32") {
    o.encoder.channels({32, 64, 128}).fc_dim(1024);
    o.decoder.channels({128, 64, 16});
    o.discriminator.channels({16, 64, 128, 128}).fc_dim(256);
  } else if (mlp) {
    o.encoder.channels({}).fc_dim(512).fc_layers(2).batch_norm(false);
    o.decoder.channels({}).fc_dim(512).fc_layers(2);
  }
  return o;
}

}  // namespace vaegan
