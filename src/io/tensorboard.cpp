#include "vaegan/io/tensorboard.h"

#include <fmt/format.h>
#include <stb_image.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <utility>

#include "tensorboard_event.pb.h"
#include "vaegan/io/fs.h"

namespace vaegan {
namespace fs = std::filesystem;
namespace pb = vaegan::tensorboard;

namespace {

std::array<uint32_t, 256> crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // 0x1EDC6F41 reflected
    table[i] = c;
  }
  return table;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string little_endian(uint64_t value, int bytes) {
  std::string out(static_cast<size_t>(bytes), '\0');
  for (int i = 0; i < bytes; ++i) out[static_cast<size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xFF);
  return out;
}

uint64_t read_little_endian(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

/// The framed record of `payload` (TensorFlow's record_writer.cc layout).
std::string frame(const std::string& payload) {
  const std::string length = little_endian(payload.size(), 8);
  return length + little_endian(masked_crc32c(length.data(), 8), 4) + payload +
         little_endian(masked_crc32c(payload.data(), payload.size()), 4);
}

/// The payloads of the records of event file `path`, up to the first one that is cut off or
/// fails its CRC (a crash while writing it).
std::vector<std::string> read_records(const std::string& path) {
  const std::string data = read_file_bytes(path);
  std::vector<std::string> records;
  size_t at = 0;
  while (data.size() - at >= 12) {
    const char* p = data.data() + at;
    if (masked_crc32c(p, 8) != read_little_endian(p + 8, 4)) break;
    const uint64_t length = read_little_endian(p, 8);
    if (length > data.size() - at - 16) break;
    std::string payload(p + 12, length);
    if (masked_crc32c(payload.data(), payload.size()) != read_little_endian(p + 12 + length, 4)) break;
    records.push_back(std::move(payload));
    at += 16 + length;
  }
  return records;
}

bool is_event_file(const fs::path& p) { return p.filename().string().find("tfevents") != std::string::npos; }

std::string host_name() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) return "localhost";
  return name.data();
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  static const std::array<uint32_t, 256> table = crc32c_table();
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ bytes[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

EventWriter::EventWriter(const std::string& dir, int64_t resume_step) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot create the TensorBoard directory: {}", dir, ec.message()));
  std::vector<fs::path> old_files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && is_event_file(entry.path())) old_files.push_back(entry.path());
  }
  std::sort(old_files.begin(), old_files.end());  // TensorBoard's order: by name, i.e. by creation time
  const std::string stem =
      fmt::format("{}/events.out.tfevents.{}.{}.{}", dir, static_cast<int64_t>(now_seconds()), host_name(), getpid());
  int n = 0;
  do path_ = fmt::format("{}.{}", stem, n++);
  while (fs::exists(path_));

  pb::Event header;
  header.set_wall_time(now_seconds());
  header.set_file_version("brain.Event:2");
  std::string contents = frame(header.SerializeAsString());
  if (resume_step >= 0) {
    std::set<std::pair<std::string, int64_t>> seen;
    for (const auto& file : old_files) {
      for (const std::string& record : read_records(file.string())) {
        pb::Event event;
        if (!event.ParseFromString(record) || !event.has_summary() || event.step() > resume_step) continue;
        if (event.summary().value_size() == 0) continue;
        if (!seen.emplace(event.summary().value(0).tag(), event.step()).second) continue;
        contents += frame(record);
      }
    }
  }
  // The carried events land under the new name before the old files go, so that a crash in
  // between leaves events twice (merged again by the next resume), never none.
  write_text_atomically(path_, contents);
  if (resume_step >= 0) {
    for (const auto& file : old_files) fs::remove(file, ec);
  }
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw std::runtime_error(fmt::format("{}: cannot open for writing", path_));
}

void EventWriter::write_record(const std::string& payload) {
  out_ << frame(payload);
  out_.flush();
  if (!out_) throw std::runtime_error(fmt::format("{}: write failed", path_));
}

namespace {

pb::Event summary_event(int64_t step, const std::string& tag, pb::Summary::Value** value) {
  pb::Event event;
  event.set_wall_time(now_seconds());
  event.set_step(step);
  *value = event.mutable_summary()->add_value();
  (*value)->set_tag(tag);
  return event;
}

}  // namespace

void EventWriter::add_scalar(const std::string& tag, int64_t step, double value) {
  pb::Summary::Value* v = nullptr;
  pb::Event event = summary_event(step, tag, &v);
  v->set_simple_value(static_cast<float>(value));
  write_record(event.SerializeAsString());
}

void EventWriter::add_png(const std::string& tag, int64_t step, const std::string& png) {
  int width = 0, height = 0, channels = 0;
  const bool ok = png.size() >= 8 && png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0 &&
                  stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(png.data()), static_cast<int>(png.size()),
                                        &width, &height, &channels) != 0;
  if (!ok) throw std::invalid_argument(fmt::format("TensorBoard image {}: not a PNG", tag));
  pb::Summary::Value* v = nullptr;
  pb::Event event = summary_event(step, tag, &v);
  pb::Summary::Image* image = v->mutable_image();
  image->set_height(height);
  image->set_width(width);
  image->set_colorspace(channels);
  image->set_encoded_image_string(png);
  write_record(event.SerializeAsString());
}

void EventWriter::add_text(const std::string& tag, int64_t step, const std::string& markdown) {
  pb::Summary::Value* v = nullptr;
  pb::Event event = summary_event(step, tag, &v);
  v->mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
  pb::TensorProto* tensor = v->mutable_tensor();
  tensor->set_dtype(pb::DT_STRING);
  tensor->mutable_tensor_shape();  // rank 0
  tensor->add_string_val(markdown);
  write_record(event.SerializeAsString());
}

void EventWriter::add_histogram(const std::string& tag, int64_t step, const std::vector<float>& values, int bins) {
  if (values.empty()) return;
  if (bins < 1) throw std::invalid_argument(fmt::format("TensorBoard histogram {}: bins must be positive", tag));
  pb::Summary::Value* v = nullptr;
  pb::Event event = summary_event(step, tag, &v);
  pb::HistogramProto* h = v->mutable_histo();
  const auto [lo_it, hi_it] = std::minmax_element(values.begin(), values.end());
  const double lo = *lo_it, hi = *hi_it;
  double sum = 0, sum_squares = 0;
  for (float x : values) {
    sum += x;
    sum_squares += static_cast<double>(x) * x;
  }
  h->set_min(lo);
  h->set_max(hi);
  h->set_num(static_cast<double>(values.size()));
  h->set_sum(sum);
  h->set_sum_squares(sum_squares);
  const int n = hi > lo ? bins : 1;
  const double width = (hi - lo) / n;
  std::vector<double> counts(static_cast<size_t>(n), 0.0);
  for (float x : values) {
    // bucket i holds (lo + i*width, lo + (i+1)*width]; the minimum goes to the first
    const int i = width > 0 ? static_cast<int>(std::ceil((x - lo) / width)) - 1 : 0;
    counts[static_cast<size_t>(std::clamp(i, 0, n - 1))] += 1;
  }
  for (int i = 0; i < n; ++i) {
    h->add_bucket_limit(i + 1 == n ? hi : lo + (i + 1) * width);
    h->add_bucket(counts[static_cast<size_t>(i)]);
  }
  write_record(event.SerializeAsString());
}

}  // namespace vaegan
