#include "fit_training.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/core/parse.hpp"
#include "slurmlab/io/atomic_file.hpp"
#include "slurmlab/nn/models/models.hpp"
#include "slurmlab/train/callbacks.hpp"
#include "slurmlab/train/fused_mlp_module.hpp"
#include "slurmlab/train/trainer.hpp"

namespace fs = std::filesystem;

namespace slurmlab::fit {

namespace {

bool is_redshift_name(const std::string& name) {
  return !name.empty() && name[0] == 'z';
}

}  // namespace

RunPlan check_options(const ProgramOptions& o, std::optional<int> cpus_per_task) {
  RunPlan plan{};
  if (!o.table.empty()) plan.table = fs::path(o.table);
  if (o.target.empty()) throw UsageError("--target is empty; name the column to fit, e.g. --target m_b_corr");
  plan.target = o.target;
  plan.features = split_comma_list(o.features);
  if (plan.features.empty()) throw UsageError("--features is empty; name at least one column, e.g. --features zCMB");
  for (std::size_t i = 0; i < plan.features.size(); ++i) {
    if (plan.features[i].empty()) {
      throw UsageError("--features '" + o.features + "' has an empty name; give a comma list such as zCMB,x1,c");
    }
    if (plan.features[i] == plan.target) {
      throw UsageError("--features includes the target '" + plan.target + "'; a column cannot predict itself");
    }
    for (std::size_t j = 0; j < i; ++j)
      if (plan.features[j] == plan.features[i]) {
        throw UsageError("--features names '" + plan.features[i] + "' twice; list each column once");
      }
  }
  // The prediction grid, the Hubble diagram's x axis and --holdout-z run over a redshift
  // feature; a network on other columns alone has no curve to draw against redshift.
  if (std::none_of(plan.features.begin(), plan.features.end(), is_redshift_name)) {
    throw UsageError("--features '" + o.features +
                     "' has no redshift column (a name starting with z); the prediction is drawn against "
                     "redshift, so add one, e.g. --features zCMB," +
                     o.features);
  }
  if (o.error_column != "none" && !o.error_column.empty()) plan.error_column = o.error_column;
  plan.weighted = o.weighted;
  if (plan.weighted && !plan.error_column) {
    throw UsageError("--weighted needs an error column; drop --error-column none or drop --weighted");
  }
  plan.log_z = o.log_z;
  for (const auto& width : split_comma_list(o.hidden)) {
    const auto value = parse_integer(width);
    if (!value || *value < 1 || *value > 65536) {
      throw UsageError("--hidden '" + o.hidden + "': '" + width +
                       "' is not a width; give a positive integer (at most 65536) or a comma list such as 8,64,512");
    }
    plan.hidden.push_back(*value);
  }
  if (plan.hidden.empty()) throw UsageError("--hidden is empty; give a width such as 16");
  if (o.activation == "tanh") {
    plan.activation = nn::Activation::tanh;
  } else if (o.activation == "relu") {
    plan.activation = nn::Activation::relu;
  } else {
    throw UsageError("--activation '" + o.activation + "' is unknown; use tanh or relu");
  }
  if (o.epochs < 1) throw UsageError("--epochs must be at least 1 (got " + std::to_string(o.epochs) + ")");
  plan.epochs = o.epochs;
  if (!(o.lr > 0.0) || !std::isfinite(o.lr)) throw UsageError("--lr must be a positive number such as 0.01");
  plan.lr = o.lr;
  if (o.batch_size < 0) throw UsageError("--batch-size must be 0 (full batch) or a positive number of rows");
  plan.batch_size = o.batch_size;
  if (!(o.val_fraction > 0.0 && o.val_fraction < 1.0)) {
    throw UsageError("--val-fraction must lie strictly between 0 and 1, e.g. 0.2");
  }
  if (!(o.test_fraction >= 0.0 && o.test_fraction < 1.0)) {
    throw UsageError("--test-fraction must lie in [0, 1), e.g. 0.1");
  }
  if (o.val_fraction + o.test_fraction > 0.9) {
    throw UsageError("--val-fraction + --test-fraction leave under 10% of the rows to train on; lower them");
  }
  plan.val_fraction = o.val_fraction;
  plan.test_fraction = o.test_fraction;
  if (o.holdout_z != "none" && !o.holdout_z.empty()) {
    plan.holdout_z = parse_range("holdout-z", o.holdout_z, "0.5,2.5");
  }
  if (o.patience < 0) throw UsageError("--patience must be 0 (no early stopping) or a number of epochs");
  plan.patience = o.patience;
  if (!(o.min_delta >= 0.0)) throw UsageError("--min-delta must be 0 or positive");
  plan.min_delta = o.min_delta;
  if (o.image_every < 0) throw UsageError("--image-every must be 0 (no images) or a number of epochs");
  plan.image_every = o.image_every;
  if (o.checkpoint_every < 0) {
    throw UsageError("--checkpoint-every must be 0 (checkpoints only at the end) or a number of epochs");
  }
  plan.checkpoint_every = o.checkpoint_every;
  if (!(o.z_min_lcdm >= 0.0)) throw UsageError("--lcdm-z-min must be 0 or positive, e.g. 0.01");
  plan.z_min_lcdm = o.z_min_lcdm;
  if (o.threads < 0 || o.threads > 2) {
    throw UsageError("--threads " + std::to_string(o.threads) + ": a step uses at most two threads (FusedMlp splits "
                     "its rows in two); give 1 or 2, or 0 (SLURM_CPUS_PER_TASK, else 1)");
  }
  // A step uses at most two threads (FusedMlp splits its rows in two); more cores add nothing.
  const std::int64_t threads = o.threads > 0 ? o.threads : cpus_per_task.value_or(1);
  plan.threads = static_cast<int>(std::clamp<std::int64_t>(threads, 1, 2));
  return plan;
}

TableSource resolve_table(const RunPlan& plan, const fs::path& output_dir) {
  if (plan.table) return {*plan.table, false, ""};
  const fs::path release = fs::path("data") / "Pantheon+SH0ES.dat";
  if (fs::exists(release)) return {release, false, ""};
  const auto path = output_dir / "synthetic-pantheon.dat";
  io::write_file_atomically(path, cosmology::synthetic_pantheon_table({}));
  return {path, true,
          "SYNTHETIC DATA: data/Pantheon+SH0ES.dat is not here (tools/fetch-data downloads it, or pass --table), so "
          "this run fits a table generated from flat LambdaCDM with Omega_m = 0.3 (" +
              path.string() + "), not the real supernovae"};
}

Dataset load_dataset(const data::WhitespaceTable& table, const RunPlan& plan, std::uint64_t seed) {
  auto rows = data::select_regression_rows(table, plan.target, plan.features, plan.error_column);
  Dataset d;
  d.feature_names = plan.features;
  d.target_name = plan.target;
  d.rows = rows.target.size();
  if (d.rows < 10) {
    throw UsageError(table.path().string() + ": only " + std::to_string(d.rows) + " rows have every chosen column (" +
                     std::to_string(rows.dropped) + " dropped for missing values); choose other --features");
  }
  d.raw = std::move(rows.features);
  d.target = std::move(rows.target);
  d.error = std::move(rows.target_error);
  d.table_rows = std::move(rows.table_rows);
  d.dropped = rows.dropped;
  d.dropped_by_column = std::move(rows.dropped_by_column);
  for (double e : d.error)
    if (!(e > 0.0)) {
      throw UsageError(table.path().string() + ": column " + *plan.error_column +
                       " holds a non-positive error; choose another --error-column or --error-column none");
    }

  auto pick = [&](const std::string& name) {
    const auto column = table.numeric_column(name);
    std::vector<double> values(d.rows);
    for (std::size_t i = 0; i < d.rows; ++i) values[i] = column[d.table_rows[i]];
    return values;
  };
  // The Hubble diagram's x axis and the prediction grid: zCMB when it is a feature, else the
  // first redshift feature (check_options made sure there is one), so the curve and the
  // points share their axis.
  for (const auto& f : plan.features)
    if (f == "zCMB") d.redshift_name = f;
  if (d.redshift_name.empty()) {
    const auto first = std::find_if(plan.features.begin(), plan.features.end(), is_redshift_name);
    if (first == plan.features.end()) throw UsageError("--features has no redshift column; add zCMB");
    d.redshift_name = *first;
  }
  d.redshift = pick(d.redshift_name);
  if (table.has_column("zHD") && table.has_column("m_b_corr") && table.has_column("m_b_corr_err_DIAG")) {
    d.lcdm_z = table.numeric_column("zHD");
    d.lcdm_m = table.numeric_column("m_b_corr");
    d.lcdm_error = table.numeric_column("m_b_corr_err_DIAG");
    d.lcdm_columns = "zHD, m_b_corr, m_b_corr_err_DIAG (all rows of the table)";
    d.lcdm_matches_target = plan.target == "m_b_corr";
  } else if (!d.error.empty()) {
    d.lcdm_z = d.redshift;
    d.lcdm_m = d.target;
    d.lcdm_error = d.error;
    d.lcdm_columns = d.redshift_name + ", " + d.target_name + ", " + *plan.error_column;
    d.lcdm_matches_target = true;
  }
  for (std::size_t f = 0; f < plan.features.size(); ++f)
    if (plan.features[f] == d.redshift_name) d.grid_feature = static_cast<std::int64_t>(f);

  if (plan.log_z) {
    for (std::size_t f = 0; f < plan.features.size(); ++f) {
      if (!is_redshift_name(plan.features[f])) continue;
      for (std::size_t i = 0; i < d.rows; ++i)
        if (!(d.raw[i][f] > 0.0)) {
          throw UsageError(table.path().string() + ", line " + std::to_string(table.line_of(d.table_rows[i])) +
                           ", column " + plan.features[f] + ": --log-z needs positive redshifts; drop --log-z");
        }
    }
  }

  // Split by seed: the held-out redshift range first, then a seeded shuffle of the rest.
  std::vector<std::int64_t> pool;
  for (std::size_t i = 0; i < d.rows; ++i) {
    const double z = d.redshift[i];
    if (plan.holdout_z && z >= plan.holdout_z->first && z <= plan.holdout_z->second) {
      d.holdout.push_back(static_cast<std::int64_t>(i));
    } else {
      pool.push_back(static_cast<std::int64_t>(i));
    }
  }
  nn::Generator shuffle(seed ^ 0x5350'4c49'5421ULL);  // "SPLIT!"
  for (std::size_t i = pool.size(); i > 1; --i) std::swap(pool[i - 1], pool[shuffle.below(i)]);
  const auto n = pool.size();
  const auto n_val = static_cast<std::size_t>(std::llround(plan.val_fraction * static_cast<double>(n)));
  const auto n_test = static_cast<std::size_t>(std::llround(plan.test_fraction * static_cast<double>(n)));
  if (n_val < 1 || n_val + n_test + 2 > n) {
    throw UsageError("only " + std::to_string(n) + " rows outside the held-out range: too few for training (" +
                     std::to_string(n_val) + " validation, " + std::to_string(n_test) +
                     " test); narrow --holdout-z or lower the fractions");
  }
  d.validation.assign(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(n_val));
  d.test.assign(pool.begin() + static_cast<std::ptrdiff_t>(n_val),
                pool.begin() + static_cast<std::ptrdiff_t>(n_val + n_test));
  d.train.assign(pool.begin() + static_cast<std::ptrdiff_t>(n_val + n_test), pool.end());
  for (auto* split : {&d.train, &d.validation, &d.test}) std::sort(split->begin(), split->end());
  return d;
}

Standardizer fit_standardizer(const Dataset& d, bool log_z) {
  Standardizer s;
  const auto k = d.feature_names.size();
  s.log10.resize(k);
  s.mean.assign(k, 0.0);
  s.sd.assign(k, 1.0);
  const auto n = static_cast<double>(d.train.size());
  for (std::size_t f = 0; f < k; ++f) {
    s.log10[f] = log_z && is_redshift_name(d.feature_names[f]);
    double sum = 0, sum2 = 0;
    for (auto r : d.train) {
      const double v = s.log10[f] ? std::log10(d.raw[r][f]) : d.raw[r][f];
      sum += v;
      sum2 += v * v;
    }
    s.mean[f] = sum / n;
    const double var = sum2 / n - s.mean[f] * s.mean[f];
    s.sd[f] = var > 1e-24 ? std::sqrt(var) : 1.0;  // a constant feature stays 0 after centring
  }
  double sum = 0, sum2 = 0;
  for (auto r : d.train) {
    sum += d.target[r];
    sum2 += d.target[r] * d.target[r];
  }
  s.target_mean = sum / n;
  const double var = sum2 / n - s.target_mean * s.target_mean;
  s.target_sd = var > 1e-24 ? std::sqrt(var) : 1.0;
  return s;
}

std::vector<float> Standardizer::input_row(std::span<const double> raw) const {
  std::vector<float> row(raw.size());
  for (std::size_t f = 0; f < raw.size(); ++f) {
    const double v = log10[f] ? std::log10(raw[f]) : raw[f];
    row[f] = static_cast<float>((v - mean[f]) / sd[f]);
  }
  return row;
}

std::vector<float> Standardizer::inputs(const Dataset& d, std::span<const std::int64_t> rows,
                                        std::size_t features) const {
  std::vector<float> x;
  x.reserve(rows.size() * features);
  for (auto r : rows) {
    const auto row = input_row(std::span<const double>(d.raw[r]).first(features));
    x.insert(x.end(), row.begin(), row.end());
  }
  return x;
}

std::vector<float> Standardizer::targets(const Dataset& d, std::span<const std::int64_t> rows) const {
  std::vector<float> t;
  t.reserve(rows.size());
  for (auto r : rows) t.push_back(static_cast<float>((d.target[r] - target_mean) / target_sd));
  return t;
}

std::vector<double> Predictor::operator()(const Dataset& d, std::span<const std::int64_t> rows,
                                          std::size_t features) const {
  if (rows.empty()) return {};
  const auto x = s_.inputs(d, rows, features);
  std::vector<float> y(rows.size());
  net_.predict(x, y);
  std::vector<double> out(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) out[i] = s_.target_mean + s_.target_sd * y[i];
  return out;
}

std::vector<double> Predictor::on_grid(std::span<const double> values, std::size_t grid_feature,
                                       std::size_t features) const {
  if (values.empty() || grid_feature >= features) return {};
  std::vector<float> x(values.size() * features, 0.0f);  // other features at their means
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double v = s_.log10[grid_feature] ? std::log10(values[i]) : values[i];
    x[i * features + grid_feature] = static_cast<float>((v - s_.mean[grid_feature]) / s_.sd[grid_feature]);
  }
  std::vector<float> y(values.size());
  net_.predict(x, y);
  std::vector<double> out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = s_.target_mean + s_.target_sd * y[i];
  return out;
}

