#include "vaegan/dist/process_group.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "vaegan/core/error.h"

#if defined(VAEGAN_WITH_CUDA) && TORCH_VERSION_MAJOR >= 2 && __has_include(<nccl.h>)
#define VAEGAN_WITH_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace vaegan {
namespace {

// LibTorch 2.x split the backends (Gloo, NCCL) from the user-facing ProcessGroup; in 1.13 they
// were ProcessGroups themselves. The collectives used here have one signature in both.
#if TORCH_VERSION_MAJOR >= 2
using Backend = c10d::Backend;
#else
using Backend = c10d::ProcessGroup;
#endif

using Clock = std::chrono::steady_clock;

/// The integer value of environment variable `name`, or `fallback` when it is unset. Throws
/// `InputError` naming the variable when it is not an integer in [min, max].
int env_int(const char* name, int fallback, int min, int max) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  try {
    size_t used = 0;
    const long v = std::stol(text, &used);
    if (used == std::string(text).size() && v >= min && v <= max) return static_cast<int>(v);
  } catch (const std::exception&) {
  }
  throw InputError(
      fmt::format("environment variable {}: expected an integer in [{}, {}], got '{}'", name, min, max, text));
}

std::string env_string(const char* name, const std::string& fallback) {
  const char* text = std::getenv(name);
  return text == nullptr || *text == '\0' ? fallback : std::string(text);
}

/// Whether `addr` names this machine's loopback interface.
bool is_loopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1"; }

/// The message of an exception from c10d (c10::Error without its C++ backtrace).
std::string what_of(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  return c10_error != nullptr ? c10_error->what_without_backtrace() : e.what();
}

}  // namespace

std::optional<DistributedEnv> distributed_env_from_environment() {
  if (std::getenv("RANK") == nullptr && std::getenv("WORLD_SIZE") == nullptr) return std::nullopt;
  DistributedEnv env;
  env.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  env.rank = env_int("RANK", 0, 0, env.world_size - 1);
  env.local_world_size = env_int("LOCAL_WORLD_SIZE", env.world_size, 1, env.world_size);
  env.local_rank = env_int("LOCAL_RANK", env.rank % env.local_world_size, 0, env.local_world_size - 1);
  env.master_addr = env_string("MASTER_ADDR", "127.0.0.1");
  env.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  const std::string agent = env_string("TORCHELASTIC_USE_AGENT_STORE", "");
  env.agent_store = agent == "True" || agent == "true" || agent == "1";
  env.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0, 0, 1 << 20);
  return env;
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;  ///< the rendezvous store (with torchrun's prefix)
  c10::intrusive_ptr<Backend> backend;
  bool nccl = false;
  torch::Device device = torch::kCPU;  ///< where collective buffers live
};

ProcessGroup::ProcessGroup(const DistributedEnv& env, ProcessGroupOptions options)
    : env_(env), options_(options), impl_(std::make_unique<Impl>()) {
  const std::string where = fmt::format("{}:{}", env.master_addr, env.master_port);
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(env.master_port);
    store_options.isServer = env.rank == 0 && !env.agent_store;
    store_options.waitWorkers = false;
    store_options.timeout = options.timeout();
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    if (env.agent_store) {
      store = c10::make_intrusive<c10d::PrefixStore>(fmt::format("/worker/attempt_{}", env.restart_count), store);
    }
    impl_->store = store;
    const auto group_store = c10::make_intrusive<c10d::PrefixStore>("vaegan/group", store);
#ifdef VAEGAN_WITH_NCCL
    if (options.device().is_cuda()) {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = options.timeout();
      impl_->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(group_store, env.rank, env.world_size, nccl_options);
      impl_->nccl = true;
      impl_->device = options.device();
    }
#endif
    if (!impl_->backend) {
      auto gloo_options = c10d::ProcessGroupGloo::Options::create();
      gloo_options->timeout = options.timeout();
      // The interface Gloo's connections use: GLOO_SOCKET_IFNAME as in PyTorch, loopback for a
      // job on one machine, else the address this machine's hostname resolves to.
      const std::string ifname = env_string("GLOO_SOCKET_IFNAME", "");
      gloo_options->devices.push_back(!ifname.empty() ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                                      : is_loopback(env.master_addr)
                                          ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                          : c10d::ProcessGroupGloo::createDefaultDevice());
      impl_->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(group_store, env.rank, env.world_size, gloo_options);
    }
  } catch (const std::exception& e) {
    throw DistributedError(
        fmt::format("rank {} of {}: cannot join the job through the store at {} within --dist-timeout {} s: {}",
                    env.rank, env.world_size, where, options.timeout().count() / 1000.0, what_of(e)));
  }
  spdlog::info("rank {} of {} joined the job through {} ({})", env.rank, env.world_size, where, backend());
}

ProcessGroup::~ProcessGroup() = default;

std::string ProcessGroup::backend() const { return impl_->nccl ? "nccl" : "gloo"; }

