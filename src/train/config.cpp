#include "vaegan/train/config.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "vaegan/core/error.h"
#include "vaegan/data/datasets.h"
#include "vaegan/model/losses.h"

namespace vaegan {

void to_json(nlohmann::json& j, const ModelConfig& c) {
  j = {{"type", c.type},
       {"arch", c.arch},
       {"channels", c.channels},
       {"image_size", c.image_size},
       {"latent_dim", c.latent_dim},
       {"feature_layer", c.feature_layer}};
}

void from_json(const nlohmann::json& j, ModelConfig& c) {
  c.type = j.value("type", c.type);
  c.arch = j.value("arch", c.arch);
  c.image_size = j.value("image_size", c.image_size);
  c.channels = j.value("channels", c.channels);
  c.latent_dim = j.value("latent_dim", c.latent_dim);
  c.feature_layer = j.value("feature_layer", c.feature_layer);
}

void to_json(nlohmann::json& j, const TrainConfig& c) {
  j = {{"format_version", kFormatVersion},
       {"model", c.model},
       {"dataset", c.dataset},
       {"data_dir", c.data_dir},
       {"horizontal_flip", c.horizontal_flip},
       {"loader_threads", c.loader_threads},
       {"pretrain_epochs", c.pretrain_epochs},
       {"recon_loss", c.recon_loss},
       {"epochs", c.epochs},
       {"max_steps", c.max_steps},
       {"batch_size", c.batch_size},
       {"max_minutes", c.max_minutes},
       {"lr", c.lr},
       {"lr_decay", c.lr_decay},
       {"rmsprop_alpha", c.rmsprop_alpha},
       {"gamma", c.gamma},
       {"beta", c.beta},
       {"dis_on_recon", c.dis_on_recon},
       {"batch_norm", c.batch_norm},
       {"gan_loss", c.gan_loss},
       {"equilibrium", c.equilibrium},
       {"equilibrium_value", c.equilibrium_value},
       {"equilibrium_margin", c.equilibrium_margin},
       {"channels_last", c.channels_last},
       {"fused_step", c.fused_step},
       {"precision", c.precision},
       {"checkpoint_every", c.checkpoint_every},
       {"keep_checkpoints", c.keep_checkpoints},
       {"max_bad_steps", c.max_bad_steps},
       {"seed", c.seed},
       {"threads", c.threads},
       {"log_every", c.log_every},
       {"grid_size", c.grid_size}};
}

void from_json(const nlohmann::json& j, TrainConfig& c) {
  const int version = j.value("format_version", kFormatVersion);
  if (version > kFormatVersion) {
    throw InputError(fmt::format("config format version {} is newer than this build's ({})", version, kFormatVersion));
  }
  if (j.contains("model")) j.at("model").get_to(c.model);
  c.dataset = j.value("dataset", c.dataset);
  c.data_dir = j.value("data_dir", c.data_dir);
  c.horizontal_flip = j.value("horizontal_flip", c.horizontal_flip);
  c.loader_threads = j.value("loader_threads", c.loader_threads);
  c.pretrain_epochs = j.value("pretrain_epochs", c.pretrain_epochs);
  c.recon_loss = j.value("recon_loss", c.recon_loss);
  c.epochs = j.value("epochs", c.epochs);
  c.max_steps = j.value("max_steps", c.max_steps);
  c.batch_size = j.value("batch_size", c.batch_size);
  c.max_minutes = j.value("max_minutes", c.max_minutes);
  c.lr = j.value("lr", c.lr);
  c.lr_decay = j.value("lr_decay", c.lr_decay);
  c.rmsprop_alpha = j.value("rmsprop_alpha", c.rmsprop_alpha);
  c.gamma = j.value("gamma", c.gamma);
  c.beta = j.value("beta", c.beta);
  c.dis_on_recon = j.value("dis_on_recon", c.dis_on_recon);
  c.batch_norm = j.value("batch_norm", c.batch_norm);
  c.gan_loss = j.value("gan_loss", c.gan_loss);
  c.equilibrium = j.value("equilibrium", c.equilibrium);
  c.equilibrium_value = j.value("equilibrium_value", c.equilibrium_value);
  c.equilibrium_margin = j.value("equilibrium_margin", c.equilibrium_margin);
  c.channels_last = j.value("channels_last", c.channels_last);
  c.fused_step = j.value("fused_step", c.fused_step);
  c.precision = j.value("precision", c.precision);
  c.checkpoint_every = j.value("checkpoint_every", c.checkpoint_every);
  c.keep_checkpoints = j.value("keep_checkpoints", c.keep_checkpoints);
  c.max_bad_steps = j.value("max_bad_steps", c.max_bad_steps);
  c.seed = j.value("seed", c.seed);
  c.threads = j.value("threads", c.threads);
  c.log_every = j.value("log_every", c.log_every);
  c.grid_size = j.value("grid_size", c.grid_size);
}

void validate(const TrainConfig& c) {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw InputError(message);
  };
  dataset_channels(c.dataset);    // validates --dataset
  make_network_options(c.model);  // validates --model, --arch, --image-size, --latent-dim, --feature-layer
  parse_recon_loss(c.recon_loss);
  require(c.loader_threads >= 1 && c.loader_threads <= 256,
          fmt::format("--loader-threads: must be in 1..256, got {}", c.loader_threads));
  require(c.pretrain_epochs >= 0, fmt::format("--pretrain-epochs: must be >= 0, got {}", c.pretrain_epochs));
  if (c.model.type == "vae-then-gan") {
    require(c.epochs >= 2,
            fmt::format("--epochs: vae-then-gan needs at least 2 (a VAE phase and a GAN phase), got {}", c.epochs));
    require(vae_phase_epochs(c) < c.epochs,
            fmt::format("--pretrain-epochs: {} leaves no GAN epoch of --epochs {}", c.pretrain_epochs, c.epochs));
  } else {
    require(c.pretrain_epochs == 0,
            fmt::format("--pretrain-epochs: only for --model vae-then-gan, got --model {}", c.model.type));
  }
  require(c.epochs >= 1 || c.max_steps >= 1,
          fmt::format("--epochs: must be at least 1 (or give --max-steps), got {}", c.epochs));
  require(c.max_steps >= 0, fmt::format("--max-steps: must be >= 0, got {}", c.max_steps));
  require(c.max_minutes >= 0, fmt::format("--max-minutes: must be >= 0, got {}", c.max_minutes));
  require(c.batch_size >= 2, fmt::format("--batch-size: must be at least 2 (batch norm), got {}", c.batch_size));
  require(c.lr > 0 && c.lr < 1, fmt::format("--lr: must be in (0, 1), got {}", c.lr));
  require(c.lr_decay > 0 && c.lr_decay <= 1, fmt::format("--lr-decay: must be in (0, 1], got {}", c.lr_decay));
  require(c.rmsprop_alpha > 0 && c.rmsprop_alpha < 1,
          fmt::format("--rmsprop-alpha: must be in (0, 1), got {}", c.rmsprop_alpha));
  require(c.gamma >= 0, fmt::format("--gamma: must be >= 0, got {}", c.gamma));
  require(c.beta >= 0, fmt::format("--beta: must be >= 0, got {}", c.beta));
  parse_gan_loss(c.gan_loss);
  require(c.precision == "fp32" || c.precision == "bf16",
          fmt::format("--precision: unknown value '{}' (expected fp32, bf16 or auto)", c.precision));
  require(c.batch_norm == "joint" || c.batch_norm == "separate",
          fmt::format("--batch-norm: unknown value '{}' (expected joint or separate)", c.batch_norm));
  require(c.equilibrium_margin >= 0, fmt::format("--equilibrium-margin: must be >= 0, got {}", c.equilibrium_margin));
  require(c.checkpoint_every >= 0, fmt::format("--checkpoint-every: must be >= 0, got {}", c.checkpoint_every));
  require(c.keep_checkpoints >= 1, fmt::format("--keep-checkpoints: must be at least 1, got {}", c.keep_checkpoints));
  require(c.max_bad_steps >= 1, fmt::format("--max-bad-steps: must be at least 1, got {}", c.max_bad_steps));
  require(c.threads >= 0, fmt::format("--threads: must be >= 0, got {}", c.threads));
  require(c.log_every >= 1, fmt::format("--log-every: must be at least 1, got {}", c.log_every));
  require(c.grid_size >= 1 && c.grid_size <= 1024, fmt::format("--grid-size: must be in 1..1024, got {}", c.grid_size));
}

int64_t vae_phase_epochs(const TrainConfig& c) {
  return c.pretrain_epochs > 0 ? c.pretrain_epochs : std::max<int64_t>(1, c.epochs / 2);
}

TrainConfig load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{}: cannot open (expected a config.json)", path));
  try {
    TrainConfig c;
    from_json(nlohmann::json::parse(in), c);
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not a valid vaegan config ({})", path, e.what()));
  }
}

}  // namespace vaegan
