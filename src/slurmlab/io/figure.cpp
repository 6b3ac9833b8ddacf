#include "slurmlab/io/figure.hpp"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "slurmlab/io/atomic_file.hpp"

#if defined(__SANITIZE_ADDRESS__)
// fontconfig (which cairo uses to find fonts) keeps its pattern cache until the process
// exits, by design; without this every program that draws text would fail LeakSanitizer.
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
#endif

namespace slurmlab::io {
namespace {

constexpr std::array<Rgb, 9> kPalette{{{0x1f, 0x77, 0xb4},
                                       {0xff, 0x7f, 0x0e},
                                       {0x2c, 0xa0, 0x2c},
                                       {0xd6, 0x27, 0x28},
                                       {0x94, 0x67, 0xbd},
                                       {0x8c, 0x56, 0x4b},
                                       {0xe3, 0x77, 0xc2},
                                       {0xbc, 0xbd, 0x22},
                                       {0x17, 0xbe, 0xcf}}};

constexpr Rgb kCorrectGreen{0x1b, 0x9e, 0x3e};
constexpr Rgb kWrongRed{0xd6, 0x27, 0x28};
constexpr const char* kFontFamily = "DejaVu Sans";

// ---- cairo plumbing ---------------------------------------------------------------------

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using ContextPtr = std::unique_ptr<cairo_t, ContextDeleter>;

// An RGB image surface with a white background and a drawing context on it.
struct Canvas {
  SurfacePtr surface;
  ContextPtr cr;
  Canvas(int width, int height) {
    surface.reset(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height));
    if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
      throw std::runtime_error("figure: cannot create a " + std::to_string(width) + "x" + std::to_string(height) +
                               " image: " + cairo_status_to_string(cairo_surface_status(surface.get())));
    }
    cr.reset(cairo_create(surface.get()));
    cairo_set_source_rgb(cr.get(), 1, 1, 1);
    cairo_paint(cr.get());
  }
  std::vector<unsigned char> encode() const {
    cairo_surface_flush(surface.get());
    std::vector<unsigned char> bytes;
    auto append = [](void* closure, const unsigned char* data, unsigned int length) -> cairo_status_t {
      auto* out = static_cast<std::vector<unsigned char>*>(closure);
      out->insert(out->end(), data, data + length);
      return CAIRO_STATUS_SUCCESS;
    };
    cairo_status_t status = cairo_surface_write_to_png_stream(surface.get(), append, &bytes);
    if (status != CAIRO_STATUS_SUCCESS) {
      throw std::runtime_error(std::string("figure: PNG encoding failed: ") + cairo_status_to_string(status));
    }
    return bytes;
  }
};

void save_bytes(const std::filesystem::path& path, const std::vector<unsigned char>& bytes) {
  write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void set_color(cairo_t* cr, Rgb c, double alpha = 1.0) {
  cairo_set_source_rgba(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0, alpha);
}
void set_gray(cairo_t* cr, double level, double alpha = 1.0) {
  cairo_set_source_rgba(cr, level, level, level, alpha);
}

void set_font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double text_width(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, text.c_str(), &e);
  return e.x_advance;
}

double line_height(cairo_t* cr) {
  cairo_font_extents_t f;
  cairo_font_extents(cr, &f);
  return f.ascent + f.descent;
}

// Draws `text` so that the point (x, y) sits at fraction (ax, ay) of its box: ax 0 left,
// 0.5 centre, 1 right; ay 0 top, 0.5 middle, 1 bottom. `angle` rotates about (x, y).
void draw_text(cairo_t* cr, const std::string& text, double x, double y, double ax, double ay, double angle = 0) {
  if (text.empty()) return;
  cairo_font_extents_t f;
  cairo_font_extents(cr, &f);
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_move_to(cr, -ax * text_width(cr, text), f.ascent - ay * (f.ascent + f.descent));
  cairo_show_text(cr, text.c_str());
  cairo_restore(cr);
}

// ---- axes ---------------------------------------------------------------------------------

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  bool anchored_at_zero = false;  // histogram bars start at 0: no margin below 0
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

struct Tick {
  double value;
  std::string text;
  bool major;
};

struct Axis {
  double lo = 0, hi = 1;  // in data units
  bool log = false;
  // Fraction 0..1 of the way from lo to hi.
  double fraction(double v) const {
    if (log) return (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return (v - lo) / (hi - lo);
  }
};

Axis make_axis(Range r, bool log) {
  Axis a;
  a.log = log;
  if (log) {
    if (r.empty()) r = Range{1, 10};
    double la = std::log10(r.lo), lb = std::log10(r.hi);
    if (lb - la < 1e-9) {
      la -= 0.5;
      lb += 0.5;
    }
    const double pad = 0.05 * (lb - la);
    a.lo = std::pow(10.0, la - pad);
    a.hi = std::pow(10.0, lb + pad);
    return a;
  }
  if (r.empty()) r = Range{0, 1};
  double lo = r.lo, hi = r.hi;
  if (r.anchored_at_zero) lo = std::min(lo, 0.0);
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double half = std::max(std::abs(hi) * 0.1, 0.5);
    lo -= half;
    hi += half;
  }
  const double pad = 0.05 * (hi - lo);
  a.lo = (r.anchored_at_zero && lo >= 0) ? lo : lo - pad;
  a.hi = hi + pad;
  return a;
}

