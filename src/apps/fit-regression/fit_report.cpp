// fit-regression's rank-0 summary, metrics.h5 and PNG figures.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "fit_training.hpp"
#include "slurmlab/io/figure.hpp"
#include "slurmlab/io/metrics_writer.hpp"

namespace fs = std::filesystem;

namespace slurmlab::fit {

namespace {

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string epoch_text(std::int64_t epoch) {
  return epoch < 0 ? "never" : std::to_string(epoch);
}

std::string network_text(const RunPlan& plan, std::size_t features, std::int64_t hidden) {
  return std::to_string(features) + " -> " + std::to_string(hidden) + " (" + nn::to_string(plan.activation) + ") -> 1";
}

}  // namespace

std::string sweep_comparison(const std::vector<TrainingRun>& sweep) {
  std::vector<const TrainingRun*> runs;
  for (const auto& run : sweep) runs.push_back(&run);
  std::stable_sort(runs.begin(), runs.end(), [](auto* a, auto* b) { return a->hidden < b->hidden; });
  std::ostringstream out;
  out << "Sweep: validation loss is smallest at epoch";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    out << (i == 0                 ? " "
            : i + 1 == runs.size() ? " and "
                                   : ", ")
        << runs[i]->best_epoch << " (hidden " << runs[i]->hidden << ")";
  }
  bool sooner = true, any_overfits = false;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    // A minimum within the last 2% of the epochs is no overfitting: the loss still falls.
    if (runs[i]->best_epoch + std::max<std::int64_t>(1, runs[i]->epochs_run / 50) < runs[i]->epochs_run)
      any_overfits = true;
    if (i > 0 && !(runs[i]->best_epoch < runs[i - 1]->best_epoch)) sooner = false;
  }
  if (!any_overfits) {
    out << ": no width overfits within these epochs (every minimum is at the end).";
  } else if (sooner) {
    out << ": the wider the network, the sooner it overfits.";
  } else {
    out << ": here a wider network does not overfit sooner.";
  }
  return out.str();
}

std::string format_summary(const RunPlan& plan, const Dataset& d, const Results& r) {
  std::ostringstream out;
  if (r.source.synthetic) out << "*** " << r.source.note << " ***\n";
  out << "fit-regression: " << d.target_name << " ~ network(" << join(d.feature_names, ", ") << ") on "
      << r.source.path.string() << "\n";
  out << "  rows: " << d.rows << " used, " << d.dropped << " dropped for missing values";
  if (!d.dropped_by_column.empty()) {
    std::vector<std::string> parts;
    for (const auto& [column, count] : d.dropped_by_column) parts.push_back(column + ": " + std::to_string(count));
    out << " (" << join(parts, ", ") << ")";
  }
  out << "\n  split: train " << d.train.size() << ", validation " << d.validation.size() << ", test " << d.test.size();
  if (plan.holdout_z) {
    out << ", held out " << d.holdout.size() << " with " << d.redshift_name << " in [" << plan.holdout_z->first << ", "
        << plan.holdout_z->second << "]";
  }
  out << "\n  model: standardised inputs" << (plan.log_z ? " (log10 of redshifts)" : "") << ", "
      << network_text(plan, d.feature_names.size(), plan.hidden.front()) << ", Adam lr " << plan.lr << ", "
      << (plan.batch_size == 0 ? std::string("full batch") : "batches of " + std::to_string(plan.batch_size)) << ", "
      << (plan.weighted ? "MSE weighted by 1/" + plan.error_column.value_or("error") + "^2" : std::string("MSE"))
      << ", up to " << plan.epochs << " epochs"
      << (plan.patience > 0 ? ", early stopping patience " + std::to_string(plan.patience) : "") << "\n\n";

  out << "  hidden  epochs  best epoch  gap grows  best val MSE  val RMS  test RMS  constant RMS  epochs/s\n";
  for (const auto& run : r.sweep) {
    char line[256];
    std::snprintf(line, sizeof line, "  %6lld  %6lld  %10lld  %9s  %12.5f  %7.4f  %8.4f  %12.4f  %8.0f%s\n",
                  static_cast<long long>(run.hidden), static_cast<long long>(run.epochs_run),
                  static_cast<long long>(run.best_epoch), epoch_text(run.gap_growth_epoch).c_str(), run.best_val_loss,
                  run.val_rms, run.test_rms, run.constant_val_rms, run.epochs_per_second,
                  run.stopped_early ? "  (stopped early)" : "");
    out << line;
  }
  const auto& main = r.sweep.front();
  out << "\n  Network (hidden " << main.hidden << "): validation RMS " << format("%.4f", main.val_rms) << " vs "
      << format("%.4f", main.constant_val_rms) << " for a constant (the training mean), "
      << format("%.1f", main.constant_val_rms / main.val_rms) << "x smaller.\n";
  out << "  Overfitting: validation loss is smallest at epoch " << main.best_epoch << " of " << main.epochs_run
      << " (best checkpoint); the train/validation gap ";
  if (main.gap_growth_epoch < 0) {
    out << "does not grow within " << main.epochs_run << " epochs.\n";
  } else {
    out << "starts to grow at epoch " << main.gap_growth_epoch << ".\n";
  }
  if (r.sweep.size() > 1) out << "  " << sweep_comparison(r.sweep) << "\n";
  if (plan.holdout_z && !d.holdout.empty()) {
    out << "  Extrapolation: RMS " << format("%.4f", main.holdout_rms) << " on the held-out range vs "
        << format("%.4f", main.val_rms) << " on validation rows inside the training range.\n";
  }
  if (!r.feature_runs.empty()) {
    out << "\n  Validation gain of each added feature (hidden " << plan.hidden.front() << "):\n";
    out << "  features                                  best val MSE  val RMS  gain\n";
    double previous = 0;
    for (std::size_t i = 0; i < r.feature_runs.size(); ++i) {
      const auto& run = r.feature_runs[i];
      std::vector<std::string> names(d.feature_names.begin(),
                                     d.feature_names.begin() + static_cast<std::ptrdiff_t>(run.features));
      char line[256];
      std::snprintf(line, sizeof line, "  %-40s  %12.5f  %7.4f  %s\n", join(names, ",").c_str(), run.best_val_loss,
                    run.val_rms, i == 0 ? "-" : format("%+.5f", previous - run.best_val_loss).c_str());
      out << line;
      previous = run.best_val_loss;
    }
  }
  out << "\n";
  if (r.lcdm) {
    out << "  (LambdaCDM on " << d.lcdm_columns << ")\n";
    out << r.lcdm->summary() << "\n";
  } else {
    out << "No LambdaCDM fit: " << r.lcdm_skipped << "\n";
  }
  if (r.source.synthetic) out << "*** " << r.source.note << " ***\n";
  return out.str();
}

