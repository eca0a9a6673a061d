// CIFAR-10 binaries, CelebA folders with attribute files, image folders of mixed sizes, and the
// batch loader: shapes, value ranges, labels, and the errors for bad input.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "../test_util.h"
// clang-format off
#include <cstdio>  // libjpeg needs FILE declared first
#include <jpeglib.h>
// clang-format on
#include "vaegan/core/error.h"
#include "vaegan/data/celeba.h"
#include "vaegan/data/cifar10_dataset.h"
#include "vaegan/data/datasets.h"
#include "vaegan/data/image_folder_dataset.h"
#include "vaegan/data/loader.h"

namespace vaegan {
namespace {
namespace fs = std::filesystem;

template <typename F>
void expect_input_error(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    for (const auto& frag : fragments) EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << e.what();
  }
}

TEST(Cifar10, ReadsRecordsAsPlanarRgbWithLabels) {
  test::TempDir dir;
  for (int i = 1; i <= 5; ++i) test::write_cifar(dir / ("data_batch_" + std::to_string(i) + ".bin"), 4);
  test::write_cifar(dir / "test_batch.bin", 3);
  auto train = load_cifar10(dir.path(), Split::kTrain, 32);
  auto test = load_cifar10(dir.path(), Split::kTest, 32);
  EXPECT_EQ(train->size(), 20);
  EXPECT_EQ(test->size(), 3);
  EXPECT_EQ(train->channels(), 3);
  EXPECT_EQ(train->image_size(), 32);
  const torch::Tensor img = test->image(2);  // record 2: label 2, planes 6, 7, 8
  EXPECT_EQ(test->label(2), 2);
  EXPECT_EQ(img[0][0][0].item<int>(), 6);
  EXPECT_EQ(img[0][0][1].item<int>(), 255);  // red plane, row 0, column 1
  EXPECT_EQ(img[1][5][5].item<int>(), 7);
  EXPECT_EQ(img[2][31][31].item<int>(), 8);
  EXPECT_EQ(train->class_names().at(2), "bird");
  // float view: [-1, 1]
  const torch::Tensor f = test->first_images(3);
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_FLOAT_EQ(f[2][0][0][1].item<float>(), 1.0f);
  EXPECT_NEAR(f[2][0][0][0].item<float>(), 6 / 127.5 - 1, 1e-6);
  // resized to 64 for paper64
  EXPECT_EQ(load_cifar10(dir.path(), Split::kTest, 64)->image(0).sizes(), (std::vector<int64_t>{3, 64, 64}));
}

TEST(Cifar10, RejectsTruncatedRecordsBadLabelsAndMissingFiles) {
  test::TempDir dir;
  test::write_cifar(dir / "test_batch.bin", 3, /*truncate_by=*/100);
  expect_input_error([&] { load_cifar10(dir.path(), Split::kTest, 32); },
                     {"test_batch.bin", "9119 bytes", "3073-byte", "truncated"});
  expect_input_error([&] { load_cifar10(dir.path(), Split::kTrain, 32); }, {"data_batch_1.bin"});
  std::string bad(kCifar10RecordBytes, '\0');
  bad[0] = 12;
  std::ofstream(dir / "test_batch.bin", std::ios::binary) << bad;
  expect_input_error([&] { load_cifar10(dir.path(), Split::kTest, 32); }, {"record 0", "label 12"});
  expect_input_error([&] { open_dataset("cifar10", dir.path(), Split::kTest, 1, 32); }, {"--channels", "3"});
}

TEST(ImageFolder, CropsResizesAndLabelsBySubfolder) {
  test::TempDir dir;
  test::write_image(dir / "cats/a.png", 40, 20);  // wide: the centre square is half white, half black
  test::write_image(dir / "cats/b.jpg", 64, 64);
  test::write_image(dir / "dogs/c.PNG", 10, 30);  // tall: the centre square is left white, right black
  ImageFolderDataset ds(dir.path(), Split::kTrain, 3, 16);
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.class_names(), (std::vector<std::string>{"cats", "dogs"}));
  EXPECT_EQ(ds.label(0), 0);
  EXPECT_EQ(ds.label(2), 1);
  const torch::Tensor a = ds.image(0);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{3, 16, 16}));
  EXPECT_EQ(a.scalar_type(), torch::kUInt8);
  EXPECT_GT(a[0][8][1].item<int>(), 250);  // left of the crop is white
  EXPECT_LT(a[0][8][14].item<int>(), 5);   // right is black
  // grey conversion
  ImageFolderDataset grey(dir.path(), Split::kTrain, 1, 8);
  EXPECT_EQ(grey.image(1).sizes(), (std::vector<int64_t>{1, 8, 8}));
  // files at the top level: no labels
  test::TempDir flat;
  test::write_image(flat / "x.png", 8, 8);
  EXPECT_EQ(ImageFolderDataset(flat.path(), Split::kTrain, 3, 8).label(0), -1);
}

