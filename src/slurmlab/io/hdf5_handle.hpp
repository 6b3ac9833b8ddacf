#pragma once
// The one RAII layer over HDF5 identifiers, shared by the writers of HDF5 files (io's
// MetricsWriter, nn's checkpoints). It includes hdf5.h, so it is for the .cpp files of targets
// that link HDF5 (slurmlab::hdf5 and what links it privately); public headers keep HDF5 out.
#include <hdf5.h>

#include <string>
#include <utility>

namespace slurmlab::io::hdf5 {

// Owns one HDF5 identifier and closes it with the matching H5?close function. Movable, not
// copyable; an invalid (negative) identifier is held without being closed.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      closer_ = other.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now and reports whether HDF5 accepted it (closing a file can fail on its flush).
  bool close() {
    if (id_ < 0) return true;
    return closer_(std::exchange(id_, H5I_INVALID_HID)) >= 0;
  }
  void reset() { close(); }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// The innermost message of HDF5's error stack (where the failure was detected, e.g. the errno
// text of a failed open), so that our one sentence can carry the real reason; empty if none.
std::string innermost_error();

}  // namespace slurmlab::io::hdf5
