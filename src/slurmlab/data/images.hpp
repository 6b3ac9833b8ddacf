#pragma once
// Labelled image data sets: MNIST-style IDX files, CIFAR-10/100 binary batches, image folders
// (one sub-folder per class, as torchvision's ImageFolder) and a procedurally drawn synthetic
// set. The pipeline (splits, samplers, transforms, prefetch) and train-classifier build on this.
//
// Contract
//   Pixels: every image comes out channel-planar (CHW), uint8, rows top to bottom, no padding,
//     as CIFAR stores it and as a tensor wants it. MNIST-style sets have 1 channel.
//   Ownership: a factory returns the data set; an ImageView points into the data set's storage
//     (MNIST, CIFAR: a read-only memory map of the file, or an inflated buffer for .gz files) or
//     into the caller's `scratch` vector (image folders and the synthetic set, which make each
//     image on demand). A view stays valid while both the data set and that scratch vector live
//     and the scratch vector is not passed to another image() call.
//   Memory maps: plain IDX files and CIFAR batches are mapped read-only (MAP_SHARED, never
//     copied), so the ranks of one node share one copy in the page cache instead of each holding
//     its own. Gzipped IDX files are inflated into the data set's own memory at open (MNIST-sized
//     sets: 47 MB for the training images). A file truncated by someone else while mapped makes
//     the reading process fault (SIGBUS); data sets are meant to be read-only while a job runs.
//   Threads: a data set is immutable after its factory returns. size(), label(), image() and
//     the rest are const and safe to call from many threads at once (each thread with its own
//     scratch vector).
//   Errors: a factory validates everything it can read cheaply at open (file presence, magic
//     numbers, sizes against the file length, record sizes, label ranges, image/label counts,
//     class folders) and throws slurmlab::UsageError whose message is one sentence naming the
//     file, what is wrong and the fix; it never returns a silently short data set. image() of
//     an image folder decodes the file then, and throws UsageError (naming the file) for an
//     unreadable or corrupt image. An index outside [0, size()) is a programming error:
//     std::out_of_range.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace slurmlab::data {

struct ImageShape {
  int channels = 0;
  int height = 0;
  int width = 0;

  // Bytes of one image (channels x height x width).
  std::int64_t bytes() const { return std::int64_t{channels} * height * width; }
  friend bool operator==(const ImageShape&, const ImageShape&) = default;
};

// "3x32x32" (channels x height x width).
std::string to_string(const ImageShape& shape);

// A decoded image: shape.bytes() bytes, channel-planar (CHW), row-major, uint8. Not owning.
struct ImageView {
  const std::uint8_t* pixels = nullptr;
  ImageShape shape;

  // Pixel (channel c, row y, column x).
  std::uint8_t at(int c, int y, int x) const {
    return pixels[(static_cast<std::int64_t>(c) * shape.height + y) * shape.width + x];
  }
};

// Labelled images, indexed 0..size()-1. Labels are 0..class_names().size()-1.
class ImageDataset {
 public:
  virtual ~ImageDataset() = default;

  virtual std::int64_t size() const = 0;
  virtual std::int64_t label(std::int64_t index) const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;
  // Memory-mapped and in-memory sets return a view into their storage and leave `scratch`
  // alone; sets that make images on demand (image folders, synthetic) resize `scratch` as they
  // need and return a view of its start.
  virtual ImageView image(std::int64_t index, std::vector<std::uint8_t>& scratch) const = 0;
  // The one shape of every image (MNIST, CIFAR, synthetic, an image folder whose images share
  // one size); nullopt when images differ in size, so the pipeline must resize or crop.
  virtual std::optional<ImageShape> fixed_shape() const = 0;
  // The channel count of every image (also for image folders).
  virtual int channels() const = 0;
  // One line for logs: "CIFAR-10 train, 50000 images 3x32x32, 10 classes, /data/cifar-10-batches-bin".
  virtual std::string describe() const = 0;
  // True for made-up data; programs say so loudly next to any accuracy they report.
  virtual bool synthetic() const { return false; }
};

enum class Split { train, test };
const char* to_string(Split split);

// MNIST and its drop-in relatives, which share file names and format but not class names.
enum class MnistVariant { mnist, fashion_mnist, kmnist };

