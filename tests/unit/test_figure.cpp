// Figures are decoded back with an independent PNG reader (tests/support/png_image.hpp) and
// checked for size, content, series colours and where the bars are.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "slurmlab/io/figure.hpp"
#include "support/png_image.hpp"

namespace fs = std::filesystem;
using slurmlab::io::Figure;
using slurmlab::test::Pixel;
using slurmlab::test::PngImage;

namespace {

// Figures land in the build tree so that a person can look at them after the tests.
fs::path output_dir() {
  auto dir = fs::path(SLURMLAB_BINARY_DIR) / "test-output" / "figure";
  fs::create_directories(dir);
  return dir;
}

std::vector<unsigned char> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

long count_near(const PngImage& image, slurmlab::io::Rgb c, int tolerance) {
  return image.count([&](const Pixel& p) { return p.near(c.r, c.g, c.b, tolerance); });
}

long non_white(const PngImage& image) {
  return image.count([](const Pixel& p) { return p.r < 250 || p.g < 250 || p.b < 250; });
}

}  // namespace

TEST(Figure, LossCurvesHaveTheirSizeAndEverySeriesColour) {
  std::vector<double> epoch, train, validation;
  for (int e = 1; e <= 60; ++e) {
    epoch.push_back(e);
    train.push_back(2.0 * std::exp(-e / 15.0) + 0.05);
    validation.push_back(2.0 * std::exp(-e / 15.0) + 0.15 + 0.0004 * (e - 30) * (e - 30) / 10);
  }
  Figure figure(800, 500);
  figure.title("Loss").x_label("epoch").y_label("mean squared error");
  figure.line("train", epoch, train).line("validation", epoch, validation);
  figure.vertical_line("early stop", 41).mark("best: epoch 41", 41, validation[40]);
  const auto bytes = figure.png();
  figure.save_png(output_dir() / "loss.png");
  EXPECT_EQ(read_bytes(output_dir() / "loss.png"), bytes);

  const PngImage image(bytes);
  EXPECT_EQ(image.width(), 800);
  EXPECT_EQ(image.height(), 500);
  Figure frame(800, 500);  // the same axes, title and labels without any series
  frame.title("Loss").x_label("epoch").y_label("mean squared error");
  EXPECT_GT(non_white(image), non_white(PngImage(frame.png())) + 2000) << "the series are not drawn";
  // Two 2-pixel lines across ~700 pixels: far more pixels than their legend swatches.
  EXPECT_GT(count_near(image, slurmlab::io::series_color(0), 12), 600);
  EXPECT_GT(count_near(image, slurmlab::io::series_color(1), 12), 600);
  EXPECT_GT(count_near(image, slurmlab::io::series_color(2), 12), 100);  // dashed line
  EXPECT_NE(slurmlab::io::series_color(0), slurmlab::io::series_color(1));
}

TEST(Figure, HistogramBarsStandWhereTheDataAre) {
  // Ten unit bins over [0, 10); bin [7, 8) is tall, the others low.
  std::vector<double> edges, counts;
  for (int i = 0; i <= 10; ++i) edges.push_back(i);
  for (int i = 0; i < 10; ++i) counts.push_back(i == 7 ? 40 : 2);
  Figure figure(900, 600);
  figure.histogram("", edges, counts).x_label("value").y_label("count");
  const PngImage image(figure.png());
  // Only the bars are coloured (no legend without a label; text and frame are grey).
  int all_left = -1, all_right = -1, tall_left = -1, tall_right = -1;
  const int high_row = image.height() / 3;  // above every low bar, inside the tall one
  for (int x = 0; x < image.width(); ++x) {
    bool any = false;
    for (int y = 0; y < image.height(); ++y) any = any || image.at(x, y).coloured();
    if (any) {
      if (all_left < 0) all_left = x;
      all_right = x;
    }
    if (image.at(x, high_row).coloured()) {
      if (tall_left < 0) tall_left = x;
      tall_right = x;
    }
  }
  ASSERT_GE(all_left, 0) << "no bar drawn";
  ASSERT_GE(tall_left, 0) << "the tall bar does not reach a third of the height";
  const double span = all_right - all_left;
  EXPECT_NEAR((tall_left - all_left) / span, 0.7, 0.01);
  EXPECT_NEAR((tall_right - all_left) / span, 0.8, 0.01);
  // The tall bar is one contiguous coloured run at that height.
  for (int x = tall_left; x <= tall_right; ++x) EXPECT_TRUE(image.at(x, high_row).coloured()) << "column " << x;
}

