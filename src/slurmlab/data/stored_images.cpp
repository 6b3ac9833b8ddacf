// MNIST-style IDX files and CIFAR binary batches: fixed-shape images stored back to back in
// files that are memory-mapped (or inflated, for .gz), served as views into that storage.
#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/file_bytes.hpp"
#include "slurmlab/data/images.hpp"

namespace slurmlab::data {
namespace {

namespace fs = std::filesystem;

// Images of one shape stored in files at a fixed stride, with labels held in memory.
class StoredImages final : public ImageDataset {
 public:
  // One run of consecutive images inside one file.
  struct Segment {
    std::size_t file = 0;
    std::size_t first_pixel = 0;  // byte offset of image 0's first pixel
    std::size_t stride = 0;       // bytes from one image to the next
    std::int64_t count = 0;
  };

  StoredImages(std::vector<FileBytes> files, std::vector<Segment> segments, std::vector<std::uint8_t> labels,
               std::vector<std::string> class_names, ImageShape shape, std::string description)
      : files_(std::move(files)),
        segments_(std::move(segments)),
        labels_(std::move(labels)),
        class_names_(std::move(class_names)),
        shape_(shape),
        description_(std::move(description)) {
    std::int64_t start = 0;
    for (const auto& segment : segments_) {
      starts_.push_back(start);
      start += segment.count;
    }
    if (start != static_cast<std::int64_t>(labels_.size()))
      throw std::logic_error("StoredImages: segment counts do not match the labels");
  }

  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  std::int64_t label(std::int64_t index) const override { return labels_.at(checked(index)); }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  ImageView image(std::int64_t index, std::vector<std::uint8_t>& /*scratch*/) const override {
    checked(index);
    const auto it = std::upper_bound(starts_.begin(), starts_.end(), index) - 1;
    const auto& segment = segments_[static_cast<std::size_t>(it - starts_.begin())];
    const auto offset = segment.first_pixel + static_cast<std::size_t>(index - *it) * segment.stride;
    return {files_[segment.file].data() + offset, shape_};
  }
  std::optional<ImageShape> fixed_shape() const override { return shape_; }
  int channels() const override { return shape_.channels; }
  std::string describe() const override { return description_; }

 private:
  std::size_t checked(std::int64_t index) const {
    if (index < 0 || index >= size())
      throw std::out_of_range("image index " + std::to_string(index) + " outside 0.." + std::to_string(size() - 1));
    return static_cast<std::size_t>(index);
  }

