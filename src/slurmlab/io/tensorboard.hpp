#pragma once
// TensorBoard event files (tfevents), written natively: scalars, histograms, images (PNG,
// e.g. a Figure), text and hyperparameters (the hparams plugin's session start/end), read
// by an unmodified TensorBoard.
//
// File format: a sequence of records, each
//   uint64 length (little endian) | uint32 masked CRC32C of those 8 bytes |
//   payload (a serialized tensorboard.Event)  | uint32 masked CRC32C of the payload
// with mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8. The first record is an Event whose
// file_version is "brain.Event:2". A killed job leaves at most a truncated last record,
// which readers skip; everything before it stays readable.
//
// Live curves: records are buffered and flushed by a background thread every
// flush_interval (default 2 s) when something was written, plus on flush() and close(), so
// TensorBoard shows a running job's curves within seconds.
//
// Who writes: one writer on rank 0 for the global (reduced) metrics in <output>/tensorboard;
// per-rank writers, if wanted, in rank_log_dir(<output>/tensorboard, rank), which TensorBoard
// shows as separate runs. A writer is safe to call from several threads.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace slurmlab::io {

class Figure;

// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), as in iSCSI and TFRecord.
// `crc` continues a previous checksum (0 to start).
std::uint32_t crc32c(std::span<const unsigned char> data, std::uint32_t crc = 0);
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0);
// TFRecord's masked CRC: ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32).
std::uint32_t mask_crc32c(std::uint32_t crc);
// One framed TFRecord holding `payload`.
std::string frame_record(std::string_view payload);

// The event file name TensorBoard recognizes: events.out.tfevents.<10-digit unix time>.<host>.<pid>.<n>
// (n counts the writers this process created, so two writers never collide).
std::string event_file_name(std::chrono::system_clock::time_point when, std::string_view host, long pid,
                            unsigned sequence);

// The subdirectory for one rank's own events: <base>/rank-<rank, 3 digits or more>.
std::filesystem::path rank_log_dir(const std::filesystem::path& base, int rank);

// A hyperparameter value: number, string or boolean (the three the hparams plugin knows).
using HParamValue = std::variant<double, std::string, bool>;

// One node of a model graph (TensorFlow's NodeDef): a unique name ('/' groups nodes into
// TensorBoard's collapsible scopes), an op name shown on the node, the names of the nodes
// whose outputs it takes, its output shape (shown on the edges; -1 for the batch axis) and
// attributes shown as text in the node's info card.
struct GraphNode {
  std::string name;
  std::string op;
  std::vector<std::string> inputs;
  std::vector<std::int64_t> output_shape;
  std::map<std::string, std::string> attributes;
};

// How a run (hparams session) ended, as the hparams plugin shows it.
enum class SessionStatus { success = 1, failure = 2, running = 3 };

class EventWriter {
 public:
  struct Options {
    std::chrono::milliseconds flush_interval{2000};
    // Wall time source (seconds since the epoch) for events; tests inject a fixed clock.
    double (*wall_time)() = nullptr;
  };

  // Creates `log_dir` (and parents) and a new event file in it, starting with the
  // file_version record. Throws std::runtime_error naming the path when it cannot.
  explicit EventWriter(std::filesystem::path log_dir);
  EventWriter(std::filesystem::path log_dir, Options options);
  ~EventWriter();  // flushes and closes (errors go to stderr)
  // Movable (a moved-from writer throws std::logic_error on use); move assignment closes
  // the file this writer held first.
  EventWriter(EventWriter&& other) noexcept;
  EventWriter& operator=(EventWriter&& other) noexcept;
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Tags are '/'-separated names ("train/loss"); an empty tag throws std::invalid_argument.
  void scalar(std::string_view tag, std::int64_t step, double value);
  // A histogram of `values` with `bins` equal-width buckets between their min and max
  // (NaN and infinities are left out and counted in nothing). Empty input writes nothing.
  void histogram(std::string_view tag, std::int64_t step, std::span<const double> values, int bins = 30);
  void histogram(std::string_view tag, std::int64_t step, std::span<const float> values, int bins = 30);
  // A PNG image (size and colour space read from its header; anything else than a PNG
  // throws std::invalid_argument).
  void image(std::string_view tag, std::int64_t step, std::span<const unsigned char> png);
  void image(std::string_view tag, std::int64_t step, const Figure& figure);
  // The model graph for TensorBoard's Graphs tab (an Event's graph_def: a GraphDef of these
  // nodes). Node names must be unique and every input must name a node of the graph, else
  // std::invalid_argument names the offender.
  void graph(const std::vector<GraphNode>& nodes);
  // Markdown text (the text plugin: tables and code blocks render).
  void text(std::string_view tag, std::int64_t step, std::string_view markdown);
  // The hyperparameters of this run (the hparams plugin's session start), so that runs
  // under one log dir compare by them. Call once, before the metrics; `group_name`
  // groups repeated runs with the same hyperparameters (empty: the run itself).
  void hparams(const std::map<std::string, HParamValue>& values, std::string_view group_name = {});
  // The session end (status shown in the hparams dashboard).
  void end_session(SessionStatus status);

  // Writes buffered records to the file now.
  void flush();
  // Flushes and closes; further calls throw std::logic_error. Idempotent.
  void close();
  const std::filesystem::path& file_path() const;

 private:
  struct Impl;
  Impl& impl() const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slurmlab::io
