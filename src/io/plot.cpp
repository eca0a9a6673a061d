#include "vaegan/io/plot.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "vaegan/core/error.h"

namespace vaegan {
namespace fs = std::filesystem;

bool gnuplot_available() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

void plot_series(const std::vector<std::string>& logs, const std::vector<std::string>& labels,
                 const std::vector<PlotSeries>& panels, const std::string& out) {
  // log -> key -> "step value" lines
  std::vector<std::map<std::string, std::string>> data(logs.size());
  for (size_t r = 0; r < logs.size(); ++r) {
    const std::string& path = logs[r];
    std::ifstream in(path);
    if (!in) throw InputError(fmt::format("{}: cannot open (is {} a run directory?)", path, labels.at(r)));
    std::string line;
    for (int64_t number = 1; std::getline(in, line); ++number) {
      if (line.empty()) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        if (in.peek() == std::ifstream::traits_type::eof()) break;  // a last line being written (or cut by a crash)
        throw InputError(fmt::format("{}:{}: not a JSON object", path, number));
      }
      for (const auto& [key, title] : panels) {
        if (j.contains(key) && j.contains("step") && j[key].is_number()) {
          data[r][key] += fmt::format("{} {}\n", j["step"].get<int64_t>(), j[key].get<double>());
        }
      }
    }
    if (data[r].empty()) throw InputError(fmt::format("{}: no values to plot", path));
  }
  std::vector<PlotSeries> shown;
  for (const auto& p : panels) {
    for (const auto& d : data) {
      if (d.count(p.key)) {
        shown.push_back(p);
        break;
      }
    }
  }
  if (!gnuplot_available()) {
    throw std::runtime_error(
        "gnuplot is not installed (Debian package gnuplot-nox; scripts/install-deps.sh installs it)");
  }
  const std::string tmp = fs::path(out).parent_path().empty() ? "." : fs::path(out).parent_path().string();
  const std::string tmp_png = tmp + "/." + fs::path(out).filename().string() + ".tmp";
  std::string script = fmt::format(
      "set terminal pngcairo noenhanced size 900,{} font ',9'\nset output '{}'\nset multiplot layout {},1\n"
      "set key outside right\nset grid\nset xlabel 'step'\n",
      260 * shown.size(), tmp_png, shown.size());
  for (size_t r = 0; r < data.size(); ++r) {
    for (const auto& [key, lines] : data[r]) script += fmt::format("$r{}_{} << EOD\n{}EOD\n", r, key, lines);
  }
  for (const auto& [key, title] : shown) {
    script += fmt::format("set title '{}'\nplot ", title);
    bool first = true;
    for (size_t r = 0; r < data.size(); ++r) {
      if (!data[r].count(key)) continue;
      std::string label = fs::path(labels.at(r)).lexically_normal().filename().string();
      if (label.empty()) label = fs::path(labels.at(r)).lexically_normal().parent_path().filename().string();
      for (char& ch : label) ch = ch == '\'' || ch == '_' ? '-' : ch;
      script += fmt::format("{}$r{}_{} using 1:2 with lines lw 1.5 lc {} title '{}'", first ? "" : ", ", r, key, r + 1,
                            label);  // one colour per run in every panel
      first = false;
    }
    script += "\n";
  }
  script += "unset multiplot\nset output\n";
  // gnuplot's own messages (warnings on short runs included) go to a file, not to our output;
  // they are shown only when it fails.
  const std::string messages = tmp + "/." + fs::path(out).filename().string() + ".gnuplot.log";
  FILE* pipe = popen(fmt::format("gnuplot > '{}' 2>&1", messages).c_str(), "w");
  if (!pipe) throw std::runtime_error("cannot start gnuplot");
  fwrite(script.data(), 1, script.size(), pipe);
  const int status = pclose(pipe);
  std::string said;
  {
    std::ifstream log(messages);
    said.assign(std::istreambuf_iterator<char>(log), {});
  }
  std::error_code ec;
  fs::remove(messages, ec);
  if (status != 0 || !fs::exists(tmp_png)) {
    fs::remove(tmp_png, ec);
    throw std::runtime_error(fmt::format("{}: gnuplot failed (exit status {}){}", out, WEXITSTATUS(status),
                                         said.empty() ? "" : ": " + said.substr(0, 500)));
  }
  fs::rename(tmp_png, out);
}

}  // namespace vaegan
