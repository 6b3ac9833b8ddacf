// Runs under mpirun -np 4: data-parallel SGD with gradients averaged by bucketed
// MPI_Allreduce matches single-process training on the whole global batch.
#include <gtest/gtest.h>

#include "../support/data_parallel_case.hpp"
#include "../support/mpi_gtest.hpp"
#include <mpi.h>

#include <cmath>

#include "slurmlab/cluster/mpi_session.hpp"
#include "slurmlab/nn/distributed/data_parallel.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/optim/optim.hpp"

using namespace slurmlab;
using namespace slurmlab::nn;

namespace {

using namespace slurmlab::testing::data_parallel;

void expect_matches_single_process(std::size_t bucket_bytes) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  ASSERT_EQ(kGlobalBatch % size, 0);
  const Data data;
  auto reference_net = make_net(1);
  const Outcome reference = train(*reference_net, nullptr, data);

  // Ranks other than 0 start from other weights: broadcast_state must fix that.
  auto net = make_net(rank == 0 ? 1 : 100 + static_cast<std::uint64_t>(rank));
  MpiGradientReducer reducer(MPI_COMM_WORLD, bucket_bytes);
  reducer.broadcast_state(*net);
  const Outcome parallel = train(*net, &reducer, data);

  // Tolerance: float sums in another order (4 partial sums, then the allreduce) over 10 SGD
  // steps; observed differences are around 1e-7.
  ASSERT_EQ(parallel.weights.size(), reference.weights.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < parallel.weights.size(); ++i) {
    const double scale = std::max(1.0, std::abs(static_cast<double>(reference.weights[i])));
    worst = std::max(worst, std::abs(static_cast<double>(parallel.weights[i]) - reference.weights[i]) / scale);
  }
  EXPECT_LT(worst, 2e-5) << "rank " << rank << " of " << size;
  for (std::int64_t s = 0; s < kSteps; ++s)
    EXPECT_NEAR(parallel.global_losses[static_cast<std::size_t>(s)], reference.global_losses[static_cast<std::size_t>(s)],
                1e-5)
        << "step " << s << ": the reduced loss is the global one";

  // All ranks hold bit-identical weights (the allreduce result is the same everywhere).
  std::vector<float> root = parallel.weights;
  MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
  EXPECT_EQ(root, parallel.weights) << "rank " << rank << " drifted from rank 0";
  if (size > 1) {
    EXPECT_GE(reducer.allreduce_calls(), static_cast<std::size_t>(kSteps));
  }
}

}  // namespace

TEST(DataParallel, FourRanksMatchOneProcessOnTheGlobalBatch) { expect_matches_single_process(25u << 20); }

TEST(DataParallel, SmallBucketsGiveTheSameResult) {
  // 64-byte buckets: every tensor is reduced on its own or split over buckets.
  expect_matches_single_process(64);
}

int main(int argc, char** argv) {
  cluster::MpiSession mpi(argc, argv, "test_nn_data_parallel");
  ::testing::InitGoogleTest(&argc, argv);
  return slurmlab::testing::run_all_tests_on_every_rank(mpi.is_root());
}
