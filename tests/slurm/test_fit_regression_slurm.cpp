// Label slurm: the real jobs/fit-regression.sbatch on the local Slurm: one CPU task, the
// real Pantheon+ release when ../shared/data has it (FIT_TABLE), else the synthetic table,
// said loudly; every output file written, the LambdaCDM fit and the default sweep's
// "wider overfits sooner" in the job's output.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "local_slurm.hpp"

namespace fs = std::filesystem;
using namespace slurmlab::testing;

TEST(FitRegressionSlurm, JobFitsTheSupernovaeOnOneCpuTask) {
  const auto real = kSource / ".." / "shared" / "data" / "Pantheon+SH0ES.dat";
  const bool have_real = fs::exists(real);
  const std::string env =
      "--export=ALL,FIT_EPOCHS=600" + (have_real ? ",FIT_TABLE=" + fs::canonical(real).string() : std::string());
  const auto id =
      submit_and_wait(env + " " + (kSource / "jobs" / "fit-regression.sbatch").string(), "fit-regression", 300);
  ASSERT_FALSE(id.empty());
  const auto output = read_file(kWorkDir / ("fit-regression-" + id + ".out"));
  const auto results = kWorkDir / ("fit-regression-" + id);
  EXPECT_NE(output.find("1 task on the CPU"), std::string::npos) << output;
  EXPECT_NE(output.find("Flat LambdaCDM fit to"), std::string::npos) << output;
  EXPECT_NE(output.find("dark energy detected at"), std::string::npos) << output;
  EXPECT_NE(output.find("finished"), std::string::npos) << output;
  // The template's default sweep (mB on six features, widths 16 and 256) shows the wide
  // network overfitting sooner, and the summary says so.
  EXPECT_NE(output.find("the wider the network, the sooner it overfits"), std::string::npos) << output;
  if (have_real) {
    EXPECT_NE(output.find("712 rows"), std::string::npos) << output;  // those with all six features
    EXPECT_EQ(output.find("SYNTHETIC DATA"), std::string::npos) << output;
  } else {
    EXPECT_NE(output.find("SYNTHETIC DATA"), std::string::npos) << output;
  }
  for (const auto* file : {"metrics.h5", "summary.txt", "loss_curves.png", "loss_sweep.png", "hubble.png",
                           "residuals.png", "checkpoints/hidden-16/best.h5", "checkpoints/hidden-256/last.h5"}) {
    EXPECT_TRUE(fs::exists(results / file)) << file;
  }
  const auto png = read_file(results / "hubble.png");
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
}
