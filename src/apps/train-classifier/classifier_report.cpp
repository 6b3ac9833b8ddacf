#include "classifier_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "slurmlab/io/atomic_file.hpp"
#include "slurmlab/io/figure.hpp"
#include "slurmlab/io/metrics_writer.hpp"
#include "slurmlab/nn/serialize/safetensors.hpp"

namespace classifier {

namespace data = slurmlab::data;
namespace io = slurmlab::io;
namespace nn = slurmlab::nn;

namespace {

std::string percent(double fraction) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%%", 100.0 * fraction);
  return text;
}

std::string shape_text(const nn::Shape& shape) {
  std::string text;
  for (std::size_t i = 1; i < shape.size(); ++i) text += (i > 1 ? "x" : "") + std::to_string(shape[i]);
  return text;
}

struct LayerRow {
  std::string name;  // dotted path in the network ("features.0")
  std::string description;
  nn::Shape output;
  std::int64_t parameters = 0;
};

// One row per leaf layer of `layer` (Sequentials expanded), fed `input`; returns the output.
nn::Tensor walk(nn::Layer& layer, const std::string& name, const nn::Tensor& input, std::vector<LayerRow>& rows) {
  if (auto* sequential = dynamic_cast<nn::Sequential*>(&layer)) {
    nn::Tensor x = input;
    for (std::size_t i = 0; i < sequential->size(); ++i) {
      x = walk((*sequential)[i], name.empty() ? sequential->name(i) : name + "." + sequential->name(i), x, rows);
    }
    return x;
  }
  auto output = layer.forward(input, nn::Mode::eval).output;
  rows.push_back({name, layer.describe(), output.shape(), nn::parameter_count(layer)});
  return output;
}

std::vector<LayerRow> layer_rows(nn::Sequential& network, const ModelSpec& spec) {
  std::vector<LayerRow> rows;
  // One image through the network where it is (a CPU image into a network on the GPU failed).
  walk(network, "", nn::Tensor::zeros({1, spec.input.channels, spec.input.height, spec.input.width}).to(nn::device_of(network)),
       rows);
  return rows;
}

}  // namespace

std::vector<double> Evaluation::per_class_accuracy() const {
  const auto c = class_names.size();
  std::vector<double> out(c, std::numeric_limits<double>::quiet_NaN());
  for (std::size_t t = 0; t < c; ++t) {
    std::int64_t total = 0;
    for (std::size_t p = 0; p < c; ++p) total += confusion[t * c + p];
    if (total > 0) out[t] = static_cast<double>(confusion[t * c + t]) / static_cast<double>(total);
  }
  return out;
}

std::string Evaluation::format() const {
  std::ostringstream out;
  out << stage << " of " << checkpoint << ": loss " << loss << ", accuracy " << percent(accuracy) << " on " << samples
      << " images\n";
  const auto per_class = per_class_accuracy();
  const auto c = class_names.size();
  out << "per class:\n";
  for (std::size_t t = 0; t < c; ++t) {
    std::int64_t total = 0;
    for (std::size_t p = 0; p < c; ++p) total += confusion[t * c + p];
    char line[160];
    std::snprintf(line, sizeof line, "  %-16s %8s of %lld\n", class_names[t].c_str(),
                  std::isnan(per_class[t]) ? "-" : percent(per_class[t]).c_str(), static_cast<long long>(total));
    out << line;
  }
  out << "confusion matrix (rows: true class, columns: predicted):\n";
  for (std::size_t t = 0; t < c; ++t) {
    out << "  ";
    for (std::size_t p = 0; p < c; ++p) {
      char cell[24];
      std::snprintf(cell, sizeof cell, "%6lld", static_cast<long long>(confusion[t * c + p]));
      out << cell;
    }
    out << "\n";
  }
  return out.str();
}

