#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/io/atomic_file.hpp"

namespace fs = std::filesystem;

namespace {
fs::path fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("slurmlab-atomic-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST(AtomicFile, WritesAndReplacesWithoutLeavingTemporaries) {
  auto dir = fresh_dir("write");
  auto file = dir / "sub" / "out.txt";
  slurmlab::io::write_file_atomically(file, "first\n");
  EXPECT_EQ(read(file), "first\n");
  slurmlab::io::write_file_atomically(file, std::string(1 << 20, 'x'));
  EXPECT_EQ(fs::file_size(file), 1u << 20);
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir / "sub")) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFile, TemporaryIsAHiddenSibling) {
  auto tmp = slurmlab::io::temporary_sibling("/a/b/metrics.h5");
  EXPECT_EQ(tmp.parent_path(), fs::path("/a/b"));
  EXPECT_TRUE(tmp.filename().string().starts_with(".metrics.h5.tmp."));
}

TEST(AtomicFile, FailureNamesThePathAndKeepsTheOldFile) {
  auto dir = fresh_dir("fail");
  auto file = dir / "keep.txt";
  slurmlab::io::write_file_atomically(file, "old");
  try {
    slurmlab::io::write_file_atomically("/proc/slurmlab-cannot/x.txt", "new");
    FAIL() << "wrote into /proc";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/slurmlab-cannot"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read(file), "old");
}

TEST(AtomicFile, OutputDirectoryIsMadeOrRefusedAsAUsageError) {
  auto dir = fresh_dir("outdir");
  slurmlab::io::make_output_directory(dir / "a" / "b");
  EXPECT_TRUE(fs::is_directory(dir / "a" / "b"));
  slurmlab::io::make_output_directory(dir / "a" / "b");  // existing: fine

  slurmlab::io::write_file_atomically(dir / "plain-file", "x");
  for (const fs::path& bad : {fs::path("/proc/slurmlab-cannot/x"), dir / "plain-file", dir / "plain-file" / "sub"}) {
    try {
      slurmlab::io::make_output_directory(bad);
      FAIL() << "accepted " << bad;
    } catch (const slurmlab::UsageError& e) {
      std::string message = e.what();
      EXPECT_NE(message.find("--output-dir '" + bad.string() + "' cannot be used ("), std::string::npos) << message;
      EXPECT_NE(message.find("choose a writable directory with --output-dir."), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
}

// A directory given by another option (train-classifier export's --out) is refused naming that
// option, not --output-dir.
TEST(AtomicFile, AnUnusableDirectoryNamesTheOptionThatGaveIt) {
  try {
    slurmlab::io::make_output_directory("/proc/slurmlab-cannot", "--out");
    FAIL() << "made a directory in /proc";
  } catch (const slurmlab::UsageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("--out '/proc/slurmlab-cannot' cannot be used ("), std::string::npos) << message;
    EXPECT_NE(message.find("choose a writable directory with --out."), std::string::npos) << message;
    EXPECT_EQ(message.find("--output-dir"), std::string::npos) << message;
  }
}
