#include "slurmlab/io/metrics_writer.hpp"

#include <hdf5.h>

#include <array>
#include <exception>
#include <iostream>
#include <map>
#include <system_error>
#include <vector>

#include "slurmlab/io/atomic_file.hpp"
#include "slurmlab/io/hdf5_handle.hpp"

namespace slurmlab::io {
namespace {

using hdf5::Handle;

// Series grow in chunks of this many elements: 8 KiB of doubles, small enough for short
// runs, large enough that a long run does not drown in chunk index entries.
constexpr hsize_t kSeriesChunkElements = 1024;

enum class SeriesType { float64, int64 };

const char* type_name(SeriesType type) { return type == SeriesType::float64 ? "double" : "int64"; }

// Object paths are relative to the root; a leading or trailing '/' means the same thing.
std::string normalized(std::string_view object) {
  while (!object.empty() && object.front() == '/') object.remove_prefix(1);
  while (!object.empty() && object.back() == '/') object.remove_suffix(1);
  return std::string(object);
}

}  // namespace

struct MetricsWriter::Impl {
  struct Series {
    Handle dataset;
    SeriesType type;
    hsize_t length = 0;
  };

  std::filesystem::path path;
  std::filesystem::path temporary;
  Handle file;
  // Kept open while the writer lives: appending one value per step then costs no
  // open/close of the dataset.
  std::map<std::string, Series, std::less<>> series;
  // Compared in the destructor to tell normal scope exit from stack unwinding.
  int uncaught_exceptions_at_open = std::uncaught_exceptions();
  bool committed = false;

  explicit Impl(std::filesystem::path destination) : path(std::move(destination)) {
    // Our exceptions carry the message; HDF5's stack dump on stderr would only confuse.
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    if (path.empty()) throw std::invalid_argument("metrics file path is empty");
    if (path.has_parent_path()) {
      std::error_code error;
      std::filesystem::create_directories(path.parent_path(), error);
      if (error) {
        throw std::runtime_error("cannot create directory '" + path.parent_path().string() + "' for metrics file '" +
                                 path.string() + "': " + error.message());
      }
    }
    temporary = temporary_sibling(path);

    Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    if (!access.valid()) fail("", "create the file access property list for");
    // STRONG: closing the file closes any object we might still hold, so close() cannot
    // leave the file half open.
    H5Pset_fclose_degree(access.get(), H5F_CLOSE_STRONG);
#if H5_VERSION_GE(1, 10, 7)
    // Lustre/GPFS mounts without flock support make a locking H5Fcreate fail; lock where
    // the file system can, carry on where it cannot (HDF5_USE_FILE_LOCKING still wins).
    H5Pset_file_locking(access.get(), true, true);
#endif
    file = Handle(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), H5Fclose);
    if (!file.valid()) {
      const std::string reason = hdf5::innermost_error();
      throw std::runtime_error("cannot create metrics file '" + path.string() + "' (temporary '" +
                               temporary.filename().string() + "')" + (reason.empty() ? "" : ": " + reason));
    }
  }