double nice_step(double span, int target) {
  const double raw = span / std::max(target, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  const double nice = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return nice * magnitude;
}

std::string format_number(double v, double step, double max_abs) {
  char buffer[64];
  if (v == 0) return "0";
  if (max_abs < 1e6 && step >= 1e-4) {
    const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  } else {
    const int digits =
        std::max(1, static_cast<int>(std::floor(std::log10(max_abs)) - std::floor(std::log10(step) + 1e-9)) + 1);
    std::snprintf(buffer, sizeof buffer, "%.*g", std::min(digits, 15), v);
  }
  return buffer;
}

std::string format_power_of_ten(int k) {
  if (k >= -3 && k <= 4) return format_number(std::pow(10.0, k), std::pow(10.0, std::min(k, 0)), std::pow(10.0, k));
  return "1e" + std::to_string(k);
}

// Ticks for an axis drawn over `pixels`: "nice" numbers (1, 2, 5 x 10^k) about every
// `spacing` pixels on a linear axis; decades (plus 2 and 5 when the axis spans less than
// two decades, and unlabeled minor ticks) on a log axis.
std::vector<Tick> make_ticks(const Axis& a, double pixels, double spacing) {
  std::vector<Tick> ticks;
  const int target = std::clamp(static_cast<int>(pixels / spacing), 2, 10);
  if (!a.log) {
    const double step = nice_step(a.hi - a.lo, target);
    const double max_abs = std::max(std::abs(a.lo), std::abs(a.hi));
    for (double k = std::ceil(a.lo / step - 1e-9); k * step <= a.hi + 1e-9 * step; k += 1) {
      double v = k * step;
      if (std::abs(v) < 1e-12 * step) v = 0;
      ticks.push_back({v, format_number(v, step, max_abs), true});
    }
    return ticks;
  }
  const double llo = std::log10(a.lo), lhi = std::log10(a.hi);
  const int first = static_cast<int>(std::floor(llo)), last = static_cast<int>(std::ceil(lhi));
  const int decades = last - first;
  const int stride = std::max(1, static_cast<int>(std::ceil(decades / static_cast<double>(target))));
  const bool label_2_5 = (lhi - llo) < 2.0;
  for (int k = first; k <= last; ++k) {
    const double base = std::pow(10.0, k);
    // Every decade gets a tick; with many decades only every stride-th is labeled.
    if (base >= a.lo && base <= a.hi) {
      ticks.push_back({base, (k % stride) == 0 ? format_power_of_ten(k) : std::string(), true});
    }
    if (stride > 1 || decades > 8) continue;
    for (int m = 2; m <= 9; ++m) {
      const double v = m * base;
      if (v < a.lo || v > a.hi) continue;
      const bool labeled = label_2_5 && (m == 2 || m == 5);
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%g", v);
      ticks.push_back({v, labeled ? std::string(buffer) : std::string(), labeled});
    }
  }
  return ticks;
}

// ---- validation ---------------------------------------------------------------------------

std::string quote_label(const std::string& label) {
  return label.empty() ? "(unlabeled)" : "\"" + label + "\"";
}

void check_same_length(const char* what, const std::string& label, std::size_t nx, std::size_t ny,
                       const char* xname = "x", const char* yname = "y") {
  if (nx != ny) {
    throw std::invalid_argument(std::string("Figure::") + what + "(" + quote_label(label) + "): " + xname + " has " +
                                std::to_string(nx) + " values but " + yname + " has " + std::to_string(ny) +
                                "; give one " + yname + " per " + xname + ".");
  }
}

void check_log_positive(const Figure::Series& s, const std::vector<double>& values, char axis, bool skip_zero) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    if (!std::isfinite(v)) continue;
    if (v > 0 || (skip_zero && v == 0)) continue;
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%g", v);
    throw std::invalid_argument("Figure: series " + quote_label(s.label) + " has " + axis + " = " + buffer +
                                " (index " + std::to_string(i) + "), which a logarithmic " + axis +
                                " axis cannot show; drop non-positive values or use a linear " + axis + " axis.");
  }
}

double scale_for(int width, int height) {
  // Below 0.8 text gets hard to read (TensorBoard shows images at their pixel size).
  return std::clamp(std::sqrt(width * static_cast<double>(height) / (960.0 * 640.0)), 0.8, 2.5);
}

void check_size(int width, int height) {
  if (width < 64 || height < 64 || width > 16384 || height > 16384) {
    throw std::invalid_argument("Figure: size " + std::to_string(width) + "x" + std::to_string(height) +
                                " is outside 64..16384 pixels per side; choose a size in that range.");
  }
}

}  // namespace

Rgb series_color(std::size_t index) {
  return kPalette[index % kPalette.size()];
}

Rgb viridis(double t) {
  // matplotlib's viridis sampled at 9 points; linear interpolation between them is within
  // a few levels of the full table.
  static constexpr std::array<Rgb, 9> anchors{{{0x44, 0x01, 0x54},
                                               {0x47, 0x2d, 0x7b},
                                               {0x3b, 0x52, 0x8b},
                                               {0x2c, 0x72, 0x8e},
                                               {0x21, 0x91, 0x8c},
                                               {0x28, 0xae, 0x80},
                                               {0x5e, 0xc9, 0x62},
                                               {0xad, 0xdc, 0x30},
                                               {0xfd, 0xe7, 0x25}}};
  if (!(t >= 0)) t = 0;  // also NaN
  if (t > 1) t = 1;
  const double pos = t * (anchors.size() - 1);
  const std::size_t i = std::min(static_cast<std::size_t>(pos), anchors.size() - 2);
  const double f = pos - static_cast<double>(i);
  auto mix = [f](unsigned char a, unsigned char b) { return static_cast<unsigned char>(std::lround(a + (b - a) * f)); };
  return {mix(anchors[i].r, anchors[i + 1].r), mix(anchors[i].g, anchors[i + 1].g),
          mix(anchors[i].b, anchors[i + 1].b)};
}

// ---- Figure -------------------------------------------------------------------------------

Figure::Figure(int width, int height) : width_(width), height_(height) {
  check_size(width, height);
}

Figure& Figure::title(std::string text) {
  title_ = std::move(text);
  return *this;
}
Figure& Figure::x_label(std::string text) {
  x_label_ = std::move(text);
  return *this;
}
Figure& Figure::y_label(std::string text) {
  y_label_ = std::move(text);
  return *this;
}
Figure& Figure::log_x(bool on) {
  log_x_ = on;
  return *this;
}
Figure& Figure::log_y(bool on) {
  log_y_ = on;
  return *this;
}

Figure& Figure::line(std::string label, std::span<const double> x, std::span<const double> y) {
  check_same_length("line", label, x.size(), y.size());
  series_.push_back({Kind::line, std::move(label), {x.begin(), x.end()}, {y.begin(), y.end()}, {}});
  return *this;
}