TEST(ImageFolder, UsesTrainAndTestSubfoldersAsSplits) {
  test::TempDir dir;
  test::write_image(dir / "train/a.png", 8, 8);
  test::write_image(dir / "train/b.png", 8, 8);
  test::write_image(dir / "test/c.png", 8, 8);
  EXPECT_EQ(ImageFolderDataset(dir.path(), Split::kTrain, 3, 8).size(), 2);
  EXPECT_EQ(ImageFolderDataset(dir.path(), Split::kTest, 3, 8).size(), 1);
}

TEST(ImageFolder, HoldsOutAFixedFractionWithoutSplitFolders) {
  test::TempDir dir;
  for (int i = 0; i < 20; ++i) test::write_image(dir / fmt::format("img{:02d}.png", i), 12, 10);
  const ImageFolderDataset train(dir.path(), Split::kTrain, 3, 8, 0.25), test(dir.path(), Split::kTest, 3, 8, 0.25);
  EXPECT_EQ(train.size(), 15);
  EXPECT_EQ(test.size(), 5);
  std::set<std::string> all(train.files().begin(), train.files().end());
  for (const auto& f : test.files()) EXPECT_TRUE(all.insert(f).second) << f << " is in both splits";
  EXPECT_EQ(all.size(), 20u);
  // the same files on every opening (a fixed seed), and not simply the last ones
  EXPECT_EQ(ImageFolderDataset(dir.path(), Split::kTest, 3, 8, 0.25).files(), test.files());
  std::vector<std::string> last_five;
  for (int i = 15; i < 20; ++i) last_five.push_back(dir / fmt::format("img{:02d}.png", i));
  EXPECT_NE(test.files(), last_five);
  EXPECT_NE(test.summary().find("--val-fraction 0.25"), std::string::npos) << test.summary();
  // 0: both splits are every image; a fraction that leaves nothing to train on is an error
  EXPECT_EQ(ImageFolderDataset(dir.path(), Split::kTest, 3, 8, 0).size(), 20);
  expect_input_error([&] { ImageFolderDataset(dir.path(), Split::kTrain, 3, 8, 0.99); },
                     {"--val-fraction", "leaves none to train on"});
  // train/ and test/ folders are the splits whatever the fraction
  test::TempDir split;
  test::write_image(split / "train/a.png", 8, 8);
  test::write_image(split / "test/b.png", 8, 8);
  EXPECT_EQ(ImageFolderDataset(split.path(), Split::kTrain, 3, 8, 0.5).size(), 1);
}

TEST(ImageFolder, RejectsEmptyAndMissingFoldersAndNamesCorruptFiles) {
  test::TempDir dir;
  std::ofstream(dir / "notes.txt") << "no images here";
  expect_input_error([&] { ImageFolderDataset(dir.path(), Split::kTrain, 3, 8); }, {"holds no image file"});
  expect_input_error([&] { ImageFolderDataset(dir / "missing", Split::kTrain, 3, 8); }, {"missing", "not a directory"});
  std::ofstream(dir / "broken.png") << "not a png";
  ImageFolderDataset ds(dir.path(), Split::kTrain, 3, 8);
  try {
    ds.image(0);
    FAIL() << "expected ImageReadError";
  } catch (const ImageReadError& e) {
    EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
  }
}

