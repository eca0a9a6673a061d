#pragma once
/// NumPy `.npy` and `.npz` files (format version 1.0) for arrays handed to other tools (docs/design.md, "Run
/// directory").

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace vaegan {

/// Writes a CPU tensor of dtype uint8, float32, float64 or int64 as a C-order `.npy`, atomically.
/// Throws `std::runtime_error` naming `path` on I/O failure or an unsupported dtype.
void write_npy(const std::string& path, const torch::Tensor& array);

/// Writes `arrays` as an uncompressed NumPy `.npz` (a zip of one `.npy` per name, as `np.savez`
/// writes it; libzip), atomically; `np.load(path)[name]` gives each back. Throws
/// `std::runtime_error` naming `path` on I/O failure or an unsupported dtype.
void write_npz(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& arrays);

/// Reads a C-order `.npy` of dtype `|u1`, `<f4`, `<f8` or `<i8`.
/// Throws `InputError` naming `path` when it is missing or not such a file.
torch::Tensor read_npy(const std::string& path);

}  // namespace vaegan