void Evaluation::save(const std::filesystem::path& dir) const {
  io::write_file_atomically(dir / (stage + "_report.txt"), format());
  std::vector<double> cells(confusion.begin(), confusion.end());
  io::HeatMapOptions heat;
  heat.title = stage + " confusion matrix (accuracy " + percent(accuracy) + ")";
  heat.x_label = "predicted";
  heat.y_label = "true";
  heat.row_labels = heat.column_labels = class_names;
  io::save_heat_map_png(dir / ("confusion_" + stage + ".png"), cells, class_names.size(), class_names.size(), heat);
  io::MetricsWriter writer(dir / (stage + ".h5"));
  writer.set_attribute("/", "checkpoint", checkpoint);
  writer.set_attribute("/", "loss", loss);
  writer.set_attribute("/", "accuracy", accuracy);
  writer.set_attribute("/", "samples", samples);
  const auto per_class = per_class_accuracy();
  writer.write("per_class_accuracy", per_class);
  writer.write("confusion", cells, class_names.size(), class_names.size());
  writer.write("class_names", std::span<const std::string>(class_names));
  writer.close();
}

std::string model_summary(nn::Sequential& network, const ModelSpec& spec) {
  std::string table = "| layer | type | output | parameters |\n|---|---|---|---|\n";
  for (const auto& row : layer_rows(network, spec)) {
    table += "| " + row.name + " | " + row.description + " | " + shape_text(row.output) + " | " +
             std::to_string(row.parameters) + " |\n";
  }
  return "**" + spec.describe() + "**, " + std::to_string(nn::parameter_count(network)) + " parameters\n\n" + table;
}

std::vector<io::GraphNode> model_graph(nn::Sequential& network, const ModelSpec& spec) {
  std::vector<io::GraphNode> nodes;
  nodes.push_back({"input", "Input", {}, {-1, spec.input.channels, spec.input.height, spec.input.width}, {}});
  for (const auto& row : layer_rows(network, spec)) {
    io::GraphNode node;
    // '/' makes TensorBoard's scopes ("features/0"); the op is the layer's type.
    node.name = row.name;
    std::replace(node.name.begin(), node.name.end(), '.', '/');
    node.op = row.description.substr(0, row.description.find('('));
    node.inputs = {nodes.back().name};
    node.output_shape.assign(row.output.begin(), row.output.end());
    node.output_shape[0] = -1;  // any batch
    node.attributes = {{"layer", row.description}, {"parameters", std::to_string(row.parameters)}};
    nodes.push_back(std::move(node));
  }
  return nodes;
}

void save_curves(const std::filesystem::path& dir, const History& h, const std::string& monitor) {
  // The best validation epoch by the monitored metric (accuracy: max, loss: min).
  const bool by_accuracy = monitor.find("acc") != std::string::npos;
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < h.val_epoch.size(); ++i) {
    const auto& series = by_accuracy ? h.val_accuracy : h.val_loss;
    if (!best || (by_accuracy ? series[i] > series[*best] : series[i] < series[*best])) best = i;
  }
  io::Figure loss(900, 560);
  loss.title("Loss per epoch").x_label("epoch").y_label("cross-entropy");
  loss.line("train", h.epoch, h.train_loss);
  if (!h.val_epoch.empty()) loss.line("validation", h.val_epoch, h.val_loss);
  if (best) loss.mark("best: epoch " + std::to_string(static_cast<long long>(h.val_epoch[*best])), h.val_epoch[*best], h.val_loss[*best]);
  loss.save_png(dir / "loss_curves.png");
  io::Figure accuracy(900, 560);
  accuracy.title("Accuracy per epoch").x_label("epoch").y_label("accuracy");
  accuracy.line("train", h.epoch, h.train_accuracy);
  if (!h.val_epoch.empty()) accuracy.line("validation", h.val_epoch, h.val_accuracy);
  if (best) {
    accuracy.mark("best: epoch " + std::to_string(static_cast<long long>(h.val_epoch[*best])), h.val_epoch[*best],
                  h.val_accuracy[*best]);
  }
  accuracy.save_png(dir / "accuracy_curves.png");
}

