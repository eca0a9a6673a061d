#include "vaegan/train/metrics_logger.h"

#include <fmt/format.h>

#include <stdexcept>

#include "vaegan/io/fs.h"

namespace vaegan {

void to_json(nlohmann::json& j, const MetricsRecord& r) {
  const StepStats& s = r.stats;
  j = {{"step", r.step}, {"epoch", r.epoch}, {"phase", s.phase}};
  if (s.phase != Phase::kGan) j["loss_prior"] = s.loss_prior;
  if (s.phase == Phase::kVaeGan) {
    j["loss_llike"] = s.loss_llike;
    j["mse"] = s.mse;
  }
  if (s.phase == Phase::kVae) j["loss_pixel"] = s.loss_pixel;
  if (s.phase != Phase::kVae) {
    j["loss_dis"] = s.loss_dis;
    j["loss_adv"] = s.loss_adv;
    j["d_real"] = s.d_real;
    if (s.phase == Phase::kVaeGan) j["d_recon"] = s.d_recon;
    j["d_prior"] = s.d_prior;
  }
  for (Network n : kNetworks) {
    const auto& lr = r.learning_rates[static_cast<size_t>(n)];
    if (lr) j["lr_" + enum_name(n)] = *lr;
  }
  j["images_per_sec"] = r.images_per_sec;
  if (s.phase == Phase::kVaeGan) {
    j["dis_updates_skipped"] = r.dis_skipped;
    j["dec_adv_updates_skipped"] = r.dec_adv_skipped;
  }
  j["images_skipped"] = r.images_skipped;
  j["bad_steps"] = r.bad_steps;
}

std::array<std::optional<double>, 3> learning_rates(const Trainer& trainer) {
  std::array<std::optional<double>, 3> out;
  for (Network n : kNetworks) {
    if (trainer.has_optimizer(n)) out[static_cast<size_t>(n)] = trainer.learning_rate(n);
  }
  return out;
}

const std::vector<PlotSeries>& loss_series() {
  static const std::vector<PlotSeries> series = {{"loss_prior", "L_prior (KL, nats)"},
                                                 {"loss_llike", "L_llike (feature reconstruction)"},
                                                 {"loss_pixel", "L_pixel (pixel reconstruction)"},
                                                 {"loss_dis", "L_dis (discriminator)"},
                                                 {"loss_adv", "L_adv (decoder / generator)"}};
  return series;
}

void plot_losses(const std::vector<std::string>& run_dirs, const std::string& out) {
  std::vector<std::string> files;
  for (const auto& dir : run_dirs) files.push_back(dir + "/metrics.jsonl");
  plot_series(files, run_dirs, loss_series(), out);
}

void add_scalars(EventWriter& events, const std::string& prefix, const nlohmann::json& line) {
  const int64_t step = line.at("step").get<int64_t>();
  for (const auto& [key, value] : line.items()) {
    if (key == "step" || key == "epoch" || !value.is_number()) continue;
    events.add_scalar(prefix + "/" + key, step, value.get<double>());
  }
}

MetricsLogger::MetricsLogger(const std::string& path) : path_(path), out_(path, std::ios::app) {
  if (!out_) throw std::runtime_error(fmt::format("{}: cannot open for writing", path));
}

void MetricsLogger::log(const MetricsRecord& record) { log(nlohmann::json(record)); }

void MetricsLogger::log(const nlohmann::json& line) {
  out_ << line.dump() << '\n';
  out_.flush();
  if (!out_) throw std::runtime_error(fmt::format("{}: write failed", path_));
}

void MetricsLogger::truncate_after(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).at("step").get<int64_t>() > step) break;
    } catch (const nlohmann::json::exception&) {
      break;  // a line cut short by a crash ends the usable log
    }
    kept += line + "\n";
  }
  in.close();
  write_text_atomically(path, kept);
}

}  // namespace vaegan
