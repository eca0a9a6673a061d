#pragma once
/// The feature extractors of `vaegan eval`'s sample-quality numbers: a small CNN classifier that
/// vaegan trains on the dataset itself (`vaegan classifier train`), or a TorchScript module the
/// user supplies (`--features inception.pt`), so that numbers comparable with papers are possible.

#include <torch/script.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vaegan/data/image_dataset.h"

namespace vaegan {

/// Options of `Classifier`.
struct ClassifierOptions {
  ClassifierOptions(int64_t in_channels, int64_t num_classes) : in_channels_(in_channels), num_classes_(num_classes) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, num_classes);
  /// Channels of the 3×3 conv blocks (conv, BN, ReLU, 2×2 max-pool after all but the last).
  TORCH_ARG(std::vector<int64_t>, channels) = std::vector<int64_t>{32, 64, 128};
};

/// A small CNN: conv blocks, global average pooling to the feature vector `[B, F]`
/// (F = last entry of `channels`), and a linear layer to class logits. Works at any image size
/// of at least 4 pixels per side.
class ClassifierImpl : public torch::nn::Module {
 public:
  explicit ClassifierImpl(ClassifierOptions options);
  /// Features of images `[B, C, S, S]` in `[-1, 1]`: `[B, F]`.
  torch::Tensor features(const torch::Tensor& x);
  /// Class logits `[B, K]`.
  torch::Tensor forward(const torch::Tensor& x);

  ClassifierOptions options;
  torch::nn::Sequential body{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Classifier);

/// Options of `train_classifier`.
struct ClassifierTrainOptions {
  TORCH_ARG(int64_t, epochs) = 3;
  TORCH_ARG(int64_t, batch_size) = 128;
  TORCH_ARG(double, lr) = 1e-3;  ///< Adam
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(bool, horizontal_flip) = false;
  /// Where to train; the saved weights load on any device.
  TORCH_ARG(torch::Device, device) = torch::kCPU;
};

/// Trains a classifier on the labelled `train` set, measures its accuracy on `test`, and writes
/// `out_dir/model.pt` and `out_dir/classifier.json` (`info`, plus channels, image size, classes,
/// test accuracy). Returns the JSON written. Throws `InputError` when the dataset has no labels
/// and `std::runtime_error` when writing fails.
nlohmann::json train_classifier(const std::shared_ptr<ImageDataset>& train, const std::shared_ptr<ImageDataset>& test,
                                const ClassifierTrainOptions& options, const std::string& out_dir, nlohmann::json info);

/// Maps images `[B, C, S, S]` in `[-1, 1]` to features `[B, F]`, and says what it is.
struct FeatureExtractor {
  std::function<torch::Tensor(const torch::Tensor&)> extract;
  /// The predicted class of images `[B, C, S, S]` in `[-1, 1]`: int64 `[B]` on the CPU; empty
  /// for an extractor that is no classifier (`--features`).
  std::function<torch::Tensor(const torch::Tensor&)> classify;
  nlohmann::json description;  ///< recorded in the eval JSON so protocols are never mixed up
};

/// The classifier saved in `dir` (by `train_classifier`) as a feature extractor that resizes
/// images to its training size. Throws `InputError` naming the file when it is missing or damaged.
FeatureExtractor load_classifier_features(const std::string& dir, torch::Device device);

/// A TorchScript module `path` whose `forward` maps images `[B, C, S, S]` in `[-1, 1]`, at the
/// model's channels and size, to features (flattened to `[B, F]`). Resizing and channel handling
/// (e.g. Inception's 299×299 RGB) are the module's business. Throws `InputError` naming the file
/// when it cannot be loaded.
FeatureExtractor load_torchscript_features(const std::string& path, torch::Device device);

}  // namespace vaegan
