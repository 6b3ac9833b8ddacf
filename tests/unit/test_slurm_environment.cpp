// The typed Slurm view and the layout checks, from environments recorded on the local
// Slurm (tools/local-slurm) and shaped like those of real clusters.
#include <gtest/gtest.h>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/cluster/diagnostics.hpp"
#include "slurmlab/cluster/mpi_session.hpp"
#include "slurmlab/cluster/rank_context.hpp"
#include "slurmlab/cluster/slurm_environment.hpp"

using namespace slurmlab::cluster;
using Vars = std::map<std::string, std::string>;

namespace {

// A task of `srun` inside `sbatch --nodes 4 --ntasks-per-node 2 --gpus-per-task=1`.
Vars srun_task_in_batch() {
  return {{"SLURM_JOB_ID", "17"},          {"SLURM_STEP_ID", "0"},         {"SLURM_JOB_NAME", "env-dump"},
          {"SLURM_PROCID", "5"},           {"SLURM_LOCALID", "1"},         {"SLURM_NODEID", "2"},
          {"SLURM_NTASKS", "8"},           {"SLURM_NNODES", "4"},          {"SLURM_NTASKS_PER_NODE", "2"},
          {"SLURM_TASKS_PER_NODE", "2(x4)"}, {"SLURM_STEP_TASKS_PER_NODE", "2(x4)"},
          {"SLURM_JOB_NODELIST", "node[1-4]"}, {"SLURM_STEP_NODELIST", "node[1-4]"},
          {"SLURMD_NODENAME", "node3"},    {"CUDA_VISIBLE_DEVICES", "1"},  {"SLURM_GPUS_ON_NODE", "2"},
          {"SLURM_JOB_GPUS", "0,1"},       {"SLURM_STEP_GPUS", "0,1"},     {"SLURM_GPUS_PER_TASK", "1"},
          {"ENVIRONMENT", "BATCH"},        {"SLURM_JOB_USER", "ada"}};
}

bool has_code(const std::vector<Diagnostic>& found, const std::string& code) {
  for (const auto& d : found)
    if (d.code == code) return true;
  return false;
}

}  // namespace

TEST(SlurmEnvironment, SrunTaskInsideBatchJob) {
  auto s = SlurmEnvironment::from(Environment(srun_task_in_batch()));
  EXPECT_TRUE(s.in_job);
  EXPECT_TRUE(s.launched_by_srun);
  EXPECT_EQ(s.job_kind, JobKind::batch);
  EXPECT_EQ(s.job_id, "17");
  EXPECT_EQ(s.procid, 5);
  EXPECT_EQ(s.localid, 1);
  EXPECT_EQ(s.nodeid, 2);
  EXPECT_EQ(s.ntasks_per_node, 2);
  EXPECT_EQ(s.tasks_per_node, std::vector<int>({2, 2, 2, 2}));
  EXPECT_EQ(s.tasks_on_this_node(), 2);
  EXPECT_EQ(s.nodes, std::vector<std::string>({"node1", "node2", "node3", "node4"}));
  EXPECT_EQ(s.cuda_visible_devices, std::vector<std::string>({"1"}));
  EXPECT_EQ(s.gpus_on_node, 2);
  EXPECT_TRUE(s.gpus_requested());
  EXPECT_FALSE(s.cpus_per_task.has_value());
  EXPECT_TRUE(check_task_environment(s, 5, 8).empty());
}

TEST(SlurmEnvironment, NtasksPerNodeIsAbsentNotGuessed) {
  auto vars = srun_task_in_batch();
  vars.erase("SLURM_NTASKS_PER_NODE");
  vars["SLURM_TASKS_PER_NODE"] = vars["SLURM_STEP_TASKS_PER_NODE"] = "3(x2),1(x2)";
  auto s = SlurmEnvironment::from(Environment(vars));
  EXPECT_FALSE(s.ntasks_per_node.has_value());
  EXPECT_EQ(s.tasks_per_node, std::vector<int>({3, 3, 1, 1}));
  auto found = check_task_environment(s, 5, 8);
  EXPECT_TRUE(has_code(found, "ntasks-per-node-missing"));
  EXPECT_TRUE(has_code(found, "uneven-tasks-per-node"));
  for (const auto& d : found) EXPECT_FALSE(d.hint.empty()) << d.code;
}