  // Reached with the file still open only when the writer is abandoned (unwinding or a
  // failed commit): close everything and delete the temporary so nothing half-written
  // remains under any name.
  ~Impl() {
    if (committed) return;
    series.clear();
    file.close();
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  [[noreturn]] void fail(std::string_view object, std::string_view what) const {
    const std::string reason = hdf5::innermost_error();
    std::string message = "cannot " + std::string(what);
    if (!object.empty()) message += " '" + std::string(object) + "' in";
    message += " metrics file '" + path.string() + "'";
    if (!reason.empty()) message += ": " + reason;
    throw std::runtime_error(message);
  }

  hid_t checked(hid_t id, std::string_view object, std::string_view what) const {
    if (id < 0) fail(object, what);
    return id;
  }

  void checked_status(herr_t status, std::string_view object, std::string_view what) const {
    if (status < 0) fail(object, what);
  }

  std::string dataset_name(std::string_view dataset) const {
    std::string name = normalized(dataset);
    if (name.empty()) {
      throw std::invalid_argument("a dataset in metrics file '" + path.string() + "' needs a non-empty name");
    }
    return name;
  }

  // Walks the path one link at a time: in HDF5 1.10, H5Lexists fails (instead of
  // answering false) when an intermediate group is missing, and HDF5's message for a
  // dataset in the middle of a path ("message type not found") would explain nothing.
  bool exists(const std::string& name) const {
    if (name.empty()) return true;
    std::size_t end = 0;
    while (true) {
      end = name.find('/', end);
      const std::string prefix = name.substr(0, end);
      const htri_t found = H5Lexists(file.get(), prefix.c_str(), H5P_DEFAULT);
      if (found < 0) fail(prefix, "look up");
      if (found == 0) return false;
      if (end == std::string::npos) return true;
      if (!is_group(prefix)) {
        throw std::invalid_argument("cannot use '" + name + "' in metrics file '" + path.string() + "': '" + prefix +
                                    "' is a dataset, not a group");
      }
      ++end;
    }
  }

  bool is_group(const std::string& name) const {
    Handle object(checked(H5Oopen(file.get(), name.c_str(), H5P_DEFAULT), name, "open"), H5Oclose);
    return H5Iget_type(object.get()) == H5I_GROUP;
  }

  // Link creation: make missing parent groups, and mark names as UTF-8.
  Handle link_creation(std::string_view object) const {
    Handle properties(checked(H5Pcreate(H5P_LINK_CREATE), object, "create link properties for"), H5Pclose);
    checked_status(H5Pset_create_intermediate_group(properties.get(), 1), object, "set up parent groups for");
    checked_status(H5Pset_char_encoding(properties.get(), H5T_CSET_UTF8), object, "set the name encoding of");
    return properties;
  }

  Handle open_or_create_object(std::string_view object) const {
    const std::string name = normalized(object);
    if (name.empty()) return Handle(checked(H5Oopen(file.get(), "/", H5P_DEFAULT), "/", "open the root of"), H5Oclose);
    if (exists(name)) return Handle(checked(H5Oopen(file.get(), name.c_str(), H5P_DEFAULT), name, "open"), H5Oclose);
    Handle properties = link_creation(name);
    return Handle(checked(H5Gcreate2(file.get(), name.c_str(), properties.get(), H5P_DEFAULT, H5P_DEFAULT), name,
                          "create group"),
                  H5Gclose);
  }

  void write_attribute(std::string_view object, std::string_view attribute, hid_t file_type, hid_t memory_type,
                       const void* value) const {
    if (attribute.empty()) {
      throw std::invalid_argument("an attribute in metrics file '" + path.string() + "' needs a non-empty name");
    }
    const std::string name(attribute);
    const std::string object_name = normalized(object);
    const std::string label = (object_name.empty() ? std::string("/") : object_name) + "@" + name;
    Handle target = open_or_create_object(object_name);
    const htri_t present = H5Aexists(target.get(), name.c_str());
    if (present < 0) fail(label, "look up attribute");
    if (present > 0) checked_status(H5Adelete(target.get(), name.c_str()), label, "replace attribute");
    Handle space(checked(H5Screate(H5S_SCALAR), label, "create the dataspace of attribute"), H5Sclose);
    Handle properties(checked(H5Pcreate(H5P_ATTRIBUTE_CREATE), label, "create properties of attribute"), H5Pclose);
    checked_status(H5Pset_char_encoding(properties.get(), H5T_CSET_UTF8), label, "set the name encoding of attribute");
    Handle created(checked(H5Acreate2(target.get(), name.c_str(), file_type, space.get(), properties.get(), H5P_DEFAULT),
                           label, "create attribute"),
                   H5Aclose);
    checked_status(H5Awrite(created.get(), memory_type, value), label, "write attribute");
  }

  Handle utf8_string_type(std::string_view object) const {
    Handle type(checked(H5Tcopy(H5T_C_S1), object, "create the string type of"), H5Tclose);
    checked_status(H5Tset_size(type.get(), H5T_VARIABLE), object, "size the string type of");
    checked_status(H5Tset_cset(type.get(), H5T_CSET_UTF8), object, "set the encoding of");
    return type;
  }

  // h5py's convention for booleans: an int8 enum with members FALSE=0 and TRUE=1.
  Handle boolean_type(std::string_view object) const {
    Handle type(checked(H5Tenum_create(H5T_NATIVE_INT8), object, "create the boolean type of"), H5Tclose);
    const std::int8_t false_value = 0;
    const std::int8_t true_value = 1;
    checked_status(H5Tenum_insert(type.get(), "FALSE", &false_value), object, "create the boolean type of");
    checked_status(H5Tenum_insert(type.get(), "TRUE", &true_value), object, "create the boolean type of");
    return type;
  }

  void refuse_existing(const std::string& name) const {
    if (exists(name)) {
      throw std::invalid_argument("dataset '" + name + "' already exists in metrics file '" + path.string() +
                                  "'; write() creates a dataset once (use append() for a growing series)");
    }
  }

  // Creates a fixed-shape dataset and writes all of it at once.
  void write_dataset(const std::string& name, std::span<const hsize_t> shape, hid_t file_type, hid_t memory_type,
                     const void* data, bool has_elements) const {
    refuse_existing(name);
    Handle space(checked(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr), name,
                         "create the dataspace of dataset"),
                 H5Sclose);
    Handle properties = link_creation(name);
    Handle dataset(checked(H5Dcreate2(file.get(), name.c_str(), file_type, space.get(), properties.get(), H5P_DEFAULT,
                                      H5P_DEFAULT),
                           name, "create dataset"),
                   H5Dclose);
    // HDF5 rejects a write with a null buffer even when there is nothing to write.
    if (!has_elements) return;
    checked_status(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), name, "write dataset");
  }

  Series& series_for(const std::string& name, SeriesType type) {
    if (auto found = series.find(name); found != series.end()) {
      if (found->second.type != type) {
        throw std::invalid_argument("series '" + name + "' in metrics file '" + path.string() + "' holds " +
                                    type_name(found->second.type) + " values; cannot append " + type_name(type) +
                                    " values to it");
      }
      return found->second;
    }
    if (exists(name)) {
      throw std::invalid_argument("cannot append to '" + name + "' in metrics file '" + path.string() +
                                  "': it was made by write() or set_attribute(), not by append()");
    }
    const hsize_t initial = 0;
    const hsize_t unlimited = H5S_UNLIMITED;
    Handle space(checked(H5Screate_simple(1, &initial, &unlimited), name, "create the dataspace of series"), H5Sclose);
    Handle creation(checked(H5Pcreate(H5P_DATASET_CREATE), name, "create properties of series"), H5Pclose);
    checked_status(H5Pset_chunk(creation.get(), 1, &kSeriesChunkElements), name, "set the chunk size of series");
    Handle properties = link_creation(name);
    const hid_t file_type = type == SeriesType::float64 ? H5T_IEEE_F64LE : H5T_STD_I64LE;
    Handle dataset(checked(H5Dcreate2(file.get(), name.c_str(), file_type, space.get(), properties.get(),
                                      creation.get(), H5P_DEFAULT),
                           name, "create series"),
                   H5Dclose);
    auto [inserted, added] = series.emplace(name, Series{std::move(dataset), type, 0});
    return inserted->second;
  }

  void append_values(std::string_view dataset, SeriesType type, const void* data, std::size_t count) {
    const std::string name = dataset_name(dataset);
    Series& target = series_for(name, type);
    if (count == 0) return;
    const hsize_t start = target.length;
    const hsize_t added = count;
    const hsize_t new_length = start + added;
    checked_status(H5Dset_extent(target.dataset.get(), &new_length), name, "extend series");
    target.length = new_length;
    Handle file_space(checked(H5Dget_space(target.dataset.get()), name, "get the dataspace of series"), H5Sclose);
    checked_status(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &added, nullptr), name,
                   "select the new end of series");
    Handle memory_space(checked(H5Screate_simple(1, &added, nullptr), name, "create a memory dataspace for series"),
                        H5Sclose);
    const hid_t memory_type = type == SeriesType::float64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
    checked_status(H5Dwrite(target.dataset.get(), memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, data),
                   name, "append to series");
  }

  void flush() const { checked_status(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), "", "flush"); }

  // Closes the HDF5 file and renames the temporary into place. On failure the temporary
  // is removed (by commit_temporary, or by ~Impl) and the exception propagates.
  void commit() {
    series.clear();  // closes the series datasets before the file
    if (!file.close()) fail("", "close");
    committed = true;  // from here on the temporary is commit_temporary's to clean up
    commit_temporary(temporary, path);
  }
};

