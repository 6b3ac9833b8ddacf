// The tfevents framing and CRC32C against published vectors, file naming, the time-based
// flush. What TensorBoard itself reads back is checked by tensorboard_reader_test.py.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "slurmlab/io/figure.hpp"
#include "slurmlab/io/tensorboard.hpp"

namespace fs = std::filesystem;
using namespace slurmlab::io;

namespace {

fs::path fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("slurmlab-tb-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::uint64_t le(const std::string& s, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

// An independent bitwise CRC32C (no tables), the definition itself.
std::uint32_t crc32c_bitwise(const std::string& data) {
  std::uint32_t c = 0xffffffffu;
  for (unsigned char byte : data) {
    c ^= byte;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}

// Splits a file into record payloads, checking both CRCs of every record.
std::vector<std::string> records(const std::string& file) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < file.size()) {
    EXPECT_GE(file.size() - at, 12u);
    const auto length = le(file, at, 8);
    EXPECT_EQ(le(file, at + 8, 4), mask_crc32c(crc32c_bitwise(file.substr(at, 8))));
    const std::string payload = file.substr(at + 12, length);
    EXPECT_EQ(le(file, at + 12 + length, 4), mask_crc32c(crc32c_bitwise(payload)));
    out.push_back(payload);
    at += 16 + length;
  }
  return out;
}

}  // namespace

TEST(Crc32c, MatchesRfc3720Vectors) {
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c(ascending), 0x46dd794eu);
  EXPECT_EQ(crc32c(descending), 0x113fdb5cu);
  // The usual check value, and the empty string.
  EXPECT_EQ(crc32c(std::string_view("123456789")), 0xe3069283u);
  EXPECT_EQ(crc32c(std::string_view("")), 0u);
}

TEST(Crc32c, SlicedTablesAgreeWithTheBitwiseDefinitionAtEveryLengthAndSplit) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>((i * 7919) % 251));
  for (std::size_t n = 0; n <= data.size(); n += 7) {
    const std::string part = data.substr(0, n);
    EXPECT_EQ(crc32c(part), crc32c_bitwise(part)) << "length " << n;
    // Continuing a checksum equals checksumming the whole.
    const std::size_t cut = n / 3;
    EXPECT_EQ(crc32c(std::string_view(part).substr(cut), crc32c(std::string_view(part).substr(0, cut))), crc32c(part));
  }
}

TEST(Crc32c, MaskIsTfRecords) {
  const std::uint32_t c = 0x12345678u;
  EXPECT_EQ(mask_crc32c(c), static_cast<std::uint32_t>(((c >> 15) | (c << 17)) + 0xa282ead8u));
  const std::string framed = frame_record("abc");
  ASSERT_EQ(framed.size(), 3u + 16u);
  EXPECT_EQ(le(framed, 0, 8), 3u);
  EXPECT_EQ(framed.substr(12, 3), "abc");
}

TEST(EventFile, NameAndFirstRecord) {
  const auto when = std::chrono::system_clock::time_point(std::chrono::seconds(123456789));
  EXPECT_EQ(event_file_name(when, "node7", 4242, 3), "events.out.tfevents.0123456789.node7.4242.3");
  EXPECT_EQ(rank_log_dir("tb", 7), fs::path("tb/rank-007"));

  const auto dir = fresh_dir("first");
  EventWriter::Options options;
  options.wall_time = [] { return 1.5e9; };
  EventWriter writer(dir / "run", options);
  writer.scalar("loss", 3, 0.25);
  writer.close();
  writer.close();  // idempotent
  EXPECT_THROW(writer.scalar("loss", 4, 0.2), std::logic_error);
  const auto name = writer.file_path().filename().string();
  EXPECT_TRUE(std::regex_match(name, std::regex(R"(events\.out\.tfevents\.\d{10}\..+\.\d+\.\d+)"))) << name;

  const auto payloads = records(read_all(writer.file_path()));
  ASSERT_EQ(payloads.size(), 2u);
  // Event{wall_time (1, fixed64) = 1.5e9, file_version (3) = "brain.Event:2"}
  const double wall = 1.5e9;
  std::string expected_first = "\x09";
  expected_first.append(reinterpret_cast<const char*>(&wall), 8);
  expected_first +=
      "\x1a\x0d"
      "brain.Event:2";
  EXPECT_EQ(payloads[0], expected_first);
  // Event{wall_time, step (2) = 3, summary (5) = Summary{value (1) = Value{tag (1) = "loss",
  // simple_value (2, fixed32) = 0.25f}}}
  const float quarter = 0.25f;
  std::string value = "\x0a\x04loss\x15";
  value.append(reinterpret_cast<const char*>(&quarter), 4);
  std::string expected_second = "\x09";
  expected_second.append(reinterpret_cast<const char*>(&wall), 8);
  expected_second += "\x10\x03\x2a";
  expected_second += static_cast<char>(value.size() + 2);
  expected_second += "\x0a";
  expected_second += static_cast<char>(value.size());
  expected_second += value;
  EXPECT_EQ(payloads[1], expected_second);
}