TEST(SlurmEnvironment, NtasksWithoutPerNodeOnOneNodeOrWithoutGpusIsFine) {
  auto vars = srun_task_in_batch();
  vars.erase("SLURM_NTASKS_PER_NODE");
  for (auto name : {"SLURM_GPUS_ON_NODE", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_PER_TASK"}) vars.erase(name);
  EXPECT_FALSE(has_code(check_task_environment(SlurmEnvironment::from(Environment(vars)), 5, 8), "ntasks-per-node-missing"));
}

TEST(SlurmEnvironment, BatchScriptItselfIsNotAnSrunStep) {
  auto vars = srun_task_in_batch();
  vars.erase("SLURM_STEP_ID");
  auto s = SlurmEnvironment::from(Environment(vars));
  EXPECT_FALSE(s.launched_by_srun);
  auto found = check_task_environment(s, 0, 1);
  ASSERT_TRUE(has_code(found, "not-launched-by-srun"));
  EXPECT_NE(found.front().hint.find("srun"), std::string::npos);
}

TEST(SlurmEnvironment, MpirunInsideAnAllocationIsNotBlamedOnPmix) {
  // mpirun's daemons are srun tasks (one per node), so its ranks inherit SLURM_STEP_ID and
  // a per-node SLURM_PROCID; the finding is "not srun", not a missing --mpi=pmix.
  auto vars = srun_task_in_batch();
  vars["SLURM_NTASKS"] = "4";
  vars["OMPI_MCA_orte_hnp_uri"] = "1220214784.0;tcp://10.0.0.1:43595";
  auto s = SlurmEnvironment::from(Environment(vars));
  EXPECT_TRUE(s.launched_by_mpirun);
  EXPECT_FALSE(s.launched_by_srun);
  auto found = check_task_environment(s, 5, 8);
  EXPECT_TRUE(has_code(found, "not-launched-by-srun"));
  EXPECT_FALSE(has_code(found, "mpi-world-mismatch"));
  EXPECT_NE(found.front().message.find("started by mpirun"), std::string::npos) << found.front().message;
}

TEST(SlurmEnvironment, MpiWorldThatDidNotJoinIsAnError) {
  // srun --mpi=none with Open MPI: 8 singletons instead of one 8-rank world.
  auto found = check_task_environment(SlurmEnvironment::from(Environment(srun_task_in_batch())), 0, 1);
  ASSERT_TRUE(has_code(found, "mpi-world-mismatch"));
  EXPECT_NE(found.front().hint.find("pmix"), std::string::npos);
}

TEST(SlurmEnvironment, InteractiveAndOutsideSlurm) {
  auto vars = srun_task_in_batch();
  vars.erase("ENVIRONMENT");
  EXPECT_EQ(SlurmEnvironment::from(Environment(vars)).job_kind, JobKind::interactive);
  auto outside = SlurmEnvironment::from(Environment(Vars{{"USER", "ada"}}));
  EXPECT_FALSE(outside.in_job);
  EXPECT_EQ(outside.job_kind, JobKind::none);
  EXPECT_TRUE(check_task_environment(outside, 0, 4).empty());
}

TEST(SlurmEnvironment, MalformedValuesNameTheVariable) {
  for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"SLURM_NTASKS", "eight"}, {"SLURM_TASKS_PER_NODE", "2(x"}, {"SLURM_JOB_NODELIST", "node[1-"}}) {
    auto vars = srun_task_in_batch();
    // The step's own variables win over the job's: break the one that is read.
    vars.erase("SLURM_STEP_TASKS_PER_NODE");
    vars.erase("SLURM_STEP_NODELIST");
    vars[name] = value;
    try {
      SlurmEnvironment::from(Environment(vars));
      ADD_FAILURE() << "accepted " << name << "=" << value;
    } catch (const slurmlab::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(name == "SLURM_JOB_NODELIST" ? value : name), std::string::npos) << e.what();
    }
  }
}

TEST(Placement, MoreTasksThanGpusOnANode) {
  std::vector<TaskPlacement> tasks;
  for (int r = 0; r < 4; ++r) tasks.push_back({r, "node1", 2, std::to_string(r), false, std::nullopt});
  auto found = check_placement(tasks);
  ASSERT_TRUE(has_code(found, "tasks-exceed-gpus"));
  EXPECT_NE(found.front().message.find("node1 runs 4 tasks"), std::string::npos) << found.front().message;
  tasks[0].sharing_allowed = true;
  EXPECT_FALSE(has_code(check_placement(tasks), "tasks-exceed-gpus"));
}

TEST(Placement, TwoRanksOnOneGpu) {
  std::vector<TaskPlacement> tasks{{0, "node1", 2, "0", false, std::nullopt}, {1, "node1", 2, "0", false, std::nullopt},
                                   {2, "node2", 2, "0", false, std::nullopt}, {3, "node2", 2, "1", false, std::nullopt}};
  auto found = check_placement(tasks);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].code, "gpu-shared");
  EXPECT_NE(found[0].message.find("Ranks 0 and 1 on node node1"), std::string::npos) << found[0].message;
  // The same GPU index on different nodes is not sharing.
  tasks[1].gpu_identity = "1";
  EXPECT_TRUE(check_placement(tasks).empty());
}

