#include "vaegan/train/checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "vaegan/core/error.h"
#include "vaegan/io/fs.h"
#include "vaegan/train/trainer.h"

namespace vaegan {
namespace fs = std::filesystem;

namespace {

const char* const kOptimizerFiles[] = {"optimizer-encoder.pt", "optimizer-decoder.pt", "optimizer-discriminator.pt"};

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw InputError(fmt::format("{}: cannot open", p.string()));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Checkpoint directories under `checkpoints`, oldest first (names sort by step).
std::vector<fs::path> list_checkpoints(const fs::path& checkpoints) {
  std::vector<fs::path> dirs;
  if (!fs::is_directory(checkpoints)) return dirs;
  for (const auto& entry : fs::directory_iterator(checkpoints)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step-", 0) == 0) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

}  // namespace

std::string save_checkpoint(const std::string& run_dir, Trainer& trainer, const TrainingState& state, int keep) {
  const fs::path checkpoints = fs::path(run_dir) / "checkpoints";
  const std::string name = fmt::format("step-{:07d}", state.step);
  const fs::path final_dir = checkpoints / name;
  const fs::path tmp_dir = checkpoints / (".tmp-" + name);
  try {
    fs::remove_all(tmp_dir);
    fs::create_directories(tmp_dir);
    torch::save(trainer.model(), (tmp_dir / "model.pt").string());
    nlohmann::json lr = nlohmann::json::array();
    for (int i = 0; i < 3; ++i) {
      if (!trainer.has_optimizer(i)) {
        lr.push_back(nullptr);
        continue;
      }
      torch::save(trainer.optimizer(i), (tmp_dir / kOptimizerFiles[i]).string());
      lr.push_back(trainer.learning_rate(i));
    }
    const nlohmann::json st = {{"format_version", kFormatVersion},
                               {"step", state.step},
                               {"epoch", state.epoch},
                               {"phase", to_string(trainer.phase())},
                               {"lr", lr}};
    write_text_atomically((tmp_dir / "state.json").string(), st.dump(2) + "\n");  // throws on a failed write
    write_text_atomically((tmp_dir / "config.json").string(), nlohmann::json(trainer.config()).dump(2) + "\n");
    for (const auto& entry : fs::directory_iterator(tmp_dir)) fsync_path(entry.path().string());
    fsync_path(tmp_dir.string());
    fs::remove_all(final_dir);
    fs::rename(tmp_dir, final_dir);
    fsync_path(checkpoints.string());
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(tmp_dir, ignored);
    throw std::runtime_error(fmt::format("{}: cannot write checkpoint: {}", final_dir.string(), e.what()));
  }
  write_text_atomically((checkpoints / "last").string(), name + "\n");
  std::vector<fs::path> all = list_checkpoints(checkpoints);
  for (size_t i = 0; keep > 0 && i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove_all(all[i]);
  return final_dir.string();
}

std::string resolve_checkpoint(const std::string& path) {
  const fs::path p(path);
  if (fs::is_regular_file(p / "model.pt")) return p.string();
  const fs::path last = p / "checkpoints" / "last";
  if (fs::is_regular_file(last)) {
    std::string name = read_text(last);
    name.erase(name.find_last_not_of(" \n\r\t") + 1);
    const fs::path dir = p / "checkpoints" / name;
    if (fs::is_regular_file(dir / "model.pt")) return dir.string();
    throw InputError(
        fmt::format("--checkpoint: {} names {} but {} has no model.pt", last.string(), name, dir.string()));
  }
  if (!fs::exists(p)) throw InputError(fmt::format("--checkpoint: {} does not exist", path));
  throw InputError(fmt::format(
      "--checkpoint: {} is neither a checkpoint directory (with model.pt) nor a run directory (with checkpoints/last)",
      path));
}

LoadedModel load_model(const std::string& path, torch::Device device) {
  LoadedModel out;
  out.directory = resolve_checkpoint(path);
  const fs::path dir(out.directory);
  out.config = load_config((dir / "config.json").string());
  try {
    const nlohmann::json st = nlohmann::json::parse(read_text(dir / "state.json"));
    out.state.step = st.at("step").get<int64_t>();
    out.state.epoch = st.at("epoch").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: damaged checkpoint state ({})", (dir / "state.json").string(), e.what()));
  }
  out.model = VaeGan(out.config.model);
  try {
    torch::load(out.model, (dir / "model.pt").string());
  } catch (const c10::Error& e) {
    throw InputError(fmt::format("{}: cannot load weights (damaged file or a different architecture): {}",
                                 (dir / "model.pt").string(), e.what_without_backtrace()));
  }
  out.model->to(device);
  out.model->eval();
  return out;
}

}  // namespace vaegan