TEST(EventFile, TimedFlushMakesEventsVisibleWithoutAnExplicitFlush) {
  const auto dir = fresh_dir("flush");
  EventWriter::Options options;
  options.flush_interval = std::chrono::milliseconds(100);
  EventWriter writer(dir, options);
  const auto initial = fs::file_size(writer.file_path());  // the file_version record, flushed at once
  EXPECT_GT(initial, 16u);
  writer.scalar("loss", 1, 0.5);
  writer.text("notes", 1, std::string(100, 'x'));
  // The flusher thread writes within one interval; allow generous slack on a loaded machine.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fs::file_size(writer.file_path()) == initial && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(fs::file_size(writer.file_path()), initial + 100);
  EXPECT_EQ(records(read_all(writer.file_path())).size(), 3u);
}

TEST(EventFile, BadInputIsRefused) {
  const auto dir = fresh_dir("bad");
  EventWriter writer(dir);
  EXPECT_THROW(writer.scalar("", 0, 1.0), std::invalid_argument);
  const std::vector<unsigned char> not_png{1, 2, 3};
  EXPECT_THROW(writer.image("x", 0, not_png), std::invalid_argument);
  EXPECT_THROW(writer.histogram("h", 0, std::vector<double>{1.0}, 0), std::invalid_argument);
  EXPECT_THROW(EventWriter("/proc/no/such/dir"), std::runtime_error);
}

TEST(EventFile, AGraphWithARepeatedNameOrAnUnknownInputIsRefusedNamingIt) {
  const auto dir = fresh_dir("graph");
  EventWriter writer(dir);
  try {
    writer.graph({{"a", "Input", {}, {}, {}}, {"a", "ReLU", {}, {}, {}}});
    FAIL() << "a repeated name was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'a' is empty or repeated"), std::string::npos) << e.what();
  }
  try {
    writer.graph({{"a", "Input", {}, {}, {}}, {"b", "ReLU", {"c"}, {}, {}}});
    FAIL() << "an unknown input was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("node 'b' takes input 'c', which is no node"), std::string::npos) << e.what();
  }
  writer.graph({{"a", "Input", {}, {2}, {}}, {"b", "ReLU", {"a"}, {2}, {}}});
  writer.close();
  // The file version, then exactly one more record (the graph): nothing half written before.
  const auto payloads = records(read_all(writer.file_path()));
  ASSERT_EQ(payloads.size(), 2u);
  // Event field 4 (graph_def), length-delimited: key byte (4 << 3) | 2 after the wall time.
  EXPECT_NE(payloads[1].find(static_cast<char>((4 << 3) | 2)), std::string::npos);
  EXPECT_NE(payloads[1].find("ReLU"), std::string::npos);
  fs::remove_all(dir);
}

TEST(EventFile, MovedWritersKeepWritingAndMovedFromOnesRefuse) {
  const auto dir = fresh_dir("move");
  EventWriter first(dir / "a");
  first.scalar("x", 0, 1.0);
  EventWriter moved(std::move(first));
  moved.scalar("x", 1, 2.0);
  EXPECT_THROW(first.scalar("x", 2, 3.0), std::logic_error);  // NOLINT(bugprone-use-after-move)
  EventWriter other(dir / "b");
  const auto b_path = other.file_path();
  other = std::move(moved);  // closes b, takes a
  other.scalar("x", 2, 3.0);
  other.close();
  EXPECT_EQ(records(read_all(other.file_path())).size(), 4u);  // file_version + 3 scalars
  EXPECT_EQ(records(read_all(b_path)).size(), 1u);
}
