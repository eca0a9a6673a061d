#include "vaegan/train/config.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/data/datasets.h"
#include "vaegan/model/augment.h"

namespace vaegan {

// Every top-level key of config.json that maps one-to-one onto a field of TrainConfig, in one
// list: X(field) for each.
// clang-format off
#define VAEGAN_TRAIN_CONFIG_FIELDS(X)                                                        \
  X(model) X(dataset) X(data_dir) X(horizontal_flip) X(loader_threads) X(celeba_protocol)    \
  X(val_fraction) X(epochs) X(max_steps) X(batch_size) X(pretrain_epochs) X(max_minutes)     \
  X(optimizer) X(lr) X(lr_encoder) X(lr_decoder) X(lr_discriminator) X(adam_beta1)           \
  X(adam_beta2) X(weight_decay) X(grad_clip) X(lr_schedule) X(lr_decay) X(lr_anneal_epochs)  \
  X(lr_anneal_period) X(lr_anneal_gamma) X(lr_final_ratio) X(rmsprop_alpha) X(gamma) X(beta) \
  X(ema_decay) X(dis_on_recon) X(batch_norm) X(gan_loss) X(dis_real_weight) X(label_smoothing) \
  X(r1_interval) X(augment) X(augment_p) X(init) X(equilibrium) X(equilibrium_value)         \
  X(equilibrium_margin) X(equilibrium_skip) X(fused_step) X(channels_last) X(cuda_graphs)    \
  X(precision) X(checkpoint_every) X(keep_checkpoints) X(max_bad_steps) X(seed) X(threads)   \
  X(log_every) X(grid_size) X(val_images) X(early_stop_patience) X(tensorboard)
// clang-format on

namespace {

/// `c.field = j[key]` when `j` has `key`; a wrong type or an unknown name becomes an
/// `InputError` naming the key.
template <typename T>
void read_key(const nlohmann::json& j, const char* key, T& field) {
  if (!j.contains(key)) return;
  try {
    j.at(key).get_to(field);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: {}", key, e.what()));
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: {}", key, e.what()));
  }
}

}  // namespace

void to_json(nlohmann::json& j, const TrainConfig& c) {
  j = nlohmann::json::object();
#define VAEGAN_TO_JSON(field) j[#field] = c.field;
  VAEGAN_TRAIN_CONFIG_FIELDS(VAEGAN_TO_JSON)
#undef VAEGAN_TO_JSON
  j["recon_loss"] = c.model.recon_loss;
  j["format_version"] = kFormatVersion;
}

void from_json(const nlohmann::json& j, TrainConfig& c) {
  if (!j.is_object()) throw InputError(fmt::format("expected a JSON object, got {}", j.type_name()));
  int version = kFormatVersion;
  read_key(j, "format_version", version);
  if (version > kFormatVersion) {
    throw InputError(fmt::format("config format version {} is newer than this build's ({})", version, kFormatVersion));
  }
  // Unknown keys are errors (a misspelt key would otherwise train with its default silently);
  // the known ones are those a default config writes.
  const TrainConfig defaults;
  nlohmann::json known;
  to_json(known, defaults);
  for (const auto& [key, value] : j.items()) {
    if (!known.contains(key)) throw InputError(fmt::format("unknown key '{}'", key));
    if (key != "model" || !value.is_object()) continue;
    for (const auto& item : value.items()) {
      if (!known.at("model").contains(item.key())) throw InputError(fmt::format("model: unknown key '{}'", item.key()));
    }
  }
  // A run's config.json written before augmentation existed (every key but these) trained without
  // it: resuming it stays exact although the default is now on.
  if (j.contains("format_version") && !j.contains("augment")) c.augment = "none";
#define VAEGAN_FROM_JSON(field) read_key(j, #field, c.field);
  VAEGAN_TRAIN_CONFIG_FIELDS(VAEGAN_FROM_JSON)
#undef VAEGAN_FROM_JSON
  read_key(j, "recon_loss", c.model.recon_loss);
  // Likewise a run's config.json written before the presets had revisions (a `model` object
  // without `preset_version`) means small32's Z = 64 by a latent size of 0.
  if (j.contains("format_version") && j.contains("model") && !j.at("model").contains("preset_version")) {
    c.model.preset_version = 1;
  }
}

void validate(const TrainConfig& c) {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw InputError(message);
  };
  dataset_channels(c.dataset);    // validates --dataset
  make_network_options(c.model);  // validates --arch, --image-size, --latent-dim, --channels, --feature-layer
  require(c.loader_threads >= 1 && c.loader_threads <= 256,
          fmt::format("--loader-threads: must be in 1..256, got {}", c.loader_threads));
  require(c.pretrain_epochs >= 0, fmt::format("--pretrain-epochs: must be >= 0, got {}", c.pretrain_epochs));
  if (c.model.type == ModelType::kVaeThenGan) {
    require(c.epochs >= 2,
            fmt::format("--epochs: vae-then-gan needs at least 2 (a VAE phase and a GAN phase), got {}", c.epochs));
    require(vae_phase_epochs(c) < c.epochs,
            fmt::format("--pretrain-epochs: {} leaves no GAN epoch of --epochs {}", c.pretrain_epochs, c.epochs));
  } else {
    require(c.pretrain_epochs == 0,
            fmt::format("--pretrain-epochs: only for --model vae-then-gan, got --model {}", enum_name(c.model.type)));
  }
  require(c.epochs >= 1 || c.max_steps >= 1,
          fmt::format("--epochs: must be at least 1 (or give --max-steps), got {}", c.epochs));
  require(c.epochs >= 0, fmt::format("--epochs: must be >= 0, got {}", c.epochs));
  require(c.max_steps >= 0, fmt::format("--max-steps: must be >= 0, got {}", c.max_steps));
  require(c.max_minutes >= 0, fmt::format("--max-minutes: must be >= 0, got {}", c.max_minutes));
  require(c.batch_size >= 2 && c.batch_size <= 65536,
          fmt::format("--batch-size: must be in 2..65536 (batch norm needs 2), got {}", c.batch_size));
  require(c.lr > 0 && c.lr < 1, fmt::format("--lr: must be in (0, 1), got {}", c.lr));
  for (const auto& [flag, lr] : {std::pair{"--lr-encoder", c.lr_encoder}, std::pair{"--lr-decoder", c.lr_decoder},
                                 std::pair{"--lr-discriminator", c.lr_discriminator}}) {
    require(lr >= 0 && lr < 1, fmt::format("{}: must be in [0, 1) (0: --lr), got {}", flag, lr));
  }
  require(c.adam_beta1 >= 0 && c.adam_beta1 < 1, fmt::format("--adam-beta1: must be in [0, 1), got {}", c.adam_beta1));
  require(c.adam_beta2 >= 0 && c.adam_beta2 < 1, fmt::format("--adam-beta2: must be in [0, 1), got {}", c.adam_beta2));
  require(c.weight_decay >= 0, fmt::format("--weight-decay: must be >= 0, got {}", c.weight_decay));
  require(c.grad_clip >= 0, fmt::format("--grad-clip: must be >= 0 (0: none), got {}", c.grad_clip));
  require(c.lr_decay > 0 && c.lr_decay <= 1, fmt::format("--lr-decay: must be in (0, 1], got {}", c.lr_decay));
  require(c.lr_anneal_epochs >= 1, fmt::format("--lr-anneal-epochs: must be at least 1, got {}", c.lr_anneal_epochs));
  require(c.lr_anneal_period >= 0,
          fmt::format("--lr-anneal-period: must be >= 0 (0: one epoch), got {}", c.lr_anneal_period));
  require(c.lr_anneal_gamma > 0, fmt::format("--lr-anneal-gamma: must be > 0, got {}", c.lr_anneal_gamma));
  require(c.lr_final_ratio >= 0 && c.lr_final_ratio <= 1,
          fmt::format("--lr-final-ratio: must be in [0, 1], got {}", c.lr_final_ratio));
  require(c.rmsprop_alpha > 0 && c.rmsprop_alpha < 1,
          fmt::format("--rmsprop-alpha: must be in (0, 1), got {}", c.rmsprop_alpha));
  require(c.gamma >= 0, fmt::format("--gamma: must be >= 0, got {}", c.gamma));
  require(c.beta >= 0, fmt::format("--beta: must be >= 0, got {}", c.beta));
  require(c.r1_gamma >= 0 && std::isfinite(c.r1_gamma),
          fmt::format("--r1-gamma: must be a finite number >= 0 (0: no penalty), got {}", c.r1_gamma));
  require(
      c.r1_interval >= 1,
      fmt::format("--r1-interval: must be >= 1 (1: the penalty on every discriminator update), got {}", c.r1_interval));
  parse_augment_policy(c.augment);  // throws naming --augment
  require(c.augment_p >= 0 && c.augment_p <= 1,
          fmt::format("--augment-p: must be in [0, 1] (1: every image, every transform), got {}", c.augment_p));
  require(c.ema_decay >= 0 && c.ema_decay < 1,
          fmt::format("--ema-decay: must be in [0, 1) (0: no average), got {}", c.ema_decay));
  require(c.dis_real_weight >= 0 && c.dis_real_weight < 1,
          fmt::format("--dis-real-weight: must be in [0, 1) (0: the plain sum), got {}", c.dis_real_weight));
  require(c.label_smoothing >= 0 && c.label_smoothing < 0.5,
          fmt::format("--label-smoothing: must be in [0, 0.5) (0: none), got {}", c.label_smoothing));
  require(c.equilibrium_margin >= 0, fmt::format("--equilibrium-margin: must be >= 0, got {}", c.equilibrium_margin));
  require(c.checkpoint_every >= 0, fmt::format("--checkpoint-every: must be >= 0, got {}", c.checkpoint_every));
  require(c.keep_checkpoints >= 1, fmt::format("--keep-checkpoints: must be at least 1, got {}", c.keep_checkpoints));
  require(c.max_bad_steps >= 1, fmt::format("--max-bad-steps: must be at least 1, got {}", c.max_bad_steps));
  require(c.threads >= 0, fmt::format("--threads: must be >= 0, got {}", c.threads));
  require(c.log_every >= 1, fmt::format("--log-every: must be at least 1, got {}", c.log_every));
  require(c.val_fraction >= 0 && c.val_fraction <= 0.9,
          fmt::format("--val-fraction: must be in [0, 0.9], got {}", c.val_fraction));
  require(c.val_images >= 0, fmt::format("--val-images: must be >= 0 (0: all), got {}", c.val_images));
  require(c.early_stop_patience >= 0,
          fmt::format("--early-stop-patience: must be >= 0 (0: never), got {}", c.early_stop_patience));
  require(c.early_stop_patience == 0 || c.model.type != ModelType::kGan,
          "--early-stop-patience: a gan has no validation score to stop on (it has no encoder to reconstruct with)");
  require(c.grid_size >= 1 && c.grid_size <= 1024, fmt::format("--grid-size: must be in 1..1024, got {}", c.grid_size));
}