TEST(ImageFolder, CorruptJpegFoundByFuzzingIsAnErrorNotAnOutOfBoundsWrite) {
  // fuzz/ found this file: its Huffman table sizes sum past 256, which makes Debian's stb_image
  // write past a 257-byte array; JPEG goes through libjpeg-turbo, which rejects it.
  const std::string path = std::string(VAEGAN_SOURCE_DIR) + "/tests/data/fixtures/corrupt-huffman.jpg";
  try {
    decode_image_file(path, 3, 16);
    FAIL() << "expected ImageReadError";
  } catch (const ImageReadError& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt-huffman.jpg: cannot decode JPEG"), std::string::npos) << e.what();
  }
}

TEST(ImageFolder, SkipsLinkLoopsAndReadsCapitalExtensions) {
  test::TempDir dir;
  test::write_image(dir / "a/x.png", 8, 8);
  test::write_image(dir / "b/Y.PNG", 8, 8);
  test::write_image(dir / "b/Z.JPG", 8, 8);
  std::filesystem::create_directory_symlink("..", dir / "a/up");         // back to the root: a loop
  std::filesystem::create_symlink(dir / "a/self", dir / "a/self");       // a link to itself: ELOOP
  std::filesystem::create_symlink(dir / "nowhere", dir / "b/dangling");  // a dangling link
  ImageFolderDataset ds(dir.path(), Split::kTrain, 3, 8);
  EXPECT_EQ(ds.size(), 3);  // x.png, Y.PNG, Z.JPG: once each
  EXPECT_EQ(ds.class_names(), (std::vector<std::string>{"a", "b"}));
}

/// Writes a `w`×`h` CMYK JPEG, as Adobe writes them (inverted: 255 is no ink), whose left half is
/// pure cyan and right half pure black.
void write_cmyk_jpeg(const std::string& path, int w, int h) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * 4);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &px[(static_cast<size_t>(y) * w + x) * 4];
      const bool left = x < w / 2;
      p[0] = left ? 0 : 255;  // cyan ink (inverted)
      p[1] = p[2] = 255;      // no magenta, no yellow
      p[3] = left ? 255 : 0;  // black ink on the right
    }
  }
  jpeg_compress_struct info{};
  jpeg_error_mgr err{};
  info.err = jpeg_std_error(&err);
  jpeg_create_compress(&info);
  FILE* f = std::fopen(path.c_str(), "wb");
  jpeg_stdio_dest(&info, f);
  info.image_width = static_cast<JDIMENSION>(w);
  info.image_height = static_cast<JDIMENSION>(h);
  info.input_components = 4;
  info.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, 100, TRUE);
  info.write_Adobe_marker = TRUE;
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = &px[static_cast<size_t>(info.next_scanline) * w * 4];
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::fclose(f);
}

TEST(ImageFolder, DecodesCmykJpegsToRgbAndGray) {
  test::TempDir dir;
  write_cmyk_jpeg(dir / "cmyk.jpg", 16, 16);
  const torch::Tensor rgb = decode_image_file(dir / "cmyk.jpg", 3, 16).to(torch::kInt);  // [3, 16, 16]
  // left: cyan = (0, 255, 255); right: black. JPEG at quality 100 is within a few levels.
  EXPECT_LE(rgb[0][8][2].item<int>(), 8);
  EXPECT_GE(rgb[1][8][2].item<int>(), 247);
  EXPECT_GE(rgb[2][8][2].item<int>(), 247);
  for (int c = 0; c < 3; ++c) EXPECT_LE(rgb[c][8][13].item<int>(), 8) << c;
  const torch::Tensor gray = decode_image_file(dir / "cmyk.jpg", 1, 16).to(torch::kInt);
  EXPECT_NEAR(gray[0][8][2].item<int>(), (587 * 255 + 114 * 255) / 1000, 8);  // BT.601 luma of cyan
  EXPECT_LE(gray[0][8][13].item<int>(), 8);
}