MetricsWriter::MetricsWriter(std::filesystem::path path)
    : path_(std::move(path)), impl_(std::make_unique<Impl>(path_)) {}

MetricsWriter::~MetricsWriter() { finish_quietly(); }

MetricsWriter::MetricsWriter(MetricsWriter&& other) noexcept = default;

MetricsWriter& MetricsWriter::operator=(MetricsWriter&& other) noexcept {
  if (this != &other) {
    finish_quietly();
    path_ = std::move(other.path_);
    impl_ = std::move(other.impl_);
  }
  return *this;
}

void MetricsWriter::finish_quietly() noexcept {
  if (!impl_) return;
  if (std::uncaught_exceptions() > impl_->uncaught_exceptions_at_open) {
    std::cerr << "slurmlab: metrics file '" << path_.string()
              << "' not written: an error interrupted the run before it was closed\n";
    impl_.reset();  // ~Impl deletes the temporary
    return;
  }
  try {
    close();
  } catch (const std::exception& error) {
    std::cerr << "slurmlab: " << error.what() << '\n';
  } catch (...) {
    std::cerr << "slurmlab: unknown error while closing metrics file '" << path_.string() << "'\n";
  }
}

namespace {

[[noreturn]] void throw_closed(const std::filesystem::path& path, std::string_view operation) {
  throw std::logic_error("MetricsWriter for '" + path.string() + "' is closed (or moved from); cannot " +
                         std::string(operation));
}

}  // namespace

