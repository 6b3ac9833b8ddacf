// env-dump's report: JSON round trip, table, diagnostics and the NTASKS_PER_NODE sentence.
#include <gtest/gtest.h>

#include "report.hpp"

using namespace slurmlab;
using env_dump::RankReport;

namespace {

RankReport report(int rank, const std::string& node, const std::string& gpu, std::optional<int> gpus_on_node) {
  RankReport r;
  r.rank = rank;
  r.node = node;
  r.host = "vm";
  r.pid = 1000 + rank;
  r.cpu_affinity = "0-3";
  r.cuda_visible_devices = gpu;
  r.device = "cpu (planned cuda:0, none answered)";
  r.gpu_identity = gpu;
  r.gpus_on_node = gpus_on_node;
  r.slurm_localid = rank % 2;
  return r;
}

}  // namespace

TEST(EnvDumpReport, JsonRoundTripKeepsEveryField) {
  auto r = report(3, "node2", "1", 2);
  // Every field a value distinct from its default and from the others, so that a field lost
  // or swapped on both sides of the round trip still shows.
  r.node_index = 5;
  r.local_rank = 6;
  r.slurm_procid = 7;
  r.slurm_nodeid = 8;
  r.current_cpu = 9;
  r.binding_reason = "SLURM_LOCALID";
  r.sharing_allowed = true;
  r.gpu_pci_bus = "0000:1a:00.0";
  r.env_file = "env-local-3.txt";
  r.gpu_name = "NVIDIA H200";
  r.gpu_uuid = "GPU-0123";
  r.gpu_memory_bytes = 150'000'000'000;
  r.diagnostics.push_back({cluster::Severity::warning, "code", "message.", "hint."});
  auto back = nlohmann::json(r).get<RankReport>();
  EXPECT_EQ(nlohmann::json(back), nlohmann::json(r));
  EXPECT_EQ(back.rank, 3);
  EXPECT_EQ(back.node, "node2");
  EXPECT_EQ(back.node_index, 5);
  EXPECT_EQ(back.local_rank, 6);
  EXPECT_EQ(back.slurm_procid, 7);
  EXPECT_EQ(back.slurm_localid, 1);
  EXPECT_EQ(back.slurm_nodeid, 8);
  EXPECT_EQ(back.host, "vm");
  EXPECT_EQ(back.pid, 1003);
  EXPECT_EQ(back.cpu_affinity, "0-3");
  EXPECT_EQ(back.current_cpu, 9);
  EXPECT_EQ(back.cuda_visible_devices, std::optional<std::string>("1"));
  EXPECT_EQ(back.device, "cpu (planned cuda:0, none answered)");
  EXPECT_EQ(back.binding_reason, "SLURM_LOCALID");
  EXPECT_EQ(back.gpu_identity, "1");
  EXPECT_EQ(back.gpus_on_node, 2);
  EXPECT_TRUE(back.sharing_allowed);
  EXPECT_EQ(back.gpu_name, "NVIDIA H200");
  EXPECT_EQ(back.gpu_uuid, "GPU-0123");
  EXPECT_EQ(back.gpu_pci_bus, "0000:1a:00.0");
  EXPECT_EQ(back.env_file, "env-local-3.txt");
  EXPECT_EQ(back.gpu_memory_bytes, 150'000'000'000);
  ASSERT_EQ(back.diagnostics.size(), 1u);
  EXPECT_EQ(back.diagnostics.at(0).severity, cluster::Severity::warning);
  EXPECT_EQ(back.diagnostics.at(0).code, "code");
  r.cuda_visible_devices.reset();
  EXPECT_TRUE(nlohmann::json(r)["cuda_visible_devices"].is_null());
}

TEST(EnvDumpReport, TableIsRankOrderedAndAligned) {
  std::vector<RankReport> reports{report(0, "node1", "0", 2), report(1, "node1", "1", 2)};
  auto table = env_dump::format_rank_table(reports);
  auto first = table.find("\n0 ");
  auto second = table.find("\n1 ");
  ASSERT_NE(first, std::string::npos) << table;
  ASSERT_NE(second, std::string::npos) << table;
  EXPECT_LT(first, second);
  EXPECT_EQ(table.find("H200"), std::string::npos);  // no GPU columns when none answered
  // Every line has the header's column start for "device".
  auto header_end = table.find('\n');
  auto column = table.substr(0, header_end).find("device");
  EXPECT_EQ(table.substr(first + 1).find("cpu (planned"), column) << table;
}

TEST(EnvDumpReport, CollectsSharedGpuAcrossRanks) {
  std::vector<RankReport> reports{report(0, "node1", "0", 1), report(1, "node1", "0", 1)};
  auto found = env_dump::collect_diagnostics(reports);
  std::vector<std::string> codes;
  for (const auto& d : found) codes.push_back(d.code);
  EXPECT_NE(std::find(codes.begin(), codes.end(), "gpu-shared"), codes.end());
  EXPECT_NE(std::find(codes.begin(), codes.end(), "tasks-exceed-gpus"), codes.end());
  EXPECT_NE(env_dump::format_diagnostics(found).find("HINT:"), std::string::npos);
}

TEST(EnvDumpReport, NtasksPerNodeExplained) {
  cluster::SlurmEnvironment s;
  EXPECT_NE(env_dump::ntasks_per_node_explanation(s).find("not inside a Slurm job"), std::string::npos);
  s.in_job = true;
  s.tasks_per_node = {3, 3, 1, 1};
  auto absent = env_dump::ntasks_per_node_explanation(s);
  EXPECT_NE(absent.find("is not set"), std::string::npos);
  EXPECT_NE(absent.find("only when --ntasks-per-node is given"), std::string::npos);
  EXPECT_NE(absent.find("3,3,1,1"), std::string::npos);
  s.ntasks_per_node = 2;
  EXPECT_NE(env_dump::ntasks_per_node_explanation(s).find("SLURM_NTASKS_PER_NODE=2"), std::string::npos);
}

TEST(EnvDumpReport, EnvironmentFileIsSortedOneVariablePerLine) {
  cluster::Environment env(std::map<std::string, std::string>{{"B", "2"}, {"A", "1"}, {"F", "line1\nline2"}});
  EXPECT_EQ(env_dump::environment_file_text(env), "A=1\nB=2\nF=line1\\nline2\n");
}
