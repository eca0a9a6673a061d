#include "vaegan/core/runtime.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <torch/version.h>

#include "vaegan/core/error.h"

#ifdef VAEGAN_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

// LibTorch 2.4 replaced the per-device autocast functions (set_cpu_enabled, ...) by ones that
// take the device type; the old ones are deprecated there.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define VAEGAN_AUTOCAST_BY_DEVICE_TYPE 1
#endif

namespace vaegan {

int64_t address_space_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_AS, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return -1;
  return static_cast<int64_t>(r.rlim_cur);
}

int64_t address_space_used() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoll(line.substr(7)) * 1024;  // "VmSize:  123 kB"
  }
  return 0;
}

void check_address_space(int64_t headroom) {
  const int64_t limit = address_space_limit();
  if (limit < 0) return;
  const int64_t used = address_space_used();
  if (limit - used >= headroom) return;
  constexpr double kMiB = 1024.0 * 1024.0;
  throw std::runtime_error(fmt::format(
      "the address-space limit (ulimit -v) of {:.0f} MiB leaves {:.0f} MiB beyond the {:.0f} MiB vaegan uses "
      "before training, and training needs at least {:.0f} MiB more (LibTorch and OpenBLAS do not survive running "
      "out of it): raise the limit (ulimit -v unlimited), or lower --batch-size and --threads",
      limit / kMiB, std::max<int64_t>(0, limit - used) / kMiB, used / kMiB, headroom / kMiB));
}

std::string with_memory_limit_hint(const std::string& what) {
  const int64_t limit = address_space_limit();
  if (limit < 0) return what;
  return fmt::format("{} (the address-space limit, ulimit -v, is {} MiB: raise it, or lower --batch-size)", what,
                     limit / (1024 * 1024));
}

int configure_threads(int threads) {
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (threads <= 0) threads = cores;
  if (threads > kMaxThreadsPerCore * cores) {
    spdlog::warn("--threads {}: more than {} per core of the {} here only slows training; using {}", threads,
                 kMaxThreadsPerCore, cores, kMaxThreadsPerCore * cores);
    threads = kMaxThreadsPerCore * cores;
  }
  torch::set_num_threads(threads);
  return threads;
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
  for (auto& b : module.buffers()) {
    if (b.dim() == 4) b.set_data(b.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

torch::Device default_device() {
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

torch::Device parse_device(const std::string& name, const std::string& flag) {
  if (name == "auto") return default_device();
  if (name == "cpu") return torch::Device(torch::kCPU);
  const bool cuda = name == "cuda" || name.rfind("cuda:", 0) == 0;
  if (!cuda) throw InputError(fmt::format("{} {}: unknown device (expected cpu, cuda, cuda:N or auto)", flag, name));
  torch::Device device(torch::kCUDA);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw InputError(fmt::format("{} {}: not a device name (expected cpu, cuda, cuda:N or auto)", flag, name));
  }
  if (!torch::cuda::is_available()) {
#ifdef VAEGAN_WITH_CUDA
    constexpr const char* why =
        "no GPU is visible to this CUDA build (no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides it: check nvidia-smi); "
        "use --device cpu";
#else
    constexpr const char* why = "this build of vaegan uses a LibTorch without CUDA (docs/gpu.md builds one with it)";
#endif
    throw InputError(fmt::format("{} {}: {}", flag, name, why));
  }
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (device.has_index() && device.index() >= count) {
    throw InputError(fmt::format("{} {}: only {} GPU{} visible (cuda:0{})", flag, name, count,
                                 count == 1 ? " is" : "s are", count > 1 ? fmt::format(" to cuda:{}", count - 1) : ""));
  }
  return device;
}

void configure_device(torch::Device device, bool deterministic) {
  auto& context = at::globalContext();
  if (deterministic) ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  context.setDeterministicAlgorithms(deterministic, /*warn_only=*/false);
  context.setDeterministicCuDNN(deterministic);
  if (device.is_cuda()) {
#ifdef VAEGAN_WITH_CUDA
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device.has_index() ? device.index() : 0));
#endif
    context.setBenchmarkCuDNN(!deterministic);
  }
}

namespace {

/// The value of `key` (e.g. "flags", "vendor_id") of the first processor in /proc/cpuinfo,
/// which speaks for all.
std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon != std::string::npos && line.find_first_not_of(" \t", key.size()) == colon) return line.substr(colon + 1);
  }
  return {};
}

bool cpu_has_flag(const std::string& flag) {
  std::istringstream words(cpuinfo_field("flags"));
  for (std::string w; words >> w;) {
    if (w == flag) return true;
  }
  return false;
}

}  // namespace

bool cpu_has_bf16() { return cpu_has_flag("avx512_bf16") || cpu_has_flag("amx_bf16"); }

bool cpu_bf16_fast() {
  if (cpu_has_flag("amx_bf16")) return true;
  return cpu_has_flag("avx512_bf16") && cpuinfo_field("vendor_id").find("AuthenticAMD") != std::string::npos;
}

bool cuda_bf16_supported(torch::Device device) {
#ifdef VAEGAN_WITH_CUDA
  if (!device.is_cuda() || !torch::cuda::is_available()) return false;
  return at::cuda::getDeviceProperties(device.has_index() ? device.index() : 0)->major >= 8;
#else
  (void)device;
  return false;
#endif
}

bool bf16_by_default(torch::Device device) { return device.is_cuda() ? cuda_bf16_supported(device) : cpu_bf16_fast(); }

namespace {

bool autocast_enabled(torch::DeviceType type) {
#ifdef VAEGAN_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(type);
#else
  return type == torch::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

at::ScalarType autocast_dtype(torch::DeviceType type) {
#ifdef VAEGAN_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(type);
#else
  return type == torch::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast(torch::DeviceType type, bool enabled, at::ScalarType dtype) {
#ifdef VAEGAN_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_enabled(type, enabled);
  at::autocast::set_autocast_dtype(type, dtype);
#else
  if (type == torch::kCUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

}  // namespace

double conv5x5_gflops(at::ScalarType dtype, int64_t batch, int64_t channels) {
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().dtype(dtype);
  const torch::Tensor x = torch::randn({batch, channels, 32, 32}, opts).contiguous(torch::MemoryFormat::ChannelsLast);
  const torch::Tensor w = torch::randn({channels, channels, 5, 5}, opts).contiguous(torch::MemoryFormat::ChannelsLast);
  std::vector<double> t;
  for (int i = 0; i < 7; ++i) {  // the first two create oneDNN's primitives
    const auto t0 = std::chrono::steady_clock::now();
    torch::conv2d(x, w, {}, 1, 2);
    if (i >= 2) t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  const double flops = 2.0 * static_cast<double>(batch * channels * channels) * 32 * 32 * 25;
  return flops / t[t.size() / 2] / 1e9;
}

AutocastGuard::AutocastGuard(torch::Device device, bool enabled) : device_type_(device.type()), enabled_(enabled) {
  if (!enabled_) return;
  previous_enabled_ = autocast_enabled(device_type_);
  previous_dtype_ = autocast_dtype(device_type_);
  set_autocast(device_type_, true, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(device_type_, previous_enabled_, previous_dtype_);
}

}  // namespace vaegan
