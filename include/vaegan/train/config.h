#pragma once
/// The training configuration: one flat, commented struct, saved as `config.json` in the run
/// directory and in every checkpoint (docs/design.md, "Run directory"). Every field has its one
/// default here, its one range check in `validate`, and its JSON key from one list
/// (`src/train/config.cpp`); `vaegan train`'s flags take their defaults from this struct.

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "vaegan/core/enum_names.h"
#include "vaegan/data/celeba.h"
#include "vaegan/data/datasets.h"
#include "vaegan/model/losses.h"
#include "vaegan/model/model.h"
#include "vaegan/model/model_config.h"

namespace vaegan {

/// Version of the run-directory / checkpoint format written by this build. 2: checkpoints carry
/// `checksums.json`, `rng.pt` and the data-order position (format 1 still loads for sampling and
/// evaluation, unverified, but cannot be resumed exactly).
constexpr int kFormatVersion = 2;

/// Numerics of the forward pass (`--precision`).
enum class Precision {
  kAuto,  ///< resolved by `resolve_precision` when training starts; never saved
  kFp32,
  kBf16,  ///< bf16 autocast for the forward pass; weights, gradients, optimizer states and losses stay fp32
};
VAEGAN_ENUM_NAMES(Precision, "--precision", 3, {Precision::kAuto, "auto"}, {Precision::kFp32, "fp32"},
                  {Precision::kBf16, "bf16"})

/// The optimizer of every network (`--optimizer`); each network has its own instance.
enum class OptimizerType {
  kRmsprop,  ///< paper §4 and the authors' code
  kAdam,     ///< Kingma & Ba 2015; `torch.optim.Adam` (weight decay added to the gradient)
};
VAEGAN_ENUM_NAMES(OptimizerType, "--optimizer", 2, {OptimizerType::kRmsprop, "rmsprop"}, {OptimizerType::kAdam, "adam"})

/// How the learning rates change from epoch to epoch (`--lr-schedule`).
enum class LrSchedule {
  kExponential,  ///< multiplied by `lr_decay` after every epoch (1: constant)
  /// The authors' annealing (their released code, github.com/andersbll/autoencoding_beyond_pixels,
  /// `aegan.py`: deeppy's `GammaAnnealer(0.02, 1e-5, 150, gamma=0.75)`,
  /// divided by the batch size): after e epochs each rate is its start value times
  /// `1 - (min(e, T) / T)^gamma * (1 - lr_final_ratio)`, T = `lr_anneal_epochs`.
  kAnneal,
};
VAEGAN_ENUM_NAMES(LrSchedule, "--lr-schedule", 2, {LrSchedule::kExponential, "exponential"},
                  {LrSchedule::kAnneal, "anneal"})

/// What the equilibrium rule withholds from the decoder when it is ahead (`--equilibrium-skip`).
enum class EquilibriumSkip {
  kAdversarial,  ///< only L_adv: the decoder still steps on `gamma * L_llike` (vaegan's default)
  /// its whole update, as the authors' released code does (`model/aegan.py`, `GradientDescent`)
  kDecoder,
};
VAEGAN_ENUM_NAMES(EquilibriumSkip, "--equilibrium-skip", 2, {EquilibriumSkip::kAdversarial, "adversarial"},
                  {EquilibriumSkip::kDecoder, "decoder"})

struct TrainConfig {
  ModelConfig model;

  // data
  std::string dataset = "fashion-mnist";                       ///< fashion-mnist | mnist | cifar10 | celeba | folder
  std::string data_dir;                                        ///< empty: `default_data_dir(dataset)`
  bool horizontal_flip = false;                                ///< mirror training images left-right at random
  int64_t loader_threads = 1;                                  ///< threads decoding image files (folder, celeba)
  CelebAProtocol celeba_protocol = CelebAProtocol::kStandard;  ///< celeba: partitions and crop
  /// folder without `train/` and `test/`: fraction of its images held out as the test split
  /// (validation, evaluation), chosen by a fixed seed (0: none; both splits are every image)
  double val_fraction = 0.1;

  // schedule
  int64_t epochs = 10;      ///< passes over the training set
  int64_t max_steps = 0;    ///< stop after this many steps (0: no limit)
  int64_t batch_size = 64;  ///< images per step (paper §4: 64)
  /// `vae-then-gan`: epochs of the VAE phase (0: half of `epochs`, at least 1), the rest GAN.
  int64_t pretrain_epochs = 0;
  double max_minutes = 0;  ///< stop after the step that exceeds this wall time, in minutes (0: no limit)

