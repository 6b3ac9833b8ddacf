#pragma once
// fit-regression's data preparation, training loop and overfitting analysis, apart from
// main() so the tests can drive them without MPI: option checks, the train/validation/test
// split (and a held-out redshift range), input standardisation, one-hidden-layer networks
// trained with Adam on (weighted) MSE, early stopping like Lightning's EarlyStopping, the
// epoch of minimal validation loss and the epoch where the train/validation gap starts to
// grow, a --hidden sweep and the validation gain of each added feature.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cosmology.hpp"
#include "slurmlab/cli/program_run.hpp"
#include "slurmlab/data/table.hpp"
#include "slurmlab/io/figure.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/models/fused_mlp.hpp"

namespace slurmlab::fit {

// The options as the command line gives them.
struct ProgramOptions {
  std::string table;  // empty: data/Pantheon+SH0ES.dat if present, else a synthetic table
  std::string target = "m_b_corr";
  std::string features = "zCMB";                   // comma list
  std::string error_column = "m_b_corr_err_DIAG";  // "none": no error column
  bool weighted = false;                           // weights 1/error^2 in the MSE
  bool log_z = false;                              // log10 of redshift features (z*) before standardising
  std::string hidden = "16";                       // width, or a comma list (the sweep)
  std::string activation = "tanh";
  std::int64_t epochs = 3000;
  double lr = 0.01;
  std::int64_t batch_size = 0;  // 0: full batch
  double val_fraction = 0.2;
  double test_fraction = 0.1;
  std::string holdout_z = "none";  // "LO,HI": rows with redshift in [LO, HI] are held out
  std::int64_t patience = 0;       // 0: no early stopping
  double min_delta = 0.0;
  std::int64_t image_every = 500;       // TensorBoard prediction image every N epochs (0: never)
  std::int64_t checkpoint_every = 500;  // best/last checkpoints every N epochs (0: only at the end)
  double z_min_lcdm = 0.01;             // the LambdaCDM fit's zHD cut
  std::int64_t threads = 0;             // training threads (1 or 2); 0: SLURM_CPUS_PER_TASK, else 1
};

// The checked form. Throws UsageError naming the option and the fix.
struct RunPlan {
  std::optional<std::filesystem::path> table;  // nullopt: use the default
  std::string target;
  std::vector<std::string> features;
  std::optional<std::string> error_column;
  bool weighted;
  bool log_z;
  std::vector<std::int64_t> hidden;  // first = the main model
  nn::Activation activation;
  std::int64_t epochs;
  double lr;
  std::int64_t batch_size;
  double val_fraction, test_fraction;
  std::optional<std::pair<double, double>> holdout_z;
  std::int64_t patience;
  double min_delta;
  std::int64_t image_every;
  std::int64_t checkpoint_every;
  double z_min_lcdm;
  int threads;  // resolved: 1 or 2
};
// `cpus_per_task`: SLURM_CPUS_PER_TASK when the job set it (the default of --threads).
RunPlan check_options(const ProgramOptions& options, std::optional<int> cpus_per_task = std::nullopt);

// Where the table came from: the path read and whether it was generated.
struct TableSource {
  std::filesystem::path path;
  bool synthetic = false;
  std::string note;  // one line for the output ("SYNTHETIC DATA: ...")
};
// The user's table, else data/Pantheon+SH0ES.dat (relative to the working directory) if
// present, else a synthetic table written to <output_dir>/synthetic-pantheon.dat.
TableSource resolve_table(const RunPlan& plan, const std::filesystem::path& output_dir);

// Rows ready for training: raw and standardised features, target, weights, split.
struct Dataset {
  std::vector<std::string> feature_names;
  std::string target_name;
  std::size_t rows = 0;
  std::vector<std::vector<double>> raw;  // [row][feature], before log10 / standardisation
  std::vector<double> target;
  std::vector<double> error;     // empty without an error column
  std::vector<double> redshift;  // the x axis of the Hubble diagram (zCMB or the first z feature)
  std::string redshift_name;
  // The LambdaCDM fit's points: every row of the table's zHD, m_b_corr, m_b_corr_err_DIAG
  // when it has them (the physics is about the standardised magnitudes, whatever the network
  // fits), else the regression rows' redshift, target and error. lcdm_matches_target: the
  // fitted magnitudes are the target, so the curves belong on the Hubble diagram.
  std::vector<double> lcdm_z, lcdm_m, lcdm_error;
  std::string lcdm_columns;
  bool lcdm_matches_target = false;
  std::vector<std::size_t> table_rows;
  // The feature the prediction grid runs over (the redshift when it is a feature), or -1.
  std::int64_t grid_feature = -1;
  std::size_t dropped = 0;
  std::map<std::string, std::size_t> dropped_by_column;
  // Split (indices into the rows above).
  std::vector<std::int64_t> train, validation, test, holdout;
};
Dataset load_dataset(const data::WhitespaceTable& table, const RunPlan& plan, std::uint64_t seed);

// Standardisation fitted on the training rows: (transform(x) - mean) / sd per feature, the
// target likewise (losses are reported back in the target's units squared).
struct Standardizer {
  std::vector<bool> log10;
  std::vector<double> mean, sd;
  double target_mean = 0, target_sd = 1;
  std::vector<float> inputs(const Dataset& d, std::span<const std::int64_t> rows, std::size_t features) const;
  std::vector<float> input_row(std::span<const double> raw) const;
  std::vector<float> targets(const Dataset& d, std::span<const std::int64_t> rows) const;
};
Standardizer fit_standardizer(const Dataset& d, bool log_z);

// Per-epoch history and the analysis of one trained network.
struct TrainingRun {
  std::int64_t hidden = 0;
  std::size_t features = 0;                  // the first `features` of the dataset's features
  std::vector<double> train_loss, val_loss;  // target units squared, per epoch (weighted if --weighted)
  std::int64_t epochs_run = 0;
  bool stopped_early = false;
  std::int64_t best_epoch = 0;         // argmin val_loss (0-based), the "overfitting epoch"
  std::int64_t gap_growth_epoch = -1;  // where the smoothed val - train gap is smallest; -1 if it never grows
  double best_val_loss = 0;
  // At the best epoch's weights, unweighted: RMS of target - prediction (target units).
  double train_rms = 0, val_rms = 0, test_rms = 0, holdout_rms = 0;
  double constant_val_rms = 0;                  // predicting the training mean
  std::vector<double> grid_z, grid_prediction;  // the network on a redshift grid (best weights)
  std::vector<double> val_prediction;           // on the validation rows (best weights)
  double seconds = 0;
  double epochs_per_second = 0;
};

// The network's prediction (target units) for raw feature rows.
class Predictor {
 public:
  Predictor(const nn::FusedMlp& net, const Standardizer& s) : net_(net), s_(s) {}
  std::vector<double> operator()(const Dataset& d, std::span<const std::int64_t> rows, std::size_t features) const;
  // Over `values` of feature `grid_feature` (raw units), the other features at their
  // training means.
  std::vector<double> on_grid(std::span<const double> values, std::size_t grid_feature, std::size_t features) const;