  std::vector<FileBytes> files_;
  std::vector<Segment> segments_;
  std::vector<std::int64_t> starts_;
  std::vector<std::uint8_t> labels_;
  std::vector<std::string> class_names_;
  ImageShape shape_;
  std::string description_;
};

std::string quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

std::string hex32(std::uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08X", value);
  return text;
}

std::uint32_t big_endian32(const std::uint8_t* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
         std::uint32_t{bytes[3]};
}

std::string storage_note(const std::vector<FileBytes>& files) {
  for (const auto& file : files)
    if (!file.memory_mapped()) return "inflated in memory";
  return "memory-mapped";
}

// ---- MNIST (IDX) -------------------------------------------------------------------------

struct MnistNames {
  const char* title;
  const char* folder;  // torchvision's folder under the root
  const char* fetch;   // tools/fetch-data argument
  std::array<const char*, 10> classes;
};

const MnistNames& mnist_names(MnistVariant variant) {
  static const MnistNames mnist{"MNIST", "MNIST", "mnist", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}};
  static const MnistNames fashion{
      "Fashion-MNIST",
      "FashionMNIST",
      "fashion-mnist",
      {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}};
  static const MnistNames kmnist{
      "KMNIST", "KMNIST", "kmnist", {"o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"}};
  switch (variant) {
    case MnistVariant::fashion_mnist:
      return fashion;
    case MnistVariant::kmnist:
      return kmnist;
    case MnistVariant::mnist:
      break;
  }
  return mnist;
}

// The IDX file `name` (plain, else .gz) in the first of `folders` that holds it.
fs::path find_idx(const std::vector<fs::path>& folders, const std::string& name, const std::string& what,
                  const std::string& fix) {
  for (const auto& folder : folders) {
    if (fs::exists(folder / name)) return folder / name;
    if (fs::exists(folder / (name + ".gz"))) return folder / (name + ".gz");
  }
  throw UsageError(what + " " + quoted(folders.front() / name) + " (or .gz) does not exist; " + fix);
}

// Checks an IDX file's magic number, dimensions and length; returns the dimensions.
std::vector<std::uint32_t> read_idx_header(const FileBytes& file, int dimensions, const std::string& what,
                                           const std::string& item) {
  const auto name = what + " " + quoted(file.path());
  const std::uint32_t expected_magic = 0x00000800u | static_cast<std::uint32_t>(dimensions);
  if (file.size() < 4)
    throw UsageError(name + " is " + std::to_string(file.size()) +
                     " bytes, too short for an IDX file; download it again (tools/fetch-data).");
  const auto magic = big_endian32(file.data());
  if (magic != expected_magic)
    throw UsageError(name + " starts with magic number " + hex32(magic) + ", not " + hex32(expected_magic) +
                     " (IDX unsigned bytes, " + std::to_string(dimensions) +
                     " dimensions); it is not this kind of IDX file, so check the file name and download it again.");
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(dimensions);
  if (file.size() < header)
    throw UsageError(name + " ends inside its " + std::to_string(header) +
                     "-byte header; the file is truncated, download it again.");
  std::vector<std::uint32_t> dims;
  std::size_t payload = 1;
  for (int d = 0; d < dimensions; ++d) {
    dims.push_back(big_endian32(file.data() + 4 + 4 * d));
    payload *= dims.back();
  }
  if (dims.front() == 0) throw UsageError(name + " holds no " + item + "s; download it again.");
  for (std::size_t d = 1; d < dims.size(); ++d)
    if (dims[d] == 0 || dims[d] > 16384)  // also keeps the product below 2^60
      throw UsageError(name + " declares an image dimension of " + std::to_string(dims[d]) +
                       "; the header is damaged, download it again.");
  if (file.size() < header + payload)
    throw UsageError(name + " is truncated: its header promises " + std::to_string(dims.front()) + " " + item + "s (" +
                     std::to_string(header + payload) + " bytes) but the file holds " + std::to_string(file.size()) +
                     " bytes; download it again (tools/fetch-data).");
  if (file.size() > header + payload)
    throw UsageError(name + " has " + std::to_string(file.size() - header - payload) + " bytes after the " +
                     std::to_string(dims.front()) + " " + item +
                     "s its header promises; it is damaged or not an IDX file, download it again.");
  return dims;
}

// ---- CIFAR -------------------------------------------------------------------------------

constexpr int kCifarPixels = 3 * 32 * 32;

fs::path cifar_folder(const fs::path& dir, const char* child) {
  return fs::is_directory(dir / child) ? dir / child : dir;
}

// Non-empty lines of a class-names file, or the fallback when the file does not exist.
std::vector<std::string> read_class_names(const fs::path& path, std::size_t count,
                                          const std::vector<std::string>& fallback) {
  if (!fs::exists(path)) return fallback;
  std::ifstream in(path);
  if (!in) throw UsageError("class names file " + quoted(path) + " cannot be read; check its permissions.");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.size() != count)
    throw UsageError("class names file " + quoted(path) + " names " + std::to_string(names.size()) + " classes, not " +
                     std::to_string(count) +
                     "; it is damaged or from another data set, delete it to use the standard names.");
  return names;
}

std::vector<std::string> numbered_names(int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back(std::to_string(i));
  return names;
}

// Opens CIFAR batch files of `record`-byte records whose labels sit at label_offsets; checks
// the record size and label ranges and appends labels and segments.
struct CifarLabel {
  std::size_t offset;
  int classes;
  const char* name;
};