// IDX files: DIR/train-images-idx3-ubyte and DIR/train-labels-idx1-ubyte (t10k-* for the test
// split), each plain or gzipped (.gz; a plain file wins when both exist). Also found under
// DIR/raw and DIR/<MNIST|FashionMNIST|KMNIST>/raw, where torchvision puts them. Labels must be
// 0..9 and the two files must hold the same number of items.
std::unique_ptr<ImageDataset> open_mnist(const std::filesystem::path& dir, Split split,
                                         MnistVariant variant = MnistVariant::mnist);

// CIFAR-10 binary version: data_batch_1.bin..data_batch_5.bin (train) or test_batch.bin
// (test), records of 1 label byte (0..9) + 3072 pixel bytes (3x32x32, CHW). DIR may be the
// cifar-10-batches-bin folder or the folder holding it. Class names from batches.meta.txt when
// present, else the published ten. Every file must hold whole records, and the five training
// batches the same number (a batch truncated at a record boundary shows up that way).
std::unique_ptr<ImageDataset> open_cifar10(const std::filesystem::path& dir, Split split);

// CIFAR-100 binary version: train.bin or test.bin, records of coarse label (0..19), fine label
// (0..99) and 3072 pixel bytes. DIR may be cifar-100-binary or the folder holding it. `fine`
// chooses the 100 fine labels (default) or the 20 coarse ones; names from fine_label_names.txt
// or coarse_label_names.txt when present, else the label numbers.
std::unique_ptr<ImageDataset> open_cifar100(const std::filesystem::path& dir, Split split, bool fine = true);

struct ImageFolderOptions {
  // 0: 3 if any image is in colour, else 1. To decide, open() reads image headers until it
  // finds a colour one: one header for a colour set, every header for a grayscale one.
  // 1 or 3: convert every image to that (gray = 0.299 R + 0.587 G + 0.114 B, as PIL).
  int channels = 0;
};

// DIR/<class>/**/<image>.png|.jpg|.jpeg (extension case-insensitive), classes in sorted
// (byte-wise) folder-name order, images in sorted path order, like torchvision's ImageFolder;
// other files are skipped and counted in describe(). PNG via libpng, JPEG via TurboJPEG,
// decoded at image(). Palette, 16-bit, gray and alpha images are handled: alpha is dropped
// (not composited, as PIL's convert("RGB")), gray is replicated for a 3-channel set.
// Refused: no class folders, a class folder without images.
std::unique_ptr<ImageDataset> open_image_folder(const std::filesystem::path& dir,
                                                const ImageFolderOptions& options = {});

// Procedurally drawn images whose class is a shape (disc, square, triangle, plus, ring,
// horizontal bars, vertical bars, diagonal cross, two dots, checker, frame, diagonal stripe),
// drawn at a random position and size, in random foreground and background colours, with pixel
// noise: a network must learn shapes, since mean colour tells nothing. Labels cycle
// (label(i) = i % classes), so classes are balanced. image(i) depends only on (seed, split, i):
// the same on every thread and rank. Images are drawn on demand into scratch; nothing is cached.
struct SyntheticImageOptions {
  std::int64_t count = 10000;      // images of the train split
  std::int64_t test_count = 2000;  // images of the test split
  int classes = 10;                // 2..12
  ImageShape shape{3, 32, 32};     // channels 1 or 3, height and width >= 8
  std::uint64_t seed = 0;
  Split split = Split::train;  // the test split draws different images from the same seed
};
std::unique_ptr<ImageDataset> make_synthetic_images(const SyntheticImageOptions& options);

// A data set named on the command line:
//   mnist:DIR  fashion-mnist:DIR  kmnist:DIR  cifar10:DIR  cifar100:DIR  cifar100-coarse:DIR
//   folder:DIR  synthetic
// folder:DIR uses DIR/train for the train split and DIR/val (or DIR/test) for the test split
// when DIR/train exists (Imagenette's layout); otherwise DIR itself for both splits, and the
// pipeline must hold out its own validation part and test on that (has_separate_test_split). synthetic uses `synthetic` (its split field
// is set from `split`). Anything else: UsageError listing the forms.
std::unique_ptr<ImageDataset> open_image_dataset(const std::string& spec, Split split,
                                                 const SyntheticImageOptions& synthetic = {});
// False when `spec`'s test split would be its training images (folder:DIR without DIR/train):
// a program must then test on images held out from training instead (subset_of).
bool has_separate_test_split(const std::string& spec);

// The images `indices` of `base` (which must outlive the result), as a data set of their own;
// `what` names them in describe() ("validation part of ...").
std::unique_ptr<ImageDataset> subset_of(const ImageDataset& base, std::vector<std::int64_t> indices, std::string what);

}  // namespace slurmlab::data