std::int64_t argmin_epoch(const std::vector<double>& values) {
  if (values.empty()) return -1;
  return static_cast<std::int64_t>(std::min_element(values.begin(), values.end()) - values.begin());
}

std::int64_t gap_growth_epoch(const std::vector<double>& train, const std::vector<double>& val) {
  // The gap val - train, smoothed by a trailing mean over max(5, epochs / 50) epochs (so
  // mini-batch noise does not decide), is looked at once training has converged (validation
  // loss within 10% of its minimum; before that both curves fall fast and their gap is the
  // transient, not overfitting). Its smallest value there marks where it starts to grow;
  // -1 when the last smoothed gap exceeds that minimum by less than 1% of the best
  // validation loss (it never really grows).
  const auto n = std::min(train.size(), val.size());
  if (n < 3) return -1;
  const double best = *std::min_element(val.begin(), val.begin() + static_cast<std::ptrdiff_t>(n));
  std::size_t converged = 0;
  while (converged < n && val[converged] > best + 0.1 * std::abs(best)) ++converged;
  const auto window = std::min<std::size_t>(n, std::max<std::size_t>(5, n / 50));
  std::vector<double> smooth(
      n, std::numeric_limits<double>::infinity());  // smooth[e]: mean of the gap over (e - window, e]
  double sum = 0;
  for (std::size_t e = 0; e < n; ++e) {
    sum += val[e] - train[e];
    if (e >= window) sum -= val[e - window] - train[e - window];
    if (e + 1 >= window) smooth[e] = sum / static_cast<double>(window);
  }
  const auto first = std::max(converged, window - 1);
  if (first >= n) return -1;
  std::size_t m = first;
  for (std::size_t e = first; e < n; ++e)
    if (smooth[e] < smooth[m]) m = e;
  if (smooth[n - 1] - smooth[m] <= 0.01 * std::abs(best)) return -1;
  return static_cast<std::int64_t>(m - (window - 1) / 2);
}