Figure& Figure::scatter(std::string label, std::span<const double> x, std::span<const double> y,
                        std::span<const double> y_error) {
  check_same_length("scatter", label, x.size(), y.size());
  if (!y_error.empty()) check_same_length("scatter", label, y.size(), y_error.size(), "y", "y_error");
  for (std::size_t i = 0; i < y_error.size(); ++i) {
    if (y_error[i] < 0) {
      throw std::invalid_argument("Figure::scatter(" + quote_label(label) + "): y_error[" + std::to_string(i) +
                                  "] is negative; give error bar half-lengths >= 0.");
    }
  }
  series_.push_back(
      {Kind::scatter, std::move(label), {x.begin(), x.end()}, {y.begin(), y.end()}, {y_error.begin(), y_error.end()}});
  return *this;
}

Figure& Figure::histogram(std::string label, std::span<const double> edges, std::span<const double> counts) {
  if (edges.size() != counts.size() + 1) {
    throw std::invalid_argument("Figure::histogram(" + quote_label(label) + "): " + std::to_string(edges.size()) +
                                " edges for " + std::to_string(counts.size()) +
                                " counts; give edges.size() == counts.size() + 1 (both ends of every bin).");
  }
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (!std::isfinite(edges[i]) || (i > 0 && !(edges[i] > edges[i - 1]))) {
      throw std::invalid_argument("Figure::histogram(" + quote_label(label) + "): edges[" + std::to_string(i) +
                                  "] is not finite or not above the previous edge; give finite, strictly "
                                  "increasing edges.");
    }
  }
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (!std::isfinite(counts[i]) || counts[i] < 0) {
      throw std::invalid_argument("Figure::histogram(" + quote_label(label) + "): counts[" + std::to_string(i) +
                                  "] is negative or not finite; give finite counts >= 0.");
    }
  }
  series_.push_back(
      {Kind::histogram, std::move(label), {edges.begin(), edges.end()}, {counts.begin(), counts.end()}, {}});
  return *this;
}

Figure& Figure::vertical_line(std::string label, double x) {
  if (!std::isfinite(x)) {
    throw std::invalid_argument("Figure::vertical_line(" + quote_label(label) + "): x is not finite; give a finite x.");
  }
  series_.push_back({Kind::vertical_line, std::move(label), {x}, {}, {}});
  return *this;
}

Figure& Figure::mark(std::string label, double x, double y) {
  if (!std::isfinite(x) || !std::isfinite(y)) {
    throw std::invalid_argument("Figure::mark(" + quote_label(label) +
                                "): the point is not finite; give finite x and y.");
  }
  series_.push_back({Kind::mark, std::move(label), {x}, {y}, {}});
  return *this;
}

void Figure::save_png(const std::filesystem::path& path) const {
  save_bytes(path, png());
}

// ---- chart drawing (Figure::png) -------------------------------------------------------------

namespace {

using Series = Figure::Series;
using Kind = Figure::Kind;

// Every value on a logarithmic axis must be positive; checked against the axes as they are
// when drawing (log_x/log_y may come after the series).
void check_log_axes(const std::vector<Series>& series, bool log_x, bool log_y) {
  for (const auto& s : series) {
    if (log_x) check_log_positive(s, s.x, 'x', false);
    if (log_y && s.kind != Kind::vertical_line) check_log_positive(s, s.y, 'y', s.kind == Kind::histogram);
  }
}

struct DataRanges {
  Range x, y;
};

// What the axes must cover: finite points with their error bars, histogram edges and bar
// tops (from zero on a linear axis), vertical lines' x.
DataRanges data_ranges(const std::vector<Series>& series, bool log_y) {
  DataRanges r;
  for (const auto& s : series) {
    switch (s.kind) {
      case Kind::line:
      case Kind::scatter:
      case Kind::mark:
        for (std::size_t i = 0; i < s.x.size(); ++i) {
          if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
          r.x.add(s.x[i]);
          r.y.add(s.y[i]);
          if (!s.y_error.empty() && std::isfinite(s.y_error[i])) {
            r.y.add(s.y[i] + s.y_error[i]);
            if (!log_y || s.y[i] - s.y_error[i] > 0) r.y.add(s.y[i] - s.y_error[i]);
          }
        }
        break;
      case Kind::histogram:
        r.x.add(s.x.front());
        r.x.add(s.x.back());
        for (double c : s.y) {
          if (!log_y || c > 0) r.y.add(c);
        }
        if (!log_y) r.y.anchored_at_zero = true;
        break;
      case Kind::vertical_line:
        r.x.add(s.x.front());
        break;
    }
  }
  return r;
}

// Sizes (scaled with the figure), the plot area and its ticks, and the data -> pixel map.
struct ChartLayout {
  double s = 1;  // scale_for(width, height)
  double pad = 0, tick_length = 0;
  double title_size = 0, label_size = 0, tick_size = 0, legend_size = 0;
  double left = 0, top = 0, plot_w = 0, plot_h = 0;
  Axis x, y;
  std::vector<Tick> x_ticks, y_ticks;
  double px(double v) const { return left + x.fraction(v) * plot_w; }
  double py(double v) const { return top + (1.0 - y.fraction(v)) * plot_h; }
};

// Leaves room for the title, the axis labels and the tick labels (measured in their fonts);
// throws std::invalid_argument when nothing is left for the plot.
ChartLayout lay_out_chart(cairo_t* cr, int width, int height, const Axis& x, const Axis& y, bool has_title,
                          bool has_x_label, bool has_y_label) {
  ChartLayout l;
  l.x = x;
  l.y = y;
  const double s = l.s = scale_for(width, height);
  l.pad = 12 * s, l.tick_length = 5 * s;
  l.title_size = 19 * s, l.label_size = 15 * s, l.tick_size = 13 * s, l.legend_size = 13.5 * s;

  set_font(cr, l.title_size, true);
  const double title_h = has_title ? line_height(cr) : 0;
  set_font(cr, l.label_size);
  const double label_h = line_height(cr);
  set_font(cr, l.tick_size);
  const double tick_h = line_height(cr);

  l.top = l.pad + (has_title ? title_h + l.pad : tick_h * 0.5);
  const double bottom = l.pad + l.tick_length + 4 * s + tick_h + (has_x_label ? label_h + 6 * s : 0);
  l.plot_h = height - l.top - bottom;
  l.y_ticks = make_ticks(y, l.plot_h, 55 * s);
  double y_tick_w = 0;
  for (const auto& t : l.y_ticks) y_tick_w = std::max(y_tick_w, text_width(cr, t.text));
  l.left = l.pad + (has_y_label ? label_h + 8 * s : 0) + y_tick_w + 5 * s + l.tick_length;
  const double right = l.pad + 1.5 * tick_h;
  l.plot_w = width - l.left - right;
  if (l.plot_w < 16 || l.plot_h < 16) {
    throw std::invalid_argument("Figure: " + std::to_string(width) + "x" + std::to_string(height) +
                                " leaves no room for the plot after labels; make the figure larger.");
  }
  l.x_ticks = make_ticks(x, l.plot_w, 90 * s);
  return l;
}

// Light lines at the major ticks, under the data.
void draw_grid(cairo_t* cr, const ChartLayout& l) {
  cairo_set_line_width(cr, 1.0 * l.s);
  for (const auto& t : l.x_ticks) {
    if (!t.major) continue;
    set_gray(cr, 0.90);
    cairo_move_to(cr, std::round(l.px(t.value)) + 0.5, l.top);
    cairo_line_to(cr, std::round(l.px(t.value)) + 0.5, l.top + l.plot_h);
    cairo_stroke(cr);
  }
  for (const auto& t : l.y_ticks) {
    if (!t.major) continue;
    set_gray(cr, 0.90);
    cairo_move_to(cr, l.left, std::round(l.py(t.value)) + 0.5);
    cairo_line_to(cr, l.left + l.plot_w, std::round(l.py(t.value)) + 0.5);
    cairo_stroke(cr);
  }
}

void draw_histogram(cairo_t* cr, const ChartLayout& l, const Series& series, Rgb color) {
  const double s = l.s;
  const double base = l.y.log ? l.y.lo : std::max(0.0, l.y.lo);
  for (std::size_t i = 0; i < series.y.size(); ++i) {
    if (series.y[i] <= 0 && l.y.log) continue;
    const double x0 = l.px(series.x[i]), x1 = l.px(series.x[i + 1]);
    const double y0 = l.py(base), y1 = l.py(series.y[i]);
    cairo_rectangle(cr, x0, y1, x1 - x0, y0 - y1);
    set_color(cr, color, 0.55);
    cairo_fill_preserve(cr);
    set_color(cr, color);
    cairo_set_line_width(cr, std::min(1.0 * s, 0.25 * (x1 - x0)));
    cairo_stroke(cr);
  }
}

// A non-finite point lifts the pen (a gap), so a diverging loss still plots.
void draw_line(cairo_t* cr, const ChartLayout& l, const Series& series, Rgb color) {
  set_color(cr, color);
  cairo_set_line_width(cr, 2.2 * l.s);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  bool pen_down = false;
  for (std::size_t i = 0; i < series.x.size(); ++i) {
    if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) {
      pen_down = false;
      continue;
    }
    if (pen_down) {
      cairo_line_to(cr, l.px(series.x[i]), l.py(series.y[i]));
    } else {
      cairo_move_to(cr, l.px(series.x[i]), l.py(series.y[i]));
      cairo_line_to(cr, l.px(series.x[i]), l.py(series.y[i]));  // a lone point still shows (round cap)
    }
    pen_down = true;
  }
  cairo_stroke(cr);
}

