#include "slurmlab/train/metric_reduction.hpp"

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace slurmlab::train {
namespace {

void check_mpi(int code, const char* call) {
  if (code != MPI_SUCCESS) throw std::runtime_error(std::string("metric reduction: ") + call + " failed");
}

// Every rank's metric names, gathered on every rank (two small collectives).
std::vector<std::string> allgather_names(MPI_Comm communicator, const std::string& mine, int size) {
  int length = static_cast<int>(mine.size());
  std::vector<int> lengths(static_cast<std::size_t>(size));
  check_mpi(MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, communicator), "MPI_Allgather");
  std::vector<int> offsets(static_cast<std::size_t>(size), 0);
  int total = 0;
  for (int r = 0; r < size; ++r) {
    offsets[static_cast<std::size_t>(r)] = total;
    total += lengths[static_cast<std::size_t>(r)];
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  check_mpi(
      MPI_Allgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, communicator),
      "MPI_Allgatherv");
  std::vector<std::string> out;
  for (int r = 0; r < size; ++r) {
    out.push_back(all.substr(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                             static_cast<std::size_t>(lengths[static_cast<std::size_t>(r)])));
  }
  return out;
}

std::set<std::string> split_names(const std::string& joined) {
  std::set<std::string> names;
  std::istringstream in(joined);
  for (std::string name; std::getline(in, name);) names.insert(name);
  return names;
}

}  // namespace

void MetricAccumulator::add_ready(const StepResult& step) const {
  loss_sum_ += step.loss_sum;
  for (const auto& [name, value] : step.sums) sums_[name] += value;
}

void MetricAccumulator::add(const StepResult& step) {
  samples_ += step.samples;
  if (step.ready() && pending_.empty()) {
    add_ready(step);
    return;
  }
  // Behind a pending step even when ready: the sums are added in step order.
  pending_.push_back(step);
  while (pending_.size() > kLag) {
    add_ready(pending_.front().resolved());
    pending_.pop_front();
  }
}

double MetricAccumulator::settle() const {
  if (pending_.empty()) return 0.0;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& step : pending_) add_ready(step.resolved());
  pending_.clear();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

StepResult MetricAccumulator::totals() const {
  settle();
  return {loss_sum_, samples_, sums_};
}

Metrics MetricAccumulator::reduce(MPI_Comm communicator, const std::string& stage) const {
  settle();
  int size = 1, rank = 0;
  if (communicator != MPI_COMM_NULL) {
    check_mpi(MPI_Comm_size(communicator, &size), "MPI_Comm_size");
    check_mpi(MPI_Comm_rank(communicator, &rank), "MPI_Comm_rank");
  }
  if (size == 1) {
    // One process: nothing to send, so no buffer either (the trainer reduces every epoch and
    // every validation, and fit-regression's epochs take tens of microseconds).
    Metrics metrics;
    if (samples_ <= 0) return metrics;
    const auto samples = static_cast<double>(samples_);
    metrics.emplace(stage + "_loss", loss_sum_ / samples);
    for (const auto& [name, value] : sums_) metrics.emplace(stage + "_" + name, value / samples);
    return metrics;
  }
  // Every rank's metric names and sample count: a rank that evaluated nothing (a validation
  // set smaller than the ranks' batches leaves some ranks without a batch) reports no names
  // and adds zeros; a rank that evaluated samples must report every name the others do.
  std::set<std::string> all;
  {
    std::string mine;
    for (const auto& [name, value] : sums_) mine += name + "\n";
    const auto names = allgather_names(communicator, mine, size);
    std::vector<long long> samples_of(static_cast<std::size_t>(size));
    const long long my_samples = samples_;
    check_mpi(MPI_Allgather(&my_samples, 1, MPI_LONG_LONG, samples_of.data(), 1, MPI_LONG_LONG, communicator),
              "MPI_Allgather");
    for (const auto& joined : names) all.merge(split_names(joined));
    for (const auto& key : all) {
      std::string missing;
      for (int r = 0; r < size; ++r) {
        if (samples_of[static_cast<std::size_t>(r)] > 0 && !split_names(names[static_cast<std::size_t>(r)]).contains(key)) {
          missing += (missing.empty() ? "" : ", ") + std::to_string(r);
        }
      }
      if (!missing.empty()) {
        throw std::runtime_error("metric '" + stage + "_" + key +
                                 "' is reported on some ranks but missing on rank(s) " + missing +
                                 "; every rank's steps must return the same metric names");
      }
    }
  }
  // The same layout on every rank: loss, samples, then the union of the names in order.
  std::vector<double> values{loss_sum_, static_cast<double>(samples_)};
  for (const auto& key : all) {
    const auto it = sums_.find(key);
    values.push_back(it == sums_.end() ? 0.0 : it->second);
  }
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, communicator),
            "MPI_Allreduce");
  Metrics metrics;
  const double samples = values[1];
  if (samples <= 0.0) return metrics;
  metrics[stage + "_loss"] = values[0] / samples;
  std::size_t i = 2;
  for (const auto& key : all) metrics[stage + "_" + key] = values[i++] / samples;
  return metrics;
}

std::string MetricAccumulator::serialize() const {
  settle();
  nlohmann::json j;
  j["loss_sum"] = loss_sum_;
  j["samples"] = samples_;
  j["sums"] = sums_;
  return j.dump();
}

void MetricAccumulator::deserialize(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  pending_.clear();
  loss_sum_ = j.at("loss_sum").get<double>();
  samples_ = j.at("samples").get<std::int64_t>();
  sums_ = j.at("sums").get<std::map<std::string, double>>();
}

}  // namespace slurmlab::train
