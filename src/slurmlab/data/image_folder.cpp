// Image folders (torchvision's ImageFolder layout): DIR/<class>/**/<image>, decoded on demand.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>
#include <stdexcept>
#include <system_error>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/image_codecs.hpp"
#include "slurmlab/data/images.hpp"

namespace slurmlab::data {
namespace {

namespace fs = std::filesystem;

std::string quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

bool is_image_name(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension == ".png" || extension == ".jpg" || extension == ".jpeg";
}

bool is_hidden(const fs::path& path) {
  return path.filename().string().starts_with('.');
}

class ImageFolder final : public ImageDataset {
 public:
  ImageFolder(const fs::path& root, const ImageFolderOptions& options) : root_(root) {
    if (options.channels != 0 && options.channels != 1 && options.channels != 3)
      throw UsageError("image folder channels must be 0 (automatic), 1 or 3, not " + std::to_string(options.channels) +
                       "; choose one of those.");
    std::error_code error;
    if (!fs::is_directory(root, error))
      throw UsageError("image folder " + quoted(root) +
                       " does not exist or is not a folder; check the path (tools/fetch-data imagenette fetches one).");
    try {
      list(root);
    } catch (const fs::filesystem_error& failure) {
      throw UsageError("image folder " + quoted(root) + " cannot be listed (" + failure.code().message() + " at " +
                       quoted(failure.path1()) + "); check its permissions.");
    }
    channels_ = options.channels;
    if (channels_ == 0) {
      channels_ = 1;
      for (const auto& file : files_)
        if (image_is_colour(read_whole_file(file), file)) {
          channels_ = 3;
          break;
        }
    }
  }

  std::int64_t size() const override { return static_cast<std::int64_t>(files_.size()); }
  std::int64_t label(std::int64_t index) const override { return labels_[checked(index)]; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  ImageView image(std::int64_t index, std::vector<std::uint8_t>& scratch) const override {
    const auto& path = files_[checked(index)];
    const auto bytes = read_whole_file(path);
    const auto shape = decode_image(bytes, path, channels_, scratch);
    return {scratch.data(), shape};
  }
  // The one size of all the folder's images, from their headers (read once, on first use): a
  // folder of equal-sized images (CIFAR or MNIST as PNGs) needs no --resize. The scan stops at
  // the first image of another size, so a folder of photos of every size costs two headers.
  std::optional<ImageShape> fixed_shape() const override {
    std::call_once(shape_scanned_, [this] {
      std::optional<std::pair<int, int>> first;
      for (const auto& file : files_) {
        const auto size = header_size(file);
        if (!first) {
          first = size;
        } else if (size != *first) {
          return;
        }
      }
      if (first) shape_ = ImageShape{channels_, first->first, first->second};
    });
    return shape_;
  }
  int channels() const override { return channels_; }
  std::string describe() const override {
    const auto shape = fixed_shape();
    const std::string size =
        shape ? std::to_string(shape->height) + "x" + std::to_string(shape->width) : std::string("of varying size");
    std::string text = "image folder, " + std::to_string(files_.size()) + " images " + size + ", " +
                       std::to_string(channels_) + (channels_ == 1 ? " channel, " : " channels, ") +
                       std::to_string(class_names_.size()) + " classes, " + root_.string();
    if (skipped_ > 0) text += " (" + std::to_string(skipped_) + " files that are not .png/.jpg/.jpeg skipped)";
    return text;
  }

 private:
  // Finds the class folders and their images (files_, labels_, class_names_, skipped_).
  void list(const fs::path& root) {
    std::vector<fs::path> class_folders;
    for (const auto& entry : fs::directory_iterator(root))
      if (entry.is_directory() && !is_hidden(entry.path())) class_folders.push_back(entry.path());
    if (class_folders.empty())
      throw UsageError("image folder " + quoted(root) + " has no class sub-folders; put each class's images in " +
                       quoted(root / "<class name>") + " (the ImageFolder layout).");
    // Byte-wise order of the names, as Python's sorted() (and so torchvision) orders them.
    std::sort(class_folders.begin(), class_folders.end(),
              [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
    for (const auto& folder : class_folders) {
      std::vector<fs::path> images;
      for (auto it = fs::recursive_directory_iterator(folder, fs::directory_options::follow_directory_symlink);
           it != fs::recursive_directory_iterator(); ++it) {
        if (is_hidden(it->path())) {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (!it->is_regular_file()) continue;
        if (is_image_name(it->path()))
          images.push_back(it->path());
        else
          ++skipped_;
      }
      if (images.empty())
        throw UsageError("class folder " + quoted(folder) +
                         " holds no .png, .jpg or .jpeg images; add its images or remove the folder.");
      std::sort(images.begin(), images.end());
      const auto label = static_cast<std::int32_t>(class_names_.size());
      class_names_.push_back(folder.filename().string());
      for (auto& image : images) {
        files_.push_back(std::move(image));
        labels_.push_back(label);
      }
    }
  }
  // An image's (height, width) from the start of its file (the whole file when its header
  // reaches further, as a JPEG's may behind large metadata).
  static std::pair<int, int> header_size(const fs::path& file) {
    std::vector<std::uint8_t> head(4096);
    {
      std::ifstream in(file, std::ios::binary);
      if (!in) throw UsageError("image " + quoted(file) + " cannot be read; check its permissions.");
      in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
      head.resize(static_cast<std::size_t>(in.gcount()));
    }
    if (const auto size = image_header_size(head, file)) return *size;
    const auto whole = read_whole_file(file);
    if (const auto size = image_header_size(whole, file)) return *size;
    // The whole file and still no header: decoding it names what is wrong.
    std::vector<std::uint8_t> scratch;
    const auto shape = decode_image(whole, file, 1, scratch);
    return {shape.height, shape.width};
  }
  std::size_t checked(std::int64_t index) const {
    if (index < 0 || index >= size())
      throw std::out_of_range("image index " + std::to_string(index) + " outside 0.." + std::to_string(size() - 1));
    return static_cast<std::size_t>(index);
  }

  fs::path root_;
  std::vector<std::string> class_names_;
  std::vector<fs::path> files_;
  std::vector<std::int32_t> labels_;
  int channels_ = 3;
  std::int64_t skipped_ = 0;
  mutable std::once_flag shape_scanned_;
  mutable std::optional<ImageShape> shape_;
};

}  // namespace

std::unique_ptr<ImageDataset> open_image_folder(const fs::path& dir, const ImageFolderOptions& options) {
  return std::make_unique<ImageFolder>(dir, options);
}

}  // namespace slurmlab::data
