// cli::write_run_attributes: the root attributes every program's metrics.h5 shares, read
// back through the HDF5 C API (independent of the writer). ProgramRun itself is collective:
// tests/mpi/test_program_run.cpp.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "slurmlab/cli/program_run.hpp"
#include "slurmlab/io/metrics_writer.hpp"

namespace fs = std::filesystem;
using namespace slurmlab;

namespace {

struct RootAttributes {
  hid_t file;
  explicit RootAttributes(const fs::path& path) : file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)) {}
  ~RootAttributes() {
    if (file >= 0) H5Fclose(file);
  }
  std::string text(const char* name) const {
    const hid_t attribute = H5Aopen(file, name, H5P_DEFAULT);
    EXPECT_GE(attribute, 0) << name;
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    char* pointer = nullptr;
    EXPECT_GE(H5Aread(attribute, type, &pointer), 0) << name;
    std::string value = pointer == nullptr ? "" : pointer;
    H5free_memory(pointer);
    H5Tclose(type);
    H5Aclose(attribute);
    return value;
  }
  std::int64_t integer(const char* name) const {
    const hid_t attribute = H5Aopen(file, name, H5P_DEFAULT);
    EXPECT_GE(attribute, 0) << name;
    const hid_t stored = H5Aget_type(attribute);
    EXPECT_EQ(H5Tget_class(stored), H5T_INTEGER) << name;
    EXPECT_EQ(H5Tget_size(stored), 8u) << name;
    std::int64_t value = 0;
    EXPECT_GE(H5Aread(attribute, H5T_NATIVE_INT64, &value), 0) << name;
    H5Tclose(stored);
    H5Aclose(attribute);
    return value;
  }
  int count() const {
    const hid_t root = H5Oopen(file, "/", H5P_DEFAULT);
    const int n = H5Aget_num_attrs(root);
    H5Oclose(root);
    return n;
  }
};

}  // namespace

TEST(RunAttributes, EveryProgramWritesTheSameNamesOnTheRoot) {
  const auto path = fs::temp_directory_path() / ("run-attributes-" + std::to_string(::getpid()) + ".h5");
  {
    io::MetricsWriter writer(path);
    cli::write_run_attributes(writer, {"logdet-histogram", "4242", 17, 3});
    writer.set_attribute("", "dim", std::int64_t{5});  // the program's own ones beside them
    writer.close();
  }
  const RootAttributes root(path);
  ASSERT_GE(root.file, 0) << path;
  EXPECT_EQ(root.text("program"), "logdet-histogram");
  EXPECT_EQ(root.text("job_id"), "4242");
  EXPECT_EQ(root.integer("seed"), 17);
  EXPECT_EQ(root.integer("world_size"), 3);
  EXPECT_EQ(root.count(), 5);
  fs::remove(path);
}

// (ProgramRun::start takes the job id from SLURM_JOB_ID, empty outside Slurm: the mpi suite
// checks it against the variable.)
TEST(RunAttributes, AnEmptyJobIdIsWrittenAsAnEmptyText) {
  const auto path = fs::temp_directory_path() / ("run-attributes-local-" + std::to_string(::getpid()) + ".h5");
  {
    io::MetricsWriter writer(path);
    cli::write_run_attributes(writer, {"env-dump", "", 0, 1});
  }
  const RootAttributes root(path);
  ASSERT_GE(root.file, 0) << path;
  EXPECT_EQ(root.text("job_id"), "");
  EXPECT_EQ(root.integer("seed"), 0);
  fs::remove(path);
}
