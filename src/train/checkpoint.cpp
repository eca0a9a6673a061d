#include "vaegan/train/checkpoint.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/io/fs.h"
#include "vaegan/io/torch_save.h"

namespace vaegan {
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open", p.string()));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The file of network `n`'s optimizer state.
std::string optimizer_file(Network n) { return "optimizer-" + enum_name(n) + ".pt"; }

/// `state.json` of checkpoint `dir`, parsed. Throws `InputError` naming the file.
nlohmann::json read_state_json(const fs::path& dir) {
  try {
    return nlohmann::json::parse(read_text(dir / "state.json"));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: damaged checkpoint state ({})", (dir / "state.json").string(), e.what()));
  }
}

/// Loads the archive `bytes` (the file `name`) into `module` (a `Model` or one of its networks)
/// on `device` and checks that every parameter and buffer kept the shape the model's config gives
/// it (LibTorch's loader replaces a tensor of another shape silently, and the mismatch would
/// surface later as a raw shape error). `model` (whose network `module` is, or which it is) names
/// the architecture in the message. Throws `InputError` naming `name` and the first mismatch, or
/// the loader's error.
template <typename ModuleHolder>
void load_checked(ModuleHolder& module, const std::string& bytes, const std::string& name, torch::Device device,
                  const Model& model) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& p : module->named_parameters()) expected.emplace_back(p.key(), p.value().sizes().vec());
  for (const auto& b : module->named_buffers()) expected.emplace_back(b.key(), b.value().sizes().vec());
  try {
    // Tensors load onto `device` whatever device they were saved from (a checkpoint written on a
    // GPU loads on a CPU-only machine).
    std::istringstream in(bytes);
    torch::load(module, in, device);
  } catch (const c10::Error& e) {
    throw InputError(fmt::format("{}: cannot load weights (damaged file or a different architecture): {}", name,
                                 e.what_without_backtrace()));
  }
  std::map<std::string, std::vector<int64_t>> loaded;
  for (const auto& p : module->named_parameters()) loaded[p.key()] = p.value().sizes().vec();
  for (const auto& b : module->named_buffers()) loaded[b.key()] = b.value().sizes().vec();
  for (const auto& [key, shape] : expected) {
    if (loaded.at(key) != shape) {
      throw InputError(fmt::format(
          "{}: {} has shape [{}] but the config ({} {}, latent size {}) needs [{}]: weights and config.json "
          "do not belong together",
          name, key, fmt::join(loaded.at(key), ", "), enum_name(model->config.type), model->config.arch,
          model->latent_dim(), fmt::join(shape, ", ")));
    }
  }
}

/// `load_checked` for the whole model, onto the model's device.
void load_weights(Model& model, const std::string& bytes, const std::string& name) {
  load_checked(model, bytes, name, model->parameters().front().device(), model);
}

/// The file of the decoder's moving average (`Trainer::ema_decoder`).
constexpr const char* kEmaFile = "decoder-ema.pt";

/// The bytes of `name` in `files`; throws `InputError` naming `where/name` when it is absent.
const std::string& file_bytes(const CheckpointFiles& files, const std::string& name, const std::string& where) {
  const auto it = files.find(name);
  if (it == files.end()) throw InputError(fmt::format("{}/{}: missing", where, name));
  return it->second;
}

/// Checks that `config` (the run's config.json, which built the trainer) equals the copy saved in
/// the checkpoint (`saved_text`, the file `where/config.json`). Throws `InputError` naming both
/// files and the first key that differs.
void check_config_matches(const TrainConfig& config, const std::string& saved_text, const std::string& where) {
  const std::string path = where + "/config.json";
  const nlohmann::json ours = config, saved = parse_config(saved_text, path);
  if (ours == saved) return;
  std::string key;
  for (const auto& [k, v] : ours.items()) {
    if (!saved.contains(k) || saved.at(k) != v) {
      key = k;
      break;
    }
  }
  throw InputError(fmt::format(
      "--resume: the run's config.json differs from the copy in {} (key '{}': {} there, {} now); a run resumes "
      "with the configuration it was trained with",
      where, key, saved.value(key, nlohmann::json()).dump(), ours.value(key, nlohmann::json()).dump()));
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

/// CRC-32 of a file's bytes (zlib), or throws `InputError` naming it.
uint32_t file_crc32(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: missing", p.string()));
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<char> buf(1 << 16);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(in.gcount()));
  }
  return static_cast<uint32_t>(crc);
}