void apply_recipe(Recipe recipe, TrainConfig& c) {
  if (recipe != Recipe::kOriginal) return;
  // celeba_aegan.py: 64×64 images, 128 latent dimensions, batch 64, the reconstruction error at
  // the 9th layer of the discriminator (the output of its 4th convolution, before batch norm).
  c.model.arch = "paper64";
  c.model.latent_dim = 128;
  c.model.feature_layer = 4;
  c.batch_size = 64;
  c.celeba_protocol = CelebAProtocol::kOriginal;
  // aegan.py, train(): RMSprop (deeppy's: decay 0.9, eps 1e-8 after the square root, as
  // torch.optim.RMSprop), learning rate annealed from 0.025 to 1e-5 over 250 "epochs" of 250
  // batches with gamma 0.75, divided by the batch size because their losses are sums over the
  // batch (ours are means; RMSprop's step does not depend on the gradient's scale).
  c.optimizer = OptimizerType::kRmsprop;
  c.rmsprop_alpha = 0.9;
  c.lr = 0.025 / 64;
  c.lr_encoder = c.lr_decoder = c.lr_discriminator = 0;
  c.lr_schedule = LrSchedule::kAnneal;
  c.lr_anneal_epochs = 250;
  c.lr_anneal_period = 250;
  c.lr_anneal_gamma = 0.75;
  c.lr_final_ratio = 1e-5 / 0.025;
  c.epochs = 0;
  c.max_steps = 250 * 250;
  // architectures.py: weight decay 1e-5 on a summed loss, so 1e-5 / 64 on our batch means.
  c.weight_decay = 1e-5 / 64;
  c.grad_clip = 0;
  // model/aegan.py: the decoder's gradient is w * grad L_llike - (1 - w) * grad L_dis(generated),
  // w = recon_vs_gan_weight = 1e-6: the minimax adversarial term with gamma = w / (1 - w).
  c.gamma = 1e-6 / (1 - 1e-6);
  c.beta = 1.0;
  c.gan_loss = GanLoss::kMinimax;
  c.dis_on_recon = false;   // discriminate_ae_recon=False
  c.dis_real_weight = 0.5;  // real_vs_gen_weight
  c.batch_norm = BatchNormMode::kOriginal;
  c.init = WeightInit::kOriginal;  // deeppy's AutoFiller, biases 0
  // aegan.py, GradientDescent: margin 0.35 around 0.68; the decoder skips its whole update.
  c.equilibrium = true;
  c.equilibrium_value = 0.68;
  c.equilibrium_margin = 0.35;
  c.equilibrium_skip = EquilibriumSkip::kDecoder;
  c.augment = "none";  // the authors' code augments nothing
}

int64_t vae_phase_epochs(const TrainConfig& c) {
  return c.pretrain_epochs > 0 ? c.pretrain_epochs : std::max<int64_t>(1, c.epochs / 2);
}

Precision resolve_precision(Precision p, torch::Device device) {
  if (p != Precision::kAuto) return p;
  return bf16_by_default(device) ? Precision::kBf16 : Precision::kFp32;
}

TrainConfig parse_config(const std::string& text, const std::string& where) {
  try {
    TrainConfig c;
    from_json(nlohmann::json::parse(text), c);
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not a valid vaegan config ({})", where, e.what()));
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: not a valid vaegan config ({})", where, e.what()));
  }
}

TrainConfig load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{}: cannot open (expected a config.json)", path));
  return parse_config(std::string(std::istreambuf_iterator<char>(in), {}), path);
}

}  // namespace vaegan
