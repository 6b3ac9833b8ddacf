// Built without CUDA: the CUDA engine is absent and says so.
#include <stdexcept>

#include "slurmlab/linalg/logdet_engine.hpp"

namespace slurmlab::linalg {

bool cuda_logdet_engine_built() { return false; }

std::unique_ptr<LogdetEngine> make_cuda_logdet_engine(const LogdetConfig&, int) {
  throw std::runtime_error("this slurmlab was built without CUDA; reconfigure with nvcc available or use --device cpu");
}

}  // namespace slurmlab::linalg
