// The image data sets (data/images.hpp): every format written here in its real byte layout and
// read back exactly, every corruption refused with a sentence naming the file and the problem,
// image folders of real PNG (libpng) and JPEG (TurboJPEG) files, and the synthetic set.
#include <gtest/gtest.h>
#include <png.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/images.hpp"

namespace fs = std::filesystem;
using slurmlab::UsageError;
using namespace slurmlab::data;
using Bytes = std::vector<std::uint8_t>;

namespace {

fs::path fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("slurmlab-images-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_file(const fs::path& path, const Bytes& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

void write_gzip(const fs::path& path, const Bytes& bytes) {
  fs::create_directories(path.parent_path());
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

Bytes random_bytes(std::size_t count, unsigned seed) {
  std::mt19937 random(seed);
  Bytes bytes(count);
  for (auto& b : bytes) b = static_cast<std::uint8_t>(random() & 0xFF);
  return bytes;
}

void put_big_endian(Bytes& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

Bytes idx_images(const Bytes& pixels, std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
  Bytes out;
  put_big_endian(out, 0x00000803);
  put_big_endian(out, count);
  put_big_endian(out, rows);
  put_big_endian(out, cols);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

Bytes idx_labels(const Bytes& labels) {
  Bytes out;
  put_big_endian(out, 0x00000801);
  put_big_endian(out, static_cast<std::uint32_t>(labels.size()));
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

// Runs `open` and expects a UsageError whose message holds every one of `parts` and is one
// sentence (one line, ending in a full stop).
void expect_usage_error(const std::function<void()>& open, std::initializer_list<std::string> parts) {
  try {
    open();
    ADD_FAILURE() << "no UsageError; expected one mentioning '" << *parts.begin() << "'";
  } catch (const UsageError& error) {
    const std::string message = error.what();
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message << "\n  lacks: " << part;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.back(), '.') << message;
  }
}

void expect_image(const ImageView& view, const std::uint8_t* expected, ImageShape shape) {
  ASSERT_EQ(view.shape, shape);
  ASSERT_NE(view.pixels, nullptr);
  EXPECT_TRUE(std::equal(view.pixels, view.pixels + shape.bytes(), expected));
}

// ---- MNIST -----------------------------------------------------------------------------------

struct IdxSet {
  Bytes pixels, labels;
  std::uint32_t count = 7, rows = 5, cols = 4;
};

IdxSet make_idx_set(unsigned seed) {
  IdxSet set;
  set.pixels = random_bytes(std::size_t{set.count} * set.rows * set.cols, seed);
  for (std::uint32_t i = 0; i < set.count; ++i) set.labels.push_back(static_cast<std::uint8_t>((i * 7 + seed) % 10));
  return set;
}

void check_idx_set(const ImageDataset& data, const IdxSet& set) {
  ASSERT_EQ(data.size(), set.count);
  const ImageShape shape{1, static_cast<int>(set.rows), static_cast<int>(set.cols)};
  ASSERT_EQ(data.fixed_shape(), shape);
  EXPECT_EQ(data.channels(), 1);
  EXPECT_FALSE(data.synthetic());
  Bytes scratch;
  for (std::uint32_t i = 0; i < set.count; ++i) {
    EXPECT_EQ(data.label(i), set.labels[i]);
    expect_image(data.image(i, scratch), set.pixels.data() + i * shape.bytes(), shape);
  }
  EXPECT_TRUE(scratch.empty()) << "a stored set returns views into its storage";
  EXPECT_THROW(data.image(set.count, scratch), std::out_of_range);
  EXPECT_THROW(data.label(-1), std::out_of_range);
}

TEST(Mnist, PlainFilesReadBackExactlyAndAreMemoryMapped) {
  const auto dir = fresh_dir("mnist-plain");
  const auto train = make_idx_set(1), test = make_idx_set(2);
  write_file(dir / "train-images-idx3-ubyte", idx_images(train.pixels, train.count, train.rows, train.cols));
  write_file(dir / "train-labels-idx1-ubyte", idx_labels(train.labels));
  write_file(dir / "t10k-images-idx3-ubyte", idx_images(test.pixels, test.count, test.rows, test.cols));
  write_file(dir / "t10k-labels-idx1-ubyte", idx_labels(test.labels));
  const auto data = open_mnist(dir, Split::train);
  check_idx_set(*data, train);
  check_idx_set(*open_mnist(dir, Split::test), test);
  EXPECT_EQ(data->class_names().size(), 10u);
  EXPECT_EQ(data->class_names()[3], "3");
  EXPECT_EQ(data->describe(), "MNIST train, 7 images 1x5x4, 10 classes, " + dir.string() + " (memory-mapped)");
}

TEST(Mnist, GzippedFilesInTorchvisionsRawFolderReadBackExactly) {
  const auto dir = fresh_dir("mnist-gz");
  const auto train = make_idx_set(3);
  write_gzip(dir / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz",
             idx_images(train.pixels, train.count, train.rows, train.cols));
  write_gzip(dir / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte.gz", idx_labels(train.labels));
  const auto data = open_mnist(dir, Split::train, MnistVariant::fashion_mnist);
  check_idx_set(*data, train);
  EXPECT_EQ(data->class_names()[9], "Ankle boot");
  EXPECT_NE(data->describe().find("Fashion-MNIST train, 7 images 1x5x4"), std::string::npos);
  EXPECT_NE(data->describe().find("inflated in memory"), std::string::npos);
}

class MnistErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir("mnist-errors");
    set_ = make_idx_set(4);
    images_ = idx_images(set_.pixels, set_.count, set_.rows, set_.cols);
    labels_ = idx_labels(set_.labels);
  }
  void write(const Bytes& images, const Bytes& labels) {
    write_file(dir_ / "train-images-idx3-ubyte", images);
    write_file(dir_ / "train-labels-idx1-ubyte", labels);
  }
  void expect_refused(std::initializer_list<std::string> parts) {
    expect_usage_error([&] { open_mnist(dir_, Split::train); }, parts);
  }
  fs::path images_path() const { return dir_ / "train-images-idx3-ubyte"; }
  fs::path labels_path() const { return dir_ / "train-labels-idx1-ubyte"; }

  fs::path dir_;
  IdxSet set_;
  Bytes images_, labels_;
};

TEST_F(MnistErrors, MissingFile) {
  write_file(labels_path(), labels_);
  expect_refused({images_path().string(), "does not exist", "tools/fetch-data mnist"});
}

TEST_F(MnistErrors, WrongMagicNumber) {
  auto images = images_;
  images[3] = 0x01;  // a label file's magic
  write(images, labels_);
  expect_refused({images_path().string(), "magic number 0x00000801", "0x00000803"});
  write(images_, images_);  // images where labels belong
  expect_refused({labels_path().string(), "magic number 0x00000803", "not 0x00000801"});
}

TEST_F(MnistErrors, TruncatedFile) {
  write(Bytes(images_.begin(), images_.end() - 5), labels_);
  expect_refused({images_path().string(), "is truncated", "promises 7 images", "download it again"});
  write(Bytes(images_.begin(), images_.begin() + 10), labels_);
  expect_refused({images_path().string(), "header"});
  write(Bytes(images_.begin(), images_.begin() + 2), labels_);
  expect_refused({images_path().string(), "too short"});
}

TEST_F(MnistErrors, ExtraBytes) {
  auto images = images_;
  images.push_back(0);
  write(images, labels_);
  expect_refused({images_path().string(), "1 bytes after the 7 images"});
}

TEST_F(MnistErrors, ImageAndLabelCountsDiffer) {
  write(images_, idx_labels(Bytes(set_.labels.begin(), set_.labels.end() - 1)));
  expect_refused({images_path().string(), labels_path().string(), "7 images", "6 labels"});
}

TEST_F(MnistErrors, LabelOutOfRange) {
  auto labels = set_.labels;
  labels[5] = 10;
  write(images_, idx_labels(labels));
  expect_refused({labels_path().string(), "label 10 at item 5", "outside 0..9"});
}

TEST_F(MnistErrors, TruncatedGzip) {
  Bytes big(20000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 31 % 251);
  IdxSet set = set_;
  set.count = 1000;
  write_gzip(dir_ / "train-images-idx3-ubyte.gz", idx_images(big, set.count, set.rows, set.cols));
  auto gz = read_file(dir_ / "train-images-idx3-ubyte.gz");
  write_file(dir_ / "train-images-idx3-ubyte.gz", Bytes(gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)));
  write_file(labels_path(), labels_);
  expect_usage_error([&] { open_mnist(dir_, Split::train); },
                     {(dir_ / "train-images-idx3-ubyte.gz").string(), "truncated gzip"});
  // A damaged stream (bytes flipped in the middle) is refused too, whatever zlib calls it.
  gz[gz.size() / 2] ^= 0xFF;
  gz[gz.size() / 2 + 1] ^= 0xFF;
  write_file(dir_ / "train-images-idx3-ubyte.gz", gz);
  expect_usage_error([&] { open_mnist(dir_, Split::train); }, {(dir_ / "train-images-idx3-ubyte.gz").string()});
}

TEST_F(MnistErrors, EveryTruncationIsRefusedNeverReadShort) {
  write_file(labels_path(), labels_);
  for (std::size_t length = 0; length < images_.size(); ++length) {
    write_file(images_path(), Bytes(images_.begin(), images_.begin() + static_cast<long>(length)));
    EXPECT_THROW(open_mnist(dir_, Split::train), UsageError) << "length " << length;
  }
  write_file(images_path(), images_);
  for (std::size_t length = 0; length < labels_.size(); ++length) {
    write_file(labels_path(), Bytes(labels_.begin(), labels_.begin() + static_cast<long>(length)));
    EXPECT_THROW(open_mnist(dir_, Split::train), UsageError) << "length " << length;
  }
}

// ---- CIFAR -----------------------------------------------------------------------------------

constexpr std::size_t kPixels = 3 * 32 * 32;

// Records of `prefix` label bytes + 3072 pixels; labels[i] holds the prefix of record i.
Bytes cifar_records(const std::vector<Bytes>& labels, const Bytes& pixels) {
  Bytes out;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    out.insert(out.end(), labels[i].begin(), labels[i].end());
    out.insert(out.end(), pixels.begin() + static_cast<long>(i * kPixels),
               pixels.begin() + static_cast<long>((i + 1) * kPixels));
  }
  return out;
}

TEST(Cifar10, BatchesReadBackExactlyFromTheChildFolder) {
  const auto root = fresh_dir("cifar10");
  const auto dir = root / "cifar-10-batches-bin";
  std::vector<Bytes> all_pixels;
  std::vector<std::uint8_t> all_labels;
  for (int b = 1; b <= 5; ++b) {
    auto pixels = random_bytes(3 * kPixels, static_cast<unsigned>(b));
    std::vector<Bytes> labels;
    for (int r = 0; r < 3; ++r) {
      labels.push_back({static_cast<std::uint8_t>((b * 3 + r) % 10)});
      all_labels.push_back(labels.back()[0]);
    }
    write_file(dir / ("data_batch_" + std::to_string(b) + ".bin"), cifar_records(labels, pixels));
    all_pixels.push_back(pixels);
  }
  const auto test_pixels = random_bytes(2 * kPixels, 9);
  write_file(dir / "test_batch.bin", cifar_records({{9}, {0}}, test_pixels));
  write_file(dir / "batches.meta.txt", Bytes{'a',  '\n', 'b',  '\n', 'c',  '\n', 'd',  '\n', 'e',  '\n', 'f',
                                             '\n', 'g',  '\n', 'h',  '\n', 'i',  '\n', 'j',  '\n', '\n'});
  const auto train = open_cifar10(root, Split::train);
  ASSERT_EQ(train->size(), 15);
  const ImageShape shape{3, 32, 32};
  EXPECT_EQ(train->fixed_shape(), shape);
  Bytes scratch;
  for (int i = 0; i < 15; ++i) {
    EXPECT_EQ(train->label(i), all_labels[static_cast<std::size_t>(i)]);
    expect_image(train->image(i, scratch), all_pixels[static_cast<std::size_t>(i / 3)].data() + (i % 3) * kPixels,
                 shape);
  }
  EXPECT_EQ(train->class_names().back(), "j");
  EXPECT_EQ(train->describe(), "CIFAR-10 train, 15 images 3x32x32, 10 classes, " + dir.string() + " (memory-mapped)");
  const auto test = open_cifar10(dir, Split::test);  // the batches folder itself works too
  ASSERT_EQ(test->size(), 2);
  EXPECT_EQ(test->label(0), 9);
  expect_image(test->image(1, scratch), test_pixels.data() + kPixels, shape);
  fs::remove(dir / "batches.meta.txt");
  EXPECT_EQ(open_cifar10(dir, Split::test)->class_names()[0], "airplane");
}

TEST(Cifar10, CorruptionsAreRefused) {
  const auto dir = fresh_dir("cifar10-errors");
  const auto test = dir / "test_batch.bin";
  const auto open = [&] { open_cifar10(dir, Split::test); };
  expect_usage_error(open, {test.string(), "does not exist", "tools/fetch-data cifar10"});
  write_file(test, cifar_records({{1}, {2}}, random_bytes(2 * kPixels, 1)));
  auto bytes = read_file(test);
  write_file(test, Bytes(bytes.begin(), bytes.end() - 1));
  expect_usage_error(open, {test.string(), "6145 bytes", "3073-byte records", "truncated"});
  write_file(test, cifar_records({{1, 2}, {3, 4}}, random_bytes(2 * kPixels, 1)));
  expect_usage_error(open, {test.string(), "CIFAR-100", "cifar100:DIR"});
  write_file(test, cifar_records({{1}, {10}}, random_bytes(2 * kPixels, 1)));
  expect_usage_error(open, {test.string(), "record 1", "label 10", "outside 0..9"});
  write_file(test, {});
  expect_usage_error(open, {test.string(), "is empty"});
  // Training batches of unequal length: one was cut at a record boundary.
  for (int b = 1; b <= 5; ++b)
    write_file(dir / ("data_batch_" + std::to_string(b) + ".bin"),
               cifar_records(std::vector<Bytes>(b == 4 ? 1 : 2, Bytes{1}), random_bytes(2 * kPixels, 1)));
  expect_usage_error([&] { open_cifar10(dir, Split::train); },
                     {(dir / "data_batch_4.bin").string(), "holds 1 records", "data_batch_1.bin", "truncated"});
  write_file(dir / "batches.meta.txt", Bytes{'a', '\n'});
  write_file(test, cifar_records({{1}}, random_bytes(kPixels, 1)));
  expect_usage_error(open, {(dir / "batches.meta.txt").string(), "names 1 classes, not 10"});
}

TEST(Cifar100, FineAndCoarseLabelsReadBackExactly) {
  const auto dir = fresh_dir("cifar100") / "cifar-100-binary";
  const auto pixels = random_bytes(3 * kPixels, 5);
  write_file(dir / "train.bin", cifar_records({{19, 99}, {0, 0}, {7, 42}}, pixels));
  const auto fine = open_cifar100(dir.parent_path(), Split::train);
  ASSERT_EQ(fine->size(), 3);
  EXPECT_EQ(fine->label(0), 99);
  EXPECT_EQ(fine->label(2), 42);
  EXPECT_EQ(fine->class_names().size(), 100u);
  const auto coarse = open_cifar100(dir, Split::train, false);
  EXPECT_EQ(coarse->label(0), 19);
  EXPECT_EQ(coarse->label(2), 7);
  EXPECT_EQ(coarse->class_names().size(), 20u);
  Bytes scratch;
  expect_image(coarse->image(2, scratch), pixels.data() + 2 * kPixels, {3, 32, 32});
  expect_image(fine->image(0, scratch), pixels.data(), {3, 32, 32});
  EXPECT_NE(fine->describe().find("CIFAR-100 train, 3 images 3x32x32, 100 fine classes"), std::string::npos);

  write_file(dir / "test.bin", cifar_records({{1, 100}}, pixels));
  expect_usage_error([&] { open_cifar100(dir, Split::test); },
                     {(dir / "test.bin").string(), "fine label 100", "outside 0..99"});
  write_file(dir / "test.bin", cifar_records({{20, 1}}, pixels));
  expect_usage_error([&] { open_cifar100(dir, Split::test); },
                     {(dir / "test.bin").string(), "coarse label 20", "outside 0..19"});
  write_file(dir / "test.bin", cifar_records({{1}, {2}, {3}}, pixels));
  expect_usage_error([&] { open_cifar100(dir, Split::test); }, {(dir / "test.bin").string(), "cifar10:DIR"});
}

// ---- Image folders ---------------------------------------------------------------------------

// An interleaved test picture with smooth gradients (JPEG-friendly), `channels` 1, 3 or 4.
Bytes picture(int height, int width, int channels, int seed) {
  Bytes out(static_cast<std::size_t>(height * width * channels));
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c)
        out[static_cast<std::size_t>((y * width + x) * channels + c)] =
            static_cast<std::uint8_t>((x * (5 + 3 * c) + y * (7 - 2 * c) + seed * 40 + (c == 3 ? 100 : 0)) % 256);
  return out;
}

// Interleaved -> CHW, keeping the first `keep` channels.
Bytes planar(const Bytes& interleaved, int height, int width, int channels, int keep) {
  Bytes out(static_cast<std::size_t>(height * width * keep));
  for (int c = 0; c < keep; ++c)
    for (int p = 0; p < height * width; ++p)
      out[static_cast<std::size_t>(c * height * width + p)] = interleaved[static_cast<std::size_t>(p * channels + c)];
  return out;
}

void write_png(const fs::path& path, const Bytes& pixels, int height, int width, int channels) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
  fs::create_directories(path.parent_path());
  ASSERT_NE(png_image_write_to_file(&image, path.c_str(), 0, pixels.data(), 0, nullptr), 0) << image.message;
}

