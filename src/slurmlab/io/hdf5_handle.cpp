#include "slurmlab/io/hdf5_handle.hpp"

namespace slurmlab::io::hdf5 {

std::string innermost_error() {
  std::string message;
  auto visit = [](unsigned position, const H5E_error2_t* error, void* client) -> herr_t {
    if (position == 0 && error != nullptr && error->desc != nullptr) *static_cast<std::string*>(client) = error->desc;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, visit, &message);
  return message;
}

}  // namespace slurmlab::io::hdf5
