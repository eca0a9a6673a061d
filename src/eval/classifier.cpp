#include "vaegan/eval/classifier.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "vaegan/core/error.h"
#include "vaegan/data/loader.h"
#include "vaegan/io/fs.h"
#include "vaegan/io/torch_save.h"

namespace vaegan {
namespace nn = torch::nn;
namespace fs = std::filesystem;

ClassifierImpl::ClassifierImpl(ClassifierOptions options_) : options(std::move(options_)) {
  body = nn::Sequential();
  int64_t in = options.in_channels();
  for (size_t i = 0; i < options.channels().size(); ++i) {
    const int64_t c = options.channels()[i];
    body->push_back(nn::Conv2d(nn::Conv2dOptions(in, c, 3).padding(1).bias(false)));
    body->push_back(nn::BatchNorm2d(c));
    body->push_back(nn::ReLU());
    if (i + 1 < options.channels().size()) body->push_back(nn::MaxPool2d(2));
    in = c;
  }
  body = register_module("body", body);
  head = register_module("head", nn::Linear(in, options.num_classes()));
}

torch::Tensor ClassifierImpl::features(const torch::Tensor& x) {
  return body->forward(x).mean({2, 3});  // global average pooling: [B, F]
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) { return head->forward(features(x)); }

namespace {

/// Accuracy of `model` on all of `data`.
double accuracy(Classifier& model, const std::shared_ptr<ImageDataset>& data, int64_t batch, torch::Device device) {
  torch::NoGradGuard no_grad;
  model->eval();
  int64_t correct = 0, total = 0;
  BatchLoader loader(data, torch::arange(data->size()), LoaderOptions().batch_size(batch));
  while (auto b = loader.next()) {
    correct += model->forward(b->images.to(device)).argmax(1).cpu().eq(b->labels).sum().item<int64_t>();
    total += b->images.size(0);
  }
  // the partial last batch
  const int64_t rest = data->size() % batch;
  if (rest > 0) {
    std::vector<int64_t> idx;
    std::vector<int64_t> labels;
    for (int64_t i = data->size() - rest; i < data->size(); ++i) {
      idx.push_back(i);
      labels.push_back(data->label(i));
    }
    correct +=
        model->forward(data->images(idx).to(device)).argmax(1).cpu().eq(torch::tensor(labels)).sum().item<int64_t>();
    total += rest;
  }
  model->train();
  return total > 0 ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
}

}  // namespace

nlohmann::json train_classifier(const std::shared_ptr<ImageDataset>& train, const std::shared_ptr<ImageDataset>& test,
                                const ClassifierTrainOptions& o, const std::string& out_dir, nlohmann::json info) {
  const int64_t classes = static_cast<int64_t>(train->class_names().size());
  if (classes < 2) {
    throw InputError(fmt::format("{}: has no class labels, so no classifier can be trained on it", train->summary()));
  }
  torch::manual_seed(o.seed());
  Classifier model(ClassifierOptions(train->channels(), classes));
  model->to(o.device());
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(o.lr()));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed());
  for (int64_t epoch = 0; epoch < o.epochs(); ++epoch) {
    BatchLoader loader(train, torch::randperm(train->size(), gen, torch::kLong),
                       LoaderOptions().batch_size(o.batch_size()).horizontal_flip(o.horizontal_flip()).seed(o.seed()),
                       epoch);
    double loss_sum = 0;
    int64_t steps = 0;
    while (auto b = loader.next()) {
      optimizer.zero_grad();
      const torch::Tensor loss =
          torch::nn::functional::cross_entropy(model->forward(b->images.to(o.device())), b->labels.to(o.device()));
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>();
      ++steps;
    }
    spdlog::info("classifier epoch {}/{}: mean cross-entropy {:.4f}", epoch + 1, o.epochs(),
                 loss_sum / std::max<int64_t>(1, steps));
  }
  const double acc = accuracy(model, test, o.batch_size(), o.device());
  info["channels"] = train->channels();
  info["image_size"] = train->image_size();
  info["classes"] = train->class_names();
  info["test_accuracy"] = acc;
  info["test_images"] = test->size();
  info["epochs"] = o.epochs();
  info["feature_dim"] = model->options.channels().back();
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw InputError(fmt::format("--out: cannot create {}: {}", out_dir, ec.message()));
  save_atomically(model, out_dir + "/model.pt");
  write_text_atomically(out_dir + "/classifier.json", info.dump(2) + "\n");
  return info;
}

FeatureExtractor load_classifier_features(const std::string& dir, torch::Device device) {
  const std::string json_path = dir + "/classifier.json", model_path = dir + "/model.pt";
  std::ifstream in(json_path);
  if (!in)
    throw InputError(fmt::format("--classifier: {} not found (train one with `vaegan classifier train`)", json_path));
  nlohmann::json info;
  try {
    info = nlohmann::json::parse(in);
    const int64_t channels = info.at("channels").get<int64_t>(), size = info.at("image_size").get<int64_t>();
    auto model =
        std::make_shared<Classifier>(ClassifierOptions(channels, static_cast<int64_t>(info.at("classes").size())));
    torch::load(*model, model_path, torch::Device(torch::kCPU));  // saved on any device
    (*model)->to(device);
    (*model)->eval();
    FeatureExtractor f;
    f.description = {{"kind", "vaegan-classifier"},
                     {"path", dir},
                     {"dataset", info.value("dataset", "")},
                     {"test_accuracy", info.at("test_accuracy")},
                     {"feature_dim", info.value("feature_dim", 0)}};
    // the classifier's input: on its device, at its training size
    auto prepare = [size, channels, device](const torch::Tensor& x) {
      TORCH_CHECK(x.size(1) == channels, "classifier expects ", channels, " channels, got ", x.size(1));
      torch::Tensor in = x.to(device);
      if (in.size(2) != size) {
        in = torch::nn::functional::interpolate(in, torch::nn::functional::InterpolateFuncOptions()
                                                        .size(std::vector<int64_t>{size, size})
                                                        .mode(torch::kBilinear)
                                                        .align_corners(false));
      }
      return in;
    };
    f.extract = [model, prepare](const torch::Tensor& x) { return (*model)->features(prepare(x)).cpu(); };
    f.classify = [model, prepare](const torch::Tensor& x) { return (*model)->forward(prepare(x)).argmax(1).cpu(); };
    return f;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not a vaegan classifier description ({})", json_path, e.what()));
  } catch (const c10::Error& e) {
    throw InputError(fmt::format("{}: cannot load ({})", model_path, e.what_without_backtrace()));
  }
}

FeatureExtractor load_torchscript_features(const std::string& path, torch::Device device) {
  std::shared_ptr<torch::jit::Module> module;
  try {
    module = std::make_shared<torch::jit::Module>(torch::jit::load(path, device));
  } catch (const c10::Error& e) {
    throw InputError(
        fmt::format("--features: cannot load TorchScript module {} ({})", path, e.what_without_backtrace()));
  }
  module->eval();
  FeatureExtractor f;
  f.description = {{"kind", "torchscript"}, {"path", path}};
  f.extract = [module, device](const torch::Tensor& x) {
    return module->forward({x.to(device)}).toTensor().flatten(1).cpu();
  };
  return f;
}

}  // namespace vaegan
