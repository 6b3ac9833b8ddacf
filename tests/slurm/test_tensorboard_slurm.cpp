// Label slurm: the real jobs/tensorboard.sbatch on the local Slurm. The job starts
// TensorBoard (from the project's .venv) on a compute node on a free port and prints the
// ssh tunnel command; the test reaches that port from this machine, checks that the server
// lists our runs and scalars (the real TensorBoard reading our native event files), then
// cancels the job and checks that the server is gone.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include "local_slurm.hpp"

namespace fs = std::filesystem;
using namespace slurmlab::testing;

namespace {

std::string curl(const std::string& url) {
  return run_command("curl -sf --max-time 5 " + shell_quote(url), 15).output;
}

template <class Predicate>
bool poll(int seconds, Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return done();
}

}  // namespace

TEST(TensorBoardSlurm, ServesOurEventFilesAndPrintsTheTunnelCommand) {
  const auto tensorboard = kSource / ".venv/bin/tensorboard";
  if (!fs::exists(tensorboard)) {
    // In CI the environment must exist (tools/test installs it; SLURMLAB_REQUIRE_VENV=1 there).
    const char* required = std::getenv("SLURMLAB_REQUIRE_VENV");
    if (required != nullptr && std::string(required) == "1") FAIL() << tensorboard << " missing although required";
    GTEST_SKIP() << tensorboard << " missing; run env/python.sh (tools/test does)";
  }
  const auto logdir = kWorkDir / "tensorboard-logs";
  auto written = run_command((kBinary / "bin/write_sample_events").string() + " " + (logdir / "run-a").string(), 60);
  ASSERT_EQ(written.exit_code, 0) << written.output;

  auto submitted = client("SLURMLAB_LOGDIR=" + logdir.string() + " SLURMLAB_TENSORBOARD=" + tensorboard.string() +
                          " SLURMLAB_LOGIN_HOST=login.example.org sbatch --parsable " +
                          (kSource / "jobs/tensorboard.sbatch").string());
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const std::string job = std::regex_replace(submitted.output, std::regex("\\s+"), "");
  const auto output_file = kWorkDir / ("tensorboard-" + job + ".out");

  std::smatch url;
  std::string output;
  const std::regex url_line("TENSORBOARD_URL=http://(node\\d+):(\\d+)/");
  const bool up = poll(120, [&] {
    output = fs::exists(output_file) ? read_file(output_file) : "";
    return std::regex_search(output, url, url_line);
  });
  if (!up) {
    client("scancel " + job);
    FAIL() << "no TENSORBOARD_URL line in " << output_file << ":\n" << output;
  }
  const std::string node = url[1], port = url[2];
  // The exact tunnel command for the login node.
  EXPECT_TRUE(std::regex_search(
      output, std::regex("\n  ssh -N -L 6006:" + node + ":" + port + " [^@\\s]+@login\\.example\\.org\n")))
      << output;
  EXPECT_NE(output.find("http://localhost:6006"), std::string::npos) << output;
  EXPECT_NE(output.find("scancel " + job), std::string::npos) << output;

  // The server answers on this machine (the local nodes share its network) and reads our runs.
  const std::string base = "http://127.0.0.1:" + port;
  EXPECT_NE(curl(base + "/").find("<!doctype html>"), std::string::npos);
  std::string runs;
  EXPECT_TRUE(poll(60, [&] {
    runs = curl(base + "/data/runs");
    return runs.find("\"run-a\"") != std::string::npos && runs.find("\"run-a/rank-001\"") != std::string::npos;
  })) << runs;
  std::string scalars;
  EXPECT_TRUE(poll(30, [&] {
    scalars = curl(base + "/data/plugin/scalars/scalars?run=run-a&tag=train%2Floss");
    return scalars.find(", 9, 0.1") != std::string::npos;  // [wall_time, step 9, 1/10 as float32]
  })) << scalars;

  // scancel ends TensorBoard with the job.
  auto cancelled = client("scancel " + job);
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.output;
  EXPECT_TRUE(poll(60, [&] { return run_command("curl -s --max-time 2 " + base + "/", 10).exit_code != 0; }))
      << "TensorBoard still answers after scancel";
  // COMPLETING while Slurm cleans up, then CANCELLED.
  std::string state;
  EXPECT_TRUE(poll(60, [&] {
    state = client("scontrol show job " + job).output;
    return state.find("JobState=CANCELLED") != std::string::npos;
  })) << state;
}
