// Why hand-encoded protobuf: an event file needs about ten small messages (Event, Summary,
// Summary.Value, Summary.Image, HistogramProto, SummaryMetadata, TensorProto, and the hparams
// plugin's HParamsPluginData / SessionStartInfo / SessionEndInfo / google.protobuf.Value),
// all of them write-only for us. Encoding them takes a varint, a length prefix and two
// fixed-width types; linking libprotobuf would add a large dependency (and a protoc
// step, plus the version skew between protoc and the runtime that clusters' module systems
// are known for) to every program. The field numbers below are those of TensorBoard's
// tensorboard/compat/proto/{event,summary,histogram,tensor,tensor_shape}.proto (identical to
// TensorFlow's core/util/event.proto and core/framework/summary.proto) and
// tensorboard/plugins/hparams/{plugin_data,api}.proto; the real-reader test
// (tests/unit/tensorboard_reader_test.py) decodes our files with TensorBoard itself.
#include "slurmlab/io/tensorboard.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include "slurmlab/io/figure.hpp"

namespace slurmlab::io {
namespace {

// ---- CRC32C -------------------------------------------------------------------------------

// Slicing-by-8 tables for the reflected Castagnoli polynomial.
struct Crc32cTables {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  constexpr Crc32cTables() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[0][i] = c;
    }
    for (std::size_t i = 0; i < 256; ++i) {
      for (std::size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
    }
  }
};
constexpr Crc32cTables kCrc{};

// ---- protobuf wire format -----------------------------------------------------------------

class Proto {
 public:
  Proto& varint(int field, std::uint64_t v) {
    key(field, 0);
    raw_varint(v);
    return *this;
  }
  Proto& int64(int field, std::int64_t v) { return varint(field, static_cast<std::uint64_t>(v)); }
  Proto& float64(int field, double v) {
    key(field, 1);
    fixed(std::bit_cast<std::uint64_t>(v), 8);
    return *this;
  }
  Proto& float32(int field, float v) {
    key(field, 5);
    fixed(std::bit_cast<std::uint32_t>(v), 4);
    return *this;
  }
  Proto& bytes(int field, std::string_view v) {
    key(field, 2);
    raw_varint(v.size());
    out_.append(v);
    return *this;
  }
  Proto& message(int field, const Proto& m) { return bytes(field, m.out_); }
  Proto& packed_doubles(int field, std::span<const double> values) {
    key(field, 2);
    raw_varint(values.size() * 8);
    for (double v : values) fixed(std::bit_cast<std::uint64_t>(v), 8);
    return *this;
  }
  const std::string& str() const { return out_; }

