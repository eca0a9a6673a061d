#pragma once
// Running the `vaegan` binary from the CLI tests.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace vaegan::test {

/// Exit code and output of one command.
struct Result {
  int code;            ///< exit code; -1 when killed by a signal
  std::string output;  ///< stdout and stderr together
};

/// Runs `bash -c "PREFIX vaegan ARGS"` with stderr merged into stdout. `prefix` may set limits
/// (`ulimit -f 20;`) or redirect the streams. GPUs are hidden (`CUDA_VISIBLE_DEVICES=`), so that
/// the CLI tests compute on the CPU, bit for bit alike, on every machine; the `cuda` label tests
/// the GPU.
inline Result run_vaegan(const std::string& args, const std::string& prefix = "") {
  const std::string inner = "export CUDA_VISIBLE_DEVICES=; " + prefix + " '" + std::string(VAEGAN_BINARY) + "' " + args;
  std::string quoted;
  for (char c : inner) quoted += c == '"' ? std::string("\\\"") : std::string(1, c);
  const std::string cmd = "bash -c \"" + quoted + "\" 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace vaegan::test
