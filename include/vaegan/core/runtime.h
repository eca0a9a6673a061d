#pragma once
/// Process-wide runtime settings: threads, device, memory format and precision.

#include <torch/torch.h>

#include <string>

namespace vaegan {

/// The most intra-op threads per core `configure_threads` sets (more only add contention:
/// 1000 threads on 2 cores ran 50 times slower).
constexpr int kMaxThreadsPerCore = 4;

/// Sets LibTorch's intra-op thread count. `threads <= 0` means all online cores
/// (`std::thread::hardware_concurrency`); more than `kMaxThreadsPerCore` per core is capped with a
/// warning. Returns the count that was set.
int configure_threads(int threads);

/// The process's address-space limit (`ulimit -v`, RLIMIT_AS) in bytes, or -1 when unlimited.
int64_t address_space_limit();

/// The address space the process uses now (VmSize of /proc/self/status), in bytes.
int64_t address_space_used();

/// Fails early, before LibTorch and OpenBLAS fail part-way (a crash or a hang inside their
/// allocators), when an address-space limit leaves less than `headroom` bytes beyond what the
/// process uses now. Throws `std::runtime_error` naming `ulimit -v`, both sizes and what to do.
void check_address_space(int64_t headroom);

/// `what`, plus the address-space limit when one is set: the hint for an out-of-memory message.
std::string with_memory_limit_hint(const std::string& what);

/// Stores every 4-D parameter and buffer of `module` in channels-last (NHWC) memory format,
/// in place. Values are unchanged; convolutions then run on LibTorch's faster NHWC kernels when
/// their inputs are channels-last too.
void to_channels_last(torch::nn::Module& module);

/// The device to train on: CUDA when this LibTorch was built with it and a GPU is visible,
/// else CPU (what `--device auto` means).
torch::Device default_device();

/// Parses a device name as the CLI's `--device` takes it: `cpu`, `cuda` (the first GPU),
/// `cuda:N` or `auto` (`default_device()`). Throws `InputError` naming `flag` for another name,
/// for `cuda` when this LibTorch was built without CUDA or sees no GPU, and for a GPU index
/// beyond those visible.
torch::Device parse_device(const std::string& name, const std::string& flag = "--device");

/// Prepares the process for computing on `device`: on CUDA, makes it the current GPU and turns
/// cuDNN's autotuner on (`torch.backends.cudnn.benchmark`) unless `deterministic`. With
/// `deterministic`, LibTorch is restricted to deterministic algorithms
/// (`torch.use_deterministic_algorithms(True)`: an operation without one then throws
/// `c10::Error` naming it), cuDNN to deterministic kernels, and cuBLAS to a fixed workspace
/// (`CUBLAS_WORKSPACE_CONFIG=:4096:8`, unless already set); without it those restrictions are
/// lifted. On a CPU, LibTorch's kernels are deterministic for a fixed thread count either way.
void configure_device(torch::Device device, bool deterministic);

/// Whether this CPU has bf16 arithmetic instructions (`avx512_bf16` or `amx_bf16` in
/// /proc/cpuinfo's flags). Without them bf16 autocast is emulated and much slower than fp32.
bool cpu_has_bf16();

/// Whether bf16 convolutions are known to run faster than fp32 on this CPU, decided from
/// /proc/cpuinfo alone (the same answer on every call on one machine): true with AMX
/// (`amx_bf16`: Intel Sapphire Rapids and later) and on AMD CPUs with `avx512_bf16` (Zen 4 and
/// later); false elsewhere, Intel CPUs with `avx512_bf16` but no AMX included, where LibTorch's
/// bf16 convolutions ran at 0.58× the fp32 speed (docs/performance.md has the measurements).
bool cpu_bf16_fast();

/// Whether `device` is a GPU with native bf16 arithmetic (CUDA compute capability 8.0 or
/// later: Ampere, Hopper, Blackwell). False for a CPU and in a build without CUDA.
bool cuda_bf16_supported(torch::Device device);

/// GFLOP/s of a 5×5 stride-1 convolution `[batch, channels, 32, 32]` -> `channels` channels
/// (padding 2, channels-last, no autograd) in `dtype`: the median of 5 timed runs after 2
/// warm-ups. The machine's practical convolution speed, measured rather than assumed (the
/// bench's peak figure).
double conv5x5_gflops(at::ScalarType dtype, int64_t batch, int64_t channels);

/// What `--precision auto` decides on `device`: bf16 on a CPU where `cpu_bf16_fast()` and on a
/// GPU where `cuda_bf16_supported(device)`, fp32 otherwise. Decided from the hardware's
/// description, never by timing, so one machine always trains the same numerics.
bool bf16_by_default(torch::Device device);

/// RAII: while alive, autocast to bf16 is on for `device`'s type (CPU or CUDA) when `enabled`,
/// as `torch.autocast(device_type, dtype=torch.bfloat16)` does in Python: convolutions and
/// linear layers run in bf16, their fp32 weights cast once per guard (the cast cache is
/// cleared when the outermost guard ends). Parameters, their gradients and the optimizer
/// states stay fp32. Restores the previous autocast state on destruction.
class AutocastGuard {
 public:
  AutocastGuard(torch::Device device, bool enabled);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  torch::DeviceType device_type_;
  bool enabled_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace vaegan
