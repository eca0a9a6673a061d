#pragma once
/// Saving LibTorch objects (modules, optimizers, tensor lists) to files without ever leaving a
/// partial file or aborting the process.

#include <torch/torch.h>

#include <sstream>
#include <string>

#include "vaegan/io/fs.h"

namespace vaegan {

/// `torch::save(value, path)`, made safe: the archive is serialized in memory first, then written
/// with `write_text_atomically` (temporary name, checked writes, fsync, rename). LibTorch's own
/// file writer calls std::terminate when a write fails part-way (disk full: its destructor
/// throws during unwinding), which this avoids. Costs one in-memory copy of the archive.
/// Throws `std::runtime_error` naming `path` when writing fails; `path` is then untouched.
template <typename T>
void save_atomically(const T& value, const std::string& path) {
  std::ostringstream buffer;
  torch::save(value, buffer);
  write_text_atomically(path, buffer.str());
}

}  // namespace vaegan