void write_metrics(const fs::path& path, const cli::RunAttributes& attributes, const RunPlan& plan, const Dataset& d,
                   const Results& r) {
  io::MetricsWriter w(path);
  cli::write_run_attributes(w, attributes);
  w.set_attribute("", "table", r.source.path.string());
  w.set_attribute("", "synthetic_data", r.source.synthetic);
  w.set_attribute("", "data_note", r.source.synthetic ? r.source.note : std::string("the table given or found"));
  w.set_attribute("", "target", d.target_name);
  w.set_attribute("", "features", join(d.feature_names, ","));
  w.set_attribute("", "weighted", plan.weighted);
  w.set_attribute("", "log_z", plan.log_z);
  w.set_attribute("", "activation", nn::to_string(plan.activation));
  w.set_attribute("", "learning_rate", plan.lr);
  w.set_attribute("", "batch_size", plan.batch_size);
  w.set_attribute("", "epochs", plan.epochs);
  w.set_attribute("", "rows", static_cast<std::int64_t>(d.rows));
  w.set_attribute("", "dropped_rows", static_cast<std::int64_t>(d.dropped));
  for (const auto& [column, count] : d.dropped_by_column)
    w.set_attribute("dropped_by_column", column, static_cast<std::int64_t>(count));

  std::vector<std::int64_t> table_rows(d.table_rows.begin(), d.table_rows.end());
  w.write("data/table_row", std::span<const std::int64_t>(table_rows));
  w.write("data/redshift", std::span<const double>(d.redshift));
  w.write("data/target", std::span<const double>(d.target));
  if (!d.error.empty()) w.write("data/error", std::span<const double>(d.error));
  w.set_attribute("data/redshift", "column", d.redshift_name);
  w.write("split/train", std::span<const std::int64_t>(d.train));
  w.write("split/validation", std::span<const std::int64_t>(d.validation));
  w.write("split/test", std::span<const std::int64_t>(d.test));
  w.write("split/holdout", std::span<const std::int64_t>(d.holdout));
  w.set_attribute("split", "meaning", "indices into data/* (rows kept after dropping missing values)");

  auto write_run = [&](const std::string& group, const TrainingRun& run) {
    w.write(group + "/train_loss", std::span<const double>(run.train_loss));
    w.write(group + "/val_loss", std::span<const double>(run.val_loss));
    if (!run.grid_z.empty()) {
      w.write(group + "/grid_z", std::span<const double>(run.grid_z));
      w.write(group + "/grid_prediction", std::span<const double>(run.grid_prediction));
    }
    w.write(group + "/val_prediction", std::span<const double>(run.val_prediction));
    w.set_attribute(group, "hidden", run.hidden);
    w.set_attribute(group, "features", static_cast<std::int64_t>(run.features));
    w.set_attribute(group, "epochs_run", run.epochs_run);
    w.set_attribute(group, "stopped_early", run.stopped_early);
    w.set_attribute(group, "best_epoch", run.best_epoch);
    w.set_attribute(group, "gap_growth_epoch", run.gap_growth_epoch);
    w.set_attribute(group, "best_val_loss", run.best_val_loss);
    w.set_attribute(group, "train_rms", run.train_rms);
    w.set_attribute(group, "val_rms", run.val_rms);
    w.set_attribute(group, "test_rms", run.test_rms);
    w.set_attribute(group, "holdout_rms", run.holdout_rms);
    w.set_attribute(group, "constant_val_rms", run.constant_val_rms);
    w.set_attribute(group, "epochs_per_second", run.epochs_per_second);
  };
  const auto k = d.feature_names.size();
  for (const auto& run : r.sweep) write_run("runs/" + run_name(run.hidden, run.features, k), run);
  for (const auto& run : r.feature_runs)
    if (run.features != k) write_run("runs/" + run_name(run.hidden, run.features, k), run);
  // The main run under fixed names for quick reading.
  const auto& main = r.sweep.front();
  w.write("epochs/train_loss", std::span<const double>(main.train_loss));
  w.write("epochs/val_loss", std::span<const double>(main.val_loss));
  w.set_attribute("epochs", "best_epoch", main.best_epoch);
  w.set_attribute("epochs", "gap_growth_epoch", main.gap_growth_epoch);
  w.set_attribute("epochs", "units", d.target_name + " units squared");
  if (!main.grid_z.empty()) {
    w.write("grid/z", std::span<const double>(main.grid_z));
    w.write("grid/network", std::span<const double>(main.grid_prediction));
    if (!r.lcdm_grid.empty()) {
      w.write("grid/lcdm", std::span<const double>(r.lcdm_grid));
      w.write("grid/einstein_de_sitter", std::span<const double>(r.eds_grid));
    }
  }
  if (!r.feature_runs.empty()) {
    std::vector<double> losses, gains;
    for (std::size_t i = 0; i < r.feature_runs.size(); ++i) {
      losses.push_back(r.feature_runs[i].best_val_loss);
      gains.push_back(i == 0 ? 0.0 : r.feature_runs[i - 1].best_val_loss - r.feature_runs[i].best_val_loss);
    }
    w.write("features/best_val_loss", std::span<const double>(losses));
    w.write("features/gain", std::span<const double>(gains));
    w.write("features/names", std::span<const std::string>(d.feature_names));
  }
  if (r.lcdm) {
    const auto& f = *r.lcdm;
    w.set_attribute("lcdm", "points", static_cast<std::int64_t>(f.points));
    w.set_attribute("lcdm", "z_min", f.z_min);
    w.set_attribute("lcdm", "omega_m", f.omega_m);
    w.set_attribute("lcdm", "omega_m_low", f.omega_m_low);
    w.set_attribute("lcdm", "omega_m_high", f.omega_m_high);
    w.set_attribute("lcdm", "omega_m_error", f.omega_m_error);
    w.set_attribute("lcdm", "offset", f.offset);
    w.set_attribute("lcdm", "chi2", f.chi2);
    w.set_attribute("lcdm", "dof", f.dof);
    w.set_attribute("lcdm", "chi2_einstein_de_sitter", f.chi2_einstein_de_sitter);
    w.set_attribute("lcdm", "delta_chi2", f.delta_chi2);
    w.set_attribute("lcdm", "dark_energy_sigma", f.dark_energy_sigma);
    w.set_attribute("lcdm", "note",
                    "diagonal errors only; Brout et al. 2022 (full covariance): Omega_m = 0.334 +- 0.018");
  } else {
    w.set_attribute("lcdm", "skipped", r.lcdm_skipped);
  }
  w.close();
}