// Error bars with caps first, then the points over them.
void draw_scatter(cairo_t* cr, const ChartLayout& l, const Series& series, Rgb color) {
  const double s = l.s;
  set_color(cr, color);
  cairo_set_line_width(cr, 1.3 * s);
  for (std::size_t i = 0; i < series.y_error.size(); ++i) {
    if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i]) || !std::isfinite(series.y_error[i])) continue;
    const double x = l.px(series.x[i]);
    const double lo_v = series.y[i] - series.y_error[i];
    // A bar reaching below zero on a log axis runs off the bottom of the plot.
    const double y_lo = (l.y.log && lo_v <= 0) ? l.top + l.plot_h + 2 * s : l.py(lo_v);
    const double y_hi = l.py(series.y[i] + series.y_error[i]);
    const double cap = 3.5 * s;
    cairo_move_to(cr, x, y_lo);
    cairo_line_to(cr, x, y_hi);
    cairo_move_to(cr, x - cap, y_lo);
    cairo_line_to(cr, x + cap, y_lo);
    cairo_move_to(cr, x - cap, y_hi);
    cairo_line_to(cr, x + cap, y_hi);
  }
  cairo_stroke(cr);
  for (std::size_t i = 0; i < series.x.size(); ++i) {
    if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
    cairo_new_sub_path(cr);
    cairo_arc(cr, l.px(series.x[i]), l.py(series.y[i]), 3.6 * s, 0, 2 * M_PI);
  }
  cairo_fill(cr);
}

void draw_vertical_line(cairo_t* cr, const ChartLayout& l, const Series& series, Rgb color) {
  const double s = l.s;
  const double dashes[] = {7 * s, 4 * s};
  set_color(cr, color);
  // Whole pixels, so the line stays crisp and in its own colour.
  const double line_width = std::max(1.0, std::round(2.0 * s));
  cairo_set_line_width(cr, line_width);
  cairo_set_dash(cr, dashes, 2, 0);
  const double x = std::round(l.px(series.x[0])) + (static_cast<int>(line_width) % 2 == 1 ? 0.5 : 0.0);
  cairo_move_to(cr, x, l.top);
  cairo_line_to(cr, x, l.top + l.plot_h);
  cairo_stroke(cr);
  cairo_set_dash(cr, nullptr, 0, 0);
}

// The data in the order added, clipped to the plot area. Marks are left for draw_mark: they
// go above everything, frame and titles included, and are not clipped.
void draw_series(cairo_t* cr, const ChartLayout& l, const std::vector<Series>& series) {
  cairo_save(cr);
  cairo_rectangle(cr, l.left, l.top, l.plot_w, l.plot_h);
  cairo_clip(cr);
  for (std::size_t index = 0; index < series.size(); ++index) {
    const Rgb color = series_color(index);
    switch (series[index].kind) {
      case Kind::histogram: draw_histogram(cr, l, series[index], color); break;
      case Kind::line: draw_line(cr, l, series[index], color); break;
      case Kind::scatter: draw_scatter(cr, l, series[index], color); break;
      case Kind::vertical_line: draw_vertical_line(cr, l, series[index], color); break;
      case Kind::mark: break;
    }
  }
  cairo_restore(cr);
}

