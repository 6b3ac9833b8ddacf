#include "slurmlab/data/file_bytes.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "slurmlab/core/errors.hpp"

namespace slurmlab::data {
namespace {

bool ends_with_gz(const std::filesystem::path& path) {
  const auto name = path.filename().string();
  return name.size() > 3 && name.ends_with(".gz");
}

[[noreturn]] void throw_cannot_open(const std::filesystem::path& path, const std::string& what, const std::string& fix,
                                    int error) {
  if (error == ENOENT) throw UsageError(what + " '" + path.string() + "' does not exist; " + fix);
  throw UsageError(what + " '" + path.string() + "' cannot be read (" + std::strerror(error) +
                   "); check its permissions.");
}

std::vector<std::uint8_t> inflate_file(const std::filesystem::path& path, const std::string& what,
                                       const std::string& fix) {
  errno = 0;
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw_cannot_open(path, what, fix, errno != 0 ? errno : ENOMEM);
  std::vector<std::uint8_t> out;
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    const auto old_size = out.size();
    out.resize(old_size + kChunk);
    const int got = gzread(file, out.data() + old_size, kChunk);
    if (got < 0) {
      int code = 0;
      std::string message = gzerror(file, &code);
      gzclose(file);
      if (code == Z_BUF_ERROR)
        throw UsageError(what + " '" + path.string() +
                         "' is a truncated gzip file (it ends mid-stream); download it again (tools/fetch-data).");
      throw UsageError(what + " '" + path.string() + "' is not a valid gzip file (" + message +
                       "); download it again (tools/fetch-data) or unpack it with gunzip to see the damage.");
    }
    out.resize(old_size + static_cast<std::size_t>(got));
    if (got == 0) break;
  }
  // A file cut short ends the reads early with Z_BUF_ERROR ("unexpected end of file"), reported
  // by gzerror or by gzclose.
  int code = 0;
  std::string message = gzerror(file, &code);
  const int closed = gzclose(file);
  if (code == Z_BUF_ERROR || closed == Z_BUF_ERROR)
    throw UsageError(what + " '" + path.string() +
                     "' is a truncated gzip file (it ends mid-stream); download it again (tools/fetch-data).");
  if (code != Z_OK || closed != Z_OK)
    throw UsageError(what + " '" + path.string() + "' is not a valid gzip file (" + message +
                     "); download it again (tools/fetch-data).");
  out.shrink_to_fit();
  return out;
}

}  // namespace

FileBytes FileBytes::open(const std::filesystem::path& path, const std::string& what, const std::string& fix) {
  FileBytes bytes;
  bytes.path_ = path;
  if (ends_with_gz(path)) {
    bytes.buffer_ = inflate_file(path, what, fix);
    bytes.data_ = bytes.buffer_.data();
    bytes.size_ = bytes.buffer_.size();
    return bytes;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_cannot_open(path, what, fix, errno);
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    throw_cannot_open(path, what, fix, error);
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    throw UsageError(what + " '" + path.string() + "' is not a regular file; point at the data file itself.");
  }
  bytes.size_ = static_cast<std::size_t>(info.st_size);
  if (bytes.size_ > 0) {
    void* mapped = ::mmap(nullptr, bytes.size_, PROT_READ, MAP_SHARED, fd, 0);
    const int error = errno;
    ::close(fd);  // the mapping keeps the file open
    if (mapped == MAP_FAILED)
      throw UsageError(what + " '" + path.string() + "' cannot be memory-mapped (" + std::strerror(error) +
                       "); check that the file system supports mmap and the address space limit (ulimit -v).");
    bytes.mapping_ = mapped;
    bytes.data_ = static_cast<const std::uint8_t*>(mapped);
  } else {
    ::close(fd);
  }
  return bytes;
}

FileBytes::FileBytes(FileBytes&& other) noexcept {
  *this = std::move(other);
}

FileBytes& FileBytes::operator=(FileBytes&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    buffer_ = std::move(other.buffer_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    size_ = std::exchange(other.size_, 0);
    data_ = std::exchange(other.data_, nullptr);
    if (mapping_ == nullptr) data_ = buffer_.data();  // the vector's storage moved with it
  }
  return *this;
}

FileBytes::~FileBytes() {
  release();
}

void FileBytes::release() noexcept {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
  mapping_ = nullptr;
  data_ = nullptr;
  size_ = 0;
  buffer_.clear();
}

}  // namespace slurmlab::data