GridImage grid_image(const data::ImageView& view, std::int64_t label, std::int64_t predicted) {
  GridImage out;
  out.shape = view.shape;
  out.label = label;
  out.predicted = predicted;
  const auto& s = view.shape;
  out.pixels.resize(static_cast<std::size_t>(s.bytes()));
  // CHW uint8 -> HWC floats in [0, 1] (interleaved RGB, as the grid wants).
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x)
      for (int c = 0; c < s.channels; ++c)
        out.pixels[static_cast<std::size_t>((y * s.width + x) * s.channels + c)] = view.at(c, y, x) / 255.0f;
  return out;
}

std::vector<unsigned char> prediction_grid_png(const std::vector<GridImage>& images,
                                               const std::vector<std::string>& class_names, const std::string& title) {
  std::vector<io::LabeledImage> tiles;
  for (const auto& image : images) {
    io::LabeledImage tile;
    tile.pixels = image.pixels;
    tile.height = image.shape.height;
    tile.width = image.shape.width;
    tile.channels = image.shape.channels;
    const auto& guess = class_names.at(static_cast<std::size_t>(image.predicted));
    tile.correct = image.predicted == image.label;
    tile.label = tile.correct ? guess : guess + " (true " + class_names.at(static_cast<std::size_t>(image.label)) + ")";
    tiles.push_back(std::move(tile));
  }
  io::ImageGridOptions options;
  options.title = title;
  options.tile_size = 96;
  return io::image_grid_png(tiles, options);
}

void export_model(const std::filesystem::path& dir, nn::Sequential& network, const ModelSpec& spec,
                  const std::string& data_description, const std::map<std::string, double>& metrics,
                  const std::string& training_summary) {
  io::make_output_directory(dir, "--out");
  nn::save_safetensors(dir / "model.safetensors", nn::state_of(network),
                       {{"format", "pt"}, {"model", spec.model}, {"framework", "slurmlab"}});
  nlohmann::json config = nlohmann::json::parse(spec.to_json());
  config["architecture"] = spec.model;
  config["num_classes"] = spec.classes();
  config["id2label"] = nlohmann::json::object();
  for (std::size_t i = 0; i < spec.class_names.size(); ++i) config["id2label"][std::to_string(i)] = spec.class_names[i];
  config["parameters"] = nn::parameter_count(network);
  config["library_name"] = "slurmlab";
  io::write_file_atomically(dir / "config.json", config.dump(2) + "\n");
  std::ostringstream card;
  card << "---\nlibrary_name: slurmlab\ntags:\n- image-classification\n- " << spec.model << "\nmetrics:\n- accuracy\n---\n\n"
       << "# " << spec.model << " image classifier\n\n"
       << "A " << spec.describe() << ", trained with slurmlab's `train-classifier` (C++/MPI, data-parallel).\n\n"
       << "## Data\n\n" << data_description << "\n\n"
       << "Classes: ";
  for (std::size_t i = 0; i < spec.class_names.size(); ++i) card << (i ? ", " : "") << spec.class_names[i];
  card << ".\n\n## Evaluation\n\n| metric | value |\n|---|---|\n";
  for (const auto& [name, value] : metrics) card << "| " << name << " | " << value << " |\n";
  card << "\n## Training\n\n" << training_summary << "\n\n## Use\n\n"
       << "Inputs are " << data::to_string(spec.input) << " float tensors (CHW), pixel values / 255";
  if (!spec.mean.empty()) card << ", then normalised per channel with the mean and std in config.json";
  card << ". The weights in model.safetensors carry PyTorch's parameter names for the same architecture "
       << "(torchvision's layout for alexnet), so `safetensors.torch.load_file` and `load_state_dict` read them.\n";
  io::write_file_atomically(dir / "README.md", card.str());
}

}  // namespace classifier