void draw_frame_and_ticks(cairo_t* cr, const ChartLayout& l) {
  const double s = l.s;
  set_gray(cr, 0.2);
  cairo_set_line_width(cr, 1.2 * s);
  cairo_rectangle(cr, l.left, l.top, l.plot_w, l.plot_h);
  cairo_stroke(cr);
  set_font(cr, l.tick_size);
  for (const auto& t : l.x_ticks) {
    const double x = l.px(t.value);
    const double length = t.major ? l.tick_length : l.tick_length * 0.6;
    cairo_move_to(cr, x, l.top + l.plot_h);
    cairo_line_to(cr, x, l.top + l.plot_h + length);
    cairo_stroke(cr);
    draw_text(cr, t.text, x, l.top + l.plot_h + l.tick_length + 4 * s, 0.5, 0);
  }
  for (const auto& t : l.y_ticks) {
    const double y = l.py(t.value);
    const double length = t.major ? l.tick_length : l.tick_length * 0.6;
    cairo_move_to(cr, l.left, y);
    cairo_line_to(cr, l.left - length, y);
    cairo_stroke(cr);
    draw_text(cr, t.text, l.left - l.tick_length - 5 * s, y, 1, 0.5);
  }
}

void draw_titles(cairo_t* cr, const ChartLayout& l, int height, const std::string& title, const std::string& x_label,
                 const std::string& y_label) {
  set_gray(cr, 0.1);
  if (!title.empty()) {
    set_font(cr, l.title_size, true);
    draw_text(cr, title, l.left + l.plot_w / 2, l.pad, 0.5, 0);
  }
  set_font(cr, l.label_size);
  draw_text(cr, x_label, l.left + l.plot_w / 2, height - l.pad, 0.5, 1);
  draw_text(cr, y_label, l.pad, l.top + l.plot_h / 2, 0.5, 0, -M_PI / 2);
}

// A ringed dot, and its label in a box beside it, moved to stay inside the plot area.
void draw_mark(cairo_t* cr, const ChartLayout& l, const Series& series, Rgb color) {
  const double s = l.s;
  const double x = l.px(series.x[0]), y = l.py(series.y[0]);
  cairo_new_path(cr);
  cairo_arc(cr, x, y, 7 * s, 0, 2 * M_PI);
  set_color(cr, color);
  cairo_fill_preserve(cr);
  set_gray(cr, 1.0);
  cairo_set_line_width(cr, 2.0 * s);
  cairo_stroke(cr);
  cairo_arc(cr, x, y, 9 * s, 0, 2 * M_PI);
  set_gray(cr, 0.15);
  cairo_set_line_width(cr, 1.2 * s);
  cairo_stroke(cr);
  if (series.label.empty()) return;
  set_font(cr, l.legend_size);
  const double w = text_width(cr, series.label) + 10 * s, h = line_height(cr) + 6 * s;
  const double left = l.left, top = l.top, plot_w = l.plot_w, plot_h = l.plot_h;
  double bx = x + 12 * s, by = y - 12 * s - h;
  if (bx + w > left + plot_w) bx = x - 12 * s - w;
  if (by < top) by = y + 12 * s;
  bx = std::clamp(bx, left + 2 * s, std::max(left + 2 * s, left + plot_w - w - 2 * s));
  by = std::clamp(by, top + 2 * s, std::max(top + 2 * s, top + plot_h - h - 2 * s));
  cairo_rectangle(cr, bx, by, w, h);
  set_gray(cr, 1.0, 0.9);
  cairo_fill_preserve(cr);
  set_color(cr, color);
  cairo_set_line_width(cr, 1.2 * s);
  cairo_stroke(cr);
  set_gray(cr, 0.1);
  draw_text(cr, series.label, bx + 5 * s, by + 3 * s, 0, 0);
}

// Pixel positions of what a legend could cover: points, error-bar tops, bar tops.
std::vector<std::pair<double, double>> covered_points(const ChartLayout& l, const std::vector<Series>& series) {
  std::vector<std::pair<double, double>> points;
  for (const auto& s : series) {
    if (s.kind == Kind::vertical_line) continue;
    const bool bars = s.kind == Kind::histogram;
    for (std::size_t i = 0; i < s.y.size(); ++i) {
      const double x = bars ? 0.5 * (s.x[i] + s.x[i + 1]) : s.x[i];
      const double y = s.y[i];
      if (!std::isfinite(x) || !std::isfinite(y) || (l.x.log && x <= 0) || (l.y.log && y <= 0)) continue;
      points.emplace_back(l.px(x), l.py(y));
      if (!s.y_error.empty() && std::isfinite(s.y_error[i])) points.emplace_back(l.px(x), l.py(y + s.y_error[i]));
    }
  }
  return points;
}

// The top-left corner of a w x h legend: the plot corner that hides the fewest data points
// (matplotlib's "best"), top right when several tie.
std::pair<double, double> legend_corner(const ChartLayout& l, const std::vector<Series>& series, double w, double h) {
  const double s = l.s;
  const double left = l.left, top = l.top, plot_w = l.plot_w, plot_h = l.plot_h;
  const auto data_points = covered_points(l, series);
  const double inset = 8 * s;
  const std::pair<double, double> corners[] = {{left + plot_w - w - inset, top + inset},
                                               {left + inset, top + inset},
                                               {left + plot_w - w - inset, top + plot_h - h - inset},
                                               {left + inset, top + plot_h - h - inset}};
  auto covered = [&](const std::pair<double, double>& corner) {
    std::size_t n = 0;
    for (const auto& [x, y] : data_points)
      if (x >= corner.first - inset && x <= corner.first + w + inset && y >= corner.second - inset &&
          y <= corner.second + h + inset)
        ++n;
    return n;
  };
  const auto* best = &corners[0];
  std::size_t least = covered(corners[0]);
  for (const auto& corner : corners) {
    if (const std::size_t n = covered(corner); n < least) least = n, best = &corner;
  }
  return *best;
}