 private:
  void key(int field, int wire_type) { raw_varint((static_cast<std::uint64_t>(field) << 3) | wire_type); }
  void raw_varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void fixed(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

// Field numbers (see the comment at the top of this file).
namespace event {
constexpr int wall_time = 1, step = 2, file_version = 3, graph_def = 4, summary = 5;
}
namespace graph_field {
constexpr int node = 1;                                          // GraphDef.node
constexpr int name = 1, op = 2, input = 3, attr = 5;             // NodeDef
constexpr int map_key = 1, map_value = 2;                        // map<string, AttrValue> entry
constexpr int list = 1, s = 2;                                   // AttrValue.list, AttrValue.s
constexpr int list_shape = 7;                                    // AttrValue.ListValue.shape
}  // namespace graph_field
namespace summary {
constexpr int value = 1;  // Summary.value (repeated Value)
}
namespace value {
constexpr int tag = 1, simple_value = 2, image = 4, histo = 5, tensor = 8, metadata = 9;
}
namespace image_field {
constexpr int height = 1, width = 2, colorspace = 3, encoded = 4;
}
namespace histo {
constexpr int min = 1, max = 2, num = 3, sum = 4, sum_squares = 5, bucket_limit = 6, bucket = 7;
}
namespace metadata {
constexpr int plugin_data = 1, data_class = 4;
constexpr int plugin_name = 1, content = 2;  // SummaryMetadata.PluginData
}  // namespace metadata
namespace tensor {
constexpr int dtype = 1, shape = 2, string_val = 8;
constexpr int shape_dim = 2, dim_size = 1;  // TensorShapeProto.dim, Dim.size
constexpr int dt_float = 1, dt_string = 7;
}  // namespace tensor
namespace hparams_field {
constexpr int version = 1, session_start_info = 3, session_end_info = 4;     // HParamsPluginData
constexpr int start_hparams = 1, start_group_name = 4, start_time_secs = 5;  // SessionStartInfo
constexpr int end_status = 1, end_time_secs = 2;                             // SessionEndInfo
constexpr int map_key = 1, map_value = 2;                                    // map entry
constexpr int number_value = 2, string_value = 3, bool_value = 4;            // google.protobuf.Value
}  // namespace hparams_field

void check_tag(std::string_view tag) {
  if (tag.empty()) throw std::invalid_argument("EventWriter: empty tag; give a name such as \"train/loss\".");
}

Proto plugin_metadata(std::string_view plugin, std::string_view content) {
  Proto data;
  data.bytes(metadata::plugin_name, plugin);
  if (!content.empty()) data.bytes(metadata::content, content);
  Proto m;
  m.message(metadata::plugin_data, data);
  return m;
}

double system_wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0 || buffer[0] == '\0') return "localhost";
  return buffer;
}

std::atomic<unsigned> writer_sequence{0};

}  // namespace

// ---- public helpers -----------------------------------------------------------------------

std::uint32_t crc32c(std::span<const unsigned char> data, std::uint32_t crc) {
  const auto& t = kCrc.t;
  std::uint32_t c = ~crc;
  const unsigned char* p = data.data();
  std::size_t n = data.size();
  while (n >= 8) {
    const std::uint32_t lo = c ^ (static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                                  static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24);
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^ t[3][p[4]] ^ t[2][p[5]] ^
        t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

std::uint32_t crc32c(std::string_view data, std::uint32_t crc) {
  return crc32c(std::span(reinterpret_cast<const unsigned char*>(data.data()), data.size()), crc);
}

std::uint32_t mask_crc32c(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string frame_record(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 16);
  auto put = [&out](std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(payload.size(), 8);
  put(mask_crc32c(crc32c(std::string_view(out.data(), 8))), 4);
  out.append(payload);
  put(mask_crc32c(crc32c(payload)), 4);
  return out;
}

std::string event_file_name(std::chrono::system_clock::time_point when, std::string_view host, long pid,
                            unsigned sequence) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(when.time_since_epoch()).count();
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%010lld", static_cast<long long>(seconds));
  return "events.out.tfevents." + std::string(stamp) + "." + std::string(host) + "." + std::to_string(pid) + "." +
         std::to_string(sequence);
}

std::filesystem::path rank_log_dir(const std::filesystem::path& base, int rank) {
  char name[32];
  std::snprintf(name, sizeof name, "rank-%03d", rank);
  return base / name;
}

// ---- EventWriter --------------------------------------------------------------------------

struct EventWriter::Impl {
  std::filesystem::path path;
  Options options;
  std::FILE* file = nullptr;
  std::mutex mutex;
  std::condition_variable wake;
  bool dirty = false;
  bool stopping = false;
  std::thread flusher;

  double now() const { return options.wall_time ? options.wall_time() : system_wall_time(); }

  // Caller holds `mutex`.
  void write_record(const std::string& payload) {
    if (!file) throw std::logic_error("EventWriter: write after close() to " + path.string());
    const std::string record = frame_record(payload);
    if (std::fwrite(record.data(), 1, record.size(), file) != record.size()) {
      throw std::runtime_error("EventWriter: cannot write to " + path.string() + ": " + std::strerror(errno));
    }
    dirty = true;
  }
  void flush_locked() {
    if (file && dirty) {
      if (std::fflush(file) != 0) {
        throw std::runtime_error("EventWriter: cannot flush " + path.string() + ": " + std::strerror(errno));
      }
      dirty = false;
    }
  }
  void write_event(std::int64_t step, const Proto& summary_message) {
    Proto e;
    e.float64(event::wall_time, now()).int64(event::step, step).message(event::summary, summary_message);
    std::lock_guard lock(mutex);
    write_record(e.str());
  }
  void write_graph(const Proto& graph_def) {
    Proto e;
    e.float64(event::wall_time, now()).message(event::graph_def, graph_def);
    std::lock_guard lock(mutex);
    write_record(e.str());
  }
  void write_value(std::int64_t step, const Proto& value_message) {
    Proto s;
    s.message(summary::value, value_message);
    write_event(step, s);
  }
  void flush_periodically() {
    std::unique_lock lock(mutex);
    while (!stopping) {
      wake.wait_for(lock, options.flush_interval, [this] { return stopping; });
      try {
        flush_locked();
      } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
      }
    }
  }
};

EventWriter::EventWriter(std::filesystem::path log_dir) : EventWriter(std::move(log_dir), Options{}) {}

EventWriter::EventWriter(std::filesystem::path log_dir, Options options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  if (impl_->options.flush_interval <= std::chrono::milliseconds(0)) {
    throw std::invalid_argument("EventWriter: flush_interval must be positive.");
  }
  std::error_code ec;
  std::filesystem::create_directories(log_dir, ec);
  if (ec) {
    throw std::runtime_error("EventWriter: cannot create the log directory '" + log_dir.string() +
                             "': " + ec.message());
  }
  impl_->path = log_dir / event_file_name(std::chrono::system_clock::now(), host_name(), static_cast<long>(::getpid()),
                                          writer_sequence.fetch_add(1));
  impl_->file = std::fopen(impl_->path.c_str(), "wb");
  if (!impl_->file) {
    throw std::runtime_error("EventWriter: cannot create '" + impl_->path.string() + "': " + std::strerror(errno));
  }
  Proto first;
  first.float64(event::wall_time, impl_->now()).bytes(event::file_version, "brain.Event:2");
  {
    std::lock_guard lock(impl_->mutex);
    impl_->write_record(first.str());
    impl_->flush_locked();  // the file is recognizable from the start
  }
  impl_->flusher = std::thread([impl = impl_.get()] { impl->flush_periodically(); });
}

EventWriter::~EventWriter() {
  try {
    close();
  } catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
  }
}

