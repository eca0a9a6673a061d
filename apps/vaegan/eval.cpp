// `vaegan eval` (reconstruction, likelihood bounds, sample quality) and `vaegan classifier train`
// (the feature extractor trained on the dataset itself).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <optional>

#include "commands.h"
#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/data/datasets.h"
#include "vaegan/eval/evaluate.h"
#include "vaegan/io/fs.h"
#include "vaegan/train/checkpoint.h"
#include "vaegan/train/metrics_logger.h"

namespace vaegan::cli {

void setup_eval(CLI::App& app, Runner& run) {
  struct Options {
    std::string checkpoint, out, features, classifier, data_dir;
    Split split = Split::kTest;
    int64_t num_test = 10000, num_samples = 10000, iw_samples = 0, k = 3;
    uint64_t seed = 0;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("eval", "Reconstruction metrics, ELBO, and sample quality in a feature space");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint or run directory")->required();
  cmd->add_option("--out", o->out, "metrics JSON to write")->required();
  auto* cls = cmd->add_option("--classifier", o->classifier,
                              "Feature extractor: a directory written by `vaegan classifier train`");
  cmd->add_option("--features", o->features,
                  "Feature extractor: a TorchScript file mapping [B,C,S,S] in [-1,1] to [B,F]")
      ->excludes(cls);
  cmd->add_option("--n-test", o->num_test, "Test images for reconstruction and likelihood (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--n-samples", o->num_samples, "Prior samples and test images compared in feature space")
      ->check(CLI::Range(10, 1000000))
      ->capture_default_str();
  cmd->add_option("--iw-samples", o->iw_samples, "K of the importance-weighted bound (vae models; 0: skip)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--k", o->k, "k of the k-NN precision/recall")->check(CLI::Range(1, 100))->capture_default_str();
  add_split_option(cmd, o->split);
  cmd->add_option("--data-dir", o->data_dir, "Dataset directory (default: the one the model was trained on)");
  cmd->add_option("--seed", o->seed, "Seed of prior and posterior samples")->capture_default_str();
  add_threads_option(cmd, o->threads);
  cmd->callback([&run, o] {
    run = [o] {
      LoadedModel m = load_for_command(o->checkpoint, o->threads);
      const torch::Device device = m.device;
      std::optional<FeatureExtractor> features;
      if (!o->classifier.empty()) features = load_classifier_features(o->classifier, device);
      if (!o->features.empty()) features = load_torchscript_features(o->features, device);
      const std::string data_dir = o->data_dir.empty() ? m.config.data_dir : o->data_dir;
      const auto data = model_dataset(m, data_dir, o->split);
      nlohmann::json j = evaluate(m.model, *data, features ? &*features : nullptr,
                                  EvalOptions()
                                      .num_test(o->num_test)
                                      .num_samples(o->num_samples)
                                      .iw_samples(o->iw_samples)
                                      .k(o->k)
                                      .seed(o->seed),
                                  device);
      j["dataset"] = m.config.dataset;
      j["checkpoint"] = m.directory;
      j["step"] = m.state.step;
      j["split"] = o->split == Split::kTrain ? "train" : "test";
      j["data_dir"] = data_dir;
      if (!features) j["samples"] = "no feature extractor given (--classifier or --features)";
      write_text_atomically(o->out, j.dump(2) + "\n");
      spdlog::info("wrote {}", o->out);
      fmt::print("{}\n", j.dump(2));
      return 0;
    };
  });
}

void setup_classifier(CLI::App& app, Runner& run) {
  struct Options {
    std::string dataset = "fashion-mnist", data_dir, out;
    int64_t image_size = 32, channels = 0;
    int threads = 0;
    ClassifierTrainOptions train;
  };
  auto o = std::make_shared<Options>();
  CLI::App* group = app.add_subcommand("classifier", "The feature extractor of `vaegan eval`");
  group->require_subcommand(1);
  CLI::App* cmd = group->add_subcommand("train", "Train a CNN classifier on a labelled dataset");
  cmd->add_option("--dataset", o->dataset, "Dataset")->check(CLI::IsMember(dataset_names()))->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "Dataset directory (default: the dataset's standard place)");
  cmd->add_option("--image-size", o->image_size, "Image size it is trained at")
      ->check(CLI::Range(8, 1024))
      ->capture_default_str();
  cmd->add_option("--channels", o->channels, "Image channels (0: the dataset's; folder: 3)")
      ->check(CLI::Range(0, 3))
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Directory to write model.pt and classifier.json to")->required();
  cmd->add_option("--epochs", o->train.epochs(), "Epochs")->check(CLI::Range(1, 1000))->capture_default_str();
  cmd->add_option("--batch-size", o->train.batch_size(), "Batch size")
      ->check(CLI::Range(2, 65536))
      ->capture_default_str();
  cmd->add_option("--lr", o->train.lr(), "Adam learning rate")->check(CLI::Range(1e-9, 1.0))->capture_default_str();
  cmd->add_option("--seed", o->train.seed(), "Seed")->capture_default_str();
  add_threads_option(cmd, o->threads);
  cmd->callback([&run, o] {
    run = [o] {
      configure_threads(o->threads);
      const std::string dir = o->data_dir.empty() ? default_data_dir(o->dataset) : o->data_dir;
      const int64_t channels = resolve_channels(o->dataset, o->channels);
      auto train = open_dataset(o->dataset, dir, Split::kTrain, channels, o->image_size);
      auto test = open_dataset(o->dataset, dir, Split::kTest, channels, o->image_size);
      spdlog::info("classifier: training on {}", train->summary());
      const nlohmann::json info =
          train_classifier(train, test, o->train, o->out, {{"dataset", o->dataset}, {"data_dir", dir}});
      spdlog::info("classifier: test accuracy {:.4f} on {} images; written to {}",
                   info.at("test_accuracy").get<double>(), test->size(), o->out);
      return 0;
    };
  });
}

void setup_plot(CLI::App& app, Runner& run) {
  auto runs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>("losses.png");
  CLI::App* cmd = app.add_subcommand("plot", "Draw the loss curves of one or more runs in one figure");
  cmd->add_option("runs", *runs, "Run directories")->required();
  cmd->add_option("--out", *out, "PNG to write")->capture_default_str();
  cmd->callback([&run, runs, out] {
    run = [runs, out] {
      require_extension(*out, {".png"}, "--out");
      plot_losses(*runs, *out);
      spdlog::info("wrote the loss curves of {} run(s) to {}", runs->size(), *out);
      return 0;
    };
  });
}

}  // namespace vaegan::cli