TEST(Figure, HistogramWithCurveScatterWithErrorsAndLogAxes) {
  std::vector<double> edges, counts, x, density, z, mu, err;
  for (int i = 0; i <= 40; ++i) edges.push_back(-4 + 0.2 * i);
  for (int i = 0; i < 40; ++i) {
    const double c = -3.9 + 0.2 * i;
    counts.push_back(std::round(1000 * 0.2 * std::exp(-c * c / 2) / std::sqrt(2 * M_PI)));
    x.push_back(c);
    density.push_back(1000 * 0.2 * std::exp(-c * c / 2) / std::sqrt(2 * M_PI));
  }
  Figure histogram;
  histogram.title("log-determinants").histogram("samples", edges, counts).line("theory", x, density);
  histogram.vertical_line("mean", 0.0);
  histogram.save_png(output_dir() / "histogram.png");
  const PngImage h(histogram.png());
  EXPECT_EQ(h.width(), 960);
  EXPECT_EQ(h.height(), 640);
  EXPECT_GT(count_near(h, slurmlab::io::series_color(1), 12), 400);

  for (int i = 0; i < 30; ++i) {
    z.push_back(0.01 * std::pow(1.15, i));
    mu.push_back(5 * std::log10(z.back() * 4300) + 25);
    err.push_back(0.1 + 0.01 * i);
  }
  Figure hubble;
  hubble.title("Hubble diagram").x_label("redshift z").y_label("distance modulus").log_x();
  hubble.scatter("Pantheon+", z, mu, err);
  hubble.save_png(output_dir() / "hubble.png");
  const PngImage s(hubble.png());
  EXPECT_GT(count_near(s, slurmlab::io::series_color(0), 10), 30 * 20);

  // A logarithmic axis spaces 0.01, 0.1 and 1 (and 1, 10, 100) equally; a linear one would put
  // the first two 0.09/0.9 of the last gap apart.
  const std::vector<double> decades{0.01, 0.1, 1.0}, hundreds{1.0, 10.0, 100.0};
  const auto centres = [](const PngImage& image, bool columns) {
    // Rows or columns holding the series' colour, grouped into runs; each run's middle.
    std::vector<int> hits;
    const int extent = columns ? image.width() : image.height(), other = columns ? image.height() : image.width();
    for (int i = 0; i < extent; ++i) {
      for (int j = 0; j < other; ++j) {
        const auto& p = columns ? image.at(i, j) : image.at(j, i);
        if (p.near(slurmlab::io::series_color(0).r, slurmlab::io::series_color(0).g, slurmlab::io::series_color(0).b, 10)) {
          hits.push_back(i);
          break;
        }
      }
    }
    std::vector<double> middles;
    for (std::size_t k = 0; k < hits.size();) {
      std::size_t end = k;
      while (end + 1 < hits.size() && hits[end + 1] == hits[end] + 1) ++end;
      middles.push_back(0.5 * (hits[k] + hits[end]));
      k = end + 1;
    }
    return middles;
  };
  Figure loglog(600, 400);
  loglog.log_x().log_y().scatter("points", decades, hundreds, std::vector<double>{0, 0, 0});
  const PngImage l(loglog.png());
  const auto xs = centres(l, true), ys = centres(l, false);
  ASSERT_EQ(xs.size(), 3u) << "three separate points along x";
  ASSERT_EQ(ys.size(), 3u) << "three separate points along y";
  EXPECT_NEAR(xs[1] - xs[0], xs[2] - xs[1], 2.0);
  EXPECT_NEAR(ys[1] - ys[0], ys[2] - ys[1], 2.0);
  EXPECT_GT(xs[1] - xs[0], 50.0);
}

