#include "slurmlab/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

#include "slurmlab/core/errors.hpp"

namespace slurmlab::io {
namespace {

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path) {
  throw std::runtime_error(what + " '" + path.string() + "': " + std::strerror(errno));
}

}  // namespace

std::filesystem::path temporary_sibling(const std::filesystem::path& path) {
  auto name = "." + path.filename().string() + ".tmp." + std::to_string(::getpid());
  return path.parent_path() / name;
}

void commit_temporary(const std::filesystem::path& temporary, const std::filesystem::path& destination) {
  // fsync before rename: otherwise a node crash can leave the new name pointing at an
  // empty file on some file systems.
  int fd = ::open(temporary.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open", temporary);
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
    ::close(fd);
    std::filesystem::remove(temporary);
    fail("cannot flush", temporary);
  }
  ::close(fd);
  if (::rename(temporary.c_str(), destination.c_str()) != 0) {
    int saved = errno;
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    errno = saved;
    fail("cannot rename onto", destination);
  }
}

void make_output_directory(const std::filesystem::path& directory, std::string_view option) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (!error && !std::filesystem::is_directory(directory, error))
    error = std::make_error_code(std::errc::not_a_directory);
  if (!error && ::access(directory.c_str(), W_OK | X_OK) != 0) error = std::error_code(errno, std::generic_category());
  if (error)
    throw UsageError(std::string(option) + " '" + directory.string() + "' cannot be used (" + error.message() +
                     "); choose a writable directory with " + std::string(option) + ".");
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

void write_file_atomically(const std::filesystem::path& path, std::string_view contents) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const auto temporary = temporary_sibling(path);
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create", temporary);
  if (!write_all(fd, contents)) {
    int saved = errno;
    ::close(fd);
    std::filesystem::remove(temporary);
    errno = saved;
    fail("cannot write", temporary);
  }
  if (::close(fd) != 0) fail("cannot close", temporary);
  commit_temporary(temporary, path);
}

}  // namespace slurmlab::io
