// MetricsWriter: everything written is read back through the HDF5 C API directly (not
// through the writer's own code), with exact values, shapes, types and attributes.
#include "slurmlab/io/metrics_writer.hpp"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "slurmlab/io/atomic_file.hpp"

namespace fs = std::filesystem;
using slurmlab::io::MetricsWriter;

namespace {

// A fresh directory per test, removed afterwards.
class MetricsWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = fs::temp_directory_path() / ("slurmlab-metrics-" + std::to_string(::getpid()) + "-" +
                                              std::to_string(counter++) + "-" + info->name());
    fs::remove_all(directory_);
    fs::create_directories(directory_);
    path_ = directory_ / "metrics.h5";
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(directory_, ignored);
  }

  std::vector<std::string> directory_entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(directory_)) names.push_back(entry.path().filename().string());
    return names;
  }

  fs::path directory_;
  fs::path path_;
};

// Read-only view of a finished file through the plain HDF5 C API.
class Reader {
 public:
  explicit Reader(const fs::path& path) : file_(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)) {
    if (file_ < 0) throw std::runtime_error("test reader cannot open " + path.string());
  }
  ~Reader() { H5Fclose(file_); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  bool has(const std::string& name) const { return H5Lexists(file_, name.c_str(), H5P_DEFAULT) > 0; }

  std::vector<hsize_t> shape(const std::string& name) const {
    const hid_t dataset = open(name);
    const hid_t space = H5Dget_space(dataset);
    const int rank = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    H5Sclose(space);
    H5Dclose(dataset);
    return dims;
  }

  std::vector<hsize_t> max_shape(const std::string& name) const {
    const hid_t dataset = open(name);
    const hid_t space = H5Dget_space(dataset);
    const int rank = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    std::vector<hsize_t> max_dims(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space, dims.data(), max_dims.data());
    H5Sclose(space);
    H5Dclose(dataset);
    return max_dims;
  }

  H5D_layout_t layout(const std::string& name) const {
    const hid_t dataset = open(name);
    const hid_t properties = H5Dget_create_plist(dataset);
    const H5D_layout_t result = H5Pget_layout(properties);
    H5Pclose(properties);
    H5Dclose(dataset);
    return result;
  }

  // "f64", "i64", "utf8-vlen-string" or "other": the stored (file) type.
  std::string type(const std::string& name) const {
    const hid_t dataset = open(name);
    const hid_t stored = H5Dget_type(dataset);
    std::string result = describe(stored);
    H5Tclose(stored);
    H5Dclose(dataset);
    return result;
  }

  std::vector<double> doubles(const std::string& name) const { return read<double>(name, H5T_NATIVE_DOUBLE); }
  std::vector<std::int64_t> int64s(const std::string& name) const {
    return read<std::int64_t>(name, H5T_NATIVE_INT64);
  }

  std::vector<std::string> strings(const std::string& name) const {
    const hid_t dataset = open(name);
    const hid_t space = H5Dget_space(dataset);
    const auto count = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space));
    const hid_t type = vlen_string_type();
    std::vector<char*> pointers(count, nullptr);
    std::vector<std::string> result;
    if (count > 0) {
      EXPECT_GE(H5Dread(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()), 0);
      for (char* pointer : pointers) result.emplace_back(pointer == nullptr ? "" : pointer);
#if H5_VERSION_GE(1, 12, 0)
      H5Treclaim(type, space, H5P_DEFAULT, pointers.data());
#else
      H5Dvlen_reclaim(type, space, H5P_DEFAULT, pointers.data());
#endif
    }
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(dataset);
    return result;
  }

  std::string attribute_type(const std::string& object, const std::string& name) const {
    const hid_t attribute = open_attribute(object, name);
    const hid_t stored = H5Aget_type(attribute);
    std::string result = describe(stored);
    H5Tclose(stored);
    H5Aclose(attribute);
    return result;
  }

  std::string string_attribute(const std::string& object, const std::string& name) const {
    const hid_t attribute = open_attribute(object, name);
    const hid_t type = vlen_string_type();
    char* pointer = nullptr;
    EXPECT_GE(H5Aread(attribute, type, &pointer), 0);
    std::string result = pointer == nullptr ? "" : pointer;
    H5free_memory(pointer);
    H5Tclose(type);
    H5Aclose(attribute);
    return result;
  }

  std::int64_t int64_attribute(const std::string& object, const std::string& name) const {
    std::int64_t value = 0;
    read_attribute(object, name, H5T_NATIVE_INT64, &value);
    return value;
  }

  double double_attribute(const std::string& object, const std::string& name) const {
    double value = 0;
    read_attribute(object, name, H5T_NATIVE_DOUBLE, &value);
    return value;
  }

  // h5py's boolean enum: the member name of the stored value.
  std::string enum_attribute_name(const std::string& object, const std::string& name) const {
    const hid_t attribute = open_attribute(object, name);
    const hid_t stored = H5Aget_type(attribute);
    EXPECT_EQ(H5Tget_class(stored), H5T_ENUM);
    std::int8_t value = -1;
    const hid_t memory = H5Tget_native_type(stored, H5T_DIR_ASCEND);
    EXPECT_GE(H5Aread(attribute, memory, &value), 0);
    char member[16] = {};
    EXPECT_GE(H5Tenum_nameof(memory, &value, member, sizeof member), 0);
    H5Tclose(memory);
    H5Tclose(stored);
    H5Aclose(attribute);
    return member;
  }

  bool has_attribute(const std::string& object, const std::string& name) const {
    return H5Aexists_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
  }

  int attribute_count(const std::string& object) const {
    const hid_t opened = H5Oopen(file_, object.c_str(), H5P_DEFAULT);
    const int count = H5Aget_num_attrs(opened);
    H5Oclose(opened);
    return count;
  }

  bool is_group(const std::string& name) const {
    const hid_t opened = H5Oopen(file_, name.c_str(), H5P_DEFAULT);
    const bool group = H5Iget_type(opened) == H5I_GROUP;
    H5Oclose(opened);
    return group;
  }

 private:
  hid_t open(const std::string& name) const {
    const hid_t dataset = H5Dopen2(file_, name.c_str(), H5P_DEFAULT);
    if (dataset < 0) throw std::runtime_error("test reader cannot open dataset " + name);
    return dataset;
  }

  hid_t open_attribute(const std::string& object, const std::string& name) const {
    const hid_t attribute = H5Aopen_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
    if (attribute < 0) throw std::runtime_error("test reader cannot open attribute " + object + "@" + name);
    return attribute;
  }

  void read_attribute(const std::string& object, const std::string& name, hid_t memory_type, void* value) const {
    const hid_t attribute = open_attribute(object, name);
    const hid_t space = H5Aget_space(attribute);
    EXPECT_EQ(H5Sget_simple_extent_type(space), H5S_SCALAR);
    EXPECT_GE(H5Aread(attribute, memory_type, value), 0);
    H5Sclose(space);
    H5Aclose(attribute);
  }

  template <typename T>
  std::vector<T> read(const std::string& name, hid_t memory_type) const {
    const hid_t dataset = open(name);
    const hid_t space = H5Dget_space(dataset);
    std::vector<T> values(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
    if (!values.empty()) {
      EXPECT_GE(H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
    }
    H5Sclose(space);
    H5Dclose(dataset);
    return values;
  }

  static hid_t vlen_string_type() {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    return type;
  }

  static std::string describe(hid_t type) {
    switch (H5Tget_class(type)) {
      case H5T_FLOAT:
        return H5Tget_size(type) == 8 ? "f64" : "other";
      case H5T_INTEGER:
        return H5Tget_size(type) == 8 && H5Tget_sign(type) == H5T_SGN_2 ? "i64" : "other";
      case H5T_STRING:
        return H5Tis_variable_str(type) > 0 && H5Tget_cset(type) == H5T_CSET_UTF8 ? "utf8-vlen-string" : "other";
      case H5T_ENUM:
        return "enum";
      default:
        return "other";
    }
  }

  hid_t file_;
};

TEST_F(MetricsWriterTest, WritesEveryKindAndReadsBackExactly) {
  const std::vector<double> losses{0.5, 0.25, 0.125};
  const std::vector<std::int64_t> ranks{0, 1, 2, -3};
  const std::vector<std::string> hosts{"node001", "", "ünïcødé ✓ 节点", "gpu[01-04]"};
  const std::vector<double> histogram{1, 2, 3, 4, 5, 6};
  const std::vector<double> column{3.141592653589793, -0.0, 1e-300, 1e300};
  {
    MetricsWriter writer(path_);
    writer.set_attribute("", "program", "env-dump");
    writer.set_attribute("/", "version", std::string_view("0.1.0"));
    writer.set_attribute("", "world_size", std::int64_t{4});
    writer.set_attribute("", "ranks_per_node", 2);                      // int goes to int64
    writer.set_attribute("", "bytes", std::size_t{1} << 40);            // size_t too
    writer.set_attribute("", "learning_rate", 1e-3);
    writer.set_attribute("", "cuda", true);
    writer.set_attribute("", "mpi_threads", false);
    writer.set_attribute("train", "optimizer", "sgd");  // creates the group
    for (double loss : losses) writer.append("train/loss", loss);
    writer.set_attribute("train/loss", "unit", "nats");
    writer.write("ranks/rank", ranks);
    writer.write("ranks/host", hosts);
    writer.write("ranks/value", column);
    writer.write("histograms", histogram, 2, 3);
    writer.close();
  }

  Reader reader(path_);
  EXPECT_EQ(reader.string_attribute("/", "program"), "env-dump");
  EXPECT_EQ(reader.attribute_type("/", "program"), "utf8-vlen-string");
  EXPECT_EQ(reader.string_attribute("/", "version"), "0.1.0");
  EXPECT_EQ(reader.int64_attribute("/", "world_size"), 4);
  EXPECT_EQ(reader.attribute_type("/", "world_size"), "i64");
  EXPECT_EQ(reader.int64_attribute("/", "ranks_per_node"), 2);
  EXPECT_EQ(reader.attribute_type("/", "ranks_per_node"), "i64");
  EXPECT_EQ(reader.int64_attribute("/", "bytes"), std::int64_t{1} << 40);
  EXPECT_EQ(reader.double_attribute("/", "learning_rate"), 1e-3);
  EXPECT_EQ(reader.attribute_type("/", "learning_rate"), "f64");
  EXPECT_EQ(reader.enum_attribute_name("/", "cuda"), "TRUE");
  EXPECT_EQ(reader.enum_attribute_name("/", "mpi_threads"), "FALSE");
  EXPECT_TRUE(reader.is_group("train"));
  EXPECT_EQ(reader.string_attribute("train", "optimizer"), "sgd");
  EXPECT_EQ(reader.string_attribute("train/loss", "unit"), "nats");

  EXPECT_EQ(reader.doubles("train/loss"), losses);
  EXPECT_EQ(reader.type("train/loss"), "f64");
  EXPECT_EQ(reader.shape("train/loss"), std::vector<hsize_t>{3});
  EXPECT_EQ(reader.max_shape("train/loss"), std::vector<hsize_t>{H5S_UNLIMITED});
  EXPECT_EQ(reader.layout("train/loss"), H5D_CHUNKED);

  EXPECT_EQ(reader.int64s("ranks/rank"), ranks);
  EXPECT_EQ(reader.type("ranks/rank"), "i64");
  EXPECT_EQ(reader.shape("ranks/rank"), std::vector<hsize_t>{4});
  EXPECT_EQ(reader.strings("ranks/host"), hosts);
  EXPECT_EQ(reader.type("ranks/host"), "utf8-vlen-string");
  EXPECT_EQ(reader.doubles("ranks/value"), column);
  EXPECT_EQ(reader.type("ranks/value"), "f64");
  EXPECT_EQ(reader.layout("ranks/value"), H5D_CONTIGUOUS);

  EXPECT_EQ(reader.shape("histograms"), (std::vector<hsize_t>{2, 3}));
  EXPECT_EQ(reader.doubles("histograms"), histogram);  // row-major
  EXPECT_EQ(reader.type("histograms"), "f64");
}

TEST_F(MetricsWriterTest, GrowingSeriesAppendedOneAtATimeAndInSpans) {
  constexpr int kSteps = 1000;
  std::vector<double> expected(kSteps);
  for (int step = 0; step < kSteps; ++step) expected[step] = 0.5 * step - 17.25;
  std::vector<std::int64_t> expected_steps(kSteps);
  std::iota(expected_steps.begin(), expected_steps.end(), std::int64_t{1});
  {
    MetricsWriter writer(path_);
    for (int step = 0; step < kSteps; ++step) {
      writer.append("single/value", expected[step]);
      writer.append("single/step", expected_steps[step]);
    }
    // Uneven spans (7 does not divide 1000, and crosses the 1024-element chunk edge later).
    for (std::size_t start = 0; start < expected.size(); start += 7) {
      const std::size_t count = std::min<std::size_t>(7, expected.size() - start);
      writer.append("spans/value", std::span<const double>(expected).subspan(start, count));
    }
    writer.append("spans/value", std::span<const double>(expected));  // second lap: 2000 in all
    writer.append("spans/step", std::span<const std::int64_t>(expected_steps));
    writer.append("spans/empty", std::span<const double>());  // creates a zero-length series
    writer.append("spans/count", 5);                          // int: an int64 series
    writer.append("spans/count", std::size_t{6});
  }  // committed by the destructor

  Reader reader(path_);
  EXPECT_EQ(reader.doubles("single/value"), expected);
  EXPECT_EQ(reader.int64s("single/step"), expected_steps);
  EXPECT_EQ(reader.type("single/step"), "i64");
  std::vector<double> twice = expected;
  twice.insert(twice.end(), expected.begin(), expected.end());
  EXPECT_EQ(reader.shape("spans/value"), std::vector<hsize_t>{2 * kSteps});
  EXPECT_EQ(reader.doubles("spans/value"), twice);
  EXPECT_EQ(reader.int64s("spans/step"), expected_steps);
  EXPECT_EQ(reader.shape("spans/empty"), std::vector<hsize_t>{0});
  EXPECT_EQ(reader.type("spans/empty"), "f64");
  EXPECT_EQ(reader.int64s("spans/count"), (std::vector<std::int64_t>{5, 6}));
}

TEST_F(MetricsWriterTest, FinalFileAppearsOnlyAtCloseAndNoTemporaryRemains) {
  MetricsWriter writer(path_);
  EXPECT_EQ(writer.path(), path_);
  writer.append("loss", 1.0);
  writer.flush();
  EXPECT_FALSE(fs::exists(path_)) << "the final name must not exist before close()";
  EXPECT_TRUE(fs::exists(slurmlab::io::temporary_sibling(path_)));
  writer.close();
  EXPECT_TRUE(fs::exists(path_));
  EXPECT_FALSE(fs::exists(slurmlab::io::temporary_sibling(path_)));
  EXPECT_EQ(directory_entries(), std::vector<std::string>{"metrics.h5"});
  EXPECT_FALSE(writer.is_open());
  EXPECT_NO_THROW(writer.close());  // idempotent
  EXPECT_THROW(writer.append("loss", 2.0), std::logic_error);
  EXPECT_THROW(writer.flush(), std::logic_error);
  EXPECT_EQ(Reader(path_).doubles("loss"), std::vector<double>{1.0});
}

TEST_F(MetricsWriterTest, PreviousFileStaysUntilTheNewOneIsClosed) {
  {
    MetricsWriter first(path_);
    first.set_attribute("", "run", std::int64_t{1});
  }
  MetricsWriter second(path_);
  second.set_attribute("", "run", std::int64_t{2});
  EXPECT_EQ(Reader(path_).int64_attribute("/", "run"), 1);
  second.close();
  EXPECT_EQ(Reader(path_).int64_attribute("/", "run"), 2);
}

TEST_F(MetricsWriterTest, CreatesMissingParentDirectories) {
  const fs::path nested = directory_ / "run" / "42" / "metrics.h5";
  MetricsWriter writer(nested);
  writer.close();
  EXPECT_TRUE(fs::exists(nested));
}

TEST_F(MetricsWriterTest, DestructionDuringUnwindingLeavesNoFile) {
  try {
    MetricsWriter writer(path_);
    writer.append("loss", 1.0);
    throw std::runtime_error("the run failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(fs::exists(path_));
  EXPECT_TRUE(directory_entries().empty()) << "the temporary must be removed too";
}

TEST_F(MetricsWriterTest, MoveKeepsWritingAndMoveAssignmentCommitsTheOldFile) {
  const fs::path other_path = directory_ / "other.h5";
  MetricsWriter writer(path_);
  writer.append("loss", 1.0);
  MetricsWriter moved(std::move(writer));
  EXPECT_FALSE(writer.is_open());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  moved.append("loss", 2.0);

  MetricsWriter other(other_path);
  other.set_attribute("", "name", "other");
  other = std::move(moved);  // commits other.h5, then carries on with metrics.h5
  EXPECT_TRUE(fs::exists(other_path));
  EXPECT_FALSE(fs::exists(path_));
  other.append("loss", 3.0);
  other.close();
  EXPECT_EQ(Reader(path_).doubles("loss"), (std::vector<double>{1.0, 2.0, 3.0}));
  EXPECT_EQ(Reader(other_path).string_attribute("/", "name"), "other");
}

TEST_F(MetricsWriterTest, AttributesAreReplacedNotDuplicated) {
  {
    MetricsWriter writer(path_);
    writer.set_attribute("", "status", std::int64_t{0});
    writer.set_attribute("", "status", "finished");  // another type replaces it too
    writer.append("loss", 1.0);
    writer.set_attribute("loss", "best", 0.5);
    writer.set_attribute("loss", "best", 0.25);
  }
  Reader reader(path_);
  EXPECT_EQ(reader.string_attribute("/", "status"), "finished");
  EXPECT_EQ(reader.attribute_count("/"), 1);
  EXPECT_EQ(reader.double_attribute("loss", "best"), 0.25);
  EXPECT_EQ(reader.attribute_count("loss"), 1);
}

TEST_F(MetricsWriterTest, MixingSeriesTypesThrows) {
  MetricsWriter writer(path_);
  writer.append("train/loss", 1.0);
  try {
    writer.append("train/loss", std::int64_t{1});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("train/loss"), std::string::npos) << message;
    EXPECT_NE(message.find("double"), std::string::npos) << message;
    EXPECT_NE(message.find("int64"), std::string::npos) << message;
  }
  writer.append("train/step", std::int64_t{1});
  EXPECT_THROW(writer.append("train/step", 2.0), std::invalid_argument);
  // A fixed column or a group is no series either.
  writer.write("column", std::vector<double>{1.0});
  EXPECT_THROW(writer.append("column", 2.0), std::invalid_argument);
  EXPECT_THROW(writer.append("train", 2.0), std::invalid_argument);
  writer.close();
  EXPECT_EQ(Reader(path_).doubles("train/loss"), std::vector<double>{1.0});
}

TEST_F(MetricsWriterTest, WritingAnExistingDatasetThrows) {
  MetricsWriter writer(path_);
  writer.write("ranks/rank", std::vector<std::int64_t>{0, 1});
  try {
    writer.write("ranks/rank", std::vector<std::int64_t>{2, 3});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("ranks/rank"), std::string::npos) << error.what();
  }
  EXPECT_THROW(writer.write("ranks/rank", std::vector<double>{2.0}), std::invalid_argument);
  writer.append("loss", 1.0);
  EXPECT_THROW(writer.write("loss", std::vector<double>{2.0}), std::invalid_argument);
  EXPECT_THROW(writer.write("ranks", std::vector<std::string>{"a"}), std::invalid_argument);  // a group
  writer.close();
  EXPECT_EQ(Reader(path_).int64s("ranks/rank"), (std::vector<std::int64_t>{0, 1}));
}

TEST_F(MetricsWriterTest, RejectsBadShapesAndNames) {
  MetricsWriter writer(path_);
  const std::vector<double> five(5, 1.0);
  EXPECT_THROW(writer.write("matrix", five, 2, 3), std::invalid_argument);
  EXPECT_THROW(writer.write("matrix", five, 5, 0), std::invalid_argument);
  EXPECT_THROW(writer.write("matrix", five, std::size_t{1} << 63, 2), std::invalid_argument);
  EXPECT_THROW(writer.write("", five), std::invalid_argument);
  EXPECT_THROW(writer.append("/", 1.0), std::invalid_argument);
  EXPECT_THROW(writer.set_attribute("", "", "value"), std::invalid_argument);
  EXPECT_THROW(writer.set_attribute("", "name", static_cast<const char*>(nullptr)), std::invalid_argument);
  EXPECT_THROW(writer.set_attribute("", "huge", std::uint64_t{1} << 63), std::out_of_range);
  writer.write("matrix", five, 5, 1);
  writer.close();
  EXPECT_EQ(Reader(path_).shape("matrix"), (std::vector<hsize_t>{5, 1}));
}

TEST_F(MetricsWriterTest, EmptyColumnsAreZeroLengthDatasets) {
  {
    MetricsWriter writer(path_);
    writer.write("none/double", std::vector<double>{});
    writer.write("none/int", std::vector<std::int64_t>{});
    writer.write("none/text", std::vector<std::string>{});
  }
  Reader reader(path_);
  EXPECT_EQ(reader.shape("none/double"), std::vector<hsize_t>{0});
  EXPECT_EQ(reader.shape("none/int"), std::vector<hsize_t>{0});
  EXPECT_EQ(reader.shape("none/text"), std::vector<hsize_t>{0});
  EXPECT_EQ(reader.type("none/text"), "utf8-vlen-string");
}

TEST_F(MetricsWriterTest, DatasetInTheMiddleOfAPathIsNamed) {
  MetricsWriter writer(path_);
  writer.write("scalar", std::vector<double>{1.0});
  try {
    writer.append("scalar/child", 1.0);  // "scalar" is a dataset, not a group
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("'scalar/child'"), std::string::npos) << message;
    EXPECT_NE(message.find("'scalar' is a dataset"), std::string::npos) << message;
    EXPECT_NE(message.find(path_.string()), std::string::npos) << message;
  }
  EXPECT_THROW(writer.write("scalar/child", std::vector<double>{1.0}), std::invalid_argument);
  EXPECT_THROW(writer.set_attribute("scalar/child", "unit", "s"), std::invalid_argument);
  writer.close();
}

TEST_F(MetricsWriterTest, UnwritableLocationThrowsNamingThePath) {
  for (const fs::path& unwritable : {fs::path("/proc/slurmlab-no-such-dir/metrics.h5"), fs::path("/proc/metrics.h5")}) {
    try {
      MetricsWriter writer(unwritable);
      FAIL() << "expected std::runtime_error for " << unwritable;
    } catch (const std::runtime_error& error) {
      EXPECT_NE(std::string(error.what()).find(unwritable.string()), std::string::npos) << error.what();
    }
  }
}

}  // namespace