void EventWriter::scalar(std::string_view tag, std::int64_t step, double value) {
  check_tag(tag);
  Proto v;
  v.bytes(value::tag, tag).float32(value::simple_value, static_cast<float>(value));
  impl().write_value(step, v);
}

void EventWriter::histogram(std::string_view tag, std::int64_t step, std::span<const double> values, int bins) {
  check_tag(tag);
  if (bins < 1) throw std::invalid_argument("EventWriter::histogram: bins must be >= 1.");
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0, sum_squares = 0, num = 0;
  for (double x : values) {
    if (!std::isfinite(x)) continue;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    sum += x;
    sum_squares += x * x;
    num += 1;
  }
  if (num == 0) return;
  // Equal-width buckets over [lo, hi]; bucket_limit[i] is the right edge of bucket i
  // (TensorBoard takes min as the first left edge and max as the last right edge).
  const std::size_t n = hi > lo ? static_cast<std::size_t>(bins) : 1;
  std::vector<double> limits(n), counts(n, 0.0);
  const double width = (hi - lo) / static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i) limits[i] = (i + 1 == n) ? hi : lo + width * static_cast<double>(i + 1);
  for (double x : values) {
    if (!std::isfinite(x)) continue;
    std::size_t k = width > 0 ? static_cast<std::size_t>((x - lo) / width) : 0;
    if (k >= n) k = n - 1;
    counts[k] += 1;
  }
  Proto h;
  h.float64(histo::min, lo).float64(histo::max, hi).float64(histo::num, num).float64(histo::sum, sum);
  h.float64(histo::sum_squares, sum_squares).packed_doubles(histo::bucket_limit, limits);
  h.packed_doubles(histo::bucket, counts);
  Proto v;
  v.bytes(value::tag, tag).message(value::histo, h);
  impl().write_value(step, v);
}

