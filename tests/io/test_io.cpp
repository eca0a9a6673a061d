#include <gtest/gtest.h>
#include <stb_image.h>

#include <cstdio>
#include <fstream>

#include "../test_util.h"
#include "vaegan/io/image_io.h"
#include "vaegan/io/npy.h"
#include "vaegan/io/tensorboard.h"

namespace vaegan {
namespace {

TEST(ImageIo, Uint8ConversionMapsTheRange) {
  torch::Tensor x = torch::tensor({-1.0f, 0.0f, 1.0f, 2.0f, -0.5f}).view({1, 1, 1, 5});
  torch::Tensor px = to_uint8_nhwc(x);
  EXPECT_EQ(px.sizes(), (std::vector<int64_t>{1, 1, 5, 1}));
  EXPECT_EQ(px.scalar_type(), torch::kUInt8);
  const std::vector<int> expected = {0, 128, 255, 255, 64};  // round(127.5 * (v + 1)), clamped
  for (int i = 0; i < 5; ++i) EXPECT_EQ(px[0][0][i][0].item<int>(), expected[i]);
}

TEST(ImageIo, PngGridDecodesToTheSamePixels) {
  test::TempDir dir;
  torch::manual_seed(0);
  torch::Tensor images = torch::rand({5, 3, 4, 6}) * 2 - 1;  // 5 RGB tiles, 3 columns -> 2 rows
  save_image_grid(dir / "g.png", images, 3);
  int w = 0, h = 0, c = 0;
  unsigned char* data = stbi_load((dir / "g.png").c_str(), &w, &h, &c, 0);
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(w, 3 * (6 + 2) + 2);
  EXPECT_EQ(h, 2 * (4 + 2) + 2);
  EXPECT_EQ(c, 3);
  torch::Tensor decoded = torch::from_blob(data, {h, w, c}, torch::kUInt8).clone();
  stbi_image_free(data);
  torch::Tensor px = to_uint8_nhwc(images);
  EXPECT_TRUE(torch::equal(decoded.narrow(0, 2, 4).narrow(1, 2, 6), px[0]));          // tile 0
  EXPECT_TRUE(torch::equal(decoded.narrow(0, 2 + 6, 4).narrow(1, 2 + 8, 6), px[4]));  // tile 4: row 1, col 1
  EXPECT_EQ(decoded[0][0][0].item<int>(), 128);                                       // padding
  EXPECT_FALSE(std::filesystem::exists(dir / ".g.png.tmp"));
}

TEST(ImageIo, InterleaveRowsPutsOriginalsOverReconstructions) {
  torch::Tensor a = torch::arange(5).view({5, 1, 1, 1}), b = 10 + a;
  torch::Tensor r = interleave_rows(a, b, 2).flatten();
  EXPECT_TRUE(torch::equal(r, torch::tensor({0, 1, 10, 11, 2, 3, 12, 13, 4, 14}, torch::kLong)));
}

TEST(Npy, HeaderDtypeAndShapeFollowTheFormat) {
  test::TempDir dir;
  torch::Tensor a = torch::randint(0, 256, {2, 3, 4, 1}, torch::kUInt8);
  write_npy(dir / "a.npy", a);
  std::ifstream in(dir / "a.npy", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 6), "\x93NUMPY");
  EXPECT_EQ(bytes[6], 1);
  const size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);  // data aligned to 64 bytes
  const std::string header = bytes.substr(10, header_len);
  EXPECT_NE(header.find("'descr': '|u1'"), std::string::npos) << header;
  EXPECT_NE(header.find("'shape': (2, 3, 4, 1)"), std::string::npos) << header;
  EXPECT_EQ(header.back(), '\n');
  EXPECT_EQ(bytes.size(), 10 + header_len + 24);
  EXPECT_TRUE(torch::equal(read_npy(dir / "a.npy"), a));
  torch::Tensor v = torch::randn({7});
  write_npy(dir / "v.npy", v);
  EXPECT_TRUE(torch::equal(read_npy(dir / "v.npy"), v));
}

TEST(Npy, NumpyReadsIt) {
  if (std::system((std::string(VAEGAN_PYTHON) + " -c 'import numpy' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "python3-numpy missing";
  test::TempDir dir;
  torch::Tensor a = torch::arange(24, torch::kUInt8).view({2, 3, 4, 1});
  write_npy(dir / "a.npy", a);
  const std::string cmd = std::string(VAEGAN_PYTHON) + " -c \"import numpy as n; a = n.load('" + (dir / "a.npy") +
                          "'); assert a.dtype == n.uint8 and a.shape == (2, 3, 4, 1) and "
                          "(a.ravel() == n.arange(24)).all()\"";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST(Npz, NumpyReadsEveryArray) {
  if (std::system((std::string(VAEGAN_PYTHON) + " -c 'import numpy' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "python3-numpy missing";
  test::TempDir dir;
  write_npz(dir / "z.npz", {{"mu", torch::arange(6, torch::kFloat32).view({2, 3}) / 4},
                            {"labels", torch::tensor(std::vector<int64_t>{7, -1})}});
  const std::string cmd = std::string(VAEGAN_PYTHON) + " -c \"import numpy as n; z = n.load('" + (dir / "z.npz") +
                          "'); assert sorted(z.files) == ['labels', 'mu']; "
                          "assert (z['mu'] == n.arange(6, dtype=n.float32).reshape(2, 3) / 4).all(); "
                          "assert z['labels'].tolist() == [7, -1] and z['labels'].dtype == n.int64\"";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

// RFC 3720 (iSCSI), B.4: the CRC-32C check value of "123456789" and of 32 zero bytes.
TEST(TensorBoard, Crc32cMatchesTheStandardCheckValues) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  // TensorFlow's mask: rotate right by 15, add 0xa282ead8
  const uint32_t c = 0xE3069283u;
  EXPECT_EQ(masked_crc32c("123456789", 9), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

}  // namespace
}  // namespace vaegan