TEST(Placement, SomeRanksOnGpusOthersOnTheCpu) {
  std::vector<TaskPlacement> tasks{{0, "node1", 2, "GPU-a", false, std::nullopt}, {1, "node1", 2, "GPU-b", false, std::nullopt},
                                   {2, "node2", std::nullopt, "", false, "no usable NVIDIA GPU or driver"}};
  auto found = check_placement(tasks);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].code, "mixed-devices");
  EXPECT_EQ(found[0].severity, Severity::warning);
  EXPECT_EQ(found[0].message, "Ranks 0 and 1 compute on GPUs but rank 2 on the CPU (rank 2: no usable NVIDIA GPU or driver).");
  EXPECT_NE(found[0].hint.find("--device cpu"), std::string::npos) << found[0].hint;
  // All on the CPU, or all on GPUs: nothing to say.
  tasks[0].cpu_reason = tasks[1].cpu_reason = "no GPU";
  EXPECT_FALSE(has_code(check_placement(tasks), "mixed-devices"));
  for (auto& t : tasks) t.cpu_reason.reset();
  EXPECT_FALSE(has_code(check_placement(tasks), "mixed-devices"));
}

TEST(Placement, UniqueDiagnosticsKeepsOneOfEach) {
  Diagnostic a{Severity::warning, "x", "same", "h"};
  Diagnostic b{Severity::warning, "y", "other", "h"};
  EXPECT_EQ(unique_diagnostics({a, a, b, a}).size(), 2u);
}

TEST(NodeLayout, LocalRanksFromNodeNames) {
  std::vector<std::string> nodes{"node1", "node1", "node2", "node2", "node2", "node3"};
  auto layout = layout_from_node_names(nodes, 4);
  EXPECT_EQ(layout.local_rank, 2);
  EXPECT_EQ(layout.local_size, 3);
  EXPECT_EQ(layout.node_index, 1);
  EXPECT_EQ(layout.node_count, 3);
  EXPECT_EQ(layout_from_node_names(nodes, 5).local_size, 1);
  EXPECT_EQ(layout_from_node_names(nodes, 0).local_rank, 0);
}

TEST(DeviceList, ParsesMasks) {
  EXPECT_EQ(parse_device_list("0,1,2"), std::vector<std::string>({"0", "1", "2"}));
  EXPECT_TRUE(parse_device_list("").empty());
  EXPECT_TRUE(parse_device_list("NoDevFiles").empty());
  EXPECT_EQ(parse_tasks_per_node("4", "X"), std::vector<int>({4}));
  EXPECT_THROW(parse_tasks_per_node("", "X"), slurmlab::UsageError);
}

TEST(SingletonMpiSettings, OnlyAnOpenMpiProcessNoLauncherStartedGetsThemAndNeverOverTheUsersOwn) {
  using Settings = std::vector<std::pair<std::string, std::string>>;
  const Settings both{{"OMPI_MCA_ess_singleton_isolated", "1"}, {"OMPI_MCA_pml", "ob1"}};
  EXPECT_EQ(singleton_mpi_settings(Environment(Vars{{"HOME", "/home/ada"}}), true), both);
  // sbatch's batch shell without srun is no launcher either: the program is a singleton there.
  EXPECT_EQ(singleton_mpi_settings(Environment(Vars{{"SLURM_JOB_ID", "17"}, {"SLURM_STEP_ID", "batch"}}), true), both);
  EXPECT_TRUE(singleton_mpi_settings(Environment(Vars{}), false).empty()) << "MPICH and others: left alone";
  for (const char* launcher : {"OMPI_COMM_WORLD_SIZE", "OMPI_MCA_orte_hnp_uri", "PRTE_LAUNCHED", "PMIX_RANK",
                               "PMI_RANK", "PMI_FD"}) {
    EXPECT_TRUE(singleton_mpi_settings(Environment(Vars{{launcher, "0"}}), true).empty()) << launcher;
  }
  // srun's tasks (--mpi=pmix) carry PMIX_RANK beside the Slurm variables: UCX stays for the fabric.
  Vars task = srun_task_in_batch();
  task["PMIX_RANK"] = "5";
  EXPECT_TRUE(singleton_mpi_settings(Environment(task), true).empty());
  EXPECT_EQ(singleton_mpi_settings(Environment(Vars{{"OMPI_MCA_pml", "ucx"}}), true),
            (Settings{{"OMPI_MCA_ess_singleton_isolated", "1"}}));
}