void EventWriter::histogram(std::string_view tag, std::int64_t step, std::span<const float> values, int bins) {
  std::vector<double> widened(values.begin(), values.end());
  histogram(tag, step, widened, bins);
}

void EventWriter::image(std::string_view tag, std::int64_t step, std::span<const unsigned char> png) {
  check_tag(tag);
  static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (png.size() < 33 || std::memcmp(png.data(), signature, 8) != 0 || std::memcmp(png.data() + 12, "IHDR", 4) != 0) {
    throw std::invalid_argument("EventWriter::image(\"" + std::string(tag) +
                                "\"): the bytes are not a PNG; pass encoded PNG bytes (e.g. Figure::png()).");
  }
  auto be32 = [&](std::size_t at) {
    return static_cast<std::uint32_t>(png[at]) << 24 | static_cast<std::uint32_t>(png[at + 1]) << 16 |
           static_cast<std::uint32_t>(png[at + 2]) << 8 | static_cast<std::uint32_t>(png[at + 3]);
  };
  // PNG colour type -> Summary.Image colorspace (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA).
  int colorspace = 3;
  switch (png[25]) {
    case 0:
      colorspace = 1;
      break;
    case 4:
      colorspace = 2;
      break;
    case 6:
      colorspace = 4;
      break;
    default:
      colorspace = 3;
      break;
  }
  Proto im;
  im.varint(image_field::height, be32(20)).varint(image_field::width, be32(16));
  im.varint(image_field::colorspace, static_cast<std::uint64_t>(colorspace));
  im.bytes(image_field::encoded, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
  Proto v;
  v.bytes(value::tag, tag).message(value::image, im);
  impl().write_value(step, v);
}

void EventWriter::image(std::string_view tag, std::int64_t step, const Figure& figure) {
  const auto bytes = figure.png();
  image(tag, step, bytes);
}

void EventWriter::graph(const std::vector<GraphNode>& nodes) {
  std::set<std::string_view> names;
  for (const auto& node : nodes) {
    if (node.name.empty() || !names.insert(node.name).second) {
      throw std::invalid_argument("EventWriter::graph: node name '" + node.name + "' is empty or repeated; names must be unique.");
    }
  }
  Proto graph_def;
  for (const auto& node : nodes) {
    Proto n;
    n.bytes(graph_field::name, node.name).bytes(graph_field::op, node.op);
    for (const auto& input : node.inputs) {
      if (!names.contains(input)) {
        throw std::invalid_argument("EventWriter::graph: node '" + node.name + "' takes input '" + input +
                                    "', which is no node of the graph.");
      }
      n.bytes(graph_field::input, input);
    }
    const auto attribute = [&n](std::string_view key, const Proto& value) {
      Proto entry;
      entry.bytes(graph_field::map_key, key).message(graph_field::map_value, value);
      n.message(graph_field::attr, entry);
    };
    for (const auto& [key, text] : node.attributes) {
      Proto value;
      value.bytes(graph_field::s, text);
      attribute(key, value);
    }
    if (!node.output_shape.empty()) {
      // _output_shapes: AttrValue{list: ListValue{shape: [TensorShapeProto]}}, what
      // TensorBoard draws on the edges.
      Proto shape, list, value;
      for (const auto size : node.output_shape) {
        Proto dim;
        dim.int64(tensor::dim_size, size);
        shape.message(tensor::shape_dim, dim);
      }
      list.message(graph_field::list_shape, shape);
      value.message(graph_field::list, list);
      attribute("_output_shapes", value);
    }
    graph_def.message(graph_field::node, n);
  }
  impl().write_graph(graph_def);
}

void EventWriter::text(std::string_view tag, std::int64_t step, std::string_view markdown) {
  check_tag(tag);
  // The text plugin's form: a scalar DT_STRING tensor, metadata plugin "text" with an
  // empty TextPluginData (version 0).
  Proto t;
  t.varint(tensor::dtype, tensor::dt_string).message(tensor::shape, Proto{}).bytes(tensor::string_val, markdown);
  Proto v;
  v.bytes(value::tag, tag).message(value::metadata, plugin_metadata("text", {})).message(value::tensor, t);
  impl().write_value(step, v);
}

namespace {

// The hparams plugin's summaries carry an empty float tensor of shape [0] (its NULL_TENSOR).
Proto null_tensor() {
  Proto dim;
  dim.varint(tensor::dim_size, 0);
  Proto shape;
  shape.message(tensor::shape_dim, dim);
  Proto t;
  t.varint(tensor::dtype, tensor::dt_float).message(tensor::shape, shape);
  return t;
}

Proto hparams_value(std::string_view tag, const Proto& plugin_data) {
  Proto content;
  content.varint(hparams_field::version, 0);
  std::string bytes = content.str() + plugin_data.str();
  Proto v;
  v.bytes(value::tag, tag)
      .message(value::metadata, plugin_metadata("hparams", bytes))
      .message(value::tensor, null_tensor());
  return v;
}

}  // namespace

void EventWriter::hparams(const std::map<std::string, HParamValue>& values, std::string_view group_name) {
  Proto start;
  for (const auto& [name, value] : values) {
    if (name.empty()) throw std::invalid_argument("EventWriter::hparams: a hyperparameter has an empty name.");
    Proto v;
    if (const auto* number = std::get_if<double>(&value)) {
      v.float64(hparams_field::number_value, *number);
    } else if (const auto* text_value = std::get_if<std::string>(&value)) {
      v.bytes(hparams_field::string_value, *text_value);
    } else {
      v.varint(hparams_field::bool_value, std::get<bool>(value) ? 1 : 0);
    }
    Proto entry;
    entry.bytes(hparams_field::map_key, name).message(hparams_field::map_value, v);
    start.message(hparams_field::start_hparams, entry);
  }
  if (!group_name.empty()) start.bytes(hparams_field::start_group_name, group_name);
  start.float64(hparams_field::start_time_secs, impl().now());
  Proto data;
  data.message(hparams_field::session_start_info, start);
  Proto s;
  s.message(summary::value, hparams_value("_hparams_/session_start_info", data));
  impl().write_event(0, s);
}

void EventWriter::end_session(SessionStatus status) {
  Proto end;
  end.varint(hparams_field::end_status, static_cast<std::uint64_t>(status));
  end.float64(hparams_field::end_time_secs, impl().now());
  Proto data;
  data.message(hparams_field::session_end_info, end);
  Proto s;
  s.message(summary::value, hparams_value("_hparams_/session_end_info", data));
  impl().write_event(0, s);
}

void EventWriter::flush() {
  std::lock_guard lock(impl().mutex);
  if (!impl().file) throw std::logic_error("EventWriter: flush after close() of " + impl().path.string());
  impl().flush_locked();
}

void EventWriter::close() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->file) return;
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->flusher.joinable()) impl_->flusher.join();
  std::lock_guard lock(impl_->mutex);
  std::FILE* file = std::exchange(impl_->file, nullptr);
  const bool flushed = std::fflush(file) == 0;
  const bool closed = std::fclose(file) == 0;
  if (!flushed || !closed) {
    throw std::runtime_error("EventWriter: cannot close " + impl_->path.string() + ": " + std::strerror(errno));
  }
}

const std::filesystem::path& EventWriter::file_path() const {
  return impl().path;
}

EventWriter::Impl& EventWriter::impl() const {
  if (!impl_) throw std::logic_error("EventWriter: use of a moved-from writer");
  return *impl_;
}

EventWriter::EventWriter(EventWriter&& other) noexcept = default;

EventWriter& EventWriter::operator=(EventWriter&& other) noexcept {
  if (this != &other) {
    try {
      close();
    } catch (const std::exception& e) {
      std::cerr << e.what() << '\n';
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

}  // namespace slurmlab::io