void add_cifar_file(const fs::path& path, std::size_t record, const CifarLabel& used, const CifarLabel* other,
                    const std::string& what, const std::string& fix, std::vector<FileBytes>& files,
                    std::vector<StoredImages::Segment>& segments, std::vector<std::uint8_t>& labels) {
  auto file = FileBytes::open(path, what, fix);
  const auto name = what + " " + quoted(path);
  if (file.size() == 0) throw UsageError(name + " is empty; download it again (tools/fetch-data).");
  if (file.size() % record != 0) {
    std::string hint;
    if (record == 1 + kCifarPixels && file.size() % (2 + kCifarPixels) == 0)
      hint = " (its size fits CIFAR-100's 3074-byte records: use cifar100:DIR)";
    if (record == 2 + kCifarPixels && file.size() % (1 + kCifarPixels) == 0)
      hint = " (its size fits CIFAR-10's 3073-byte records: use cifar10:DIR)";
    throw UsageError(name + " is " + std::to_string(file.size()) + " bytes, not a whole number of " +
                     std::to_string(record) + "-byte records" + hint +
                     "; it is truncated or another format, download it again.");
  }
  const auto count = static_cast<std::int64_t>(file.size() / record);
  const auto check = [&](const CifarLabel& label, bool keep) {
    for (std::int64_t i = 0; i < count; ++i) {
      const auto value = file.data()[static_cast<std::size_t>(i) * record + label.offset];
      if (value >= label.classes)
        throw UsageError(name + " record " + std::to_string(i) + " has " + label.name + " label " +
                         std::to_string(value) + ", outside 0.." + std::to_string(label.classes - 1) +
                         "; the file is damaged or another format, download it again.");
      if (keep) labels.push_back(value);
    }
  };
  check(used, true);
  if (other != nullptr) check(*other, false);
  segments.push_back({files.size(), record - kCifarPixels, record, count});
  files.push_back(std::move(file));
}

}  // namespace

std::string to_string(const ImageShape& shape) {
  return std::to_string(shape.channels) + "x" + std::to_string(shape.height) + "x" + std::to_string(shape.width);
}

const char* to_string(Split split) {
  return split == Split::train ? "train" : "test";
}

std::unique_ptr<ImageDataset> open_mnist(const fs::path& dir, Split split, MnistVariant variant) {
  const auto& names = mnist_names(variant);
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::vector<fs::path> folders{dir, dir / "raw", dir / names.folder / "raw"};
  const std::string fix = std::string("run tools/fetch-data ") + names.fetch + " --dest " + dir.string() +
                          " or point at the folder holding the IDX files.";
  const auto images_path =
      find_idx(folders, prefix + "-images-idx3-ubyte", std::string(names.title) + " image file", fix);
  const auto labels_path =
      find_idx(folders, prefix + "-labels-idx1-ubyte", std::string(names.title) + " label file", fix);
  std::vector<FileBytes> files;
  files.push_back(FileBytes::open(images_path, std::string(names.title) + " image file", fix));
  auto labels_file = FileBytes::open(labels_path, std::string(names.title) + " label file", fix);
  const auto image_dims = read_idx_header(files[0], 3, std::string(names.title) + " image file", "image");
  const auto label_dims = read_idx_header(labels_file, 1, std::string(names.title) + " label file", "label");
  if (image_dims[0] != label_dims[0])
    throw UsageError(std::string(names.title) + " image file " + quoted(images_path) + " holds " +
                     std::to_string(image_dims[0]) + " images but label file " + quoted(labels_path) + " holds " +
                     std::to_string(label_dims[0]) + " labels; one of them is truncated or from another split, " +
                     "download both again.");
  std::vector<std::uint8_t> labels(labels_file.data() + 8, labels_file.data() + 8 + label_dims[0]);
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] > 9)
      throw UsageError(std::string(names.title) + " label file " + quoted(labels_path) + " holds label " +
                       std::to_string(labels[i]) + " at item " + std::to_string(i) +
                       ", outside 0..9; the file is damaged or from another data set, download it again.");
  const ImageShape shape{1, static_cast<int>(image_dims[1]), static_cast<int>(image_dims[2])};
  const auto count = static_cast<std::int64_t>(image_dims[0]);
  const auto description = std::string(names.title) + " " + to_string(split) + ", " + std::to_string(count) +
                           " images " + to_string(shape) + ", 10 classes, " + images_path.parent_path().string() +
                           " (" + storage_note(files) + ")";
  std::vector<StoredImages::Segment> segments{{0, 16, static_cast<std::size_t>(shape.bytes()), count}};
  return std::make_unique<StoredImages>(std::move(files), std::move(segments), std::move(labels),
                                        std::vector<std::string>(names.classes.begin(), names.classes.end()), shape,
                                        description);
}

