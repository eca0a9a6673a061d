#include "vaegan/train/config.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "vaegan/core/error.h"
#include "vaegan/model/losses.h"

namespace vaegan {

void to_json(nlohmann::json& j, const ModelConfig& c) {
  j = {{"arch", c.arch}, {"channels", c.channels}, {"latent_dim", c.latent_dim}, {"feature_layer", c.feature_layer}};
}

void from_json(const nlohmann::json& j, ModelConfig& c) {
  c.arch = j.value("arch", c.arch);
  c.channels = j.value("channels", c.channels);
  c.latent_dim = j.value("latent_dim", c.latent_dim);
  c.feature_layer = j.value("feature_layer", c.feature_layer);
}

void to_json(nlohmann::json& j, const TrainConfig& c) {
  j = {{"format_version", kFormatVersion},
       {"model", c.model},
       {"dataset", c.dataset},
       {"data_dir", c.data_dir},
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
  c.seed = j.value("seed", c.seed);
  c.threads = j.value("threads", c.threads);
  c.log_every = j.value("log_every", c.log_every);
  c.grid_size = j.value("grid_size", c.grid_size);
}

void validate(const TrainConfig& c) {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw InputError(message);
  };
  require(c.dataset == "fashion-mnist" || c.dataset == "mnist",
          fmt::format("--dataset: unknown dataset '{}' (expected fashion-mnist or mnist)", c.dataset));
  make_network_options(c.model);  // validates --arch, --latent-dim, --feature-layer
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
  require(c.batch_norm == "joint" || c.batch_norm == "separate",
          fmt::format("--batch-norm: unknown value '{}' (expected joint or separate)", c.batch_norm));
  require(c.equilibrium_margin >= 0, fmt::format("--equilibrium-margin: must be >= 0, got {}", c.equilibrium_margin));
  require(c.threads >= 0, fmt::format("--threads: must be >= 0, got {}", c.threads));
  require(c.log_every >= 1, fmt::format("--log-every: must be at least 1, got {}", c.log_every));
  require(c.grid_size >= 1 && c.grid_size <= 1024, fmt::format("--grid-size: must be in 1..1024, got {}", c.grid_size));
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