void write_jpeg(const fs::path& path, const Bytes& pixels, int height, int width, int channels) {
  tjhandle handle = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  ASSERT_EQ(tjCompress2(handle, pixels.data(), width, 0, height, channels == 1 ? TJPF_GRAY : TJPF_RGB, &jpeg, &size,
                        channels == 1 ? TJSAMP_GRAY : TJSAMP_444, 95, TJFLAG_ACCURATEDCT),
            0)
      << tjGetErrorStr2(handle);
  write_file(path, Bytes(jpeg, jpeg + size));
  tjFree(jpeg);
  tjDestroy(handle);
}

TEST(ImageFolder, ImagesOfDifferentSizesHaveNoFixedShape) {
  const auto dir = fresh_dir("folder-sizes");
  write_png(dir / "a" / "1.png", picture(8, 8, 3, 0), 8, 8, 3);
  write_jpeg(dir / "a" / "2.jpg", picture(8, 8, 3, 1), 8, 8, 3);
  write_jpeg(dir / "b" / "1.jpg", picture(8, 9, 3, 2), 8, 9, 3);  // one pixel wider
  const auto data = open_image_folder(dir);
  EXPECT_EQ(data->fixed_shape(), std::nullopt);
  EXPECT_NE(data->describe().find("3 images of varying size, 3 channels, 2 classes"), std::string::npos)
      << data->describe();
}

