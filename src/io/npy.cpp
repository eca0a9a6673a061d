#include "vaegan/io/npy.h"

#include <fmt/format.h>

#include <fstream>
#include <regex>

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

}  // namespace

void write_npy(const std::string& path, const torch::Tensor& array) {
  const std::string descr = descr_of(array.scalar_type());
  if (descr.empty())
    throw std::runtime_error(fmt::format("{}: unsupported dtype {} for .npy", path, std::string(array.dtype().name())));
  torch::Tensor a = array.to(torch::kCPU).contiguous();
  std::string shape;
  for (int64_t s : a.sizes()) shape += std::to_string(s) + ", ";
  if (a.dim() > 1) shape.erase(shape.size() - 2);  // "(3,)" for 1-D, "(3, 4)" otherwise
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, shape);
  // magic(6) + version(2) + header length(2) + header, padded with spaces to a multiple of 64, ending in \n
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(kMagic, 6);
    out.put('\x01').put('\x00');
    const uint16_t len = static_cast<uint16_t>(header.size());
    out.put(static_cast<char>(len & 0xff)).put(static_cast<char>(len >> 8));
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(static_cast<const char*>(a.data_ptr()), static_cast<std::streamsize>(a.nbytes()));
    out.close();
    if (!out) throw std::runtime_error(fmt::format("{}: write failed", tmp));
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
