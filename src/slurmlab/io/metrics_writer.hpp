#pragma once
// MetricsWriter: the metrics.h5 every slurmlab program writes (rank 0, after reductions).
//
// HDF5 stays private to the library (no hdf5.h here), so programs and tests that only
// write metrics need neither HDF5 headers nor its link flags.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace slurmlab::io {

// Writes one HDF5 file. Object and dataset names are '/'-separated paths relative to the
// file root ("train/loss"); missing groups are created as needed.
//
// Atomicity: data go to a hidden temporary sibling (temporary_sibling) and close() renames
// it onto path(), so a killed job never leaves a metrics.h5 that looks whole. Until close()
// the final path does not exist (or still holds the previous run's file).
//
// Destruction without close(): during normal scope exit the file is committed as if by
// close() (errors are logged to stderr, never thrown). During stack unwinding (an exception
// is propagating past the writer) the run did not finish, so the temporary is deleted and
// path() is left untouched; a line on stderr says so.
//
// Errors: HDF5 failures throw std::runtime_error naming the file, the object and what
// failed; misuse (writing a dataset twice, mixing series types) throws
// std::invalid_argument; any call after close() (or on a moved-from writer) throws
// std::logic_error. HDF5's own error-stack printing is switched off for the process.
//
// Not thread-safe; one writer per output file (two writers on one path in one process
// collide on the temporary name and the second constructor throws).
class MetricsWriter {
 public:
  // Creates missing parent directories, then the temporary file. Throws std::runtime_error
  // naming `path` when the directory or file cannot be created.
  explicit MetricsWriter(std::filesystem::path path);
  ~MetricsWriter();

  MetricsWriter(MetricsWriter&& other) noexcept;
  // Commits the file this writer held (as the destructor would) before taking `other`'s.
  MetricsWriter& operator=(MetricsWriter&& other) noexcept;
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Scalar attributes on the root ("" or "/") or on a group/dataset path such as "train"
  // or "train/loss". A missing object is created as a group, so attach attributes to a
  // dataset only after writing it. Setting an attribute again replaces it.
  // Strings are stored as variable-length UTF-8 (h5py reads them as str).
  void set_attribute(std::string_view object, std::string_view name, std::string_view value);
  // Exists so that a string literal picks the string overload, never the bool one.
  void set_attribute(std::string_view object, std::string_view name, const char* value);
  void set_attribute(std::string_view object, std::string_view name, std::int64_t value);
  void set_attribute(std::string_view object, std::string_view name, double value);
  // Stored as h5py's boolean enum (int8 FALSE=0/TRUE=1): h5py reads numpy.bool_.
  void set_attribute(std::string_view object, std::string_view name, bool value);
  // Any other integer type (int, std::size_t, ...) is stored as int64; without this an
  // `int` argument would be ambiguous between the int64 and double overloads.
  template <std::integral Integer>
    requires(!std::same_as<Integer, std::int64_t> && !std::same_as<Integer, bool> &&
             !std::same_as<Integer, char>)
  void set_attribute(std::string_view object, std::string_view name, Integer value) {
    set_attribute(object, name, to_int64(value, name));
  }

  // Growing 1-D series (one value per step or epoch): created chunked and unlimited on the
  // first append, extended by the number of values on each call. The element type (double
  // or int64) is fixed by the first append; appending the other type throws
  // std::invalid_argument. Appending to a name made by write() or set_attribute() throws
  // std::invalid_argument too.
  void append(std::string_view dataset, double value);
  void append(std::string_view dataset, std::span<const double> values);
  void append(std::string_view dataset, std::int64_t value);
  void append(std::string_view dataset, std::span<const std::int64_t> values);
  template <std::integral Integer>
    requires(!std::same_as<Integer, std::int64_t> && !std::same_as<Integer, bool> &&
             !std::same_as<Integer, char>)
  void append(std::string_view dataset, Integer value) {
    append(dataset, to_int64(value, dataset));
  }

  // Whole 1-D columns written once (tables such as env-dump's per-rank table). Writing a
  // name that already exists throws std::invalid_argument.
  void write(std::string_view dataset, std::span<const double> values);
  void write(std::string_view dataset, std::span<const std::int64_t> values);
  // Variable-length UTF-8 strings (h5py: bytes from dataset[...], str from .asstr()).
  void write(std::string_view dataset, std::span<const std::string> values);
  // 2-D row-major array (histograms per epoch, confusion matrices);
  // values.size() must equal rows * cols, else std::invalid_argument.
  void write(std::string_view dataset, std::span<const double> values, std::size_t rows, std::size_t cols);

  // Pushes HDF5's buffers to the temporary file (the final path appears only at close()).
  void flush();
  // Flushes, closes and renames the temporary onto path(). Idempotent. If it throws, the
  // writer is closed all the same and the temporary has been removed where possible.
  void close();
  bool is_open() const noexcept { return impl_ != nullptr; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  struct Impl;

  template <std::integral Integer>
  static std::int64_t to_int64(Integer value, std::string_view what) {
    if (!std::in_range<std::int64_t>(value)) {
      throw std::out_of_range("metrics value for '" + std::string(what) + "' does not fit in int64");
    }
    return static_cast<std::int64_t>(value);
  }

  // Closes the file on behalf of the destructor or move assignment: commits, or discards
  // during stack unwinding; never throws.
  void finish_quietly() noexcept;

  std::filesystem::path path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slurmlab::io
