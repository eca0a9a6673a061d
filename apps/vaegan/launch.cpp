// `vaegan train --nproc N`: starts the ranks of a data-parallel job on this machine, as torchrun
// does for users without it (docs/design.md, "Data parallelism").
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <stdexcept>
#include <thread>

#include "commands.h"

extern char** environ;

namespace vaegan::cli {
namespace {

std::vector<std::string> g_command_line;
std::atomic<int> g_forward_signal{0};

void on_terminate(int sig) { g_forward_signal.store(sig); }

/// A TCP port that is free on the loopback interface now (the kernel's choice for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("--nproc: cannot open a socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error(fmt::format("--nproc: cannot find a free port: {}", std::strerror(errno)));
  return ntohs(addr.sin_port);
}

/// The exit code a shell reports for wait status `status`.
int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

const std::vector<std::string>& command_line() { return g_command_line; }

void set_command_line(int argc, char** argv) { g_command_line.assign(argv, argv + argc); }

int launch_local_ranks(const LaunchArgs& a, const std::vector<std::string>& command) {
  const int world = a.nnodes * a.nproc;
  const int port = a.master_port > 0 ? a.master_port : a.nnodes == 1 ? free_port() : 29500;
  // The environment of every rank: ours without the variables that describe a rank, plus them.
  static const char* const kRankVariables[] = {"RANK",
                                               "LOCAL_RANK",
                                               "WORLD_SIZE",
                                               "LOCAL_WORLD_SIZE",
                                               "GROUP_RANK",
                                               "MASTER_ADDR",
                                               "MASTER_PORT",
                                               "VAEGAN_LAUNCHED",
                                               "TORCHELASTIC_USE_AGENT_STORE",
                                               "TORCHELASTIC_RESTART_COUNT"};
  std::vector<std::string> base_env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    if (std::find(std::begin(kRankVariables), std::end(kRankVariables), name) == std::end(kRankVariables)) {
      base_env.push_back(entry);
    }
  }
  std::vector<char*> argv;
  for (const std::string& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  struct sigaction ignore {
  }, forward{};
  ignore.sa_handler = SIG_IGN;
  forward.sa_handler = on_terminate;
  sigemptyset(&ignore.sa_mask);
  sigemptyset(&forward.sa_mask);
  sigaction(SIGINT, &ignore, nullptr);  // a terminal's Ctrl-C reaches every rank itself
  sigaction(SIGTERM, &forward, nullptr);

  spdlog::info("starting ranks {}..{} of {} on this machine (rendezvous at {}:{})", a.node_rank * a.nproc,
               (a.node_rank + 1) * a.nproc - 1, world, a.master_addr, port);
  std::map<pid_t, int> ranks;  // running children: pid -> rank
  for (int local = 0; local < a.nproc; ++local) {
    const int rank = a.node_rank * a.nproc + local;
    std::vector<std::string> env = base_env;
    for (const auto& [name, value] :
         std::vector<std::pair<std::string, std::string>>{{"RANK", std::to_string(rank)},
                                                          {"LOCAL_RANK", std::to_string(local)},
                                                          {"WORLD_SIZE", std::to_string(world)},
                                                          {"LOCAL_WORLD_SIZE", std::to_string(a.nproc)},
                                                          {"GROUP_RANK", std::to_string(a.node_rank)},
                                                          {"MASTER_ADDR", a.master_addr},
                                                          {"MASTER_PORT", std::to_string(port)},
                                                          {"VAEGAN_LAUNCHED", "1"}}) {
      env.push_back(name + "=" + value);
    }
    std::vector<char*> envp;
    for (const std::string& entry : env) envp.push_back(const_cast<char*>(entry.c_str()));
    envp.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data());
    if (rc != 0) {
      for (const auto& [running, r] : ranks) ::kill(running, SIGKILL);
      throw std::runtime_error(fmt::format("--nproc: cannot start rank {}: {}", rank, std::strerror(rc)));
    }
    ranks[pid] = rank;
  }

  using Clock = std::chrono::steady_clock;
  std::map<int, int> failed;  // rank -> exit code
  std::optional<Clock::time_point> deadline;
  while (!ranks.empty()) {
    if (const int sig = g_forward_signal.exchange(0); sig != 0) {
      for (const auto& [pid, r] : ranks) ::kill(pid, sig);
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0 && ranks.count(pid) > 0) {
      const int rank = ranks.at(pid), code = exit_code(status);
      ranks.erase(pid);
      if (code != 0) {
        spdlog::error("rank {} exited with code {}", rank, code);
        failed[rank] = code;
        if (!deadline) {
          deadline = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(a.dist_timeout * 1000) + 10000);
        }
      }
      continue;
    }
    if (deadline && Clock::now() > *deadline) {
      for (const auto& [running, r] : ranks) {
        spdlog::error("rank {} did not stop after rank {} failed; killing it", r, failed.begin()->first);
        ::kill(running, SIGKILL);
      }
      deadline.reset();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return failed.empty() ? 0 : failed.begin()->second;
}

}  // namespace vaegan::cli