std::unique_ptr<ImageDataset> open_cifar10(const fs::path& dir, Split split) {
  const auto folder = cifar_folder(dir, "cifar-10-batches-bin");
  const std::string what = "CIFAR-10 batch file";
  const std::string fix = "run tools/fetch-data cifar10 --dest " + dir.string() +
                          " or point at the cifar-10-batches-bin folder (the binary version, not the Python one).";
  std::vector<fs::path> paths;
  if (split == Split::train)
    for (int b = 1; b <= 5; ++b) paths.push_back(folder / ("data_batch_" + std::to_string(b) + ".bin"));
  else
    paths.push_back(folder / "test_batch.bin");
  std::vector<FileBytes> files;
  std::vector<StoredImages::Segment> segments;
  std::vector<std::uint8_t> labels;
  for (const auto& path : paths) {
    add_cifar_file(path, 1 + kCifarPixels, {0, 10, "class"}, nullptr, what, fix, files, segments, labels);
    if (segments.back().count != segments.front().count)
      throw UsageError(what + " " + quoted(path) + " holds " + std::to_string(segments.back().count) + " records but " +
                       quoted(paths.front()) + " holds " + std::to_string(segments.front().count) +
                       "; one of them is truncated, download the set again.");
  }
  auto class_names =
      read_class_names(folder / "batches.meta.txt", 10,
                       {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"});
  const ImageShape shape{3, 32, 32};
  const auto description = std::string("CIFAR-10 ") + to_string(split) + ", " + std::to_string(labels.size()) +
                           " images " + to_string(shape) + ", 10 classes, " + folder.string() + " (" +
                           storage_note(files) + ")";
  return std::make_unique<StoredImages>(std::move(files), std::move(segments), std::move(labels),
                                        std::move(class_names), shape, description);
}

std::unique_ptr<ImageDataset> open_cifar100(const fs::path& dir, Split split, bool fine) {
  const auto folder = cifar_folder(dir, "cifar-100-binary");
  const std::string what = "CIFAR-100 file";
  const std::string fix = "run tools/fetch-data cifar100 --dest " + dir.string() +
                          " or point at the cifar-100-binary folder (the binary version, not the Python one).";
  const CifarLabel coarse{0, 20, "coarse"};
  const CifarLabel fine_label{1, 100, "fine"};
  std::vector<FileBytes> files;
  std::vector<StoredImages::Segment> segments;
  std::vector<std::uint8_t> labels;
  add_cifar_file(folder / (split == Split::train ? "train.bin" : "test.bin"), 2 + kCifarPixels,
                 fine ? fine_label : coarse, fine ? &coarse : &fine_label, what, fix, files, segments, labels);
  const int classes = fine ? 100 : 20;
  auto class_names = read_class_names(folder / (fine ? "fine_label_names.txt" : "coarse_label_names.txt"),
                                      static_cast<std::size_t>(classes), numbered_names(classes));
  const ImageShape shape{3, 32, 32};
  const auto description = std::string("CIFAR-100 ") + to_string(split) + ", " + std::to_string(labels.size()) +
                           " images " + to_string(shape) + ", " + std::to_string(classes) +
                           (fine ? " fine" : " coarse") + " classes, " + folder.string() + " (" + storage_note(files) +
                           ")";
  return std::make_unique<StoredImages>(std::move(files), std::move(segments), std::move(labels),
                                        std::move(class_names), shape, description);
}

}  // namespace slurmlab::data