// What a series looks like in the legend, `swatch` wide, centred on cy.
void draw_legend_swatch(cairo_t* cr, double s, Kind kind, Rgb color, double sx, double cy, double swatch,
                        double row) {
  set_color(cr, color);
  switch (kind) {
    case Kind::line:
      cairo_set_line_width(cr, 2.2 * s);
      cairo_move_to(cr, sx, cy);
      cairo_line_to(cr, sx + swatch, cy);
      cairo_stroke(cr);
      break;
    case Kind::scatter:
      cairo_arc(cr, sx + swatch / 2, cy, 4 * s, 0, 2 * M_PI);
      cairo_fill(cr);
      break;
    case Kind::histogram:
      cairo_rectangle(cr, sx + 2 * s, cy - row * 0.32, swatch - 4 * s, row * 0.64);
      set_color(cr, color, 0.55);
      cairo_fill_preserve(cr);
      set_color(cr, color);
      cairo_set_line_width(cr, 1.0 * s);
      cairo_stroke(cr);
      break;
    case Kind::vertical_line: {
      const double dashes[] = {7 * s, 4 * s};
      cairo_set_dash(cr, dashes, 2, 0);
      cairo_set_line_width(cr, 2.0 * s);
      cairo_move_to(cr, sx, cy);
      cairo_line_to(cr, sx + swatch, cy);
      cairo_stroke(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
      break;
    }
    case Kind::mark:
      break;
  }
}

// Every labelled series but marks (they carry their label beside them), inside the plot.
void draw_legend(cairo_t* cr, const ChartLayout& l, const std::vector<Series>& series) {
  std::vector<std::size_t> entries;
  for (std::size_t i = 0; i < series.size(); ++i) {
    if (!series[i].label.empty() && series[i].kind != Kind::mark) entries.push_back(i);
  }
  if (entries.empty()) return;
  const double s = l.s;
  set_font(cr, l.legend_size);
  const double row = line_height(cr) + 5 * s, swatch = 26 * s;
  double text_w = 0;
  for (auto i : entries) text_w = std::max(text_w, text_width(cr, series[i].label));
  const double w = 8 * s + swatch + 8 * s + text_w + 10 * s;
  const double h = 6 * s + row * static_cast<double>(entries.size()) + 2 * s;
  const auto [bx, by] = legend_corner(l, series, w, h);
  cairo_rectangle(cr, bx, by, w, h);
  set_gray(cr, 1.0, 0.88);
  cairo_fill_preserve(cr);
  set_gray(cr, 0.75);
  cairo_set_line_width(cr, 1.0 * s);
  cairo_stroke(cr);
  for (std::size_t k = 0; k < entries.size(); ++k) {
    const double cy = by + 6 * s + row * (static_cast<double>(k) + 0.5);
    const double sx = bx + 8 * s;
    draw_legend_swatch(cr, s, series[entries[k]].kind, series_color(entries[k]), sx, cy, swatch, row);
    set_gray(cr, 0.1);
    draw_text(cr, series[entries[k]].label, sx + swatch + 8 * s, cy, 0, 0.5);
  }
}

}  // namespace

std::vector<unsigned char> Figure::png() const {
  check_log_axes(series_, log_x_, log_y_);
  const auto ranges = data_ranges(series_, log_y_);
  Canvas canvas(width_, height_);
  cairo_t* cr = canvas.cr.get();
  const auto layout = lay_out_chart(cr, width_, height_, make_axis(ranges.x, log_x_), make_axis(ranges.y, log_y_),
                                    !title_.empty(), !x_label_.empty(), !y_label_.empty());
  draw_grid(cr, layout);
  draw_series(cr, layout, series_);
  draw_frame_and_ticks(cr, layout);
  draw_titles(cr, layout, height_, title_, x_label_, y_label_);
  for (std::size_t index = 0; index < series_.size(); ++index) {
    if (series_[index].kind == Kind::mark) draw_mark(cr, layout, series_[index], series_color(index));
  }
  draw_legend(cr, layout, series_);
  return canvas.encode();
}

// ---- image grid -----------------------------------------------------------------------------

