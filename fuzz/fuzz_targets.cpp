// libFuzzer targets for every parser of untrusted input (issue 6): IDX files, CIFAR-10 records,
// image files (stb, compiled instrumented here), CelebA attribute lists, and run configs.
// One source, one binary per target (FUZZ_TARGET selects). Any exception other than the
// documented error types, any crash and any sanitizer report is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "vaegan/core/error.h"
#include "vaegan/data/celeba.h"
#include "vaegan/data/cifar10_dataset.h"
#include "vaegan/data/idx_dataset.h"
#include "vaegan/data/image_folder_dataset.h"
#include "vaegan/train/config.h"

namespace {

/// The parsers read files: write the input to one per process (in /dev/shm when it exists).
std::string write_input(const uint8_t* data, size_t size, const char* suffix) {
  static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  const std::string path = dir + "/vaegan-fuzz-" + std::to_string(getpid()) + suffix;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vaegan;
  try {
#if FUZZ_TARGET == 1
    const torch::Tensor t = read_idx(write_input(data, size, ".idx"));
    if (t.numel() > 0) (void)t.sum().item<int64_t>();  // touch every byte read
#elif FUZZ_TARGET == 2
    auto [images, labels] = read_cifar10_file(write_input(data, size, ".bin"));
    (void)images.sum().item<int64_t>();
#elif FUZZ_TARGET == 3
    const std::string path = write_input(data, size, ".img");
    for (int64_t channels : {1, 3}) (void)decode_image_file(path, channels, 16, channels == 3 ? 8 : 0);
#elif FUZZ_TARGET == 4
    const CelebAAttributes a = read_celeba_attributes(write_input(data, size, ".txt"));
    if (!a.names.empty()) (void)a.index(a.names.front());
#elif FUZZ_TARGET == 5
    validate(load_config(write_input(data, size, ".json")));
#endif
  } catch (const InputError&) {
  } catch (const ImageReadError&) {
  }
  return 0;
}
