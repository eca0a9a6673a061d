#pragma once
/// `metrics.jsonl`: one JSON object per logged step, appended and flushed as training goes, and
/// after every epoch one validation line (`"split": "validation"`, the `val_*` keys of
/// `Validation`, train/fit.h). This file owns the step lines' schema: `MetricsRecord` writes the
/// keys and `loss_series` names the losses that `vaegan plot` and `plots/losses.png` draw.

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "vaegan/io/plot.h"
#include "vaegan/io/tensorboard.h"
#include "vaegan/train/trainer.h"

namespace vaegan {

/// One line of metrics.jsonl.
struct MetricsRecord {
  int64_t step = 0;   ///< steps done in the run
  int64_t epoch = 0;  ///< 0-based epoch the step belongs to
  StepStats stats;    ///< the step's losses and discriminator outputs (only the phase's are written)
  /// Learning rate of each network (`Network` order) that has an optimizer: `lr_NAME`.
  std::array<std::optional<double>, 3> learning_rates;
  double images_per_sec = 0;    ///< throughput over the epoch so far
  int64_t dis_skipped = 0;      ///< vaegan: discriminator updates skipped by the equilibrium rule
  int64_t dec_adv_skipped = 0;  ///< vaegan: decoder adversarial terms dropped by the equilibrium rule
  int64_t images_skipped = 0;   ///< training images that could not be read
  int64_t bad_steps = 0;        ///< updates skipped for NaN/Inf so far
};

/// The record as its JSON line: `step`, `epoch`, `phase`, the losses of the phase (`loss_prior`,
/// `loss_llike`, `loss_pixel`, `loss_dis`, `loss_adv`), `mse` (vaegan), `d_real`/`d_recon`/`d_prior`
/// (`d_recon` is computed from the reconstructions' pass that gives `L_llike`'s features under
/// `--batch-norm original` without reconstructions in `L_dis`), `lr_*`, `images_per_sec`, the skip
/// counters.
void to_json(nlohmann::json& j, const MetricsRecord& r);

/// The learning rates of `trainer`'s networks, in `MetricsRecord::learning_rates` form.
std::array<std::optional<double>, 3> learning_rates(const Trainer& trainer);

/// The loss keys of metrics.jsonl with their plot titles, in display order.
const std::vector<PlotSeries>& loss_series();

/// Draws the loss curves of `run_dirs` into `out` (`plot_series` with `loss_series`). Throws as
/// `plot_series`.
void plot_losses(const std::vector<std::string>& run_dirs, const std::string& out);

/// Writes every number of a metrics.jsonl line `line` except `step` and `epoch` as a TensorBoard
/// scalar `PREFIX/KEY` at the line's step (`train/` for step lines, `validation/` for validation
/// lines: docs/design.md, "TensorBoard").
void add_scalars(EventWriter& events, const std::string& prefix, const nlohmann::json& line);

class MetricsLogger {
 public:
  /// Opens `path` for appending. Throws `std::runtime_error` naming it when that fails.
  explicit MetricsLogger(const std::string& path);
  /// Appends `record` as one line and flushes it. Throws `std::runtime_error` on write failure.
  void log(const MetricsRecord& record);
  /// Appends a JSON object as one line (the validation lines) and flushes it; throws likewise.
  void log(const nlohmann::json& line);

  /// Resume: drops the lines of `path` whose step is after `step` (they are logged again) and a
  /// last line cut short by a crash; rewrites the file atomically. A missing file stays missing.
  static void truncate_after(const std::string& path, int64_t step);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace vaegan
