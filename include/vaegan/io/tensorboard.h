#pragma once
/// TensorBoard event files (docs/design.md, "TensorBoard"): the records TensorBoard's scalar,
/// image, text and histogram dashboards read, written with protobuf (`proto/tensorboard_event.proto`)
/// in TensorFlow's record framing. Free of LibTorch headers on purpose: LibTorch 2.x ships its own
/// protobuf headers, which must not meet Debian's in one translation unit.

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace vaegan {

/// CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected; RFC 3720 §B.4) of `size` bytes at
/// `data`. The check value of "123456789" is 0xE3069283. Debian packages no C++ CRC-32C library
/// (zlib's CRC is the other polynomial), hence this table-driven one.
uint32_t crc32c(const void* data, size_t size);

/// TensorFlow's masked CRC-32C of a record's length and payload (tensorflow/core/lib/hash/crc32c.h,
/// `Mask`): `((crc >> 15) | (crc << 17)) + 0xa282ead8`, so that a CRC stored inside CRC-checked
/// data does not check itself.
uint32_t masked_crc32c(const void* data, size_t size);

/// Appends summaries to one TensorBoard event file in a log directory, as PyTorch's
/// `torch.utils.tensorboard.SummaryWriter` does: a file named `events.out.tfevents.SECONDS.HOST.PID.N`
/// whose first record holds `file_version` "brain.Event:2", then one record per summary, each
/// framed as `uint64 length, uint32 masked_crc32c(length), payload, uint32 masked_crc32c(payload)`
/// (little-endian; TensorFlow's record format). Every record is flushed when written, so a
/// TensorBoard that watches the directory sees the run as it trains, and a crash loses at most
/// the record being written (TensorBoard stops at a truncated last record).
class EventWriter {
 public:
  /// Opens a new event file in `dir` (created when missing). With `resume_step >= 0` (a resumed
  /// run) the events of the directory's existing event files up to and including that step are
  /// carried into the new file first (each tag and step once) and the old files are removed, so
  /// that the steps logged again after the resume appear once and in order; a damaged or cut-off
  /// record ends what is kept of its file. Throws `std::runtime_error` naming the path when the
  /// directory or file cannot be written.
  explicit EventWriter(const std::string& dir, int64_t resume_step = -1);

  /// A scalar (`simple_value`, stored as float32 as TensorBoard stores it) at `step`.
  void add_scalar(const std::string& tag, int64_t step, double value);
  /// A PNG image at `step` (`Summary.Image`); its size and channels are read from the PNG
  /// header. Throws `std::invalid_argument` when `png` is not a PNG.
  void add_png(const std::string& tag, int64_t step, const std::string& png);
  /// Markdown text for TensorBoard's text dashboard at `step` (a string tensor of the `text` plugin).
  void add_text(const std::string& tag, int64_t step, const std::string& markdown);
  /// A histogram of `values` at `step`: min, max, count, sum, sum of squares and `bins`
  /// equal-width buckets over [min, max] (`HistogramProto`). Nothing is written for no values.
  void add_histogram(const std::string& tag, int64_t step, const std::vector<float>& values, int bins = 30);

  /// The event file being written.
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& payload);
  std::string path_;
  std::ofstream out_;
};

}  // namespace vaegan