  // optimization (one optimizer per network; paper §4: RMSprop, lr 3e-4)
  OptimizerType optimizer = OptimizerType::kRmsprop;
  double lr = 3e-4;  ///< learning rate of every network without its own (paper §4: 3e-4)
  /// Per-network learning rates (0: `lr`), e.g. a discriminator at a tenth of the others, or
  /// two time-scale updates (Heusel et al. 2017).
  double lr_encoder = 0, lr_decoder = 0, lr_discriminator = 0;
  double adam_beta1 = 0.5, adam_beta2 = 0.999;  ///< Adam's betas (DCGAN practice, Radford et al. 2016)
  double weight_decay = 0;  ///< L2 penalty the optimizer adds to each gradient (torch.optim's weight_decay)
  double grad_clip = 0;     ///< largest L2 norm of one network's gradient in a step (0: no clipping)
  LrSchedule lr_schedule = LrSchedule::kExponential;
  double lr_decay = 1.0;  ///< exponential: learning rates are multiplied by this after every epoch (1: none)
  /// anneal: periods T to the final rate, the exponent, and the final rate over the start rate
  /// (the authors': 150, 0.75 and 1e-5 / 0.02).
  int64_t lr_anneal_epochs = 150;
  /// anneal: steps per period (0: one epoch; the authors' "epochs" are 250 batches).
  int64_t lr_anneal_period = 0;
  double lr_anneal_gamma = 0.75;
  double lr_final_ratio = 5e-4;
  double rmsprop_alpha = 0.9;  ///< RMSprop smoothing constant (the authors' code: 0.9)
  double gamma = 1e-2;         ///< weight of L_llike against L_adv in the decoder (paper §2.2)
  double beta = 1.0;           ///< weight of L_prior in the encoder's objective (1: the paper's ELBO)
  /// Decay of an exponential moving average of the decoder's weights, kept beside the trained
  /// ones and used for sampling and evaluation by default (`Trainer::ema_decoder`; 0: none).
  /// Karras et al. 2018 (ProGAN, arXiv 1710.10196) §A.1 and Yazıcı et al. 2019 (arXiv 1806.04498).
  /// Off by default, by measurement (docs/training-defaults.md): 0.995 raised recall on
  /// Fashion-MNIST but doubled the Fréchet distance on the Oxygen icons.
  double ema_decay = 0;
  /// Discriminator also classifies reconstructions (Algorithm 1: yes; the authors' CelebA code
  /// and the default here, by measurement: no, see docs/training-defaults.md).
  bool dis_on_recon = false;
  /// Separate (default, by measurement): each network runs once per input, so batch norm never
  /// mixes real and generated images; joint: once on the concatenation of its inputs.
  BatchNormMode batch_norm = BatchNormMode::kSeparate;
  GanLoss gan_loss = GanLoss::kNonSaturating;  ///< decoder's adversarial term
  /// Weight of real images in L_dis (`discriminator_loss`; 0: Algorithm 1's plain sum; the
  /// authors' code: 0.5, 0.66 in an earlier CelebA script).
  double dis_real_weight = 0;
  /// One-sided label smoothing: the target of real images in L_dis is `1 - label_smoothing`
  /// (`discriminator_loss`; Salimans et al. 2016, "Improved Techniques for Training GANs",
  /// arXiv 1606.03498, §3.4: 0.1; 0: none), for the VAE-GAN and the GAN.
  double label_smoothing = 0;
  /// Weight gamma of the R1 gradient penalty on real images added to the discriminator's loss,
  /// (gamma / 2) E ||grad_x D(x)||^2 (`r1_penalty`; Mescheder, Geiger and Nowozin 2018,
  /// arXiv 1801.04406, eq. 9; 0: none). Off by default, by measurement
  /// (docs/training-defaults.md): it keeps the discriminator from winning on a small dataset
  /// (the Oxygen icons) but costs a quarter of the steps, and quality, on Fashion-MNIST in the
  /// demo's ten minutes.
  double r1_gamma = 0;
  /// Lazy R1: the penalty is added to every `r1_interval`-th discriminator update only (those
  /// whose optimizer has taken a multiple of it), weighted `r1_interval * r1_gamma`, so that it
  /// costs a second discriminator pass on one step in N (Karras et al. 2020, StyleGAN2,
  /// arXiv 1912.04958, §3.1 "Lazy regularization": 16). 1: every update.
  int64_t r1_interval = 1;
  /// Differentiable augmentation of every image the discriminator judges (`--augment`,
  /// `parse_augment_policy`; Zhao et al. 2020, DiffAugment, arXiv 2006.10738): `none`, or a
  /// comma-separated list of `color`, `translation`, `cutout`. A reconstruction is transformed as
  /// its original (`vae_gan_forward`); the R1 penalty is on the images as they are. Each step
  /// draws the transforms from the trainer's generator, so resume stays exact. `translation` by
  /// default, by measurement (docs/training-defaults.md, "Translation on Fashion-MNIST"): against
  /// no augmentation, a lower Fréchet distance in both seeds on Fashion-MNIST at the demo's
  /// budget (0.78×) and on the Oxygen icons at 1,500 steps (0.56×), with higher precision and
  /// recall on Fashion-MNIST and a discriminator that does not win on the icons. A config
  /// written by vaegan before this option existed reads as `none` (`from_json`).
  std::string augment = "translation";
  /// Probability that each transform is applied to each image (1: always, as DiffAugment).
  double augment_p = 1.0;
  WeightInit init = WeightInit::kPytorch;  ///< how the weights are drawn

