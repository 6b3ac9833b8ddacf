#pragma once
// RunObserver: what fit-regression does around one training run, through the run's
// EpochHooks: its TensorBoard event file (hparams, both losses every epoch, the prediction on
// the Hubble diagram every --image-every epochs), its progress line, its checkpoints
// ("best", "last") and a rank-log line when it ends. Rank 0 only: the network trains there.
//
// Threads: the training thread calls the hooks; the prediction images are drawn on the
// RenderQueue's worker, so the event file has a lock (held for a record, never a drawing).
// An observer must outlive the queue's worker (RenderQueue::finish or its destructor).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "fit_training.hpp"
#include "render_queue.hpp"
#include "slurmlab/cli/progress.hpp"
#include "slurmlab/io/rank_log.hpp"
#include "slurmlab/io/tensorboard.hpp"

namespace slurmlab::fit {

// What every run's observer shares: the program's plan and data, and where things go.
struct ObserverSetup {
  const RunPlan& plan;
  const Dataset& dataset;
  const TableSource& source;
  std::filesystem::path output_dir;  // tensorboard/<run>/ and checkpoints/<run>/ inside
  std::uint64_t seed;
  RenderQueue& renderer;
  io::RankLog& log;
};

class RunObserver {
 public:
  // Opens tensorboard/<name>/ and writes the run's hparams. `results`: run_fits' results so
  // far, whose LambdaCDM curves the prediction images draw beside the network.
  RunObserver(const ObserverSetup& setup, std::string name, std::int64_t hidden, std::size_t features,
              const Results& results);
  RunObserver(const RunObserver&) = delete;
  RunObserver& operator=(const RunObserver&) = delete;

  // Hooks that call this observer (which must outlive the run).
  EpochHooks hooks();
  // Once the run is analysed and the drawing is over: its final metrics beside its hparams,
  // then the hparams session's end (a failure when a prediction image failed), and closes.
  void close(const TrainingRun& run, bool drawing_failed);

 private:
  void after_epoch(const TrainingRun& run, std::int64_t epoch, const Predictor& current);
  void post_prediction_image(const TrainingRun& run, std::int64_t epoch, const Predictor& current);
  void finished(const TrainingRun& run);
  void save(nn::Layer& net, nn::Adam& optimizer, std::int64_t epoch, const std::string& which);

  ObserverSetup setup_;
  std::string name_;
  std::size_t features_;
  io::EventWriter events_;
  std::mutex events_lock_;
  // The curves the Hubble diagram draws beside the network, copied: render jobs may outlive
  // run_fits' partial results.
  std::shared_ptr<const Results> curves_;
  cli::Progress progress_;
};

}  // namespace slurmlab::fit
