#pragma once
// Step results summed over batches, then over ranks by metric NAME, then divided once.
//
// Contract
//   Collective: reduce() is called by every rank of `communicator` at the same point (the
//     trainer's epoch and evaluation ends). MPI_COMM_NULL means one process: nothing is sent.
//   Agreement: every rank must report the same metric names. When one name is missing on
//     some ranks, every rank learns it from the same gathered lists and throws the same
//     std::runtime_error naming the key and the ranks: nobody waits in a collective that the
//     others skipped (Lightning's misaligned sync_dist, issue #21409, cannot happen).
//   Pending steps: add() keeps a step whose values a device is still computing and waits for
//     it only once `lag` later steps have been added (or when anything reads the sums), so
//     the device has the next steps queued meanwhile; sums are added in step order all the
//     same, so the results equal those of ready steps bit for bit.
//   Threads: one thread per rank.
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "slurmlab/train/module.hpp"

namespace slurmlab::train {

// Reduced metrics by name ("train_loss", "val_accuracy", ...): global means.
using Metrics = std::map<std::string, double>;

class MetricAccumulator {
 public:
  // Pending steps left unread at the end of add() (see the contract).
  static constexpr std::size_t kLag = 2;
  void add(const StepResult& step);
  bool empty() const { return samples_ == 0; }
  // What was added so far, as one step (to merge accumulators with add()).
  StepResult totals() const;
  // Drops the sums, pending steps included (not waited for).
  void clear() { *this = MetricAccumulator{}; }
  std::size_t pending_steps() const { return pending_.size(); }
  // Waits for every pending step and adds it; returns the seconds spent waiting.
  double settle() const;
  // Collective: "<stage>_loss" and "<stage>_<name>" for every name in the steps' sums, as
  // sum over ranks and batches divided by the total sample count. Empty when no rank saw a
  // sample.
  Metrics reduce(MPI_Comm communicator, const std::string& stage) const;

  // For checkpoints taken mid-epoch: the sums so far, as text, and back.
  std::string serialize() const;
  void deserialize(const std::string& text);

 private:
  void add_ready(const StepResult& step) const;
  // Mutable: waiting for a pending step changes when its values arrive, not what they are.
  mutable double loss_sum_ = 0.0;
  std::int64_t samples_ = 0;
  mutable std::map<std::string, double> sums_;
  mutable std::deque<StepResult> pending_;
};

}  // namespace slurmlab::train