std::vector<unsigned char> image_grid_png(std::span<const LabeledImage> images, const ImageGridOptions& options) {
  if (images.empty()) throw std::invalid_argument("image_grid_png: no images given; pass at least one image.");
  if (!(options.value_min < options.value_max)) {
    throw std::invalid_argument(
        "image_grid_png: value_min must be below value_max (the pixel values drawn black and white).");
  }
  if (options.tile_size < 16 || options.tile_size > 2048) {
    throw std::invalid_argument("image_grid_png: tile_size " + std::to_string(options.tile_size) +
                                " is outside 16..2048; choose a tile size in that range.");
  }
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto& im = images[i];
    if (im.channels != 1 && im.channels != 3) {
      throw std::invalid_argument("image_grid_png: image " + std::to_string(i) + " has " + std::to_string(im.channels) +
                                  " channels; give 1 (grey) or 3 (RGB).");
    }
    if (im.height <= 0 || im.width <= 0 ||
        im.pixels.size() != static_cast<std::size_t>(im.height) * static_cast<std::size_t>(im.width) *
                                static_cast<std::size_t>(im.channels)) {
      throw std::invalid_argument("image_grid_png: image " + std::to_string(i) + " has " +
                                  std::to_string(im.pixels.size()) + " values for " + std::to_string(im.height) + "x" +
                                  std::to_string(im.width) + "x" + std::to_string(im.channels) +
                                  "; give height*width*channels values (row-major, channels last).");
    }
  }
  const int n = static_cast<int>(images.size());
  const int columns = options.columns > 0 ? std::min(options.columns, n)
                                          : static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int rows = (n + columns - 1) / columns;
  const double tile = options.tile_size;
  const double s = std::clamp(tile / 112.0, 0.8, 2.0);
  const double gap = 10 * s, label_size = 13 * s, title_size = 17 * s;

  // Measure text on a scratch surface to size the canvas.
  Canvas probe(64, 64);
  set_font(probe.cr.get(), label_size);
  const double label_h = line_height(probe.cr.get());
  set_font(probe.cr.get(), title_size, true);
  const double title_h = options.title.empty() ? 0 : line_height(probe.cr.get()) + gap;
  const double cell_w = tile + gap, cell_h = tile + 4 * s + label_h + gap;
  const int width = static_cast<int>(std::ceil(gap + columns * cell_w));
  const int height = static_cast<int>(std::ceil(gap + title_h + rows * cell_h));
  check_size(std::max(width, 64), std::max(height, 64));

  Canvas canvas(std::max(width, 64), std::max(height, 64));
  cairo_t* cr = canvas.cr.get();
  if (!options.title.empty()) {
    set_gray(cr, 0.1);
    set_font(cr, title_size, true);
    draw_text(cr, options.title, std::max(width, 64) / 2.0, gap, 0.5, 0);
  }
  const double range = options.value_max - options.value_min;
  for (int k = 0; k < n; ++k) {
    const auto& im = images[static_cast<std::size_t>(k)];
    const double cx = gap + (k % columns) * cell_w, cy = gap + title_h + (k / columns) * cell_h;
    // Pixels into an RGB24 surface, then painted scaled with nearest-neighbour sampling
    // (sharp pixels, as one wants to see for 28x28 digits).
    SurfacePtr img(cairo_image_surface_create(CAIRO_FORMAT_RGB24, im.width, im.height));
    cairo_surface_flush(img.get());
    unsigned char* data = cairo_image_surface_get_data(img.get());
    const int stride = cairo_image_surface_get_stride(img.get());
    auto level = [&](float v) {
      const double t = std::clamp((static_cast<double>(v) - options.value_min) / range, 0.0, 1.0);
      return static_cast<std::uint32_t>(std::lround(std::isfinite(v) ? t * 255.0 : 0.0));
    };
    for (int r = 0; r < im.height; ++r) {
      auto* row = reinterpret_cast<std::uint32_t*>(data + static_cast<std::ptrdiff_t>(r) * stride);
      for (int c = 0; c < im.width; ++c) {
        const std::size_t p = (static_cast<std::size_t>(r) * im.width + c) * im.channels;
        const auto red = level(im.pixels[p]);
        const auto green = im.channels == 3 ? level(im.pixels[p + 1]) : red;
        const auto blue = im.channels == 3 ? level(im.pixels[p + 2]) : red;
        row[c] = (red << 16) | (green << 8) | blue;
      }
    }
    cairo_surface_mark_dirty(img.get());
    const double zoom = tile / std::max(im.width, im.height);
    const double w = im.width * zoom, h = im.height * zoom;
    const double ox = cx + (tile - w) / 2, oy = cy + (tile - h) / 2;
    cairo_save(cr);
    cairo_translate(cr, ox, oy);
    cairo_scale(cr, zoom, zoom);
    cairo_set_source_surface(cr, img.get(), 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_rectangle(cr, 0, 0, im.width, im.height);
    cairo_fill(cr);
    cairo_restore(cr);
    cairo_rectangle(cr, ox - 0.5, oy - 0.5, w + 1, h + 1);
    set_gray(cr, 0.7);
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);

    // The label, shrunk to fit its cell.
    double size = label_size;
    set_font(cr, size, true);
    while (size > label_size * 0.55 && text_width(cr, im.label) > cell_w - 2) {
      size *= 0.9;
      set_font(cr, size, true);
    }
    set_color(cr, im.correct ? kCorrectGreen : kWrongRed);
    draw_text(cr, im.label, cx + tile / 2, cy + tile + 4 * s, 0.5, 0);
  }
  return canvas.encode();
}

void save_image_grid_png(const std::filesystem::path& path, std::span<const LabeledImage> images,
                         const ImageGridOptions& options) {
  save_bytes(path, image_grid_png(images, options));
}

// ---- heat map -------------------------------------------------------------------------------