io::Figure hubble_figure(const Dataset& d, const TrainingRun& run, const Results& r, const std::string& title) {
  io::Figure figure(1100, 700);
  figure.title(title)
      .x_label(d.redshift_name)
      .y_label(d.target_name)
      .log_x(*std::min_element(d.redshift.begin(), d.redshift.end()) > 0.0);
  auto pick = [&](const std::vector<std::int64_t>& rows, std::vector<double>& z, std::vector<double>& y,
                  std::vector<double>& e) {
    for (auto i : rows) {
      z.push_back(d.redshift[i]);
      y.push_back(d.target[i]);
      if (!d.error.empty()) e.push_back(d.error[i]);
    }
  };
  std::vector<double> z, y, e, hz, hy, he;
  std::vector<std::int64_t> used = d.train;
  used.insert(used.end(), d.validation.begin(), d.validation.end());
  used.insert(used.end(), d.test.begin(), d.test.end());
  pick(used, z, y, e);
  figure.scatter("supernovae", z, y, e);
  if (!d.holdout.empty()) {
    pick(d.holdout, hz, hy, he);
    figure.scatter("held out (not trained on)", hz, hy, he);
  }
  if (!run.grid_z.empty()) {
    if (!r.lcdm_grid.empty()) {
      figure.line("flat LambdaCDM, Omega_m = " + format("%.3f", r.lcdm->omega_m), run.grid_z, r.lcdm_grid);
      figure.line("Einstein-de Sitter (no dark energy)", run.grid_z, r.eds_grid);
    }
    figure.line("network (hidden " + std::to_string(run.hidden) + ")", run.grid_z, run.grid_prediction);
  }
  return figure;
}