/// `torch::save(value)` into bytes.
template <typename T>
std::string archive_bytes(const T& value) {
  std::ostringstream out;
  torch::save(value, out);
  return out.str();
}

}  // namespace

CheckpointFiles checkpoint_files(Trainer& trainer, const TrainingState& state) {
  CheckpointFiles files;
  files["model.pt"] = archive_bytes(trainer.model());
  nlohmann::json lr = nlohmann::json::array();
  for (Network n : kNetworks) {
    if (!trainer.has_optimizer(n)) {
      lr.push_back(nullptr);
      continue;
    }
    files[optimizer_file(n)] = archive_bytes(trainer.optimizer(n));
    lr.push_back(trainer.learning_rate(n));
  }
  torch::Tensor rng_now = trainer.generator().get_state();
  files["rng.pt"] = archive_bytes(
      std::vector<torch::Tensor>{rng_now, state.rng_epoch_start.defined() ? state.rng_epoch_start : rng_now});
  nlohmann::json st = {
      {"format_version", kFormatVersion},
      {"step", state.step},
      {"epoch", state.epoch},
      {"step_in_epoch", state.step_in_epoch},
      {"order_position", state.order_position},
      {"world_size", state.world_size},
      {"dis_skipped", state.dis_skipped},
      {"dec_adv_skipped", state.dec_adv_skipped},
      {"bad_steps", state.bad_steps},
      // null before the first validation (JSON has no NaN)
      {"best_score", std::isnan(state.best_score) ? nlohmann::json(nullptr) : nlohmann::json(state.best_score)},
      {"best_step", state.best_step},
      {"validations_since_best", state.validations_since_best},
      {"phase", trainer.phase()},
      {"lr", lr}};
  if (trainer.ema_decoder()) {
    files[kEmaFile] = archive_bytes(trainer.ema_decoder());
    st["ema_updates"] = trainer.ema_updates();
  }
  files["state.json"] = st.dump(2) + "\n";
  files["config.json"] = nlohmann::json(trainer.config()).dump(2) + "\n";
  return files;
}

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  return (fs::path(run_dir) / "checkpoints" / fmt::format("step-{:07d}", step)).string();
}