TEST(Figure, BadInputIsRefusedWithAReason) {
  const std::vector<double> three{1, 2, 3}, two{1, 2};
  Figure figure;
  EXPECT_THROW(figure.line("loss", three, two), std::invalid_argument);
  EXPECT_THROW(figure.scatter("points", three, three, two), std::invalid_argument);
  EXPECT_THROW(figure.scatter("points", three, three, std::vector<double>{1, -1, 1}), std::invalid_argument);
  EXPECT_THROW(figure.histogram("h", three, three), std::invalid_argument);
  EXPECT_THROW(figure.histogram("h", std::vector<double>{0, 2, 1}, two), std::invalid_argument);
  EXPECT_THROW(figure.histogram("h", three, std::vector<double>{1, -2}), std::invalid_argument);
  EXPECT_THROW(figure.vertical_line("v", NAN), std::invalid_argument);
  EXPECT_THROW(Figure(10, 10), std::invalid_argument);
  try {
    figure.line("loss", three, two);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "Figure::line(\"loss\"): x has 3 values but y has 2; give one y per x.");
  }

  // Non-positive values on a log axis are found when drawing (log_y may come later).
  Figure log_figure;
  log_figure.line("loss", three, std::vector<double>{1, 0, 2}).log_y();
  try {
    (void)log_figure.png();
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("logarithmic y axis"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("\"loss\""), std::string::npos) << e.what();
  }
  log_figure.log_y(false);
  EXPECT_NO_THROW((void)log_figure.png());
  // Zero-count bins are simply not drawn on a log y axis (the other bar is); NaN points leave
  // a gap (no segment touches them).
  Figure zero_bins;
  zero_bins.histogram("h", three, std::vector<double>{0, 5}).log_y();
  const PngImage bins(zero_bins.png());
  const int low_row = bins.height() * 8 / 10;
  EXPECT_TRUE(bins.at(bins.width() * 3 / 4, low_row).coloured()) << "the bar of 5 over [2, 3)";
  EXPECT_FALSE(bins.at(bins.width() * 3 / 10, low_row).coloured()) << "the empty bin [1, 2) drawn";
  Figure gap, whole;
  gap.line("diverged", three, std::vector<double>{1, NAN, 2});
  whole.line("diverged", three, std::vector<double>{1, 1.5, 2});
  const long gap_pixels = count_near(PngImage(gap.png()), slurmlab::io::series_color(0), 12);
  EXPECT_LT(gap_pixels, count_near(PngImage(whole.png()), slurmlab::io::series_color(0), 12) / 4) << gap_pixels;

  EXPECT_THROW(Figure().save_png("/proc/no-such-dir/figure.png"), std::runtime_error);
}

TEST(ImageGrid, DrawsEveryImageAndColoursLabelsByCorrectness) {
  std::vector<float> white(28 * 28, 1.0f), grey(28 * 28, 0.5f), red(16 * 16 * 3, 0.0f), ramp(28 * 28);
  for (std::size_t i = 0; i < red.size(); i += 3) red[i] = 1.0f;
  for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<float>(i % 28) / 27.0f;
  std::vector<slurmlab::io::LabeledImage> images{
      {white, 28, 28, 1, "7 (true 7)", true}, {grey, 28, 28, 1, "3 (true 8)", false},
      {red, 16, 16, 3, "airplane", true},     {ramp, 28, 28, 1, "1 (true 1)", true},
      {grey, 28, 28, 1, "5 (true 5)", true},
  };
  slurmlab::io::ImageGridOptions options;
  options.title = "predictions";
  options.columns = 3;
  slurmlab::io::save_image_grid_png(output_dir() / "grid.png", images, options);
  const PngImage image(read_bytes(output_dir() / "grid.png"));
  EXPECT_GT(image.width(), 3 * options.tile_size);
  EXPECT_LT(image.width(), 4 * options.tile_size);
  EXPECT_GT(image.height(), 2 * options.tile_size);
  const long tile = static_cast<long>(options.tile_size) * options.tile_size;
  // Two grey tiles (0.5 -> 128), one pure red tile.
  EXPECT_GE(image.count([](const Pixel& p) { return p.near(128, 128, 128, 1); }), 2 * tile * 95 / 100);
  EXPECT_GE(image.count([](const Pixel& p) { return p.near(255, 0, 0, 1); }), tile * 95 / 100);
  // Labels: green for correct, red for the wrong prediction.
  EXPECT_GT(image.count([](const Pixel& p) { return p.near(0x1b, 0x9e, 0x3e, 30); }), 40);
  EXPECT_GT(image.count([](const Pixel& p) { return p.near(0xd6, 0x27, 0x28, 30); }), 20);

  std::vector<slurmlab::io::LabeledImage> bad{{grey, 28, 27, 1, "x", true}};
  EXPECT_THROW((void)slurmlab::io::image_grid_png(bad), std::invalid_argument);
  bad = {{grey, 28, 28, 2, "x", true}};
  EXPECT_THROW((void)slurmlab::io::image_grid_png(bad), std::invalid_argument);
  EXPECT_THROW((void)slurmlab::io::image_grid_png({}), std::invalid_argument);
}