std::vector<double> redshift_grid(const Dataset& d) {
  const auto f = static_cast<std::size_t>(d.grid_feature);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& row : d.raw) {
    lo = std::min(lo, row[f]);
    hi = std::max(hi, row[f]);
  }
  std::vector<double> grid(200);
  const bool log_spaced = lo > 0.0;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const double t = static_cast<double>(i) / static_cast<double>(grid.size() - 1);
    grid[i] = log_spaced ? lo * std::pow(hi / lo, t) : lo + (hi - lo) * t;
  }
  return grid;
}

namespace {

double rms(std::span<const double> prediction, const Dataset& d, std::span<const std::int64_t> rows) {
  if (rows.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const double r = d.target[rows[i]] - prediction[i];
    sum += r * r;
  }
  return std::sqrt(sum / static_cast<double>(rows.size()));
}

}  // namespace

namespace {

// fit-regression's rows as the trainer's batches: the whole set (full batch, no shuffle) or
// mini-batches of a fresh shuffle every epoch, drawn from one generator in epoch order, as the
// program's own loop did before the trainer (the same seed gives the same batches). Sequential:
// fit-regression does not resume, so a position out of order is a logic error. The batch
// tensors are reused (the module is done with a batch when the next is asked for).
class RowBatches final : public train::BatchSource {
 public:
  RowBatches(const std::vector<float>& x, const std::vector<float>& t, const std::vector<float>& w,
             std::size_t features, std::int64_t batch_size, std::uint64_t shuffle_seed)
      : x_(x), t_(t), w_(w), features_(features), rows_(t.size()), shuffle_(shuffle_seed) {
    const auto n = static_cast<std::int64_t>(rows_);
    full_ = batch_size == 0 || batch_size >= n;
    batch_ = full_ ? rows_ : static_cast<std::size_t>(batch_size);
    batches_ = full_ ? 1 : static_cast<std::int64_t>((rows_ + batch_ - 1) / batch_);
    if (full_) {
      whole_ = make_batch(rows_);
      std::copy(x_.begin(), x_.end(), whole_.inputs.data());
      std::copy(t_.begin(), t_.end(), whole_.targets.data());
      if (!w_.empty()) std::copy(w_.begin(), w_.end(), whole_.weights.data());
      return;
    }
    order_.resize(rows_);
    std::iota(order_.begin(), order_.end(), 0);
    part_ = make_batch(batch_);
    if (rows_ % batch_ != 0) last_ = make_batch(rows_ % batch_);
  }
  std::int64_t batches_per_epoch() const override { return batches_; }
  void set_position(data::BatchPosition position) override {
    if (full_) return;  // one batch, no order: every position is the same
    if (position.batch == 0 && position.epoch == next_epoch_) {
      for (std::size_t i = rows_; i > 1; --i) std::swap(order_[i - 1], order_[shuffle_.below(i)]);
      ++next_epoch_;
      cursor_ = 0;
    } else if (position.epoch + 1 != next_epoch_ || position.batch != cursor_) {
      throw std::logic_error("fit-regression's batches are drawn in order; they cannot restart at epoch " +
                             std::to_string(position.epoch) + ", batch " + std::to_string(position.batch));
    }
  }
  train::TrainBatch next() override {
    if (full_) return whole_;
    const auto first = static_cast<std::size_t>(cursor_++) * batch_;
    const auto end = std::min(rows_, first + batch_);
    train::TrainBatch& b = end - first == batch_ ? part_ : last_;
    float* x = b.inputs.data();
    float* t = b.targets.data();
    float* w = w_.empty() ? nullptr : b.weights.data();
    for (std::size_t i = first; i < end; ++i) {
      const auto r = order_[i];
      x = std::copy_n(x_.begin() + static_cast<std::ptrdiff_t>(r * features_), features_, x);
      *t++ = t_[r];
      if (w) *w++ = w_[r];
    }
    return b;
  }

