#pragma once
/// Error types shared by the library and the CLI.
///
/// The CLI maps `InputError` to exit code 2 (usage error: bad flag value, missing or malformed
/// input file) and every other `std::exception` to exit code 1 (runtime failure). See docs/design.md, "Errors".

#include <stdexcept>
#include <string>

namespace vaegan {

/// The user's input is wrong: a flag value out of range, a missing file, a data file whose
/// content does not match its format. The message names the flag or file and what was expected.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace vaegan
