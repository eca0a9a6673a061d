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

int run_eval(const EvalArgs& a) {
  LoadedModel m = load_for_command(a.checkpoint, a.runtime);
  std::optional<FeatureExtractor> features;
  if (!a.classifier.empty()) features = load_classifier_features(a.classifier, m.device);
  if (!a.features.empty()) features = load_torchscript_features(a.features, m.device);
  const std::string data_dir = a.data_dir.empty() ? m.config.data_dir : a.data_dir;
  const auto data = model_dataset(m, data_dir, a.split);
  nlohmann::json j = evaluate(m.model, *data, features ? &*features : nullptr, a.options, m.device);
  j["dataset"] = m.config.dataset;
  j["checkpoint"] = m.directory;
  j["step"] = m.state.step;
  j["decoder_weights"] = m.decoder_weights;
  j["split"] = enum_name(a.split);
  j["data_dir"] = data_dir;
  if (!features) j["samples"] = "no feature extractor given (--classifier or --features)";
  write_text_atomically(a.out, j.dump(2) + "\n");
  spdlog::info("wrote {}", a.out);
  fmt::print("{}\n", j.dump(2));
  return 0;
}

void setup_eval(CLI::App& app, Runner& run) {
  auto o = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Reconstruction metrics, ELBO, and sample quality in a feature space");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint or run directory")->required();
  cmd->add_option("--out", o->out, "metrics JSON to write")->required();
  auto* cls = cmd->add_option("--classifier", o->classifier,
                              "Feature extractor: a directory written by `vaegan classifier train`");
  cmd->add_option("--features", o->features,
                  "Feature extractor: a TorchScript file mapping [B,C,S,S] in [-1,1] to [B,F]")
      ->excludes(cls);
  cmd->add_option("--n-test", o->options.num_test(), "Test images for reconstruction and likelihood (0: all)")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--n-samples", o->options.num_samples(), "Prior samples and test images compared in feature space")
      ->check(CLI::Range(10, 1000000))
      ->capture_default_str();
  cmd->add_option("--iw-samples", o->options.iw_samples(), "K of the importance-weighted bound (vae models; 0: skip)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--k", o->options.k(), "k of the k-NN precision/recall")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  add_enum_option(cmd, "--split", o->split, "Dataset split");
  cmd->add_option("--data-dir", o->data_dir, "Dataset directory (default: the one the model was trained on)");
  add_seed_option(cmd, o->options.seed(), "Seed of prior and posterior samples");
  add_runtime_options(cmd, o->runtime);
  cmd->callback([&run, o] { run = [o] { return run_eval(*o); }; });
}

int run_classifier_train(const ClassifierArgs& a) {
  ClassifierTrainOptions options = a.train;
  options.device(apply_runtime(a.runtime));
  const std::string dir = a.data_dir.empty() ? default_data_dir(a.dataset) : a.data_dir;
  const int64_t channels = resolve_channels(a.dataset, a.channels);
  auto train = open_dataset(a.dataset, dir, Split::kTrain, channels, a.image_size);
  auto test = open_dataset(a.dataset, dir, Split::kTest, channels, a.image_size);
  spdlog::info("classifier: training on {}", train->summary());
  const nlohmann::json info =
      train_classifier(train, test, options, a.out, {{"dataset", a.dataset}, {"data_dir", dir}});
  spdlog::info("classifier: test accuracy {:.4f} on {} images; written to {}", info.at("test_accuracy").get<double>(),
               test->size(), a.out);
  return 0;
}

void setup_classifier(CLI::App& app, Runner& run) {
  auto o = std::make_shared<ClassifierArgs>();
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
  add_seed_option(cmd, o->train.seed(), "Seed");
  add_runtime_options(cmd, o->runtime, /*threads=*/true, /*decoder_weights=*/false);
  cmd->callback([&run, o] { run = [o] { return run_classifier_train(*o); }; });
}

int run_plot(const PlotArgs& a) {
  require_extension(a.out, {".png"}, "--out");
  plot_losses(a.runs, a.out);
  spdlog::info("wrote the loss curves of {} run(s) to {}", a.runs.size(), a.out);
  return 0;
}

void setup_plot(CLI::App& app, Runner& run) {
  auto a = std::make_shared<PlotArgs>();
  CLI::App* cmd = app.add_subcommand("plot", "Draw the loss curves of one or more runs in one figure");
  cmd->add_option("runs", a->runs, "Run directories")->required();
  cmd->add_option("--out", a->out, "PNG to write")->capture_default_str();
  cmd->callback([&run, a] { run = [a] { return run_plot(*a); }; });
}

}  // namespace vaegan::cli