 private:
  train::TrainBatch make_batch(std::size_t rows) const {
    train::TrainBatch b;
    const auto n = static_cast<std::int64_t>(rows);
    b.inputs = nn::Tensor({n, static_cast<std::int64_t>(features_)});
    b.targets = nn::Tensor({n, 1});
    if (!w_.empty()) b.weights = nn::Tensor({n});
    return b;
  }
  const std::vector<float>&x_, &t_, &w_;
  std::size_t features_, rows_, batch_ = 0;
  bool full_ = true;
  std::int64_t batches_ = 1, next_epoch_ = 0, cursor_ = 0;
  nn::Generator shuffle_;
  std::vector<std::size_t> order_;
  train::TrainBatch whole_, part_, last_;
};

// The run's history (losses in the target's units per epoch), the best epoch's weights and
// the program's per-epoch hook (TensorBoard, the Hubble image, progress), at every epoch end.
class RunHistory final : public train::Callback {
 public:
  RunHistory(TrainingRun& run, const nn::FusedMlp& net, nn::FusedMlp& best, const Standardizer& s,
             const EpochHooks& hooks)
      : run_(run), net_(net), best_(best), s_(s), hooks_(hooks) {}
  void on_train_epoch_end(train::Trainer& trainer) override {
    const auto& m = trainer.metrics();
    const auto epoch = trainer.current_epoch();
    run_.train_loss.push_back(m.at("train_loss"));
    run_.val_loss.push_back(m.at("val_loss"));
    run_.epochs_run = epoch + 1;
    if (run_.val_loss.back() < run_.best_val_loss) {
      run_.best_val_loss = run_.val_loss.back();
      run_.best_epoch = epoch;
      best_ = net_;
    }
    if (hooks_.after_epoch) hooks_.after_epoch(run_, epoch, Predictor(net_, s_));
  }

