#pragma once
/// Crash-safe file output: write to a temporary name in the same directory, flush to disk,
/// then rename over the target, so readers see either the old file or the complete new one.

#include <functional>
#include <string>
#include <vector>

namespace vaegan {

/// Calls `write(tmp_path)` to produce the file, fsyncs it and renames it to `path`.
/// On any failure the temporary file is removed and the error re-thrown; `path` is untouched.
/// Throws `std::runtime_error` naming `path` when flushing or renaming fails.
void write_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

/// Atomically replaces `path` with `text`.
void write_text_atomically(const std::string& path, const std::string& text);

/// Checks that `path` ends in one of `extensions` (e.g. `{".png", ".npy"}`). Throws `InputError`
/// "`flag`: PATH must end in .png or .npy" otherwise.
void require_extension(const std::string& path, const std::vector<std::string>& extensions, const std::string& flag);

/// Whether `path` ends in `extension` (e.g. `".npy"`).
bool has_extension(const std::string& path, const std::string& extension);

/// One writer per directory: an exclusive `flock` on `DIR/.lock`, held while this object lives.
/// The kernel releases it when the process ends in any way (SIGKILL included), so a lock is never
/// stale; the file itself stays and holds the last holder's PID, for messages.
class DirectoryLock {
 public:
  /// Creates `dir` when missing and takes the lock. Throws `InputError` naming `flag` and `dir`
  /// when the directory cannot be created or another process holds the lock (with that
  /// process's PID).
  DirectoryLock(const std::string& dir, const std::string& flag);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

/// Flushes a file or directory to disk (fsync). Throws `std::runtime_error` naming `path`.
void fsync_path(const std::string& path);

/// The whole content of file `path` as bytes. Throws `std::runtime_error` naming `path` when it
/// cannot be read.
std::string read_file_bytes(const std::string& path);

}  // namespace vaegan