  // equilibrium (the authors' code): skip the update of the player that is ahead
  bool equilibrium = false;
  double equilibrium_value = 0.68;                                   ///< target BCE of the discriminator
  double equilibrium_margin = 0.35;                                  ///< band around it
  EquilibriumSkip equilibrium_skip = EquilibriumSkip::kAdversarial;  ///< what the decoder loses when ahead

  // speed (neither changes what is computed)
  /// share the L_llike backward pass between encoder and decoder (exact; never with joint batch
  /// norm, where it saves nothing: `vae_gan_gradients`)
  bool fused_step = true;
  bool channels_last = true;  ///< NHWC memory format for convolutions (faster on CPU)
  /// On a CUDA device, replay each step from CUDA graphs where it can be captured
  /// (`Trainer::uses_cuda_graphs`: one process, no equilibrium rule, no R1 penalty); ignored
  /// elsewhere. The same kernels on the same inputs: a step is launched once instead of kernel
  /// by kernel, which is what limits small models on a GPU (docs/gpu.md, "CUDA graphs").
  bool cuda_graphs = true;
  /// `auto` is resolved (`resolve_precision`) before training and saved resolved.
  Precision precision = Precision::kAuto;

  // fault tolerance
  int64_t checkpoint_every = 0;  ///< steps between checkpoints, besides those at epoch ends (0: none)
  int64_t keep_checkpoints = 2;  ///< newest checkpoints kept (older ones are deleted)
  int64_t max_bad_steps = 10;    ///< stop after this many steps in a row with NaN/Inf losses or gradients

  // reproducibility and resources
  uint64_t seed = 0;
  int threads = 0;  ///< intra-op threads (0: all cores)

  // logging
  int64_t log_every = 50;  ///< steps between metrics.jsonl lines
  // validation after every epoch, on the test split (docs/design.md, "Validation")
  int64_t val_images = 2048;        ///< test images the validation losses average over (0: all)
  int64_t early_stop_patience = 0;  ///< stop after this many validations without a better val_score (0: never)
  int64_t grid_size = 64;           ///< images in each per-epoch grid
  /// TensorBoard event files (docs/design.md, "TensorBoard"): their directory; empty means
  /// `RUN/tensorboard`, `none` writes none
  std::string tensorboard;
};

/// `config.json`: every field of `TrainConfig` under its own name, `model` as an object,
/// `recon_loss` top-level, plus `format_version`.
void to_json(nlohmann::json& j, const TrainConfig& c);
/// Reads a config written by `to_json` (or by hand: `vaegan train --config`); missing keys keep
/// their defaults, except `augment` in a config with `format_version` (written by a vaegan from
/// before `--augment`, which trained without it): `none`. Throws `InputError` naming the key for
/// an unknown key (at the top level or in `model`), a value of the wrong type or an unknown name,
/// or when `format_version` is newer than this build's.
void from_json(const nlohmann::json& j, TrainConfig& c);

/// Checks every field's range and the combinations, once. Throws `InputError` naming the flag,
/// e.g. "--batch-size: must be at least 2, got 1".
void validate(const TrainConfig& c);

/// Recipes (`--recipe`): named sets of settings applied over a config.
enum class Recipe {
  kNone,
  /// The authors' released code, github.com/andersbll/autoencoding_beyond_pixels (its CelebA
  /// experiment, `celeba_aegan.py` with `aegan.py` and `model/aegan.py`); docs/training-defaults.md,
  /// "The authors' recipe", gives each setting's source and what differs.
  kOriginal,
};
VAEGAN_ENUM_NAMES(Recipe, "--recipe", 2, {Recipe::kNone, "none"}, {Recipe::kOriginal, "original"})

/// Sets the fields `recipe` fixes in `c` and leaves the others (`kNone`: nothing).
void apply_recipe(Recipe recipe, TrainConfig& c);

/// The dataset choices of `c` (`open_dataset`): its CelebA protocol and validation fraction.
inline DatasetOptions dataset_options(const TrainConfig& c) {
  return DatasetOptions().celeba_protocol(c.celeba_protocol).val_fraction(c.val_fraction);
}

/// Epochs of the VAE phase of a `vae-then-gan` run: `pretrain_epochs`, or half of `epochs`
/// (at least 1) when 0.
int64_t vae_phase_epochs(const TrainConfig& c);

/// The precision `p` means on `device`: itself, or for `kAuto` bf16 where
/// `bf16_by_default(device)` (core/runtime.h: decided from the hardware, the same on every run
/// on one machine), else fp32. Never returns `kAuto`.
Precision resolve_precision(Precision p, torch::Device device);

/// Parses `text`, the JSON of a config.json (`from_json`). Throws `InputError` naming `where`
/// (a file name) and the key when it is not valid JSON of the expected shape.
TrainConfig parse_config(const std::string& text, const std::string& where);

/// Reads `path` (a config.json). Throws `InputError` naming the file (and the key) when it is
/// missing or not valid JSON of the expected shape.
TrainConfig load_config(const std::string& path);

}  // namespace vaegan
