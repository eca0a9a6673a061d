#pragma once
/// `vaegan serve`: a local web page and JSON API over run directories (docs/serve.md): each run's
/// configuration, status, metrics and epoch grids while `train` writes them, and a latent
/// explorer that decodes on the server (prior samples, interpolation, class attribute vectors,
/// uploads with their reconstruction and nearest training images).

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "vaegan/train/checkpoint.h"

namespace vaegan {

/// Options of `Server` (chained setters, as `torch::nn` options).
struct ServeOptions {
  /// Address to bind: loopback unless the user names another.
  TORCH_ARG(std::string, host) = "127.0.0.1";
  /// TCP port; 0 picks a free one (`Server::port` says which).
  TORCH_ARG(int, port) = 8080;
  /// Where the explorer's model computes (`cpu`, `cuda`, ...).
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  /// Which decoder weights the explorer decodes with (`load_model`; the moving average when a
  /// run kept one).
  TORCH_ARG(DecoderWeights, decoder_weights) = DecoderWeights::kAuto;
  /// Largest accepted request body (an uploaded image), in bytes; larger gets 413.
  TORCH_ARG(size_t, max_upload_bytes) = size_t{8} << 20;
  /// Largest uploaded image, in pixels (width × height); larger gets 413.
  TORCH_ARG(int64_t, max_upload_pixels) = int64_t{4096} * 4096;
  /// Training images whose latent means are searched for an upload's nearest neighbours.
  TORCH_ARG(int64_t, nearest_pool) = 2048;
  /// Threads answering requests (cpp-httplib's pool).
  TORCH_ARG(int, threads) = 8;
};

/// The HTTP server of `vaegan serve`. Runs are addressed by their index in `run_dirs` (never by a
/// path from the request), and the only files it reads are inside those directories: each
/// run's `config.json`, `metrics.jsonl`, `.lock`, `images/epoch-NNN-{reconstructions,samples}.png`
/// (regular files, not links) and checkpoints.
class Server {
 public:
  /// Checks that every entry of `run_dirs` is a directory with a `config.json`; throws
  /// `InputError` naming the first that is not. Nothing is bound yet.
  Server(std::vector<std::string> run_dirs, ServeOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds `host:port` and serves on a background thread until `stop`. Throws `InputError`
  /// naming `--host`/`--port` when the address cannot be bound.
  void start();
  /// The bound port (after `start`).
  int port() const;
  /// Blocks until the server stops (from `stop` or a signal handler calling it).
  void wait();
  /// Stops serving; safe to call from another thread, more than once.
  void stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vaegan
