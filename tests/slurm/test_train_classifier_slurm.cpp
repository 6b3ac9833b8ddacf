// Label slurm: the real jobs/train-classifier*.sbatch on the local Slurm (CPU fallback, the
// templates' tiny config): one node x 2 tasks and 2 nodes x 2 tasks train and test the best
// checkpoint; SIGUSR1 in the middle of the two-node job checkpoints, requeues it, and the
// requeued job resumes to exactly the uninterrupted run's numbers; a job with more tasks than
// GPUs on its node is refused before training with the layout sentence.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "local_slurm.hpp"

namespace fs = std::filesystem;
using namespace slurmlab::testing;

namespace {

// The lines that must match between two runs of the same config: every epoch's numbers
// without the throughput, and the test of the best checkpoint without its path.
std::string comparable(const std::string& output) {
  std::string out;
  std::istringstream in(output);
  std::string line;
  const std::regex epoch(R"(^(epoch \d+/\d+ .*val_acc \S+))"), test(R"(^test of \S+: (.*)$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, epoch) || std::regex_search(line, m, test)) out += m[1].str() + "\n";
  }
  return out;
}

std::string uninterrupted;  // the multi-node run's comparable lines, for the requeue test

}  // namespace

TEST(TrainClassifierSlurm, SingleNodeTemplateTrainsOnTwoTasksAndTestsTheBest) {
  const auto id = submit_and_wait((kSource / "jobs" / "train-classifier.sbatch").string(), "train-classifier", 300);
  ASSERT_FALSE(id.empty());
  const auto output = read_file(kWorkDir / ("train-classifier-" + id + ".out"));
  EXPECT_NE(output.find("cpu mode"), std::string::npos) << output;
  EXPECT_NE(output.find("SYNTHETIC image set"), std::string::npos) << output;
  EXPECT_NE(output.find("global batch 64 = 32 per rank x 2 rank(s)"), std::string::npos) << output;
  EXPECT_NE(output.find("epoch 3/3 "), std::string::npos) << output;
  EXPECT_NE(output.find("finished"), std::string::npos) << output;
  const auto results = kWorkDir / ("train-classifier-" + id);
  for (const char* file : {"test_report.txt", "confusion_test.png", "metrics.h5", "checkpoints/last.h5", "rank-0.log",
                           "rank-1.log"}) {
    EXPECT_TRUE(fs::exists(results / file)) << file;
  }
  EXPECT_NE(comparable(output).find("accuracy"), std::string::npos) << output;
}

TEST(TrainClassifierSlurm, MultiNodeTemplateTrainsOnFourTasksOverTwoNodes) {
  const auto id = submit_and_wait(
      "--export=ALL,TC_EPOCHS=4 " + (kSource / "jobs" / "train-classifier-multinode.sbatch").string(),
      "train-classifier-multinode", 300);
  ASSERT_FALSE(id.empty());
  const auto output = read_file(kWorkDir / ("train-classifier-multinode-" + id + ".out"));
  EXPECT_NE(output.find("global batch 64 = 16 per rank x 4 rank(s)"), std::string::npos) << output;
  EXPECT_NE(output.find("MPI gradient all-reduce"), std::string::npos) << output;
  EXPECT_NE(output.find("epoch 4/4 "), std::string::npos) << output;
  const auto results = kWorkDir / ("train-classifier-multinode-" + id);
  for (int rank = 0; rank < 4; ++rank) EXPECT_TRUE(fs::exists(results / ("rank-" + std::to_string(rank) + ".log")));
  EXPECT_TRUE(fs::exists(results / "test_report.txt"));
  uninterrupted = comparable(output);
  EXPECT_NE(uninterrupted.find("accuracy"), std::string::npos) << output;
}


