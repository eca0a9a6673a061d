// `vaegan serve`: the web page and JSON API of src/serve over run directories (docs/serve.md).
#include <signal.h>
#include <spdlog/spdlog.h>

#include "commands.h"
#include "vaegan/serve/server.h"

namespace vaegan::cli {

int run_serve(const ServeArgs& a) {
  const torch::Device device = apply_runtime(a.runtime);
  // SIGINT and SIGTERM are blocked before the server's threads start (they inherit the mask)
  // and taken here by sigwait: the server stops between requests, never inside one.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  Server server(a.runs,
                ServeOptions().host(a.host).port(a.port).device(device).decoder_weights(a.runtime.decoder_weights));
  server.start();
  spdlog::info("serving {} run(s) at http://{}:{}/ (Ctrl-C stops)", a.runs.size(), a.host, server.port());
  if (a.host != "127.0.0.1" && a.host != "localhost" && a.host != "::1") {
    spdlog::warn("--host {}: other machines can reach this server; it has no authentication", a.host);
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("{}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.stop();
  server.wait();
  return 0;
}

void setup_serve(CLI::App& app, Runner& run) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve a web page with the runs' losses and grids (live while training) and a latent explorer");
  cmd->add_option("runs", a->runs, "Run directories (vaegan train --out)")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--host", a->host, "Address to listen on (loopback unless you name another)")->capture_default_str();
  cmd->add_option("--port", a->port, "TCP port (0: a free one, printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  add_runtime_options(cmd, a->runtime);
  cmd->callback([&run, a] { run = [a] { return run_serve(*a); }; });
}

}  // namespace vaegan::cli
