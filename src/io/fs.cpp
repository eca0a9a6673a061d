#include "vaegan/io/fs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "vaegan/core/error.h"

namespace vaegan {

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes;
  if (in) bytes.assign(std::istreambuf_iterator<char>(in), {});
  if (!in && !in.eof()) throw std::runtime_error(fmt::format("{}: cannot read", path));
  return bytes;
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(fmt::format("{}: cannot open to flush: {}", path, std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) {  // EINVAL: the file system does not support fsync on this object
    throw std::runtime_error(fmt::format("{}: flush to disk failed: {}", path, std::strerror(err)));
  }
}

void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp");
  try {
    write(tmp.string());
    fsync_path(tmp.string());
    fs::rename(tmp, target);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_atomically(path, [&](const std::string& tmp) {
    errno = 0;
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.close();
    if (!out) {
      throw std::runtime_error(
          fmt::format("{}: write failed{}", tmp, errno != 0 ? std::string(": ") + std::strerror(errno) : ""));
    }
  });
}

bool has_extension(const std::string& path, const std::string& extension) {
  return path.size() > extension.size() &&
         path.compare(path.size() - extension.size(), extension.size(), extension) == 0;
}

void require_extension(const std::string& path, const std::vector<std::string>& extensions, const std::string& flag) {
  std::string expected;
  for (size_t i = 0; i < extensions.size(); ++i) {
    if (has_extension(path, extensions[i])) return;
    expected += (i == 0 ? "" : i + 1 == extensions.size() ? " or " : ", ") + extensions[i];
  }
  throw InputError(fmt::format("{}: {} must end in {}", flag, path, expected));
}

DirectoryLock::DirectoryLock(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw InputError(fmt::format("{}: cannot create {}: {}", flag, dir, ec.message()));
  const std::string path = dir + "/.lock";
  // O_CLOEXEC: children (gnuplot) must not inherit the lock.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw InputError(fmt::format("{}: cannot create {}: {}", flag, path, std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK) {
      std::string pid(buf, n > 0 ? static_cast<size_t>(n) : 0);
      pid.erase(pid.find_last_not_of(" \n") + 1);
      throw InputError(
          fmt::format("{}: {} is being written by another vaegan process{} (one writer per run "
                      "directory); wait for it to finish or stop it",
                      flag, dir, pid.empty() ? "" : " (PID " + pid + ")"));
    }
    throw InputError(fmt::format("{}: cannot lock {}: {}", flag, path, std::strerror(err)));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // the lock holds without the PID; only messages lose it
  }
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the lock
}

}  // namespace vaegan