TEST(ImageFolder, CompositesTransparentPngsOverWhite) {
  test::TempDir dir;
  // RGBA, 2×2: opaque red, transparent black (how icon themes store their background), blue at
  // alpha 128, green at alpha 51. Grey + alpha, 2×2: 100 at alpha 51, 0 at 0, 200 at 255, 0 at 128.
  const std::vector<uint8_t> rgba = {255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 128, 0, 255, 0, 51};
  const std::vector<uint8_t> grey_alpha = {100, 51, 0, 0, 200, 255, 0, 128};
  const std::string rgba_png = dir / "rgba.png", grey_png = dir / "grey.png";
  ASSERT_NE(stbi_write_png(rgba_png.c_str(), 2, 2, 4, rgba.data(), 8), 0);
  ASSERT_NE(stbi_write_png(grey_png.c_str(), 2, 2, 2, grey_alpha.data(), 4), 0);
  // Over white: c' = c a / 255 + 255 (1 - a / 255), rounded.
  const auto over_white = [](int c, int a) { return static_cast<int>(std::lround(c * a / 255.0 + 255 - a)); };
  const torch::Tensor rgb = decode_image_file(rgba_png, 3, 2).to(torch::kInt);  // [3, 2, 2]
  for (int p = 0; p < 4; ++p) {
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(rgb[c][p / 2][p % 2].item<int>(), over_white(rgba[4 * p + c], rgba[4 * p + 3])) << p << " " << c;
    }
  }
  const torch::Tensor grey = decode_image_file(grey_png, 1, 2).to(torch::kInt);  // [1, 2, 2]
  for (int p = 0; p < 4; ++p) {
    EXPECT_EQ(grey[0][p / 2][p % 2].item<int>(), over_white(grey_alpha[2 * p], grey_alpha[2 * p + 1])) << p;
  }
  // A grey + alpha PNG read as RGB: the same grey in every channel.
  const torch::Tensor grey_as_rgb = decode_image_file(grey_png, 3, 2).to(torch::kInt);
  for (int c = 0; c < 3; ++c) EXPECT_TRUE(torch::equal(grey_as_rgb[c], grey[0])) << c;
}

TEST(CelebA, ReadsPartitionsAttributesAndCropsTo64) {
  test::TempDir dir;
  test::write_celeba(dir.path(), 9);
  CelebADataset train(dir.path(), Split::kTrain, 64), test(dir.path(), Split::kTest, 64);
  EXPECT_EQ(train.size(), 3);  // i = 0, 3, 6
  EXPECT_EQ(test.size(), 3);   // i = 2, 5, 8
  EXPECT_EQ(train.image(0).sizes(), (std::vector<int64_t>{3, 64, 64}));
  EXPECT_EQ(train.attribute_names(), (std::vector<std::string>{"Smiling", "Young"}));
  ASSERT_EQ(train.attributes().sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(train.attributes()[0][0].item<int>(), 1);   // 000001: i = 0, smiling
  EXPECT_EQ(train.attributes()[1][0].item<int>(), -1);  // 000004: i = 3
  EXPECT_EQ(train.attributes()[1][1].item<int>(), -1);
  const torch::Tensor f = train.first_images(1);
  EXPECT_GE(f.min().item<float>(), -1.0f);
  EXPECT_LE(f.max().item<float>(), 1.0f);
}

TEST(CelebA, OriginalProtocolTrainsOnTrainAndValidationAndCropsFromRow40) {
  test::TempDir dir;
  test::write_celeba(dir.path(), 9);
  CelebADataset train(dir.path(), Split::kTrain, 64, CelebAProtocol::kOriginal),
      test(dir.path(), Split::kTest, 64, CelebAProtocol::kOriginal);
  EXPECT_EQ(train.size(), 6);  // partitions 0 and 1: i = 0, 1, 3, 4, 6, 7
  EXPECT_EQ(test.size(), 3);   // partition 2 as before
  EXPECT_EQ(fs::path(train.files()[1]).filename(), "000002.jpg");
  // A 178×218 PNG whose pixel (y, x) holds y (red) and x (green): at size 148 (no resampling)
  // the crop's first row is 40 and its first column 15; the centred crop starts at row 35.
  const int w = 178, h = 218;
  std::vector<uint8_t> px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      px[static_cast<size_t>((y * w + x) * 3)] = static_cast<uint8_t>(y);
      px[static_cast<size_t>((y * w + x) * 3 + 1)] = static_cast<uint8_t>(x);
    }
  }
  const std::string png = dir / "coded.png";
  ASSERT_NE(stbi_write_png(png.c_str(), w, h, 3, px.data(), w * 3), 0);
  const torch::Tensor original = decode_image_file(png, 3, kCelebACrop, kCelebACrop, kCelebAOriginalCropTop);
  const torch::Tensor centred = decode_image_file(png, 3, kCelebACrop, kCelebACrop);
  EXPECT_EQ(original[0][0][0].item<int>(), 40);
  EXPECT_EQ(original[0][147][0].item<int>(), 187);
  EXPECT_EQ(original[1][0][0].item<int>(), 15);
  EXPECT_EQ(original[1][0][147].item<int>(), 162);
  EXPECT_EQ(centred[0][0][0].item<int>(), 35);
  // a top row too low for the square is moved up so that the crop stays inside the image
  EXPECT_EQ(decode_image_file(png, 3, kCelebACrop, kCelebACrop, 200)[0][0][0].item<int>(), h - kCelebACrop);
}