std::string save_checkpoint(const std::string& run_dir, Trainer& trainer, const TrainingState& state, int keep) {
  const fs::path checkpoints = fs::path(run_dir) / "checkpoints";
  const fs::path final_dir = checkpoint_path(run_dir, state.step);
  const std::string name = final_dir.filename().string();
  const fs::path tmp_dir = checkpoints / (".tmp-" + name);
  try {
    fs::remove_all(tmp_dir);
    fs::create_directories(tmp_dir);
    for (const auto& [file, bytes] : checkpoint_files(trainer, state)) {
      write_text_atomically((tmp_dir / file).string(), bytes);  // throws on a failed write
    }
    nlohmann::json sums = nlohmann::json::object();
    for (const auto& entry : fs::directory_iterator(tmp_dir)) {
      sums[entry.path().filename().string()] = file_crc32(entry.path());
    }
    write_text_atomically((tmp_dir / "checksums.json").string(),
                          nlohmann::json{{"format_version", kFormatVersion}, {"crc32", sums}}.dump(2) + "\n");
    fsync_path(tmp_dir.string());  // every file was fsynced by its atomic write; now their names
    fs::remove_all(final_dir);
    fs::rename(tmp_dir, final_dir);
    fsync_path(checkpoints.string());
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(tmp_dir, ignored);
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    throw std::runtime_error(fmt::format("{}: cannot write checkpoint: {}", final_dir.string(),
                                         c10_error ? c10_error->what_without_backtrace() : e.what()));
  }
  write_text_atomically((checkpoints / "last").string(), name + "\n");
  std::vector<fs::path> all = list_checkpoints(checkpoints);
  for (size_t i = 0; keep > 0 && i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove_all(all[i]);
  return final_dir.string();
}

std::string save_best_checkpoint(const std::string& run_dir, const std::string& checkpoint) {
  const fs::path checkpoints = fs::path(run_dir) / "checkpoints";
  const fs::path best = checkpoints / "best", tmp = checkpoints / ".tmp-best";
  try {
    fs::remove_all(tmp);
    fs::copy(checkpoint, tmp, fs::copy_options::recursive);
    for (const auto& entry : fs::directory_iterator(tmp)) fsync_path(entry.path().string());
    fsync_path(tmp.string());
    fs::remove_all(best);
    fs::rename(tmp, best);
    fsync_path(checkpoints.string());
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw std::runtime_error(fmt::format("{}: cannot write the best checkpoint: {}", best.string(), e.what()));
  }
  return best.string();
}

void verify_checkpoint(const std::string& dir_in) {
  const fs::path dir(dir_in);
  nlohmann::json sums;
  if (!fs::exists(dir / "checksums.json")) {
    // Format 1 (vaegan 0.1) wrote no checksums; its checkpoints load unverified.
    int version = 0;
    try {
      version = nlohmann::json::parse(read_text(dir / "state.json")).value("format_version", 0);
    } catch (const std::exception&) {
    }
    if (version == 1) {
      spdlog::warn("{}: format-1 checkpoint without checksums: loaded unverified", dir_in);
      return;
    }
    throw InputError(fmt::format("{}: incomplete checkpoint (no checksums.json)", dir_in));
  }
  try {
    sums = nlohmann::json::parse(read_text(dir / "checksums.json"));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: damaged checkpoint (checksums.json: {})", dir_in, e.what()));
  }
  const int version = sums.value("format_version", 0);
  if (version != kFormatVersion) {
    throw InputError(
        fmt::format("{}: checkpoint format version {} (this build reads {})", dir_in, version, kFormatVersion));
  }
  const nlohmann::json crcs = sums.value("crc32", nlohmann::json::object());  // kept alive for items()
  if (crcs.empty()) throw InputError(fmt::format("{}: damaged checkpoint (checksums.json lists no file)", dir_in));
  for (const auto& [name, expected] : crcs.items()) {
    const uint32_t got = file_crc32(dir / name);
    if (!expected.is_number_unsigned() || got != expected.get<uint32_t>()) {
      throw InputError(fmt::format("{}: damaged checkpoint ({} does not match its checksum)", dir_in, name));
    }
  }
}

std::string newest_valid_checkpoint(const std::string& run_dir) {
  std::vector<fs::path> all = list_checkpoints(fs::path(run_dir) / "checkpoints");
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      verify_checkpoint(it->string());
      return it->string();
    } catch (const InputError& e) {
      spdlog::warn("refusing checkpoint: {}; trying the previous one", e.what());
    }
  }
  throw InputError(fmt::format("--resume: {} holds no complete checkpoint", run_dir));
}

