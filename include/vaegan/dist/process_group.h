#pragma once
/// Data parallelism on PyTorch's distributed backend, c10d (docs/design.md, "Data parallelism";
/// docs/scaling.md): where a process stands in a job (torchrun's environment variables), and a
/// process group over Gloo (CPU tensors) or NCCL (CUDA tensors, LibTorch builds with CUDA) with
/// the few collectives training needs. LibTorch has no C++ DistributedDataParallel; the trainer
/// all-reduces its gradients itself (`Trainer::step`).

#include <torch/torch.h>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace vaegan {

/// Where this process stands in a data-parallel job, as `torchrun` (and `vaegan train --nproc`)
/// describe it in environment variables.
struct DistributedEnv {
  int rank = 0;                           ///< RANK: this process, 0 .. world_size - 1
  int world_size = 1;                     ///< WORLD_SIZE: processes in the job
  int local_rank = 0;                     ///< LOCAL_RANK: this process on its node
  int local_world_size = 1;               ///< LOCAL_WORLD_SIZE: processes on this node
  std::string master_addr = "127.0.0.1";  ///< MASTER_ADDR: host of the rendezvous store
  int master_port = 29500;                ///< MASTER_PORT: its TCP port
  /// TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent already hosts the store at
  /// MASTER_ADDR:MASTER_PORT, so every rank connects to it as a client, under the key prefix
  /// `/worker/attempt_<TORCHELASTIC_RESTART_COUNT>` (as PyTorch's env:// rendezvous does).
  bool agent_store = false;
  int restart_count = 0;  ///< TORCHELASTIC_RESTART_COUNT
};

/// The job this process belongs to, from RANK, WORLD_SIZE and the variables above; nullopt when
/// neither RANK nor WORLD_SIZE is set (a single-process run). Missing LOCAL_* default to the
/// global values, MASTER_ADDR to 127.0.0.1 and MASTER_PORT to 29500. Throws `InputError` naming
/// the variable when one is malformed or out of range (RANK outside [0, WORLD_SIZE)).
std::optional<DistributedEnv> distributed_env_from_environment();

/// A collective that failed: a rank died or stopped answering within the timeout. The message
/// names the ranks that did not answer afterwards (see `ProcessGroup`).
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Options of `ProcessGroup`.
struct ProcessGroupOptions {
  /// How long a collective (and the rendezvous at start) may wait for the other ranks before
  /// failing with `DistributedError` (`--dist-timeout`).
  TORCH_ARG(std::chrono::milliseconds, timeout) = std::chrono::minutes(5);
  /// Where the tensors live: CPU selects Gloo; a CUDA device selects NCCL when this LibTorch has
  /// it (collectives on GPU memory), else Gloo.
  TORCH_ARG(torch::Device, device) = torch::kCPU;
};

/// One process's membership in a job: a c10d process group built from a `DistributedEnv` (rank
/// 0, or torchrun's agent, hosts the TCPStore that the ranks rendezvous through). The all-reduce,
/// `any` and broadcast methods are collectives: each rank must call the same ones in the same order with tensors of the
/// same shapes. A collective that fails (a peer's connection closed, or `timeout` passed) throws `DistributedError`
/// after asking the store which ranks still answer (a few seconds), so the message names the lost ones.
class ProcessGroup {
 public:
  /// Joins the job: connects to (or, on rank 0 without an agent store, hosts) the store at
  /// MASTER_ADDR:MASTER_PORT and connects to every other rank. Throws `DistributedError` naming
  /// the address when the store or a rank cannot be reached within `options.timeout`.
  ProcessGroup(const DistributedEnv& env, ProcessGroupOptions options = {});
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const DistributedEnv& env() const { return env_; }
  /// "gloo" or "nccl".
  std::string backend() const;

  /// Replaces each tensor by its mean over the ranks, in place. Tensors of one dtype travel in one
  /// flattened buffer, so a step's gradients cost one collective (Gloo wants one buffer of equal
  /// size on every rank). Any devices; floating-point dtypes.
  void all_reduce_mean(const std::vector<torch::Tensor>& tensors);
  /// The element-wise sum over the ranks of `values` (one collective, float64).
  std::vector<double> all_reduce_sum(const std::vector<double>& values);
  /// The element-wise mean over the ranks of `values`.
  std::vector<double> all_reduce_mean(const std::vector<double>& values);
  /// For each flag, whether any rank set it (one collective): how ranks agree on stopping.
  std::vector<bool> any(const std::vector<bool>& flags);
  /// Overwrites each tensor with rank `root`'s, in place (one collective per dtype).
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  /// Rank `root`'s `bytes` on every rank (two collectives: the size, then the bytes).
  std::string broadcast(const std::string& bytes, int root = 0);

  /// Seconds this process has spent inside collectives (waiting included), for the benchmark.
  double collective_seconds() const { return collective_seconds_; }

 private:
  struct Impl;
  /// Concatenates `tensors` into one flat buffer per dtype (on the collective device), runs
  /// `collective` on each, and copies the result back into the tensors, in place.
  void in_flat_buffers(const std::vector<torch::Tensor>& tensors,
                       const std::function<void(std::vector<torch::Tensor>&)>& collective);
  /// Runs one collective and waits for it; turns a failure into `DistributedError`.
  void run(const std::string& what, const std::function<void()>& collective);
  /// The ranks that do not answer through the store within a few seconds (called after a
  /// failed collective), as a sentence.
  std::string lost_ranks();

  DistributedEnv env_;
  ProcessGroupOptions options_;
  std::unique_ptr<Impl> impl_;
  double collective_seconds_ = 0;
};

/// Checks, as a collective, that every rank got through a stage (start-up, loading a
/// checkpoint): `error` is this rank's failure (null: none). Rethrows this rank's own error; on a
/// rank that succeeded while another failed, throws `DistributedError` naming the ranks that
/// failed and `stage`. Without `group` (one process), just rethrows `error`.
void check_all_ranks(ProcessGroup* group, const std::exception_ptr& error, const std::string& stage);

}  // namespace vaegan
