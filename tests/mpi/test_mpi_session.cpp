// Runs under mpirun -np 4: the session's collectives and its collective failure path.
#include <gtest/gtest.h>

#include <new>
#include <string>

#include "../support/mpi_gtest.hpp"

#include "slurmlab/core/errors.hpp"
#include "slurmlab/cluster/mpi_session.hpp"
#include "slurmlab/cluster/rank_context.hpp"

using namespace slurmlab;

namespace {
cluster::MpiSession* session = nullptr;
}

// Running out of memory: the allocator's own sentence (nn::OutOfMemory names the device and
// sizes) or, for a bare std::bad_alloc from a container, a plain one; then the ways out.
TEST(MpiSession, OutOfMemoryMessageKeepsTheCauseAndNamesTheWaysOut) {
  static constexpr const char* kNamed = "out of GPU memory: a tensor of 8.0 MB could not be allocated";
  struct Named : std::bad_alloc {
    const char* what() const noexcept override { return kNamed; }
  };
  const std::string ways = "; give the job more memory (sbatch --mem, --mem-per-cpu or --mem-per-gpu) or make the run "
                           "smaller (a smaller batch or problem size)";
  EXPECT_EQ(cluster::out_of_memory_message(std::bad_alloc()), "out of host memory (std::bad_alloc)" + ways);
  EXPECT_EQ(cluster::out_of_memory_message(Named()), kNamed + ways);
}

TEST(MpiSession, GatherIsRankOrderedOnRootOnly) {
  auto gathered = session->gather(std::string(static_cast<std::size_t>(session->rank()) + 1, 'a' + static_cast<char>(session->rank())));
  if (session->is_root()) {
    ASSERT_EQ(gathered.size(), static_cast<std::size_t>(session->size()));
    for (int r = 0; r < session->size(); ++r)
      EXPECT_EQ(gathered[static_cast<std::size_t>(r)], std::string(static_cast<std::size_t>(r) + 1, 'a' + static_cast<char>(r)));
  } else {
    EXPECT_TRUE(gathered.empty());
  }
}

TEST(MpiSession, AllgatherAndBroadcast) {
  auto all = session->allgather("rank" + std::to_string(session->rank()));
  ASSERT_EQ(all.size(), static_cast<std::size_t>(session->size()));
  EXPECT_EQ(all.back(), "rank" + std::to_string(session->size() - 1));
  EXPECT_EQ(session->broadcast(session->is_root() ? "from root" : "", 0), "from root");
  EXPECT_EQ(session->broadcast(session->rank() == 1 ? "from one" : "ignored", 1), "from one");
}

TEST(MpiSession, FailureOnOneRankEndsEveryRankTogether) {
  ASSERT_GE(session->size(), 2) << "run this test with mpirun -np 2 or more";
  // Only the last rank fails; all must leave with the same code instead of some waiting.
  int code = 0;
  try {
    session->run_collectively([&] {
      if (session->rank() == session->size() - 1) throw UsageError("rank-specific bad input.");
    });
  } catch (const ProgramExit& exit) {
    code = exit.code();
  }
  EXPECT_EQ(code, kUsageExitCode);
  // And a runtime error outranks nothing but still ends everyone with 1.
  code = 0;
  try {
    session->run_collectively([&] {
      if (session->rank() == 0) throw std::runtime_error("disk full.");
    });
  } catch (const ProgramExit& exit) {
    code = exit.code();
  }
  EXPECT_EQ(code, 1);
  // No failure: nobody throws.
  EXPECT_NO_THROW(session->run_collectively([] {}));
}

TEST(MpiSession, NodeLayoutUnderMpirun) {
  // mpirun on one host: every rank is on the same node, local rank = rank.
  auto env = cluster::Environment::from_process();
  auto context = cluster::RankContext::establish(*session, env, cluster::DevicePreference::automatic, false,
                                                 cluster::RankContext::BindingErrors::report);
  EXPECT_EQ(context.layout.local_size, session->size());
  EXPECT_EQ(context.layout.local_rank, session->rank());
  EXPECT_EQ(context.layout.node_count, 1);
  EXPECT_EQ(context.pattern_context().task_id, session->rank());
}

int main(int argc, char** argv) {
  cluster::MpiSession mpi(argc, argv, "test_mpi_session");
  session = &mpi;
  ::testing::InitGoogleTest(&argc, argv);
  return slurmlab::testing::run_all_tests_on_every_rank(mpi.is_root());
}