TrainingState restore_checkpoint_files(const CheckpointFiles& files, Trainer& trainer, const std::string& where) {
  const std::string state_path = where + "/state.json";
  nlohmann::json st;
  try {
    st = nlohmann::json::parse(file_bytes(files, "state.json", where));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: damaged checkpoint state ({})", state_path, e.what()));
  }
  TrainingState s;
  nlohmann::json lrs;
  try {
    s.step = st.at("step").get<int64_t>();
    s.epoch = st.at("epoch").get<int64_t>();
    s.step_in_epoch = st.at("step_in_epoch").get<int64_t>();
    s.order_position = st.at("order_position").get<int64_t>();
    s.world_size = st.value("world_size", int64_t{1});  // absent before data parallelism
    s.dis_skipped = st.at("dis_skipped").get<int64_t>();
    s.dec_adv_skipped = st.at("dec_adv_skipped").get<int64_t>();
    s.bad_steps = st.at("bad_steps").get<int64_t>();
    // absent from checkpoints written before validation existed
    if (st.contains("best_score") && !st.at("best_score").is_null()) s.best_score = st.at("best_score").get<double>();
    s.best_step = st.value("best_step", int64_t{0});
    s.validations_since_best = st.value("validations_since_best", int64_t{0});
    lrs = st.at("lr");
    // The GAN phase of a vae-then-gan run has a fresh decoder optimizer: switch before loading it.
    const Phase phase = st.at("phase").get<Phase>();
    if (phase == Phase::kGan && trainer.phase() == Phase::kVae) trainer.begin_gan_phase();
    if (phase != trainer.phase()) {
      throw InputError(fmt::format("phase {} does not belong to a {} model", enum_name(phase),
                                   enum_name(trainer.config().model.type)));
    }
  } catch (const std::exception& e) {
    throw InputError(fmt::format("{}: damaged checkpoint state ({})", state_path, e.what()));
  }
  check_config_matches(trainer.config(), file_bytes(files, "config.json", where), where);
  load_weights(trainer.model(), file_bytes(files, "model.pt", where), where + "/model.pt");
  try {
    if (trainer.config().channels_last) to_channels_last(*trainer.model());
    for (Network n : kNetworks) {
      if (!trainer.has_optimizer(n)) continue;
      std::istringstream in(file_bytes(files, optimizer_file(n), where));
      torch::load(trainer.optimizer(n), in, trainer.device());
      // LibTorch's optimizer archive keeps the state but not the options: restore the schedule
      const nlohmann::json& lr = lrs.at(static_cast<size_t>(n));
      if (lr.is_number()) trainer.set_learning_rate(n, lr.get<double>());
    }
    std::vector<torch::Tensor> rng;
    std::istringstream in(file_bytes(files, "rng.pt", where));
    torch::load(rng, in, torch::Device(torch::kCPU));
    trainer.generator().set_state(rng.at(0));
    s.rng_epoch_start = rng.at(1);
    if (Decoder ema = trainer.ema_decoder()) {
      load_checked(ema, file_bytes(files, kEmaFile, where), where + "/" + kEmaFile, trainer.device(), trainer.model());
      if (trainer.config().channels_last) to_channels_last(*ema);
      trainer.set_ema_updates(st.value("ema_updates", int64_t{0}));
    }
  } catch (const c10::Error& e) {
    throw InputError(fmt::format("{}: cannot restore training state: {}", where, e.what_without_backtrace()));
  }
  trainer.drop_cuda_graphs();  // they would write to the tensors that were there before
  return s;
}

TrainingState restore_checkpoint(const std::string& dir_in, Trainer& trainer) {
  const fs::path dir(dir_in);
  CheckpointFiles files;
  std::vector<std::string> names = {"state.json", "config.json", "model.pt", "rng.pt"};
  for (Network n : kNetworks) {
    if (trainer.has_optimizer(n)) names.push_back(optimizer_file(n));
  }
  if (trainer.ema_decoder()) names.push_back(kEmaFile);
  for (const std::string& name : names) {
    if (fs::exists(dir / name)) files[name] = read_text(dir / name);
  }
  return restore_checkpoint_files(files, trainer, dir_in);
}

ResumePoint resume_from_newest(const std::string& run_dir, Trainer& trainer) {
  ResumePoint p;
  p.checkpoint = newest_valid_checkpoint(run_dir);
  p.state = restore_checkpoint(p.checkpoint, trainer);
  return p;
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

LoadedModel load_model(const std::string& path, torch::Device device, DecoderWeights decoder) {
  LoadedModel out;
  out.directory = resolve_checkpoint(path);
  verify_checkpoint(out.directory);
  const fs::path dir(out.directory);
  out.config = load_config((dir / "config.json").string());
  const nlohmann::json st = read_state_json(dir);
  try {
    out.state.step = st.at("step").get<int64_t>();
    out.state.epoch = st.at("epoch").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: damaged checkpoint state ({})", (dir / "state.json").string(), e.what()));
  }
  out.model = Model(out.config.model);
  load_weights(out.model, read_text(dir / "model.pt"), (dir / "model.pt").string());
  const bool has_ema = fs::is_regular_file(dir / kEmaFile);
  if (decoder == DecoderWeights::kEma && !has_ema) {
    throw InputError(fmt::format("--decoder-weights ema: {} has no {} (train with --ema-decay to keep one)",
                                 out.directory, kEmaFile));
  }
  out.decoder_weights =
      decoder != DecoderWeights::kTrained && has_ema ? DecoderWeights::kEma : DecoderWeights::kTrained;
  if (out.decoder_weights == DecoderWeights::kEma) {
    load_checked(out.model->decoder, read_text(dir / kEmaFile), (dir / kEmaFile).string(), torch::kCPU, out.model);
  }
  out.model->to(device);
  out.device = device;
  if (out.config.channels_last) to_channels_last(*out.model);  // the fast convolution paths, as in training
  out.model->eval();
  return out;
}

}  // namespace vaegan
