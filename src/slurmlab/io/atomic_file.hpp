#pragma once
// Files are written under a temporary name and renamed into place, so a crash or a
// killed job never leaves a half-written file that looks whole.
#include <filesystem>
#include <string_view>

namespace slurmlab::io {

// The temporary name used while `path` is being written: a hidden sibling in the same
// directory (rename(2) is atomic only within one file system), unique per process.
std::filesystem::path temporary_sibling(const std::filesystem::path& path);

// Flushes `temporary` to disk and renames it onto `destination`; throws std::runtime_error
// with the OS reason on failure (the temporary is removed then).
void commit_temporary(const std::filesystem::path& temporary, const std::filesystem::path& destination);

// Creates a program's --output-dir (and its parents) if missing. A directory that cannot be
// made or written to is a usage problem: throws UsageError naming the path, the OS reason
// and the fix, so the program ends with status 2 before any work is done. `option` is the
// option the user gave the directory with (e.g. "--out"), which the message names.
void make_output_directory(const std::filesystem::path& directory, std::string_view option = "--output-dir");

// Writes all of `data` to the file descriptor, retrying short writes and EINTR. Returns
// false with errno set on failure.
bool write_all(int fd, std::string_view data);

// Writes `contents` to `path` atomically; creates missing parent directories.
void write_file_atomically(const std::filesystem::path& path, std::string_view contents);

}  // namespace slurmlab::io
