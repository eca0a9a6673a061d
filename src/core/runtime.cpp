#include "vaegan/core/runtime.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <torch/version.h>

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

bool cpu_has_bf16() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line);
    for (std::string w; words >> w;) {
      if (w == "avx512_bf16" || w == "amx_bf16") return true;
    }
    return false;  // the first processor's flags speak for all
  }
  return false;
}

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

bool bf16_faster_than_fp32(torch::Device device) {
  if (!device.is_cpu() || !cpu_has_bf16()) return false;
  return conv5x5_gflops(at::kBFloat16, 32, 64) >= 1.2 * conv5x5_gflops(at::kFloat, 32, 64);
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