TEST(HeatMap, ColoursCellsByValueWithAColourBar) {
  // A confusion matrix: strong diagonal.
  const std::size_t n = 4;
  std::vector<double> confusion(n * n, 3.0);
  for (std::size_t i = 0; i < n; ++i) confusion[i * n + i] = 90.0 + static_cast<double>(i);
  confusion[1] = 0;
  slurmlab::io::HeatMapOptions options;
  options.title = "confusion matrix";
  options.x_label = "predicted";
  options.y_label = "true";
  options.row_labels = {"cat", "dog", "ship", "truck"};
  options.column_labels = options.row_labels;
  slurmlab::io::save_heat_map_png(output_dir() / "confusion.png", confusion, n, n, options);
  const PngImage image(read_bytes(output_dir() / "confusion.png"));
  EXPECT_GT(image.width(), 200);
  EXPECT_GT(image.height(), 200);
  const long cell = 64 * 64;  // 560 / 4 clamps to 64 pixels per cell
  // The largest value (one cell, minus its printed number) and the smallest (one cell) are
  // the ends of viridis; the colour bar adds a thin band of each.
  EXPECT_GT(count_near(image, slurmlab::io::viridis(1.0), 6), cell / 2);
  EXPECT_GT(count_near(image, slurmlab::io::viridis(0.0), 6), cell / 2);
  // Ten-odd cells of value 3 share one colour, near the bottom of the map.
  EXPECT_GT(count_near(image, slurmlab::io::viridis(3.0 / 93.0), 2), 8 * cell / 2);

  EXPECT_THROW((void)slurmlab::io::heat_map_png(confusion, 3, 3), std::invalid_argument);
  options.row_labels = {"a"};
  EXPECT_THROW((void)slurmlab::io::heat_map_png(confusion, n, n, options), std::invalid_argument);
}

TEST(Viridis, EndsAndMiddleMatchMatplotlib) {
  EXPECT_EQ(slurmlab::io::viridis(0.0), (slurmlab::io::Rgb{0x44, 0x01, 0x54}));
  EXPECT_EQ(slurmlab::io::viridis(1.0), (slurmlab::io::Rgb{0xfd, 0xe7, 0x25}));
  EXPECT_EQ(slurmlab::io::viridis(0.5), (slurmlab::io::Rgb{0x21, 0x91, 0x8c}));
  EXPECT_EQ(slurmlab::io::viridis(NAN), slurmlab::io::viridis(0.0));
}

TEST(Figure, LegendGoesToTheCornerWithoutData) {
  // Points crowd one top corner; the legend (the pixels that differ between the labelled
  // and the unlabelled drawing) must sit on the other side.
  auto legend_centre_x = [](bool data_on_the_right) {
    std::vector<double> x, y;
    for (int i = 0; i < 200; ++i) {
      double u = (i % 20) / 20.0, v = (i / 20) / 10.0;
      x.push_back(data_on_the_right ? 7.0 + 3.0 * u : 3.0 * u);
      y.push_back(7.0 + 3.0 * v);
    }
    x.push_back(0.0), y.push_back(0.0);  // axes span 0..10
    x.push_back(10.0), y.push_back(0.0);
    PngImage labelled(Figure(640, 480).scatter("crowded corner", x, y).png());
    PngImage unlabelled(Figure(640, 480).scatter("", x, y).png());
    long count = 0;
    double sum_x = 0;
    for (int py = 0; py < labelled.height(); ++py)
      for (int px = 0; px < labelled.width(); ++px) {
        const Pixel& a = labelled.at(px, py);
        const Pixel& b = unlabelled.at(px, py);
        if (!a.near(b.r, b.g, b.b, 8)) ++count, sum_x += px;
      }
    EXPECT_GT(count, 100) << "no legend drawn";
    return sum_x / static_cast<double>(count);
  };
  EXPECT_LT(legend_centre_x(true), 320.0);
  EXPECT_GT(legend_centre_x(false), 320.0);
}
