#pragma once
/// Loss curves of runs (`plots/losses.png`, `vaegan plot`), drawn by gnuplot (Debian's
/// `gnuplot-nox`) from `metrics.jsonl`: one panel per loss (KL, feature and pixel
/// reconstruction, discriminator, adversarial) against the step, one curve per run (seed 001's
/// figures).

#include <string>
#include <vector>

namespace vaegan {

/// Whether a `gnuplot` executable is on PATH.
bool gnuplot_available();

/// Draws the losses of `run_dirs` (each with a `metrics.jsonl`; curves are labelled with the
/// directory names) into the PNG `out`, written atomically. Throws `InputError` naming the file
/// when a run has no readable `metrics.jsonl` or no loss values, and `std::runtime_error` when
/// gnuplot is missing or fails.
void plot_losses(const std::vector<std::string>& run_dirs, const std::string& out);

}  // namespace vaegan
