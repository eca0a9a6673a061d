#pragma once
/// Curves of JSON-lines logs drawn by gnuplot (Debian's `gnuplot-nox`): one panel per series
/// against `step`, one curve per log. `plot_losses` (train/metrics_logger.h) draws a run's losses
/// with it (`plots/losses.png`, `vaegan plot`).

#include <string>
#include <vector>

namespace vaegan {

/// Whether a `gnuplot` executable is on PATH.
bool gnuplot_available();

/// One panel: the numeric values of `key` in each line, titled `title`.
struct PlotSeries {
  std::string key;
  std::string title;
};

/// Draws `series` of the JSON-lines files `logs` (each line an object with an integer `step`;
/// each log's curves labelled with the last path component of `labels[i]`) into the PNG `out`,
/// written atomically; panels no log has are left out. Throws `InputError` naming the file when
/// a log cannot be opened, has a line that is not JSON, or has none of the series, and
/// `std::runtime_error` when gnuplot is missing or fails.
void plot_series(const std::vector<std::string>& logs, const std::vector<std::string>& labels,
                 const std::vector<PlotSeries>& series, const std::string& out);

}  // namespace vaegan