void write_figures(const fs::path& output_dir, const RunPlan& plan, const Dataset& d, const Results& r) {
  const auto& main = r.sweep.front();
  const std::string data_note = r.source.synthetic ? " [SYNTHETIC DATA]" : "";
  std::vector<double> epochs(main.train_loss.size());
  for (std::size_t i = 0; i < epochs.size(); ++i) epochs[i] = static_cast<double>(i);
  {
    io::Figure f(1100, 700);
    f.title("Loss per epoch, hidden " + std::to_string(main.hidden) + data_note)
        .x_label("epoch")
        .y_label("MSE (" + d.target_name + " units^2)")
        .log_y();
    f.line("train", epochs, main.train_loss).line("validation", epochs, main.val_loss);
    f.vertical_line("minimal validation loss (epoch " + std::to_string(main.best_epoch) + ")",
                    static_cast<double>(main.best_epoch));
    f.mark("best: epoch " + std::to_string(main.best_epoch), static_cast<double>(main.best_epoch),
           main.val_loss[static_cast<std::size_t>(main.best_epoch)]);
    if (main.gap_growth_epoch >= 0) {
      f.vertical_line("gap starts to grow (epoch " + std::to_string(main.gap_growth_epoch) + ")",
                      static_cast<double>(main.gap_growth_epoch));
    }
    f.save_png(output_dir / "loss_curves.png");
  }
  if (r.sweep.size() > 1) {
    io::Figure f(1100, 700);
    f.title("Validation loss by hidden width" + data_note).x_label("epoch").y_label("validation MSE").log_y();
    for (const auto& run : r.sweep) {
      std::vector<double> x(run.val_loss.size());
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
      f.line("hidden " + std::to_string(run.hidden), x, run.val_loss);
    }
    for (const auto& run : r.sweep) {
      f.mark("min " + std::to_string(run.hidden) + ": " + std::to_string(run.best_epoch),
             static_cast<double>(run.best_epoch), run.best_val_loss);
    }
    f.save_png(output_dir / "loss_sweep.png");
  }
  hubble_figure(d, main, r, "Hubble diagram: " + d.target_name + " vs " + d.redshift_name + data_note)
      .save_png(output_dir / "hubble.png");
  if (r.lcdm && !main.grid_z.empty() && r.eds_residual.size() == main.grid_z.size()) {
    // Residuals of the fitted magnitudes (m_b_corr) from the LambdaCDM best fit, at each
    // supernova's zHD; the network's curve too when it fits those magnitudes.
    const auto mu = cosmology::distance_modulus(d.lcdm_z, r.lcdm->omega_m);
    std::vector<double> z, res, err;
    for (std::size_t i = 0; i < d.lcdm_z.size(); ++i) {
      if (!(d.lcdm_z[i] > 0.0)) continue;
      z.push_back(d.lcdm_z[i]);
      res.push_back(d.lcdm_m[i] - mu[i] - r.lcdm->offset);
      err.push_back(d.lcdm_error[i]);
    }
    std::vector<double> zero(main.grid_z.size(), 0.0);
    io::Figure f(1100, 600);
    f.title("Residuals from flat LambdaCDM (Omega_m = " + format("%.3f", r.lcdm->omega_m) + ")" + data_note)
        .x_label("zHD (curves: over " + d.redshift_name + ")")
        .y_label("magnitude - LambdaCDM")
        .log_x(*std::min_element(z.begin(), z.end()) > 0.0 && main.grid_z.front() > 0.0);
    f.scatter("supernovae", z, res, err);
    f.line("LambdaCDM", main.grid_z, zero);
    f.line("Einstein-de Sitter", main.grid_z, r.eds_residual);
    if (r.lcdm_grid.size() == main.grid_z.size()) {
      std::vector<double> net_res(main.grid_z.size());
      for (std::size_t i = 0; i < main.grid_z.size(); ++i) net_res[i] = main.grid_prediction[i] - r.lcdm_grid[i];
      f.line("network", main.grid_z, net_res);
    }
    f.save_png(output_dir / "residuals.png");
  }
  (void)plan;
}

}  // namespace slurmlab::fit