 private:
  TrainingRun& run_;
  const nn::FusedMlp& net_;
  nn::FusedMlp& best_;
  const Standardizer& s_;
  const EpochHooks& hooks_;
};

// Checkpoints "last" (the current weights) and "best" (the best epoch's, when it changed)
// every `every` epochs (0: only at the end) and at the fit's end, through the program's save
// hook: their cadence is the program's --checkpoint-every, apart from its images.
class PeriodicCheckpoints final : public train::Callback {
 public:
  using Save = std::function<void(const nn::FusedMlp& which, std::int64_t epoch, const std::string& name)>;
  PeriodicCheckpoints(std::int64_t every, const TrainingRun& run, const nn::FusedMlp& net, const nn::FusedMlp& best,
                      Save save)
      : every_(every), run_(run), net_(net), best_(best), save_(std::move(save)) {}
  void on_train_epoch_end(train::Trainer& trainer) override {
    if (every_ > 0 && (trainer.current_epoch() + 1) % every_ == 0) write(trainer.current_epoch());
  }
  void on_fit_end(train::Trainer&) override { write(run_.epochs_run - 1); }

 private:
  void write(std::int64_t epoch) {
    save_(net_, epoch, "last");
    if (best_saved_ != run_.best_epoch) {
      save_(best_, run_.best_epoch, "best");
      best_saved_ = run_.best_epoch;
    }
  }
  std::int64_t every_;
  const TrainingRun& run_;
  const nn::FusedMlp& net_;
  const nn::FusedMlp& best_;
  Save save_;
  std::int64_t best_saved_ = -1;
};

}  // namespace

