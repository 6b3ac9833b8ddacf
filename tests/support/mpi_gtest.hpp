#pragma once
// GoogleTest under mpirun: every rank runs the tests, rank 0 alone prints the report, and
// the exit status is the worst of all ranks' (so mpirun reports a failure on any rank).
#include <gtest/gtest.h>
#include <mpi.h>

namespace slurmlab::testing {

inline int run_all_tests_on_every_rank(bool is_root) {
  if (!is_root) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any_failed;
}

}  // namespace slurmlab::testing