 private:
  const nn::FusedMlp& net_;
  const Standardizer& s_;
};

// Called after every epoch with the run so far and the current network (for TensorBoard,
// progress), and with the network and Adam state to save as checkpoint "best" or "last".
struct EpochHooks {
  std::function<void(const TrainingRun&, std::int64_t epoch, const Predictor& current)> after_epoch;
  std::function<void(nn::Layer& net, nn::Adam& optimizer, std::int64_t epoch, const std::string& which)> save;
  // After the last epoch (early stop included) and the analysis: the run is complete.
  std::function<void(const TrainingRun&)> finished;
};

TrainingRun train_network(const Dataset& data, const RunPlan& plan, std::int64_t hidden, std::size_t features,
                          std::uint64_t seed, const EpochHooks& hooks = {});

// 200 points over the grid feature's range (log-spaced when positive).
std::vector<double> redshift_grid(const Dataset& data);

// The overfitting analysis on a finished history.
std::int64_t argmin_epoch(const std::vector<double>& values);
std::int64_t gap_growth_epoch(const std::vector<double>& train, const std::vector<double>& val);

// Everything one program run computes.
struct Results {
  TableSource source;
  std::vector<TrainingRun> sweep;         // one per --hidden width, all features
  std::vector<TrainingRun> feature_runs;  // first 1..k features at the main width (k > 1)
  std::optional<cosmology::LcdmFit> lcdm;
  std::string lcdm_skipped;                 // why there is no fit
  std::vector<double> lcdm_grid, eds_grid;  // the two models on the main run's z grid (target units; empty
                                            // when the target is not the fitted m_b_corr)
  std::vector<double> eds_residual;         // Einstein-de Sitter - LambdaCDM on that grid (magnitudes)
};

// Trains the sweep and the feature runs and fits LambdaCDM: what the program computes.
// `hooks_for(name, hidden, features)` gives each training run its hooks (may be empty).
// The LambdaCDM fit is done first, so hooks can draw it (results.lcdm_grid over redshift_grid).
using HookFactory = std::function<EpochHooks(const std::string& name, std::int64_t hidden, std::size_t features,
                                             const Results& results)>;
Results run_fits(const RunPlan& plan, const Dataset& data, const TableSource& source, std::uint64_t seed,
                 const HookFactory& hooks_for = {});
// "hidden-16" or "hidden-16-features-2": the run's name in metrics.h5, TensorBoard and checkpoints.
std::string run_name(std::int64_t hidden, std::size_t features, std::size_t all_features);

std::string format_summary(const RunPlan& plan, const Dataset& data, const Results& results);
// One sentence: each width's epoch of minimal validation loss, and whether the wider the
// network, the sooner it overfits.
std::string sweep_comparison(const std::vector<TrainingRun>& sweep);
void write_metrics(const std::filesystem::path& path, const cli::RunAttributes& attributes, const RunPlan& plan,
                   const Dataset& data, const Results& results);
// The Hubble diagram (data with error bars, network, LambdaCDM, Einstein-de Sitter).
io::Figure hubble_figure(const Dataset& data, const TrainingRun& run, const Results& results, const std::string& title);
void write_figures(const std::filesystem::path& output_dir, const RunPlan& plan, const Dataset& data,
                   const Results& results);

}  // namespace slurmlab::fit