TEST(ImageFolder, DecodesPngExactlyAndJpegCloselyInImageFolderOrder) {
  const auto dir = fresh_dir("folder");
  const int h = 12, w = 17;
  const auto rgb = picture(h, w, 3, 0), gray = picture(h, w, 1, 1), rgba = picture(h, w, 4, 2),
             jpeg_rgb = picture(h, w, 3, 3);
  write_png(dir / "dog" / "b.png", rgb, h, w, 3);
  write_png(dir / "dog" / "a.PNG", gray, h, w, 1);  // sorts first; upper-case extension
  write_png(dir / "cat" / "sub" / "rgba.png", rgba, h, w, 4);
  write_jpeg(dir / "cat" / "photo.JPEG", jpeg_rgb, h, w, 3);
  write_file(dir / "cat" / "notes.txt", {'x'});             // skipped and counted
  write_file(dir / ".ipynb_checkpoints" / "x.png", {'x'});  // hidden: not a class
  const auto data = open_image_folder(dir);
  ASSERT_EQ(data->size(), 4);
  EXPECT_EQ(data->class_names(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(data->channels(), 3);
  // All four are 12x17 (PNG and JPEG headers alike): one shape, no --resize needed.
  EXPECT_EQ(data->fixed_shape(), (ImageShape{3, h, w}));
  EXPECT_NE(data->describe().find("4 images 12x17, 3 channels, 2 classes"), std::string::npos) << data->describe();
  EXPECT_NE(data->describe().find("1 files that are not"), std::string::npos);
  // Order: cat/photo.JPEG, cat/sub/rgba.png, dog/a.PNG, dog/b.png.
  EXPECT_EQ(data->label(0), 0);
  EXPECT_EQ(data->label(1), 0);
  EXPECT_EQ(data->label(2), 1);
  EXPECT_EQ(data->label(3), 1);
  const ImageShape shape{3, h, w};
  Bytes scratch;
  expect_image(data->image(3, scratch), planar(rgb, h, w, 3, 3).data(), shape);
  expect_image(data->image(1, scratch), planar(rgba, h, w, 4, 3).data(), shape);  // alpha dropped
  Bytes gray3;
  for (int c = 0; c < 3; ++c) gray3.insert(gray3.end(), gray.begin(), gray.end());
  expect_image(data->image(2, scratch), gray3.data(), shape);  // gray replicated
  const auto view = data->image(0, scratch);
  ASSERT_EQ(view.shape, shape);
  EXPECT_EQ(view.pixels, scratch.data());
  const auto expected = planar(jpeg_rgb, h, w, 3, 3);
  double total = 0, worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double error = std::abs(static_cast<double>(view.pixels[i]) - expected[i]);
    total += error;
    worst = std::max(worst, error);
  }
  EXPECT_LT(total / static_cast<double>(expected.size()), 3.0) << "JPEG quality 95, 4:4:4";
  EXPECT_LT(worst, 40.0);
}

TEST(ImageFolder, GraySetsHaveOneChannelAndColourConvertsToLuma) {
  const auto dir = fresh_dir("folder-gray");
  const int h = 9, w = 8;
  const auto gray = picture(h, w, 1, 4);
  write_png(dir / "a" / "x.png", gray, h, w, 1);
  write_jpeg(dir / "b" / "y.jpg", gray, h, w, 1);
  const auto data = open_image_folder(dir);
  EXPECT_EQ(data->channels(), 1);
  Bytes scratch;
  expect_image(data->image(0, scratch), gray.data(), {1, h, w});
  EXPECT_EQ(data->image(1, scratch).shape, (ImageShape{1, h, w}));

  const auto rgb = picture(h, w, 3, 5);
  write_png(dir / "c" / "z.png", rgb, h, w, 3);
  EXPECT_EQ(open_image_folder(dir)->channels(), 3) << "one colour image makes the set colour";
  const auto forced = open_image_folder(dir, {.channels = 1});
  const auto view = forced->image(2, scratch);
  ASSERT_EQ(view.shape, (ImageShape{1, h, w}));
  for (int p = 0; p < h * w; ++p) {
    const auto* px = &rgb[static_cast<std::size_t>(p * 3)];
    EXPECT_EQ(view.pixels[p], (299 * px[0] + 587 * px[1] + 114 * px[2] + 500) / 1000);
  }
}

TEST(ImageFolder, BadFoldersAndCorruptImagesAreRefused) {
  const auto dir = fresh_dir("folder-errors");
  expect_usage_error([&] { open_image_folder(dir / "nope"); }, {(dir / "nope").string(), "does not exist"});
  expect_usage_error([&] { open_image_folder(dir); }, {dir.string(), "no class sub-folders", "ImageFolder layout"});
  fs::create_directories(dir / "empty");
  write_file(dir / "empty" / "readme.txt", {'x'});
  expect_usage_error([&] { open_image_folder(dir); }, {(dir / "empty").string(), "holds no .png, .jpg or .jpeg"});
  fs::remove_all(dir / "empty");

  const int h = 16, w = 16;
  write_png(dir / "a" / "good.png", picture(h, w, 3, 0), h, w, 3);
  auto png = read_file(dir / "a" / "good.png");
  write_file(dir / "a" / "cut.png", Bytes(png.begin(), png.begin() + static_cast<long>(png.size() / 2)));
  write_jpeg(dir / "b" / "good.jpg", picture(h, w, 3, 1), h, w, 3);
  auto jpeg = read_file(dir / "b" / "good.jpg");
  write_file(dir / "b" / "cut.jpg", Bytes(jpeg.begin(), jpeg.begin() + static_cast<long>(jpeg.size() / 2)));
  write_file(dir / "b" / "text.jpeg", {'h', 'e', 'l', 'l', 'o'});
  const auto data = open_image_folder(dir);  // a/cut, a/good, b/cut, b/good, b/text
  ASSERT_EQ(data->size(), 5);
  Bytes scratch;
  EXPECT_EQ(data->image(1, scratch).shape, (ImageShape{3, h, w}));
  expect_usage_error([&] { data->image(0, scratch); }, {(dir / "a" / "cut.png").string(), "not a readable PNG"});
  expect_usage_error([&] { data->image(2, scratch); }, {(dir / "b" / "cut.jpg").string(), "not a readable JPEG"});
  expect_usage_error([&] { data->image(4, scratch); },
                     {(dir / "b" / "text.jpeg").string(), "neither a PNG nor a JPEG"});
  fs::remove(dir / "a" / "cut.png");
  fs::remove(dir / "a" / "good.png");
  write_file(dir / "a" / "bad.png", {'n', 'o', 't'});
  // The channel probe reads the first image's header at open.
  expect_usage_error([&] { open_image_folder(dir); }, {(dir / "a" / "bad.png").string(), "neither a PNG nor a JPEG"});
}

// Cut and damaged files decode to an image or a UsageError, never a crash (this test is worth
// most under the asan preset).
TEST(ImageFolder, DamagedImagesGiveAnImageOrAUsageErrorNeverACrash) {
  const auto dir = fresh_dir("folder-damage");
  const int h = 24, w = 20;
  write_png(dir / "a" / "good.png", picture(h, w, 3, 0), h, w, 3);
  write_jpeg(dir / "a" / "good.jpg", picture(h, w, 3, 1), h, w, 3);
  Bytes scratch;
  int refused = 0, decoded = 0;
  for (const char* name : {"good.png", "good.jpg"}) {
    const auto original = read_file(dir / "a" / name);
    const auto damaged = dir / "b" / (std::string("x") + fs::path(name).extension().string());
    std::mt19937 random(5);
    for (int trial = 0; trial < 60; ++trial) {
      auto bytes = original;
      if (trial < 30) {
        bytes.resize(static_cast<std::size_t>(trial) * original.size() / 30);
      } else {
        for (int flips = 0; flips < 4; ++flips) bytes[8 + random() % (bytes.size() - 8)] ^= 0x5A;
      }
      write_file(damaged, bytes);
      const auto data = open_image_folder(dir, {.channels = 3});
      try {
        const auto view = data->image(2, scratch);  // a/good.jpg, a/good.png, b/x.*
        EXPECT_EQ(view.shape.channels, 3);
        ++decoded;
      } catch (const UsageError& error) {
        EXPECT_NE(std::string(error.what()).find(damaged.string()), std::string::npos) << error.what();
        ++refused;
      }
      fs::remove(damaged);
    }
  }
  std::printf("damaged images: %d refused, %d decoded (flipped bytes inside compressed data may still decode)\n",
              refused, decoded);
  EXPECT_GE(refused, 60) << "every cut file at least";
}

TEST(ImageFolder, ManyThreadsDecodeTheSameImagesAlike) {
  const auto dir = fresh_dir("folder-threads");
  const int h = 31, w = 29;
  for (int i = 0; i < 6; ++i) {
    write_png(dir / "p" / (std::to_string(i) + ".png"), picture(h, w, 3, i), h, w, 3);
    write_jpeg(dir / "j" / (std::to_string(i) + ".jpg"), picture(h, w, 3, i), h, w, 3);
  }
  const auto data = open_image_folder(dir);
  std::vector<Bytes> serial(12);
  Bytes scratch;
  for (int i = 0; i < 12; ++i) {
    const auto view = data->image(i, scratch);
    serial[static_cast<std::size_t>(i)].assign(view.pixels, view.pixels + view.shape.bytes());
  }
  std::vector<int> mismatches(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      Bytes own;
      for (int round = 0; round < 5; ++round)
        for (int i = 0; i < 12; ++i) {
          const auto view = data->image((i + t) % 12, own);
          mismatches[static_cast<std::size_t>(t)] +=
              Bytes(view.pixels, view.pixels + view.shape.bytes()) != serial[static_cast<std::size_t>((i + t) % 12)];
        }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

// ---- Synthetic -------------------------------------------------------------------------------

TEST(Synthetic, SameIndexSameImageOnEveryThreadAndInstance) {
  const SyntheticImageOptions options{.count = 64, .classes = 12, .shape = {3, 20, 24}, .seed = 7};
  const auto a = make_synthetic_images(options), b = make_synthetic_images(options);
  EXPECT_TRUE(a->synthetic());
  EXPECT_NE(a->describe().find("SYNTHETIC"), std::string::npos);
  EXPECT_EQ(a->fixed_shape(), (ImageShape{3, 20, 24}));
  std::vector<Bytes> serial(64);
  for (int i = 0; i < 64; ++i) {
    Bytes scratch;
    const auto view = a->image(i, scratch);
    serial[static_cast<std::size_t>(i)].assign(view.pixels, view.pixels + view.shape.bytes());
  }
  std::vector<Bytes> threaded(64);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      Bytes scratch;
      for (int i = 63 - t; i >= 0; i -= 4) {  // backwards, interleaved
        const auto view = b->image(i, scratch);
        threaded[static_cast<std::size_t>(i)].assign(view.pixels, view.pixels + view.shape.bytes());
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(serial, threaded);
  EXPECT_NE(serial[0], serial[12]) << "same class, different draws";

  auto other = options;
  other.seed = 8;
  Bytes scratch;
  const auto view = make_synthetic_images(other)->image(0, scratch);
  EXPECT_NE(Bytes(view.pixels, view.pixels + view.shape.bytes()), serial[0]);
  other = options;
  other.split = Split::test;
  const auto test_view = make_synthetic_images(other)->image(0, scratch);
  EXPECT_NE(Bytes(test_view.pixels, test_view.pixels + test_view.shape.bytes()), serial[0]);
  EXPECT_EQ(make_synthetic_images(other)->size(), 2000);
}

TEST(Synthetic, ClassesAreBalancedAndSmallGraySizesWork) {
  const auto data = make_synthetic_images({.count = 1003, .classes = 10, .shape = {1, 8, 8}});
  std::vector<int> counts(10);
  for (std::int64_t i = 0; i < data->size(); ++i) ++counts[static_cast<std::size_t>(data->label(i))];
  for (int c : counts) EXPECT_TRUE(c == 100 || c == 101) << c;
  EXPECT_EQ(data->class_names()[0], "disc");
  Bytes scratch;
  EXPECT_EQ(data->image(1002, scratch).shape, (ImageShape{1, 8, 8}));
  EXPECT_THROW(data->image(1003, scratch), std::out_of_range);
}

// Per-image features for two nearest-class-mean classifiers: the mean colour (which must tell
// nothing) and a shape signature independent of position, size and colour (which must tell a
// lot): the pixels far from the median brightness (the background), cropped to their bounding
// box and pooled on an 8x8 grid.
struct Features {
  std::vector<double> colour, shape;
};

Features features(const ImageView& view) {
  Features f;
  const int h = view.shape.height, w = view.shape.width, channels = view.shape.channels;
  std::vector<double> gray(static_cast<std::size_t>(h * w));
  for (int c = 0; c < channels; ++c) {
    double sum = 0;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        sum += view.at(c, y, x);
        gray[static_cast<std::size_t>(y * w + x)] += view.at(c, y, x) / double(channels);
      }
    f.colour.push_back(sum / (h * w));
  }
  auto sorted = gray;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(sorted.size() / 2), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const auto far = [&](int y, int x) { return std::abs(gray[static_cast<std::size_t>(y * w + x)] - median) > 45; };
  int y0 = h, y1 = -1, x0 = w, x1 = -1;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      if (far(y, x)) y0 = std::min(y0, y), y1 = std::max(y1, y), x0 = std::min(x0, x), x1 = std::max(x1, x);
  f.shape.assign(64, 0.0);
  if (y1 < 0) return f;
  std::vector<double> cells(64);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      const auto cell = static_cast<std::size_t>((y - y0) * 8 / (y1 - y0 + 1) * 8 + (x - x0) * 8 / (x1 - x0 + 1));
      cells[cell] += 1;
      f.shape[cell] += far(y, x);
    }
  for (std::size_t k = 0; k < 64; ++k) f.shape[k] /= std::max(cells[k], 1.0);
  return f;
}

double nearest_mean_accuracy(const ImageDataset& data, bool shape_features) {
  const auto classes = data.class_names().size();
  const std::int64_t half = data.size() / 2;
  std::vector<std::vector<double>> sums(classes);
  std::vector<int> counts(classes);
  Bytes scratch;
  const auto pick = [&](std::int64_t i) {
    const auto f = features(data.image(i, scratch));
    return shape_features ? f.shape : f.colour;
  };
  for (std::int64_t i = 0; i < half; ++i) {
    const auto f = pick(i);
    auto& sum = sums[static_cast<std::size_t>(data.label(i))];
    sum.resize(f.size());
    for (std::size_t k = 0; k < f.size(); ++k) sum[k] += f[k];
    ++counts[static_cast<std::size_t>(data.label(i))];
  }
  int right = 0;
  for (std::int64_t i = half; i < data.size(); ++i) {
    const auto f = pick(i);
    std::size_t best = 0;
    double best_distance = 1e300;
    for (std::size_t c = 0; c < classes; ++c) {
      double distance = 0;
      for (std::size_t k = 0; k < f.size(); ++k) {
        const double d = f[k] - sums[c][k] / counts[c];
        distance += d * d;
      }
      if (distance < best_distance) best_distance = distance, best = c;
    }
    right += static_cast<std::int64_t>(best) == data.label(i);
  }
  return static_cast<double>(right) / static_cast<double>(data.size() - half);
}

TEST(Synthetic, ShapesTellTheClassAndMeanColourDoesNot) {
  const auto data = make_synthetic_images({.count = 2000, .classes = 10, .shape = {3, 32, 32}, .seed = 3});
  const double colour = nearest_mean_accuracy(*data, false);
  const double shape = nearest_mean_accuracy(*data, true);
  std::printf("nearest-class-mean accuracy, 10 classes (chance 0.10): mean colour %.3f, cropped shape mask %.3f\n",
              colour, shape);
  EXPECT_LT(colour, 0.16);
  EXPECT_GT(shape, 0.80);
}

TEST(SubsetOf, HoldsTheChosenImagesWithTheirLabelsInOrder) {
  const auto base = make_synthetic_images({.count = 20, .test_count = 4});
  const auto subset = subset_of(*base, {7, 2, 19}, "validation part");
  ASSERT_EQ(subset->size(), 3);
  EXPECT_EQ(subset->class_names(), base->class_names());
  EXPECT_EQ(subset->fixed_shape(), base->fixed_shape());
  EXPECT_TRUE(subset->synthetic());
  EXPECT_EQ(subset->describe().rfind("validation part, 3 images of ", 0), 0u) << subset->describe();
  const std::vector<std::int64_t> chosen{7, 2, 19};
  for (std::int64_t i = 0; i < 3; ++i) {
    const auto from = chosen[static_cast<std::size_t>(i)];
    EXPECT_EQ(subset->label(i), base->label(from));
    std::vector<std::uint8_t> a, b;
    const auto mine = subset->image(i, a), theirs = base->image(from, b);
    ASSERT_EQ(mine.shape, theirs.shape);
    const auto bytes = static_cast<std::size_t>(mine.shape.channels * mine.shape.height * mine.shape.width);
    EXPECT_TRUE(std::equal(mine.pixels, mine.pixels + bytes, theirs.pixels)) << i;
  }
  EXPECT_THROW(subset->label(3), std::out_of_range);
  EXPECT_THROW(subset_of(*base, {20}, "x"), std::out_of_range);
}

TEST(Synthetic, BadOptionsAreRefused) {
  expect_usage_error([] { make_synthetic_images({.classes = 13}); }, {"2 to 12 classes", "13"});
  expect_usage_error([] { make_synthetic_images({.shape = {2, 32, 32}}); }, {"1 or 3 channels"});
  expect_usage_error([] { make_synthetic_images({.shape = {3, 7, 32}}); }, {"7x32", "8x8"});
  expect_usage_error([] { make_synthetic_images({.count = 0}); }, {"count 0"});
}

// ---- open_image_dataset ----------------------------------------------------------------------

TEST(OpenImageDataset, SpecsChooseTheFormatAndTheSplit) {
  const auto dir = fresh_dir("spec");
  const int h = 8, w = 8;
  write_png(dir / "train" / "a" / "1.png", picture(h, w, 3, 0), h, w, 3);
  write_png(dir / "train" / "b" / "1.png", picture(h, w, 3, 1), h, w, 3);
  write_png(dir / "val" / "a" / "1.png", picture(h, w, 3, 2), h, w, 3);
  EXPECT_EQ(open_image_dataset("folder:" + dir.string(), Split::train)->size(), 2);
  EXPECT_EQ(open_image_dataset("folder:" + dir.string(), Split::test)->size(), 1);
  EXPECT_EQ(open_image_dataset("folder:" + (dir / "train").string(), Split::test)->size(), 2);
  // A folder without train/ has no test split of its own: its "test split" is its training images.
  EXPECT_TRUE(has_separate_test_split("folder:" + dir.string()));
  EXPECT_FALSE(has_separate_test_split("folder:" + (dir / "train").string()));
  EXPECT_TRUE(has_separate_test_split("synthetic"));
  EXPECT_TRUE(has_separate_test_split("cifar10:" + dir.string()));
  const auto synthetic = open_image_dataset("synthetic", Split::test, {.count = 5, .test_count = 3});
  EXPECT_EQ(synthetic->size(), 3);
  EXPECT_NE(synthetic->describe().find("test"), std::string::npos);
  expect_usage_error([&] { open_image_dataset("cifar10:" + dir.string(), Split::train); },
                     {(dir / "data_batch_1.bin").string(), "does not exist"});
  for (const char* bad : {"imagenet:/x", "mnist", "mnist:", "synthetic:3", ""})
    expect_usage_error([&] { open_image_dataset(bad, Split::train); },
                       {"'" + std::string(bad) + "'", "mnist:DIR", "fashion-mnist:DIR", "kmnist:DIR", "cifar10:DIR",
                        "cifar100:DIR", "folder:DIR", "synthetic"});
}

}  // namespace
