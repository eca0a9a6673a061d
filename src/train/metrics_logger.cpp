#include "vaegan/train/metrics_logger.h"

#include <fmt/format.h>

#include <stdexcept>

namespace vaegan {

MetricsLogger::MetricsLogger(const std::string& path) : path_(path), out_(path, std::ios::app) {
  if (!out_) throw std::runtime_error(fmt::format("{}: cannot open for writing", path));
}

void MetricsLogger::log(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) throw std::runtime_error(fmt::format("{}: write failed", path_));
}

}  // namespace vaegan
