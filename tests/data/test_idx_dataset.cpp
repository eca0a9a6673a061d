#include <gtest/gtest.h>

#include <fstream>

#include "../test_util.h"
#include "vaegan/core/error.h"
#include "vaegan/data/idx_dataset.h"

namespace vaegan {
namespace {

using test::TempDir;

/// Writes raw bytes (for hand-made bad files).
void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

/// Expects `fn` to throw InputError whose message contains every string in `parts`.
template <typename Fn>
void expect_input_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " lacks " << p;
  }
}

TEST(IdxDataset, RoundTripsPlainAndGzip) {
  TempDir dir;
  torch::Tensor images = torch::randint(0, 256, {3, 5, 7}, torch::kUInt8);
  for (const std::string name : {"a-idx3-ubyte", "a-idx3-ubyte.gz"}) {
    write_idx(dir / name, images);
    torch::Tensor back = read_idx(dir / name, 3);
    EXPECT_EQ(back.sizes(), images.sizes());
    EXPECT_TRUE(torch::equal(back, images)) << name;
  }
  // The plain file is exactly header (4 + 3*4 bytes) + body.
  EXPECT_EQ(std::filesystem::file_size(dir / "a-idx3-ubyte"), 16u + 3 * 5 * 7);
}

TEST(IdxDataset, ScalesToMinusOneOneAndPadsTo32) {
  TempDir dir;
  torch::Tensor images = torch::zeros({2, 28, 28}, torch::kUInt8);
  images[0][0][0] = 255;
  images[1][27][27] = 51;  // 51 / 127.5 - 1 = -0.6
  write_idx(dir / "train-images-idx3-ubyte", images);
  write_idx(dir / "train-labels-idx1-ubyte", torch::tensor({7, 3}, torch::kUInt8));
  IdxDataset ds = IdxDataset::from_directory(dir.path(), Split::kTrain, 32);
  ASSERT_EQ(ds.images().sizes(), (std::vector<int64_t>{2, 1, 32, 32}));
  EXPECT_EQ(ds.images().scalar_type(), torch::kFloat32);
  EXPECT_FLOAT_EQ(ds.images()[0][0][2][2].item<float>(), 1.0f);     // pixel (0,0) lands at (2,2)
  EXPECT_FLOAT_EQ(ds.images()[1][0][29][29].item<float>(), -0.6f);  // pixel (27,27) at (29,29)
  EXPECT_FLOAT_EQ(ds.images()[0][0][0][0].item<float>(), -1.0f);    // padding is -1
  EXPECT_FLOAT_EQ(ds.images()[0][0][31][31].item<float>(), -1.0f);
  EXPECT_EQ(ds.images().min().item<float>(), -1.0f);
  EXPECT_EQ(ds.labels().scalar_type(), torch::kInt64);
  EXPECT_EQ(ds.labels()[0].item<int64_t>(), 7);
  EXPECT_EQ(ds.labels().size(0), 2);
  EXPECT_EQ(ds.labels()[1].item<int64_t>(), 3);
}

TEST(IdxDataset, CountsComeFromTheHeader) {
  TempDir dir;
  write_idx(dir / "train-images-idx3-ubyte.gz", torch::zeros({5, 20, 20}, torch::kUInt8));
  write_idx(dir / "train-labels-idx1-ubyte.gz", torch::zeros({5}, torch::kUInt8));
  IdxDataset ds = IdxDataset::from_directory(dir.path(), Split::kTrain, 32);
  EXPECT_EQ(ds.images().sizes(), (std::vector<int64_t>{5, 1, 32, 32}));
}

TEST(IdxDataset, RejectsWrongMagic) {
  TempDir dir;
  write_bytes(dir / "bad", {0x1f, 0x00, 0x08, 0x03, 0, 0, 0, 1});
  expect_input_error([&] { read_idx(dir / "bad"); }, {dir / "bad", "magic"});
  write_bytes(dir / "float", {0x00, 0x00, 0x0d, 0x01, 0, 0, 0, 1, 0, 0, 0, 0});
  expect_input_error([&] { read_idx(dir / "float"); }, {"expected magic 00 00 08"});
}

TEST(IdxDataset, RejectsWrongDimensionCount) {
  TempDir dir;
  write_idx(dir / "labels", torch::zeros({4}, torch::kUInt8));
  expect_input_error([&] { read_idx(dir / "labels", 3); }, {dir / "labels", "3 dimensions but found 1"});
}

TEST(IdxDataset, RejectsTruncatedAndOverlongBodies) {
  TempDir dir;
  write_bytes(dir / "short", {0, 0, 8, 1, 0, 0, 0, 10, 1, 2, 3});
  expect_input_error([&] { read_idx(dir / "short"); }, {dir / "short", "truncated", "10 bytes, found 3"});
  write_bytes(dir / "header", {0, 0, 8, 3, 0, 0});
  expect_input_error([&] { read_idx(dir / "header"); }, {"truncated IDX header"});
  write_bytes(dir / "long", {0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3});
  expect_input_error([&] { read_idx(dir / "long"); }, {"longer than"});
  // A gzip stream cut in the middle.
  write_idx(dir / "full.gz", torch::randint(0, 256, {50, 28, 28}, torch::kUInt8));
  std::ifstream in(dir / "full.gz", std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  bytes.resize(bytes.size() / 2);
  write_bytes(dir / "cut.gz", bytes);
  EXPECT_THROW(read_idx(dir / "cut.gz"), InputError);
}

TEST(IdxDataset, RejectsMissingFilesAndCountMismatch) {
  TempDir dir;
  expect_input_error([&] { read_idx(dir / "nope"); }, {dir / "nope", "not found"});
  expect_input_error([&] { IdxDataset::from_directory(dir.path(), Split::kTest, 32); },
                     {dir.path(), "t10k-images-idx3-ubyte"});
  write_idx(dir / "train-images-idx3-ubyte", torch::zeros({3, 28, 28}, torch::kUInt8));
  write_idx(dir / "train-labels-idx1-ubyte", torch::zeros({4}, torch::kUInt8));
  expect_input_error([&] { IdxDataset::from_directory(dir.path(), Split::kTrain, 32); }, {"3 images", "4 labels"});
  write_idx(dir / "t10k-images-idx3-ubyte", torch::zeros({3, 40, 40}, torch::kUInt8));
  write_idx(dir / "t10k-labels-idx1-ubyte", torch::zeros({3}, torch::kUInt8));
  expect_input_error([&] { IdxDataset::from_directory(dir.path(), Split::kTest, 32); }, {"40x40", "32"});
}

}  // namespace
}  // namespace vaegan