std::vector<unsigned char> heat_map_png(std::span<const double> values, std::size_t rows, std::size_t cols,
                                        const HeatMapOptions& options) {
  if (rows == 0 || cols == 0 || values.size() != rows * cols) {
    throw std::invalid_argument("heat_map_png: " + std::to_string(values.size()) + " values for a " +
                                std::to_string(rows) + "x" + std::to_string(cols) +
                                " matrix; give rows*cols values in row-major order (rows, cols >= 1).");
  }
  if (rows > 512 || cols > 512) {
    throw std::invalid_argument("heat_map_png: " + std::to_string(rows) + "x" + std::to_string(cols) +
                                " cells are too many to draw; give at most 512 rows and columns.");
  }
  if (!options.row_labels.empty() && options.row_labels.size() != rows) {
    throw std::invalid_argument("heat_map_png: " + std::to_string(options.row_labels.size()) + " row labels for " +
                                std::to_string(rows) + " rows; give one label per row or none.");
  }
  if (!options.column_labels.empty() && options.column_labels.size() != cols) {
    throw std::invalid_argument("heat_map_png: " + std::to_string(options.column_labels.size()) +
                                " column labels for " + std::to_string(cols) +
                                " columns; give one label per column or none.");
  }
  auto row_label = [&](std::size_t i) {
    return options.row_labels.empty() ? std::to_string(i) : options.row_labels[i];
  };
  auto col_label = [&](std::size_t j) {
    return options.column_labels.empty() ? std::to_string(j) : options.column_labels[j];
  };

  Range vr;
  bool integral = true;
  for (double v : values) {
    vr.add(v);
    if (std::isfinite(v) && v != std::round(v)) integral = false;
  }
  if (vr.empty()) vr = Range{0, 1};
  const double vmin = vr.lo, vmax = vr.hi > vr.lo ? vr.hi : vr.lo + 1;
  auto format_cell = [&](double v) {
    char buffer[48];
    if (!std::isfinite(v)) return std::string("-");
    if (options.value_decimals >= 0) {
      std::snprintf(buffer, sizeof buffer, "%.*f", options.value_decimals, v);
    } else if (integral) {
      std::snprintf(buffer, sizeof buffer, "%.0f", v);
    } else {
      std::snprintf(buffer, sizeof buffer, "%.2f", v);
    }
    return std::string(buffer);
  };

  const double cell = std::clamp(560.0 / static_cast<double>(std::max(rows, cols)), 6.0, 64.0);
  const double s = 1.0, pad = 14, gap = 8;
  const double title_size = 18, label_size = 15, tick_size = 13;
  Canvas probe(64, 64);
  cairo_t* m = probe.cr.get();
  set_font(m, tick_size);
  const double tick_h = line_height(m);
  double row_w = 0, col_w = 0;
  for (std::size_t i = 0; i < rows; ++i) row_w = std::max(row_w, text_width(m, row_label(i)));
  for (std::size_t j = 0; j < cols; ++j) col_w = std::max(col_w, text_width(m, col_label(j)));
  // Column labels stand upright when they fit their cell, else they are turned by 45 degrees.
  const bool rotate_columns = col_w > cell - 4;
  const bool label_every_row = tick_h <= cell, label_every_col = rotate_columns ? tick_h <= cell : true;
  const double col_band = rotate_columns ? col_w * std::sqrt(0.5) + tick_h : tick_h;
  set_font(m, label_size);
  const double label_h = line_height(m);
  set_font(m, title_size, true);
  const double title_h = options.title.empty() ? 0 : line_height(m) + gap;

  const double grid_w = cell * static_cast<double>(cols), grid_h = cell * static_cast<double>(rows);
  const double left = pad + (options.y_label.empty() ? 0 : label_h + gap) + row_w + gap;
  const double top = pad + title_h;
  const double bar_x = left + grid_w + 3 * gap, bar_w = 18 * s;
  // Colour-bar tick labels.
  const Axis bar_axis{vmin, vmax, false};
  const auto bar_ticks = make_ticks(bar_axis, grid_h, 50);
  set_font(m, tick_size);
  double bar_label_w = 0;
  for (const auto& t : bar_ticks) bar_label_w = std::max(bar_label_w, text_width(m, t.text));
  const int width = static_cast<int>(std::ceil(bar_x + bar_w + 6 + bar_label_w + pad));
  const int height = static_cast<int>(
      std::ceil(top + grid_h + gap / 2 + col_band + (options.x_label.empty() ? 0 : gap + label_h) + pad));
  check_size(std::max(width, 64), std::max(height, 64));

  Canvas canvas(std::max(width, 64), std::max(height, 64));
  cairo_t* cr = canvas.cr.get();
  const bool show_values = options.show_values && cell >= 22;
  set_font(cr, tick_size);
  double value_size = std::min(tick_size, cell * 0.38);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      const double v = values[i * cols + j];
      const double x = left + cell * static_cast<double>(j), y = top + cell * static_cast<double>(i);
      cairo_rectangle(cr, x, y, cell, cell);
      Rgb c = std::isfinite(v) ? viridis((v - vmin) / (vmax - vmin)) : Rgb{0xdd, 0xdd, 0xdd};
      set_color(cr, c);
      cairo_fill(cr);
      if (!show_values) continue;
      const std::string text = format_cell(v);
      set_font(cr, value_size);
      if (text_width(cr, text) > cell - 4) continue;
      const double luminance = (0.299 * c.r + 0.587 * c.g + 0.114 * c.b) / 255.0;
      set_gray(cr, luminance < 0.5 ? 1.0 : 0.0);
      draw_text(cr, text, x + cell / 2, y + cell / 2, 0.5, 0.5);
    }
  }
  set_gray(cr, 0.2);
  cairo_set_line_width(cr, 1.0);
  cairo_rectangle(cr, left, top, grid_w, grid_h);
  cairo_stroke(cr);

  set_font(cr, tick_size);
  set_gray(cr, 0.1);
  const std::size_t row_stride = label_every_row ? 1 : static_cast<std::size_t>(std::ceil(tick_h / cell));
  for (std::size_t i = 0; i < rows; i += row_stride) {
    draw_text(cr, row_label(i), left - gap, top + cell * (static_cast<double>(i) + 0.5), 1, 0.5);
  }
  const std::size_t col_stride = label_every_col ? 1 : static_cast<std::size_t>(std::ceil(tick_h / cell));
  for (std::size_t j = 0; j < cols; j += col_stride) {
    const double x = left + cell * (static_cast<double>(j) + 0.5);
    if (rotate_columns) {
      draw_text(cr, col_label(j), x + tick_h * 0.3, top + grid_h + gap / 2, 1, 0, -M_PI / 4);
    } else {
      draw_text(cr, col_label(j), x, top + grid_h + gap / 2, 0.5, 0);
    }
  }
  set_font(cr, label_size);
  draw_text(cr, options.x_label, left + grid_w / 2, height - pad, 0.5, 1);
  draw_text(cr, options.y_label, pad, top + grid_h / 2, 0.5, 0, -M_PI / 2);
  if (!options.title.empty()) {
    set_font(cr, title_size, true);
    draw_text(cr, options.title, left + grid_w / 2, pad, 0.5, 0);
  }

  // Colour bar: a vertical gradient from the smallest (bottom) to the largest value (top).
  const int steps = std::max(2, static_cast<int>(grid_h));
  for (int k = 0; k < steps; ++k) {
    const double t = (k + 0.5) / steps;
    set_color(cr, viridis(t));
    cairo_rectangle(cr, bar_x, top + grid_h * (1 - static_cast<double>(k + 1) / steps), bar_w, grid_h / steps + 0.6);
    cairo_fill(cr);
  }
  set_gray(cr, 0.2);
  cairo_rectangle(cr, bar_x, top, bar_w, grid_h);
  cairo_stroke(cr);
  set_font(cr, tick_size);
  for (const auto& t : bar_ticks) {
    const double y = top + grid_h * (1 - bar_axis.fraction(t.value));
    cairo_move_to(cr, bar_x + bar_w, y);
    cairo_line_to(cr, bar_x + bar_w + 4, y);
    cairo_stroke(cr);
    draw_text(cr, t.text, bar_x + bar_w + 6, y, 0, 0.5);
  }
  return canvas.encode();
}

void save_heat_map_png(const std::filesystem::path& path, std::span<const double> values, std::size_t rows,
                       std::size_t cols, const HeatMapOptions& options) {
  save_bytes(path, heat_map_png(values, rows, cols, options));
}

}  // namespace slurmlab::io
