#pragma once
// PNG figures drawn by the programs themselves (no Python on the compute node): loss curves
// with a marked best epoch, histograms with an overlaid curve, scatter plots with error bars,
// image grids of classifier predictions, and confusion-matrix heat maps.
//
// Drawn with cairo (antialiased vector drawing, real fonts); cairo stays private to the
// library, so users of this header need neither its headers nor its link flags.
// png() returns encoded bytes (what TensorBoard's image summaries carry); save_png() writes
// them atomically (temporary name + rename).
//
// Errors: inconsistent input (x and y of different lengths, edges.size() != counts.size()+1,
// non-positive values on a logarithmic axis, a bad size) throws std::invalid_argument with
// one sentence naming the series and the fix; a file that cannot be written throws
// std::runtime_error naming the path.
#include <array>
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace slurmlab::io {

// 8-bit sRGB colour.
struct Rgb {
  unsigned char r = 0, g = 0, b = 0;
  friend bool operator==(const Rgb&, const Rgb&) = default;
};

// The colour of the index-th series (line, scatter, histogram, vertical line, mark, in the
// order they were added): a cycle of distinct, saturated colours (matplotlib's tab10 without
// its grey, so no series is mistaken for a grid line).
Rgb series_color(std::size_t index);

// A 2-D chart: lines, scatter points with optional error bars, histogram bars, vertical
// lines and annotated points on shared axes. Series are drawn in the order added; the
// legend lists every series with a non-empty label. Axis ranges cover all data with a
// small margin; histogram bars start at zero on a linear y axis. Points whose x or y is
// NaN or infinite are skipped (a gap in a line), so a diverging loss still plots.
class Figure {
 public:
  // Size in pixels, 64..16384 each (else std::invalid_argument).
  explicit Figure(int width = 960, int height = 640);
  Figure& title(std::string text);
  Figure& x_label(std::string text);
  Figure& y_label(std::string text);
  // Logarithmic axes (ticks at decades); every value on that axis must then be positive
  // (checked when the figure is drawn).
  Figure& log_x(bool on = true);
  Figure& log_y(bool on = true);
  Figure& line(std::string label, std::span<const double> x, std::span<const double> y);
  // y_error: empty, or one symmetric error per point (drawn as a bar with caps), >= 0.
  Figure& scatter(std::string label, std::span<const double> x, std::span<const double> y,
                  std::span<const double> y_error = {});
  // Bars over [edges[i], edges[i+1]) of height counts[i]: edges.size() == counts.size() + 1,
  // edges finite and strictly increasing, counts finite and >= 0 (zero bins are not drawn
  // on a log y axis).
  Figure& histogram(std::string label, std::span<const double> edges, std::span<const double> counts);
  // A dashed line across the whole height at x (e.g. an expected value).
  Figure& vertical_line(std::string label, double x);
  // A highlighted point annotated with `label` (e.g. "best: epoch 41").
  Figure& mark(std::string label, double x, double y);

  std::vector<unsigned char> png() const;                  // encoded PNG bytes
  void save_png(const std::filesystem::path& path) const;  // atomic (temporary + rename)

  int width() const { return width_; }
  int height() const { return height_; }

  enum class Kind { line, scatter, histogram, vertical_line, mark };
  struct Series {
    Kind kind;
    std::string label;
    std::vector<double> x, y, y_error;  // histogram: x = edges, y = counts
  };

 private:
  int width_;
  int height_;
  std::string title_, x_label_, y_label_;
  bool log_x_ = false, log_y_ = false;
  std::vector<Series> series_;
};

// One image of an image grid: row-major pixels, height x width (channels 1, grey) or
// height x width x 3 (channels 3, interleaved RGB), mapped linearly from
// [ImageGridOptions::value_min, value_max] to black..white (values outside are clamped).
struct LabeledImage {
  std::span<const float> pixels;
  int height = 0;
  int width = 0;
  int channels = 1;
  std::string label;     // drawn under the image, e.g. "7 (true 1)"
  bool correct = true;   // label in green when true, in red when false
};

struct ImageGridOptions {
  std::string title;
  int columns = 0;           // 0: about square
  int tile_size = 112;       // pixels of the longer image side once scaled (nearest neighbour)
  double value_min = 0.0;    // pixel value drawn black
  double value_max = 1.0;    // pixel value drawn white
};

// A grid of images with a label under each (classifier predictions). Throws
// std::invalid_argument for an empty list, pixels.size() != height*width*channels,
// channels other than 1 or 3, value_min >= value_max, or tile_size < 16.
std::vector<unsigned char> image_grid_png(std::span<const LabeledImage> images, const ImageGridOptions& options = {});
void save_image_grid_png(const std::filesystem::path& path, std::span<const LabeledImage> images,
                         const ImageGridOptions& options = {});

struct HeatMapOptions {
  std::string title;
  std::string x_label;                  // e.g. "predicted"
  std::string y_label;                  // e.g. "true"
  std::vector<std::string> row_labels;  // empty: 0, 1, 2, ...; else one per row
  std::vector<std::string> column_labels;
  bool show_values = true;              // print each cell's value (hidden when cells are too small)
  int value_decimals = -1;              // -1: integers printed as such, else 2 significant decimals
};

// A heat map (confusion matrix) of a row-major rows x cols matrix, coloured with viridis from
// the smallest to the largest finite value, with a colour bar. Throws std::invalid_argument
// when values.size() != rows * cols, a dimension is zero, or labels do not match in number.
std::vector<unsigned char> heat_map_png(std::span<const double> values, std::size_t rows, std::size_t cols,
                                        const HeatMapOptions& options = {});
void save_heat_map_png(const std::filesystem::path& path, std::span<const double> values, std::size_t rows,
                       std::size_t cols, const HeatMapOptions& options = {});

// The viridis colour of t in [0, 1] (clamped), as used by heat_map_png.
Rgb viridis(double t);

}  // namespace slurmlab::io