void MetricsWriter::set_attribute(std::string_view object, std::string_view name, std::string_view value) {
  if (!impl_) throw_closed(path_, "set attribute '" + std::string(name) + "'");
  Handle type = impl_->utf8_string_type(name);
  // HDF5 variable-length strings are NUL-terminated: copy the view into a std::string.
  const std::string text(value);
  const char* pointer = text.c_str();
  impl_->write_attribute(object, name, type.get(), type.get(), &pointer);
}

void MetricsWriter::set_attribute(std::string_view object, std::string_view name, const char* value) {
  if (value == nullptr) {
    throw std::invalid_argument("attribute '" + std::string(name) + "' for metrics file '" + path_.string() +
                                "' is a null string");
  }
  set_attribute(object, name, std::string_view(value));
}

void MetricsWriter::set_attribute(std::string_view object, std::string_view name, std::int64_t value) {
  if (!impl_) throw_closed(path_, "set attribute '" + std::string(name) + "'");
  impl_->write_attribute(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void MetricsWriter::set_attribute(std::string_view object, std::string_view name, double value) {
  if (!impl_) throw_closed(path_, "set attribute '" + std::string(name) + "'");
  impl_->write_attribute(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

void MetricsWriter::set_attribute(std::string_view object, std::string_view name, bool value) {
  if (!impl_) throw_closed(path_, "set attribute '" + std::string(name) + "'");
  Handle type = impl_->boolean_type(name);
  const std::int8_t stored = value ? 1 : 0;
  impl_->write_attribute(object, name, type.get(), type.get(), &stored);
}

void MetricsWriter::append(std::string_view dataset, double value) { append(dataset, std::span<const double>(&value, 1)); }

void MetricsWriter::append(std::string_view dataset, std::span<const double> values) {
  if (!impl_) throw_closed(path_, "append to '" + std::string(dataset) + "'");
  impl_->append_values(dataset, SeriesType::float64, values.data(), values.size());
}

void MetricsWriter::append(std::string_view dataset, std::int64_t value) {
  append(dataset, std::span<const std::int64_t>(&value, 1));
}

void MetricsWriter::append(std::string_view dataset, std::span<const std::int64_t> values) {
  if (!impl_) throw_closed(path_, "append to '" + std::string(dataset) + "'");
  impl_->append_values(dataset, SeriesType::int64, values.data(), values.size());
}

void MetricsWriter::write(std::string_view dataset, std::span<const double> values) {
  if (!impl_) throw_closed(path_, "write '" + std::string(dataset) + "'");
  const std::string name = impl_->dataset_name(dataset);
  const std::array<hsize_t, 1> shape{values.size()};
  impl_->write_dataset(name, shape, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, values.data(), !values.empty());
}

void MetricsWriter::write(std::string_view dataset, std::span<const std::int64_t> values) {
  if (!impl_) throw_closed(path_, "write '" + std::string(dataset) + "'");
  const std::string name = impl_->dataset_name(dataset);
  const std::array<hsize_t, 1> shape{values.size()};
  impl_->write_dataset(name, shape, H5T_STD_I64LE, H5T_NATIVE_INT64, values.data(), !values.empty());
}

void MetricsWriter::write(std::string_view dataset, std::span<const std::string> values) {
  if (!impl_) throw_closed(path_, "write '" + std::string(dataset) + "'");
  const std::string name = impl_->dataset_name(dataset);
  std::vector<const char*> pointers;
  pointers.reserve(values.size());
  for (const std::string& value : values) pointers.push_back(value.c_str());
  Handle type = impl_->utf8_string_type(name);
  const std::array<hsize_t, 1> shape{values.size()};
  impl_->write_dataset(name, shape, type.get(), type.get(), pointers.data(), !values.empty());
}

void MetricsWriter::write(std::string_view dataset, std::span<const double> values, std::size_t rows,
                          std::size_t cols) {
  if (!impl_) throw_closed(path_, "write '" + std::string(dataset) + "'");
  const std::string name = impl_->dataset_name(dataset);
  // Compared by division so that a huge rows * cols cannot wrap around and match.
  const bool shape_matches = cols == 0 ? values.empty() : values.size() % cols == 0 && values.size() / cols == rows;
  if (!shape_matches) {
    throw std::invalid_argument("dataset '" + name + "' for metrics file '" + path_.string() + "' has " +
                                std::to_string(values.size()) + " values, not " + std::to_string(rows) + " x " +
                                std::to_string(cols));
  }
  const std::array<hsize_t, 2> shape{rows, cols};
  impl_->write_dataset(name, shape, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, values.data(), !values.empty());
}

void MetricsWriter::flush() {
  if (!impl_) throw_closed(path_, "flush");
  impl_->flush();
}

void MetricsWriter::close() {
  if (!impl_) return;
  // Closed from here on even if committing fails, so the destructor does not retry.
  const std::unique_ptr<Impl> closing = std::move(impl_);
  closing->commit();
}

}  // namespace slurmlab::io
