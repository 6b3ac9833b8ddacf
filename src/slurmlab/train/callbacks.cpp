#include "slurmlab/train/callbacks.hpp"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/io/atomic_file.hpp"

namespace slurmlab::train {
namespace {

std::string available_metrics(const Metrics& metrics) {
  std::string names;
  for (const auto& [name, value] : metrics) names += (names.empty() ? "" : ", ") + name;
  return names.empty() ? "none yet" : names;
}

// The monitored value this epoch, or nothing when the epoch had no validation to give it.
std::optional<double> monitored(const Trainer& trainer, const std::string& monitor, const char* who) {
  const auto found = trainer.metrics().find(monitor);
  if (found != trainer.metrics().end()) return found->second;
  if (monitor.rfind("val_", 0) == 0 && !trainer.validated_this_epoch()) return std::nullopt;
  throw UsageError(std::string(who) + " monitors '" + monitor + "', which is not among the metrics (" +
                   available_metrics(trainer.metrics()) + "); monitor one of those");
}

void remove_checkpoint_files(const std::filesystem::path& path) {
  std::error_code ignored;  // already gone is fine: the goal is that it is gone
  std::filesystem::remove(path, ignored);
  std::filesystem::remove(path.string() + ".trainer.json", ignored);
}

}  // namespace

std::string format_checkpoint_name(const std::string& filename_template, std::int64_t epoch, std::int64_t step,
                                   const Metrics& metrics) {
  static const std::regex field(R"(\{([A-Za-z_][A-Za-z0-9_/.-]*)(?::(\.?[0-9]*[efg]))?\})");
  std::string out;
  auto begin = filename_template.cbegin();
  for (std::sregex_iterator it(filename_template.begin(), filename_template.end(), field), end; it != end; ++it) {
    const auto& match = *it;
    out.append(begin, match[0].first);
    begin = match[0].second;
    const std::string name = match[1].str(), spec = match[2].matched ? match[2].str() : "";
    double value = 0.0;
    bool integral = false;
    if (name == "epoch" || name == "step") {
      value = static_cast<double>(name == "epoch" ? epoch : step);
      integral = spec.empty();
    } else if (auto found = metrics.find(name); found != metrics.end()) {
      value = found->second;
    } else {
      throw UsageError("checkpoint filename '" + filename_template + "' names '" + name +
                       "', which is neither epoch, step nor a metric (" + available_metrics(metrics) + ")");
    }
    char text[64];
    if (integral) {
      std::snprintf(text, sizeof text, "%lld", static_cast<long long>(value));
    } else {
      const std::string format = "%" + (spec.empty() ? std::string(".6g") : spec);
      std::snprintf(text, sizeof text, format.c_str(), value);
    }
    out += text;
  }
  out.append(begin, filename_template.cend());
  return out;
}

ModelCheckpoint::ModelCheckpoint(ModelCheckpointOptions options) : options_(std::move(options)) {
  if (options_.save_top_k < -1) throw UsageError("save_top_k must be -1 (all), 0 (none) or a count");
  if (options_.save_top_k != 0 && options_.monitor.empty() && options_.save_top_k != 1) {
    throw UsageError("save_top_k needs a monitored metric (monitor=\"val_loss\", ...)");
  }
}

std::filesystem::path ModelCheckpoint::directory(const Trainer& trainer) const {
  return options_.dirpath.empty() ? trainer.checkpoint_dir() : options_.dirpath;
}

std::vector<std::pair<double, std::filesystem::path>> ModelCheckpoint::top_k() const {
  auto sorted = kept_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [this](const auto& a, const auto& b) { return better(a.first, b.first); });
  return sorted;
}

