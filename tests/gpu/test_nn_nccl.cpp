// Runs under mpirun -np 2 with 2+ GPUs (label gpu): data-parallel training with the NCCL
// gradient reducer (buckets launched during backward) matches one process training on the
// whole global batch on one GPU, the
// ranks end bit-identical, and a rank that stops calling makes the other fail by its deadline
// with a clear message instead of hanging. Under mpirun -np 1 with one GPU: the same reducer on
// a communicator of one rank (NCCL's set-up, the buckets, their streams and events, the
// overlap hook and the deadline polling, all but the traffic between GPUs) leaves training as
// it is without a reducer. Exit 77 (ctest: skipped) with the reason when this build has no
// CUDA or too few GPUs answer.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "slurmlab/nn/cuda/device.hpp"

#if defined(SLURMLAB_HAVE_CUDA)
#include "slurmlab/cluster/gpu_probe.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/distributed/nccl_gradient_reducer.hpp"
#include "slurmlab/nn/optim/optim.hpp"
#include "../support/data_parallel_case.hpp"
#endif

namespace {
constexpr int kSkipped = 77;

#if defined(SLURMLAB_HAVE_CUDA)
using namespace slurmlab::nn;

using namespace slurmlab::testing::data_parallel;

// One rank, one GPU: NCCL with a communicator of one. Training through the reducer equals
// training without one (an all-reduce over one rank averages by 1).
int run_single_rank() {
  configure_cuda({.device = 0});
  int failures = 0;
  const Data data;
  auto reference_net = make_net(1);
  to_device(*reference_net, Device::cuda);
  const auto reference = train(*reference_net, nullptr, data, Device::cuda).weights;
  auto net = make_net(1);
  to_device(*net, Device::cuda);
  NcclGradientReducer reducer(MPI_COMM_WORLD, std::chrono::seconds(60), 256);
  reducer.broadcast_state(*net);
  reducer.attach(*net);
  const auto reduced = train(*net, &reducer, data, Device::cuda).weights;
  reducer.detach();
  double worst = reduced.size() == reference.size() ? 0.0 : 1.0;
  for (std::size_t i = 0; i < std::min(reduced.size(), reference.size()); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(reduced[i]) - reference[i]) /
                                std::max(1.0, std::abs(static_cast<double>(reference[i]))));
  // The same arithmetic but for cuDNN's choice of algorithms, which may sum in another order.
  if (!(worst < 1e-5)) {
    std::printf("one rank: training through the NCCL reducer differs from training without it by %g\n", worst);
    ++failures;
  }
  if (reducer.buckets_launched_during_backward() == 0) {
    std::printf("one rank: no bucket was launched during backward (the overlap hook did not fire)\n");
    ++failures;
  }
  if (reducer.buckets_reduced() < static_cast<std::size_t>(2 * kSteps)) {
    std::printf("one rank: expected several buckets per step, got %zu in all\n", reducer.buckets_reduced());
    ++failures;
  }
  std::printf("%s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}

int run(int rank, int size) {
  const auto status = slurmlab::cluster::probe_gpu_runtime();
  if (size == 1) {
    if (status.device_count >= 1) return run_single_rank();
    std::printf("SKIP: no GPU answers%s%s\n", status.note.empty() ? "" : ": ", status.note.c_str());
    return kSkipped;
  }
  if (status.device_count < 2 || size < 2) {
    if (rank == 0)
      std::printf("SKIP: needs 2 ranks with a GPU each (ranks %d, GPUs %d%s%s); one GPU cannot be shared: NCCL does "
                  "not support two ranks of a communicator on the same device (it may hang)\n",
                  size, status.device_count, status.note.empty() ? "" : ": ", status.note.c_str());
    return kSkipped;
  }
  configure_cuda({.device = rank % status.device_count});
  int failures = 0;
  const Data data;
  auto reference_net = make_net(1);
  to_device(*reference_net, Device::cuda);
  const auto reference = train(*reference_net, nullptr, data, Device::cuda).weights;

  auto net = make_net(rank == 0 ? 1 : 100 + static_cast<std::uint64_t>(rank));
  to_device(*net, Device::cuda);
  {
    NcclGradientReducer reducer(MPI_COMM_WORLD, std::chrono::seconds(60), 256);  // tiny buckets: several groups
    reducer.broadcast_state(*net);
    reducer.attach(*net);  // buckets start from the backward hook, overlapping backward
    const auto parallel = train(*net, &reducer, data, Device::cuda).weights;
    if (reducer.buckets_launched_during_backward() == 0) {
      std::printf("rank %d: no bucket was launched during backward (the overlap hook did not fire)\n", rank);
      ++failures;
    }
    reducer.detach();
    double worst = 0.0;
    for (std::size_t i = 0; i < parallel.size(); ++i)
      worst = std::max(worst, std::abs(static_cast<double>(parallel[i]) - reference[i]) /
                                  std::max(1.0, std::abs(static_cast<double>(reference[i]))));
    // Float sums in another order over 10 SGD steps (the CPU MPI test sees about 1e-7).
    if (!(worst < 1e-4)) {
      std::printf("rank %d: NCCL data parallel differs from one process by %g\n", rank, worst);
      ++failures;
    }
    if (reducer.buckets_reduced() < static_cast<std::size_t>(2 * kSteps)) {
      std::printf("rank %d: expected several buckets per step, got %zu in all\n", rank, reducer.buckets_reduced());
      ++failures;
    }
    std::vector<float> root = parallel;
    MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
    if (root != parallel) {
      std::printf("rank %d: weights drifted from rank 0\n", rank);
      ++failures;
    }
  }

  // The failure path: rank 1 never joins the all-reduce; rank 0 must give up by its deadline.
  {
    std::string message;
    NcclGradientReducer reducer(MPI_COMM_WORLD, std::chrono::seconds(3), 25u << 20,
                                [&](const std::string& m) { message = m; });
    if (rank == 0) {
      const auto start = std::chrono::steady_clock::now();
      bool threw = false;
      try {
        reducer.average_gradients(parameters_of(*net));
      } catch (const std::runtime_error& error) {
        threw = true;
        if (message != error.what()) ++failures;
      }
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!threw || message.find("did not complete") == std::string::npos || waited > 30.0) {
        std::printf("rank 0: expected a timeout failure within the deadline, got '%s' after %.1f s\n", message.c_str(),
                    waited);
        ++failures;
      }
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) std::printf("%s\n", total == 0 ? "PASS" : "FAIL");
  return total == 0 ? 0 : 1;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int code = kSkipped;
#if defined(SLURMLAB_HAVE_CUDA)
  try {
    code = run(rank, size);
  } catch (const std::exception& error) {
    std::printf("rank %d: %s\n", rank, error.what());
    code = 1;
  }
#else
  if (rank == 0) std::printf("SKIP: this build has no CUDA backend\n");
#endif
  MPI_Finalize();
  return code;
}
