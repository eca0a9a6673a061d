#pragma once
/// `metrics.jsonl`: one JSON object per line, appended and flushed as training goes.

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace vaegan {

class MetricsLogger {
 public:
  /// Opens `path` for appending. Throws `std::runtime_error` naming it when that fails.
  explicit MetricsLogger(const std::string& path);
  /// Appends `record` as one line and flushes it. Throws `std::runtime_error` on write failure.
  void log(const nlohmann::json& record);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace vaegan