TEST(TrainClassifierSlurm, Sigusr1OnTwoNodesCheckpointsRequeuesAndTheRequeuedJobResumesToTheSameResult) {
  if (uninterrupted.empty()) GTEST_SKIP() << "needs the multi-node run above as the reference";
  auto submitted = client("SLURMLAB_BIN=" + (kBinary / "bin").string() + " SLURMLAB_OUTPUT=" + kWorkDir.string() +
                          " sbatch --parsable --export=ALL,TC_EPOCHS=4 " +
                          (kSource / "jobs" / "train-classifier-multinode.sbatch").string());
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const std::string id = submitted.output.substr(0, submitted.output.find_first_not_of("0123456789"));
  const auto rank0 = kWorkDir / ("train-classifier-multinode-" + id) / ("rank-" + id + "-0.out");
  // Signal the tasks (not the batch shell) once the first epoch is done, as --signal=USR1@90 would.
  bool signalled = false;
  for (int i = 0; i < 240 && !signalled; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (read_file(rank0).find("epoch 1/4 ") != std::string::npos) {
      ASSERT_EQ(client("scancel --signal=USR1 " + id).exit_code, 0);
      signalled = true;
    }
  }
  ASSERT_TRUE(signalled) << read_file(rank0);
  // Slurm holds a requeued batch job for about two minutes (EligibleTime); release it now.
  for (int i = 0; i < 60; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto job = client("scontrol show job " + id).output;
    if (job.find("Restarts=1") != std::string::npos && job.find("JobState=PENDING") != std::string::npos) {
      client("scontrol update jobid=" + id + " StartTime=now");
      break;
    }
  }
  const auto waited = client(kCluster + " wait " + id + " --timeout 300", 360);
  const auto output = read_file(kWorkDir / ("train-classifier-multinode-" + id + ".out"));
  ASSERT_EQ(waited.exit_code, 0) << waited.output << output;
  const auto ranks = read_file(rank0);
  EXPECT_NE(ranks.find("preempted by SIGUSR1 at step "), std::string::npos) << ranks;
  EXPECT_NE(ranks.find("requeued job " + id), std::string::npos) << ranks;
  EXPECT_NE(output.find("(restart 1)"), std::string::npos) << output;
  EXPECT_NE(output.find("resuming from "), std::string::npos) << output;
  // The resumed run's epochs after the signal and its test equal the uninterrupted run's.
  const auto resumed = comparable(output);
  const auto last_epochs = [](const std::string& lines) { return lines.substr(lines.find("epoch 2/4")); };
  ASSERT_NE(resumed.find("epoch 2/4"), std::string::npos) << output;
  EXPECT_EQ(last_epochs(resumed), last_epochs(uninterrupted));
}

TEST(TrainClassifierSlurm, MoreTasksThanGpusOnANodeIsRefusedBeforeTraining) {
  // A user's own script with Lightning's classic mistake: two tasks on a node, one GPU there.
  const auto script = kWorkDir / "too-many-tasks.sbatch";
  {
    std::ofstream out(script);
    out << "#!/bin/bash\n#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=2\n#SBATCH --gres=gpu:1\n"
           "#SBATCH --output=too-many-tasks-%j.out\n"
           "srun " << (kBinary / "bin" / "train-classifier").string()
        << " fit --output-dir too-many-tasks-$SLURM_JOB_ID --synthetic-count 500\n";
  }
  auto submitted = client("sbatch --parsable " + script.string());
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const std::string id = submitted.output.substr(0, submitted.output.find_first_not_of("0123456789"));
  const auto waited = client(kCluster + " wait " + id + " --timeout 120", 180);
  EXPECT_NE(waited.exit_code, 0) << waited.output;
  const auto output = read_file(kWorkDir / ("too-many-tasks-" + id + ".out"));
  EXPECT_NE(output.find("Node node1 runs 2 tasks but Slurm allocated only 1 GPU(s) there"), std::string::npos) << output;
  EXPECT_NE(output.find("HINT: use --ntasks-per-node=1 (one task per GPU) or ask for more GPUs per node."),
            std::string::npos)
      << output;
  EXPECT_EQ(output.find("epoch 1/"), std::string::npos) << output;  // refused before training
  EXPECT_FALSE(fs::exists(kWorkDir / ("too-many-tasks-" + id) / "checkpoints"));
}