void ModelCheckpoint::on_train_epoch_end(Trainer& trainer) {
  if (!options_.monitor.empty() && options_.save_top_k != 0) {
    if (const auto score = monitored(trainer, options_.monitor, "ModelCheckpoint")) {
      const auto path = directory(trainer) / (format_checkpoint_name(options_.filename, trainer.current_epoch(),
                                                                     trainer.global_step(), trainer.metrics()) +
                                              ".h5");
      const auto k = options_.save_top_k;
      std::optional<std::filesystem::path> dropped;
      bool keep = k < 0 || static_cast<std::int64_t>(kept_.size()) < k;
      if (!keep) {
        // Replace the worst kept one when strictly better (Lightning keeps the earlier on ties).
        auto worst = std::max_element(kept_.begin(), kept_.end(),
                                      [this](const auto& a, const auto& b) { return better(a.first, b.first); });
        if (better(*score, worst->first)) {
          dropped = worst->second;
          kept_.erase(worst);
          keep = true;
        }
      }
      if (keep) {
        // A name that repeats (same epoch and score) overwrites the same file: keep one entry.
        std::erase_if(kept_, [&](const auto& entry) { return entry.second == path; });
        if (dropped == path) dropped.reset();
        kept_.emplace_back(*score, path);
        const auto best = top_k().front();
        best_score_ = best.first;
        best_path_ = best.second;
        trainer.save_checkpoint(path);
        // Only this run's own files: one resumed from another run's checkpoint never deletes there.
        if (dropped && trainer.is_root() && is_own(trainer, *dropped)) remove_checkpoint_files(*dropped);
      }
    }
  }
  if (options_.save_last) {
    last_path_ = directory(trainer) / "last.h5";
    trainer.save_checkpoint(last_path_);
    last_saved_at_step_ = trainer.global_step();
  }
}

void ModelCheckpoint::on_fit_end(Trainer& trainer) {
  // A fit that ended mid-epoch (max_steps) still leaves a resumable `last`; one that ended at an
  // epoch's end has it already (every rank sees the same step, so all skip alike).
  if (options_.save_last && last_saved_at_step_ != trainer.global_step()) {
    last_path_ = directory(trainer) / "last.h5";
    trainer.save_checkpoint(last_path_);
    last_saved_at_step_ = trainer.global_step();
  }
}

std::string ModelCheckpoint::save_state() const {
  nlohmann::json j;
  j["monitor"] = options_.monitor;
  j["best_model_path"] = best_path_.string();
  j["best_model_score"] = best_score_ ? nlohmann::json(*best_score_) : nlohmann::json(nullptr);
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& [score, path] : kept_) kept.push_back({{"score", score}, {"path", path.string()}});
  j["top_k"] = kept;
  return j.dump();
}

void ModelCheckpoint::on_fit_start(Trainer& trainer) {
  last_saved_at_step_ = -1;
  // After a resume (load_state): a run folder that was copied or moved has its checkpoints in
  // this run's directory under the same names, and those are the ones to use (and prune); a
  // fit resumed into a new folder from another run's checkpoint keeps that run's paths, which
  // it reads but never deletes (is_own).
  const auto dir = directory(trainer);
  const auto rebase = [&](std::filesystem::path& path) {
    if (path.empty()) return;
    std::error_code error;
    if (const auto here = dir / path.filename(); std::filesystem::exists(here, error)) path = here;
  };
  rebase(best_path_);
  for (auto& entry : kept_) rebase(entry.second);
}

bool ModelCheckpoint::is_own(const Trainer& trainer, const std::filesystem::path& path) const {
  const auto normal = [](const std::filesystem::path& p) { return std::filesystem::absolute(p).lexically_normal(); };
  return normal(path.parent_path()) == normal(directory(trainer));
}

void ModelCheckpoint::load_state(const std::string& state) {
  const auto j = nlohmann::json::parse(state);
  best_path_ = j.at("best_model_path").get<std::string>();
  best_score_.reset();
  if (!j.at("best_model_score").is_null()) best_score_ = j.at("best_model_score").get<double>();
  kept_.clear();
  for (const auto& entry : j.at("top_k")) {
    kept_.emplace_back(entry.at("score").get<double>(), entry.at("path").get<std::string>());
  }
}