void ProcessGroup::run(const std::string& what, const std::function<void()>& collective) {
  const auto start = Clock::now();
  try {
    collective();
  } catch (const std::exception& e) {
    const std::string cause = what_of(e);
    throw DistributedError(fmt::format("rank {} of {}: {} failed: {} ({})", env_.rank, env_.world_size, what,
                                       lost_ranks(), cause.substr(0, cause.find('\n'))));
  }
  collective_seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
}

std::string ProcessGroup::lost_ranks() {
  // Every surviving rank announces itself, then looks for the others' announcements for a few
  // seconds (their own collectives fail soon after ours, when the lost rank's connections close).
  try {
    const std::string prefix = "vaegan/alive/";
    impl_->store->set(prefix + std::to_string(env_.rank), std::vector<uint8_t>{1});
    std::vector<int> missing;
    const auto deadline = Clock::now() + std::chrono::seconds(3);
    do {
      missing.clear();
      for (int r = 0; r < env_.world_size; ++r) {
        if (r != env_.rank && !impl_->store->check({prefix + std::to_string(r)})) missing.push_back(r);
      }
      if (missing.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (Clock::now() < deadline);
    if (missing.empty()) return "every rank still answers (a rank failed and left the collective)";
    return fmt::format("rank {} did not answer (lost)", fmt::join(missing, ", "));
  } catch (const std::exception&) {
    return fmt::format("the rendezvous store at {}:{} is gone{}", env_.master_addr, env_.master_port,
                       env_.agent_store ? "" : " with rank 0, which hosted it: rank 0 is lost");
  }
}

void ProcessGroup::in_flat_buffers(const std::vector<torch::Tensor>& tensors,
                                   const std::function<void(std::vector<torch::Tensor>&)>& collective) {
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_dtype;
  for (const auto& t : tensors) by_dtype[t.scalar_type()].push_back(t);
  torch::NoGradGuard no_grad;
  for (auto& [dtype, group] : by_dtype) {
    std::vector<torch::Tensor> flat;
    flat.reserve(group.size());
    for (const auto& t : group) flat.push_back(t.detach().reshape(-1));
    std::vector<torch::Tensor> buffer = {torch::cat(flat).to(impl_->device)};
    collective(buffer);
    int64_t offset = 0;
    for (const auto& t : group) {
      t.copy_(buffer[0].narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

void ProcessGroup::all_reduce_mean(const std::vector<torch::Tensor>& tensors) {
  in_flat_buffers(tensors, [&](std::vector<torch::Tensor>& buffer) {
    run("all-reduce", [&] { impl_->backend->allreduce(buffer)->wait(options_.timeout()); });
    buffer[0].div_(env_.world_size);
  });
}

std::vector<double> ProcessGroup::all_reduce_sum(const std::vector<double>& values) {
  if (values.empty()) return {};
  std::vector<torch::Tensor> buffer = {
      torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat64)).to(impl_->device)};
  run("all-reduce", [&] { impl_->backend->allreduce(buffer)->wait(options_.timeout()); });
  const torch::Tensor host = buffer[0].cpu();
  return {host.data_ptr<double>(), host.data_ptr<double>() + host.numel()};
}

std::vector<double> ProcessGroup::all_reduce_mean(const std::vector<double>& values) {
  std::vector<double> sums = all_reduce_sum(values);
  for (double& v : sums) v /= env_.world_size;
  return sums;
}

std::vector<bool> ProcessGroup::any(const std::vector<bool>& flags) {
  std::vector<double> values(flags.begin(), flags.end());
  const std::vector<double> sums = all_reduce_sum(values);
  std::vector<bool> out;
  for (double s : sums) out.push_back(s > 0);
  return out;
}

void ProcessGroup::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  in_flat_buffers(tensors, [&](std::vector<torch::Tensor>& buffer) {
    run("broadcast", [&] { impl_->backend->broadcast(buffer, opts)->wait(options_.timeout()); });
  });
}

std::string ProcessGroup::broadcast(const std::string& bytes, int root) {
  torch::Tensor size = torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kInt64);
  broadcast({size}, root);
  const int64_t n = size.item<int64_t>();
  torch::Tensor data = torch::empty({std::max<int64_t>(n, 1)}, torch::kUInt8);
  if (env_.rank == root) std::memcpy(data.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  broadcast({data}, root);
  return std::string(reinterpret_cast<const char*>(data.data_ptr<uint8_t>()), static_cast<size_t>(n));
}

void check_all_ranks(ProcessGroup* group, const std::exception_ptr& error, const std::string& stage) {
  if (group == nullptr) {
    if (error) std::rethrow_exception(error);
    return;
  }
  std::vector<double> failed(static_cast<size_t>(group->world_size()), 0.0);
  failed[static_cast<size_t>(group->rank())] = error ? 1.0 : 0.0;
  const std::vector<double> all = group->all_reduce_sum(failed);
  if (error) std::rethrow_exception(error);
  std::vector<int> ranks;
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r] > 0) ranks.push_back(static_cast<int>(r));
  }
  if (!ranks.empty()) {
    throw DistributedError(fmt::format("rank {} failed {} (see its message); rank {} stops too", fmt::join(ranks, ", "),
                                       stage, group->rank()));
  }
}

}  // namespace vaegan
