#pragma once
// FileBytes: the whole content of a data file, read-only, either memory-mapped (plain files) or
// inflated into memory (.gz files, through zlib). Memory maps are MAP_SHARED and PROT_READ, so
// every process of a node that maps the same file shares one copy in the page cache.
//
// Move-only; the mapping (or buffer) lives until the object is destroyed. Immutable after
// construction, so any number of threads may read it at once. Errors (missing, unreadable or
// corrupt gzip file) are UsageError naming the file.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace slurmlab::data {

class FileBytes {
 public:
  // Maps `path` read-only, or inflates it when its name ends in ".gz". `what` names the file's
  // role in messages ("MNIST image file") and `fix` ends the sentence of a missing-file error.
  static FileBytes open(const std::filesystem::path& path, const std::string& what, const std::string& fix);

  FileBytes() = default;
  FileBytes(FileBytes&& other) noexcept;
  FileBytes& operator=(FileBytes&& other) noexcept;
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  ~FileBytes();

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }
  bool memory_mapped() const { return mapping_ != nullptr; }

 private:
  void release() noexcept;

  std::filesystem::path path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  void* mapping_ = nullptr;           // the mmap'ed region, or nullptr
  std::vector<std::uint8_t> buffer_;  // the inflated content of a .gz file
};

}  // namespace slurmlab::data