TEST(CelebA, RejectsMissingAttributeColumnsAndBadPartitions) {
  test::TempDir dir;
  test::write_celeba(dir.path(), 6, /*short_row=*/true);
  expect_input_error([&] { CelebADataset(dir.path(), Split::kTrain, 64); },
                     {"list_attr_celeba.txt:7", "000005.jpg", "1 attribute values, expected 2"});
  std::ofstream(dir / "list_eval_partition.txt") << "000001.jpg 7\n";
  expect_input_error([&] { CelebADataset(dir.path(), Split::kTrain, 64); }, {"list_eval_partition.txt:1"});
  fs::remove(dir / "list_eval_partition.txt");
  expect_input_error([&] { CelebADataset(dir.path(), Split::kTrain, 64); }, {"list_eval_partition.txt"});
  std::ofstream(dir / "list_attr_celeba.txt", std::ios::trunc) << "1\nSmiling Young\n000001.jpg 1 -1\n";
  EXPECT_EQ(read_celeba_attributes(dir / "list_attr_celeba.txt").index("Young"), 1);
  expect_input_error([&] { read_celeba_attributes(dir / "list_attr_celeba.txt").index("Bald"); },
                     {"Bald", "Smiling, Young"});
}

TEST(Datasets, FitImageSizePadsMnistAndResizesOthers) {
  const torch::Tensor x = torch::full({2, 1, 28, 28}, 200, torch::kUInt8);
  const torch::Tensor padded = fit_image_size(x, 32, /*pad=*/true);
  EXPECT_EQ(padded[0][0][1][1].item<int>(), 0);
  EXPECT_EQ(padded[0][0][2][2].item<int>(), 200);
  const torch::Tensor resized = fit_image_size(x, 64, /*pad=*/false);
  EXPECT_EQ(resized.sizes(), (std::vector<int64_t>{2, 1, 64, 64}));
  EXPECT_EQ(resized.min().item<int>(), 200);  // a constant image stays constant
  EXPECT_EQ(resized.max().item<int>(), 200);
  expect_input_error([] { open_dataset("imagenet", "x", Split::kTrain, 3, 32); }, {"--dataset", "imagenet"});
}

// Every grey level maps to the float a GPU computes too: x times the float nearest 1/127.5, minus
// 1, each step rounded to float (plain C++ arithmetic as the reference); within 2.4e-7 (two units
// in the last place of a product in [1, 2)) of the exact x / 127.5 - 1; 0 -> -1 and 255 -> 1.
TEST(ModelRange, EveryGreyLevelIsTheFloatProductOfTheReciprocal) {
  const torch::Tensor levels = torch::arange(256).to(torch::kUInt8);
  const torch::Tensor f = to_model_range(levels);
  ASSERT_EQ(f.scalar_type(), torch::kFloat32);
  const volatile float reciprocal = static_cast<float>(1.0 / 127.5);
  for (int v = 0; v < 256; ++v) {
    const volatile float product = static_cast<float>(v) * reciprocal;
    const float expected = product - 1.0f;
    EXPECT_EQ(f[v].item<float>(), expected) << "grey level " << v;
    EXPECT_NEAR(f[v].item<float>(), v / 127.5 - 1, 2.4e-7) << "grey level " << v;
  }
  EXPECT_EQ(f[0].item<float>(), -1.0f);
  EXPECT_EQ(f[255].item<float>(), 1.0f);
}