TrainingRun train_network(const Dataset& d, const RunPlan& plan, std::int64_t hidden, std::size_t features,
                          std::uint64_t seed, const EpochHooks& hooks) {
  TrainingRun run;
  run.hidden = hidden;
  run.features = features;
  if (static_cast<std::size_t>(d.grid_feature) < features) run.grid_z = redshift_grid(d);
  const auto s = fit_standardizer(d, plan.log_z);
  const auto x_train = s.inputs(d, d.train, features);
  const auto t_train = s.targets(d, d.train);
  const auto x_val = s.inputs(d, d.validation, features);
  const auto t_val = s.targets(d, d.validation);
  std::vector<float> w_train, w_val;
  if (plan.weighted) {
    // 1/sigma^2, scaled to mean 1 over the training rows (the weighted mean does not care).
    double total = 0;
    for (auto r : d.train) total += 1.0 / (d.error[r] * d.error[r]);
    const double scale = static_cast<double>(d.train.size()) / total;
    for (auto r : d.train) w_train.push_back(static_cast<float>(scale / (d.error[r] * d.error[r])));
    for (auto r : d.validation) w_val.push_back(static_cast<float>(scale / (d.error[r] * d.error[r])));
  }
  const double units = s.target_sd * s.target_sd;  // losses back in the target's units squared

  // The same initial weights as make_mlp (PyTorch's nn.Linear init), seeded per width and feature count.
  nn::Generator init(seed * 1000003ULL + static_cast<std::uint64_t>(hidden) * 131ULL + features);
  auto layers = nn::make_mlp(static_cast<std::int64_t>(features), hidden, 1, plan.activation, init);
  nn::AdamOptions adam;
  adam.learning_rate = plan.lr;
  nn::Adam optimizer(nn::parameters_of(*layers), adam);
  nn::FusedMlp net(static_cast<std::int64_t>(features), hidden, 1, plan.activation, adam);
  net.set_threads(plan.threads);
  net.load_from(*layers);
  nn::FusedMlp best = net;

  // The trainer's loop (one optimizer step per batch, the validation loss every epoch) with
  // the program's callbacks; FusedMlp does forward, loss, backward and Adam in one pass.
  RowBatches train_rows(x_train, t_train, w_train, features, plan.batch_size, seed ^ 0xBA7C'4E5ULL);
  RowBatches val_rows(x_val, t_val, w_val, features, 0, 0);
  train::FusedMlpModule module(net, *layers, optimizer, units);
  run.best_val_loss = std::numeric_limits<double>::infinity();
  auto save = [&](const nn::FusedMlp& which, std::int64_t epoch, const std::string& name) {
    if (!hooks.save) return;
    which.store_to(*layers, &optimizer);
    hooks.save(*layers, optimizer, epoch, name);
  };
  std::vector<std::shared_ptr<train::Callback>> callbacks{
      std::make_shared<RunHistory>(run, net, best, s, hooks),
      std::make_shared<PeriodicCheckpoints>(plan.checkpoint_every, run, net, best, save)};
  std::shared_ptr<train::EarlyStopping> early;
  if (plan.patience > 0) {
    // Lightning's EarlyStopping(monitor="val_loss", mode="min", patience, min_delta).
    early = std::make_shared<train::EarlyStopping>(
        train::EarlyStoppingOptions{"val_loss", train::MonitorMode::min, plan.patience, plan.min_delta});
    callbacks.push_back(early);
  }
  train::Trainer trainer({.max_epochs = plan.epochs}, callbacks);

  const auto start = std::chrono::steady_clock::now();
  trainer.fit(module, train_rows, &val_rows);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.epochs_per_second = run.seconds > 0 ? static_cast<double>(run.epochs_run) / run.seconds : 0.0;
  run.stopped_early = early && early->stopped_epoch() && run.epochs_run < plan.epochs;

  run.gap_growth_epoch = gap_growth_epoch(run.train_loss, run.val_loss);
  const Predictor predict(best, s);
  run.train_rms = rms(predict(d, d.train, features), d, d.train);
  run.val_prediction = predict(d, d.validation, features);
  run.val_rms = rms(run.val_prediction, d, d.validation);
  run.test_rms = rms(predict(d, d.test, features), d, d.test);
  run.holdout_rms = rms(predict(d, d.holdout, features), d, d.holdout);
  const std::vector<double> constant(d.validation.size(), s.target_mean);
  run.constant_val_rms = rms(constant, d, d.validation);
  if (static_cast<std::size_t>(d.grid_feature) < features) {
    run.grid_prediction = predict.on_grid(run.grid_z, static_cast<std::size_t>(d.grid_feature), features);
  }
  if (hooks.finished) hooks.finished(run);  // after the analysis: the rank log reports val_rms
  return run;
}

std::string run_name(std::int64_t hidden, std::size_t features, std::size_t all_features) {
  auto name = "hidden-" + std::to_string(hidden);
  if (features != all_features) name += "-features-" + std::to_string(features);
  return name;
}

Results run_fits(const RunPlan& plan, const Dataset& d, const TableSource& source, std::uint64_t seed,
                 const HookFactory& hooks_for) {
  Results results;
  results.source = source;
  const auto k = d.feature_names.size();
  if (d.lcdm_error.empty()) {
    results.lcdm_skipped = "the table has no zHD/m_b_corr/m_b_corr_err_DIAG and the run no error column";
  } else {
    try {
      results.lcdm = cosmology::fit_flat_lcdm(d.lcdm_z, d.lcdm_m, d.lcdm_error, plan.z_min_lcdm);
      const auto grid = redshift_grid(d);       // over the redshift feature (check_options: there is one)
      std::vector<double> z_cut, m_cut, e_cut;  // the fit's points (z > cut) set the EdS offset
      for (std::size_t i = 0; i < d.lcdm_z.size(); ++i)
        if (d.lcdm_z[i] > plan.z_min_lcdm) {
          z_cut.push_back(d.lcdm_z[i]);
          m_cut.push_back(d.lcdm_m[i]);
          e_cut.push_back(d.lcdm_error[i]);
        }
      double eds_offset = 0;
      cosmology::profiled_chi2(z_cut, m_cut, e_cut, 1.0, &eds_offset);
      const auto mu = cosmology::distance_modulus(grid, results.lcdm->omega_m);
      const auto mu_eds = cosmology::distance_modulus(grid, 1.0);
      for (std::size_t i = 0; i < grid.size(); ++i) {
        results.eds_residual.push_back(mu_eds[i] + eds_offset - mu[i] - results.lcdm->offset);
        // The curves belong on the Hubble diagram only when the network fits the same magnitudes.
        if (d.lcdm_matches_target) {
          results.lcdm_grid.push_back(mu[i] + results.lcdm->offset);
          results.eds_grid.push_back(mu_eds[i] + eds_offset);
        }
      }
    } catch (const UsageError& e) {
      results.lcdm_skipped = e.what();
    }
  }
  auto hooks = [&](std::int64_t hidden, std::size_t features) {
    return hooks_for ? hooks_for(run_name(hidden, features, k), hidden, features, results) : EpochHooks{};
  };
  for (auto width : plan.hidden) results.sweep.push_back(train_network(d, plan, width, k, seed, hooks(width, k)));
  if (k > 1) {
    // The validation gain of each added feature: the first 1, 2, ..., k features at the main width.
    for (std::size_t f = 1; f < k; ++f)
      results.feature_runs.push_back(
          train_network(d, plan, plan.hidden.front(), f, seed, hooks(plan.hidden.front(), f)));
    results.feature_runs.push_back(results.sweep.front());
  }
  return results;
}

}  // namespace slurmlab::fit