EarlyStopping::EarlyStopping(EarlyStoppingOptions options)
    : options_(std::move(options)),
      best_(options_.mode == MonitorMode::min ? std::numeric_limits<double>::infinity()
                                              : -std::numeric_limits<double>::infinity()) {
  if (options_.monitor.empty()) throw UsageError("EarlyStopping needs a monitored metric");
  if (options_.patience < 0) throw UsageError("patience must be 0 or a number of checks");
  if (!(options_.min_delta >= 0.0)) throw UsageError("min_delta must be 0 or positive");
}

void EarlyStopping::on_train_epoch_end(Trainer& trainer) {
  const auto current = monitored(trainer, options_.monitor, "EarlyStopping");
  if (!current) return;
  const bool improved =
      options_.mode == MonitorMode::min ? *current < best_ - options_.min_delta : *current > best_ + options_.min_delta;
  if (improved) {
    best_ = *current;
    wait_ = 0;
  } else if (++wait_ >= options_.patience) {
    stopped_epoch_ = trainer.current_epoch();
    trainer.request_stop();
  }
}

std::string EarlyStopping::save_state() const {
  nlohmann::json j;
  j["best"] = best_;
  j["wait"] = wait_;
  return j.dump();
}

void EarlyStopping::load_state(const std::string& state) {
  const auto j = nlohmann::json::parse(state);
  best_ = j.at("best").get<double>();
  wait_ = j.at("wait").get<std::int64_t>();
}

void Hdf5MetricsLogger::on_fit_start(Trainer& trainer) {
  if (!trainer.is_root()) return;
  if (path_.has_parent_path()) io::make_output_directory(path_.parent_path());
  writer_ = std::make_unique<io::MetricsWriter>(path_);
  if (describe_run_) describe_run_(*writer_);
}

void Hdf5MetricsLogger::on_train_epoch_end(Trainer& trainer) {
  if (!writer_) return;
  writer_->append("time/epoch", trainer.current_epoch());
  writer_->append("time/train_seconds", trainer.epoch_train_seconds());
  writer_->append("time/epoch_seconds", trainer.seconds_since_epoch_start());
  writer_->set_attribute("time/train_seconds", "unit", "s");
  writer_->set_attribute("time/epoch_seconds", "unit", "s");
  writer_->append("epoch", trainer.current_epoch());
  writer_->append("lr", trainer.learning_rate());
  for (const auto& [name, value] : trainer.metrics()) {
    if (name.rfind("train_", 0) == 0) writer_->append(name, value);
  }
  if (trainer.validated_this_epoch()) {
    writer_->append("val_epoch", trainer.current_epoch());
    for (const auto& [name, value] : trainer.metrics()) {
      if (name.rfind("val_", 0) == 0) writer_->append(name, value);
    }
  }
  writer_->flush();
}

void Hdf5MetricsLogger::on_fit_end(Trainer& trainer) {
  if (writer_) {
    // The simple profiler's seconds per phase (rank 0's), one value each.
    const auto& p = trainer.profile();
    const std::pair<const char*, double> phases[] = {
        {"profile/data_wait", p.data_wait},   {"profile/forward_backward", p.forward_backward},
        {"profile/reduce", p.reduce},         {"profile/optimizer", p.optimizer},
        {"profile/evaluation", p.evaluation}, {"profile/callbacks", p.callbacks},
        {"profile/device_wait", p.device_wait}};
    for (const auto& [name, seconds] : phases) {
      writer_->write(name, std::span<const double>(&seconds, 1));
      writer_->set_attribute(name, "unit", "s");
    }
    const std::int64_t steps = p.optimizer_steps;
    writer_->write("profile/optimizer_steps", std::span<const std::int64_t>(&steps, 1));
    writer_->close();
  }
  writer_.reset();
}

void Hdf5MetricsLogger::on_exception(Trainer&, const std::exception&) {
  writer_.reset();  // closes what was written so far
}

}  // namespace slurmlab::train
