#include "vaegan/io/npy.h"

#include <fmt/format.h>
#include <zip.h>

#include <fstream>
#include <regex>
#include <utility>
#include <vector>

#include "vaegan/core/error.h"
#include "vaegan/io/fs.h"

namespace vaegan {
namespace {

const char kMagic[] = "\x93NUMPY";

std::string descr_of(torch::ScalarType t) {
  switch (t) {
    case torch::kUInt8:
      return "|u1";
    case torch::kFloat32:
      return "<f4";
    case torch::kFloat64:
      return "<f8";
    case torch::kInt64:
      return "<i8";
    default:
      return "";
  }
}

/// The `.npy` file of `array` as bytes (no I/O); `where` names it in errors.
std::string npy_bytes(const torch::Tensor& array, const std::string& where) {
  const std::string descr = descr_of(array.scalar_type());
  if (descr.empty())
    throw std::runtime_error(
        fmt::format("{}: unsupported dtype {} for .npy", where, std::string(array.dtype().name())));
  torch::Tensor a = array.to(torch::kCPU).contiguous();
  std::string shape;
  for (int64_t s : a.sizes()) shape += std::to_string(s) + ", ";
  if (a.dim() > 1) shape.erase(shape.size() - 2);  // "(3,)" for 1-D, "(3, 4)" otherwise
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, shape);
  // magic(6) + version(2) + header length(2) + header, padded with spaces to a multiple of 64, ending in \n
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out(kMagic, 6);
  out += std::string("\x01\x00", 2);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>(len >> 8);
  out += header;
  out.append(static_cast<const char*>(a.data_ptr()), a.nbytes());
  return out;
}

}  // namespace

void write_npy(const std::string& path, const torch::Tensor& array) {
  write_text_atomically(path, npy_bytes(array, path));
}

void write_npz(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& arrays) {
  std::vector<std::string> files;  // alive until zip_close reads them
  for (const auto& [name, array] : arrays) files.push_back(npy_bytes(array, path + ":" + name));
  write_atomically(path, [&](const std::string& tmp) {
    int error = 0;
    zip_t* zip = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
    if (zip == nullptr) {
      zip_error_t e;
      zip_error_init_with_code(&e, error);
      const std::string message = zip_error_strerror(&e);
      zip_error_fini(&e);
      throw std::runtime_error(fmt::format("{}: cannot create: {}", path, message));
    }
    auto fail = [&](const std::string& what) {
      const std::string message = fmt::format("{}: {}: {}", path, what, zip_strerror(zip));
      zip_discard(zip);
      throw std::runtime_error(message);
    };
    for (size_t i = 0; i < arrays.size(); ++i) {
      zip_source_t* source = zip_source_buffer(zip, files[i].data(), files[i].size(), 0);
      if (source == nullptr) fail("cannot add " + arrays[i].first);
      if (zip_file_add(zip, (arrays[i].first + ".npy").c_str(), source, ZIP_FL_ENC_UTF_8) < 0) {
        zip_source_free(source);
        fail("cannot add " + arrays[i].first);
      }
      zip_set_file_compression(zip, static_cast<zip_uint64_t>(i), ZIP_CM_STORE, 0);  // np.savez's layout
    }
    if (zip_close(zip) != 0) fail("cannot write");
  });
}

torch::Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open (expected a .npy file)", path));
  char magic[8] = {};
  in.read(magic, 8);
  if (!in || std::string(magic, 6) != std::string(kMagic, 6) || magic[6] != 1) {
    throw InputError(fmt::format("{}: not a version 1 .npy file", path));
  }
  unsigned char len_bytes[2] = {};
  in.read(reinterpret_cast<char*>(len_bytes), 2);
  std::string header(len_bytes[0] | (len_bytes[1] << 8), '\0');
  in.read(header.data(), static_cast<std::streamsize>(header.size()));
  std::smatch m_descr, m_shape;
  if (!in || !std::regex_search(header, m_descr, std::regex("'descr':\\s*'([^']+)'")) ||
      !std::regex_search(header, m_shape, std::regex("'shape':\\s*\\(([^)]*)\\)")) ||
      header.find("'fortran_order': False") == std::string::npos) {
    throw InputError(fmt::format("{}: unreadable .npy header", path));
  }
  const std::map<std::string, torch::ScalarType> dtypes = {
      {"|u1", torch::kUInt8}, {"<f4", torch::kFloat32}, {"<f8", torch::kFloat64}, {"<i8", torch::kInt64}};
  const auto dt = dtypes.find(m_descr[1].str());
  if (dt == dtypes.end()) throw InputError(fmt::format("{}: unsupported .npy dtype {}", path, m_descr[1].str()));
  std::vector<int64_t> shape;
  const std::string dims = m_shape[1].str();
  const std::regex number("\\d+");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it) {
    shape.push_back(std::stoll(it->str()));
  }
  torch::Tensor a = torch::empty(shape, dt->second);
  in.read(static_cast<char*>(a.data_ptr()), static_cast<std::streamsize>(a.nbytes()));
  if (in.gcount() != static_cast<std::streamsize>(a.nbytes())) {
    throw InputError(fmt::format("{}: truncated .npy body (expected {} bytes)", path, a.nbytes()));
  }
  return a;
}

}  // namespace vaegan
