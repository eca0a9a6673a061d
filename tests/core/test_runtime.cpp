// Runtime choices that must not depend on chance: device names and the precision `auto` picks;
// and which library the process takes std::filesystem from (LinkOrder).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "vaegan/core/error.h"
#include "vaegan/core/runtime.h"
#include "vaegan/train/config.h"

namespace vaegan {
namespace {

/// The first "flags" and "vendor_id" lines of /proc/cpuinfo, read here independently of runtime.cpp.
std::pair<std::set<std::string>, std::string> cpu_description() {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::string> flags;
  std::string vendor;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "flags" && flags.empty()) {
      std::string colon, w;
      words >> colon;
      while (words >> w) flags.insert(w);
    } else if (key == "vendor_id" && vendor.empty()) {
      std::string colon;
      words >> colon >> vendor;
    }
  }
  return {flags, vendor};
}

TEST(Runtime, ParsesDeviceNames) {
  EXPECT_EQ(parse_device("cpu"), torch::Device(torch::kCPU));
  EXPECT_EQ(parse_device("auto"), default_device());
  for (const std::string bad : {"gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", ""}) {
    try {
      parse_device(bad);
      // "cuda:..." names are refused for their syntax or, without a GPU, for the missing GPU
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("--device " + bad), std::string::npos) << e.what();
    }
  }
}

TEST(Runtime, CudaDeviceNeedsAVisibleGpu) {
  if (torch::cuda::is_available()) {
    EXPECT_EQ(parse_device("cuda"), torch::Device(torch::kCUDA));
    const auto count = static_cast<int>(torch::cuda::device_count());
    EXPECT_THROW(parse_device("cuda:" + std::to_string(count)), InputError);
    return;
  }
  try {
    parse_device("cuda:0", "--device");
    FAIL() << "cuda accepted without a GPU";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--device cuda:0"), std::string::npos) << what;
    EXPECT_TRUE(what.find("no GPU is visible") != std::string::npos ||
                what.find("LibTorch without CUDA") != std::string::npos)
        << what;
  }
  EXPECT_EQ(default_device(), torch::Device(torch::kCPU));
}

TEST(Runtime, AutoPrecisionFollowsTheCpuDescriptionEveryTime) {
  const auto [flags, vendor] = cpu_description();
  // AMX (Intel Sapphire Rapids and later) or AMD's AVX-512 BF16 (Zen 4 and later): bf16;
  // an Intel CPU with AVX-512 BF16 but no AMX, or no bf16 at all: fp32.
  const bool expected = flags.count("amx_bf16") > 0 || (flags.count("avx512_bf16") > 0 && vendor == "AuthenticAMD");
  EXPECT_EQ(cpu_bf16_fast(), expected);
  for (int i = 0; i < 20; ++i) {  // no timing: the same answer on every call
    ASSERT_EQ(resolve_precision(Precision::kAuto, torch::kCPU), expected ? Precision::kBf16 : Precision::kFp32);
  }
  EXPECT_EQ(resolve_precision(Precision::kFp32, torch::kCPU), Precision::kFp32);
  EXPECT_EQ(resolve_precision(Precision::kBf16, torch::kCPU), Precision::kBf16);
  EXPECT_FALSE(cuda_bf16_supported(torch::kCPU));
}

TEST(Runtime, DeterministicSwitchSetsAndClearsLibTorchsFlags) {
  configure_device(torch::kCPU, /*deterministic=*/true);
  EXPECT_TRUE(at::globalContext().deterministicAlgorithms());
  EXPECT_TRUE(at::globalContext().deterministicCuDNN());
  configure_device(torch::kCPU, /*deterministic=*/false);
  EXPECT_FALSE(at::globalContext().deterministicAlgorithms());
  EXPECT_FALSE(at::globalContext().deterministicCuDNN());
}

/// The file of the shared object (or executable) that defines the function at `address`.
std::string defining_object(void* address) {
  Dl_info info{};
  if (::dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "(unknown)";
  return info.dli_fname;
}

// pip's LibTorch 2.x exports a copy of std::filesystem of its own; torch 2.11's remove_all()
// jumped to address 0 (every GPU test that removed a directory crashed). The build names
// libstdc++ before LibTorch, so the dynamic linker must bind these calls to the system's.
TEST(LinkOrder, StdFilesystemComesFromLibstdcxx) {
  namespace fs = std::filesystem;
  using RemoveAll = std::uintmax_t (*)(const fs::path&, std::error_code&);
  using CreateDirectories = bool (*)(const fs::path&);
  using Rename = void (*)(const fs::path&, const fs::path&);
  const std::vector<std::pair<std::string, void*>> functions = {
      {"remove_all", reinterpret_cast<void*>(static_cast<RemoveAll>(&fs::remove_all))},
      {"create_directories", reinterpret_cast<void*>(static_cast<CreateDirectories>(&fs::create_directories))},
      {"rename", reinterpret_cast<void*>(static_cast<Rename>(&fs::rename))}};
  for (const auto& [name, address] : functions) {
    EXPECT_NE(defining_object(address).find("libstdc++"), std::string::npos)
        << "std::filesystem::" << name << " is bound to " << defining_object(address);
  }
}

}  // namespace
}  // namespace vaegan
