#include "vaegan/io/fs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "vaegan/core/error.h"

namespace vaegan {

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

}  // namespace vaegan