TEST(BatchLoader, DeliversTheOrderInFullBatchesAndDropsTheRest) {
  const torch::Tensor images = torch::arange(10, torch::kUInt8).view({10, 1, 1, 1}).expand({10, 1, 2, 2}).clone();
  auto ds = std::make_shared<TensorImageDataset>(images, torch::arange(10) + 100, "ten");
  const torch::Tensor order = torch::tensor({9, 3, 0, 5, 1, 2, 8}, torch::kLong);
  BatchLoader loader(ds, order, LoaderOptions().batch_size(3));
  std::vector<int64_t> seen;
  while (auto b = loader.next()) {
    ASSERT_EQ(b->images.sizes(), (std::vector<int64_t>{3, 1, 2, 2}));
    for (int64_t i = 0; i < 3; ++i) {
      seen.push_back(b->labels[i].item<int64_t>() - 100);
      EXPECT_NEAR(b->images[i][0][1][1].item<float>(), seen.back() / 127.5 - 1, 1e-6);
    }
  }
  EXPECT_EQ(seen, (std::vector<int64_t>{9, 3, 0, 5, 1, 2}));  // 8 is the partial third batch
}

TEST(BatchLoader, FlipsReproduciblyAndAboutHalfTheImages) {
  torch::Tensor images = torch::zeros({200, 1, 2, 2}, torch::kUInt8);
  images.select(3, 0).fill_(255);  // left column white
  auto ds = std::make_shared<TensorImageDataset>(images, torch::Tensor(), "left-white");
  auto flipped = [&](uint64_t seed) {
    BatchLoader loader(ds, torch::arange(200), LoaderOptions().batch_size(50).horizontal_flip(true).seed(seed));
    std::vector<int> out;
    while (auto b = loader.next()) {
      const torch::Tensor right = b->images.select(3, 1).flatten();  // white after a flip
      for (int64_t i = 0; i < right.size(0); i += 2) out.push_back(right[i].item<float>() > 0);
    }
    return out;
  };
  const std::vector<int> a = flipped(1), b = flipped(1), c = flipped(2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  const int count = std::accumulate(a.begin(), a.end(), 0);
  EXPECT_GT(count, 70);  // Binomial(200, 1/2): 70..130 holds with probability > 1 - 1e-4
  EXPECT_LT(count, 130);
}

TEST(BatchLoader, SkipsUnreadableImagesAndFailsWhenNoneCanBeRead) {
  test::TempDir dir;
  for (int i = 0; i < 5; ++i) test::write_image(dir / fmt::format("img{}.png", i), 8, 8);
  std::ofstream(dir / "img1.png", std::ios::trunc) << "corrupt";
  auto ds = std::make_shared<ImageFolderDataset>(dir.path(), Split::kTrain, 3, 8);
  {
    BatchLoader loader(ds, torch::arange(5), LoaderOptions().batch_size(2).threads(2));
    int batches = 0;
    while (auto b = loader.next()) {
      EXPECT_EQ(b->images.size(0), 2);
      ++batches;
    }
    EXPECT_EQ(batches, 2);  // 4 readable images
    EXPECT_EQ(ds->unreadable_count(), 1);
  }
  test::TempDir bad;
  for (int i = 0; i < 3; ++i) std::ofstream(bad / fmt::format("x{}.jpg", i)) << "junk";
  auto all_bad = std::make_shared<ImageFolderDataset>(bad.path(), Split::kTrain, 3, 8);
  BatchLoader loader(all_bad, torch::arange(3), LoaderOptions().batch_size(2));
  expect_input_error([&] { loader.next(); }, {"none of the 3 images could be read"});
}

}  // namespace
}  // namespace vaegan
