#include "report.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "slurmlab/cluster/cpu_affinity.hpp"
#include "slurmlab/cluster/hostlist.hpp"
#include "slurmlab/io/metrics_writer.hpp"

namespace slurmlab::cluster {
namespace {

Severity severity_from(const std::string& text) {
  if (text == "error") return Severity::error;
  if (text == "warning") return Severity::warning;
  return Severity::note;
}

}  // namespace

void to_json(nlohmann::json& j, const Diagnostic& d) {
  j = {{"severity", to_string(d.severity)}, {"code", d.code}, {"message", d.message}, {"hint", d.hint}};
}

void from_json(const nlohmann::json& j, Diagnostic& d) {
  d.severity = severity_from(j.at("severity").get<std::string>());
  d.code = j.at("code").get<std::string>();
  d.message = j.at("message").get<std::string>();
  d.hint = j.at("hint").get<std::string>();
}

}  // namespace slurmlab::cluster

namespace slurmlab::env_dump {
namespace {

template <class T>
void put_optional(nlohmann::json& j, const char* key, const std::optional<T>& value) {
  j[key] = value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

template <class T>
std::optional<T> get_optional(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<T>();
}

std::string or_dash(const std::optional<int>& value) { return value ? std::to_string(*value) : "-"; }
std::string or_dash(const std::string& value) { return value.empty() ? "-" : value; }

std::string join(const std::vector<int>& values) {
  std::string text;
  for (int v : values) text += (text.empty() ? "" : ",") + std::to_string(v);
  return text;
}

std::string format_bytes(std::int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return text;
}


}  // namespace

void to_json(nlohmann::json& j, const RankReport& r) {
  j = {{"rank", r.rank}, {"node", r.node}, {"node_index", r.node_index}, {"local_rank", r.local_rank},
       {"host", r.host}, {"pid", r.pid}, {"cpu_affinity", r.cpu_affinity}, {"current_cpu", r.current_cpu},
       {"device", r.device}, {"binding_reason", r.binding_reason}, {"gpu_identity", r.gpu_identity},
       {"sharing_allowed", r.sharing_allowed}, {"gpu_name", r.gpu_name}, {"gpu_uuid", r.gpu_uuid},
       {"gpu_pci_bus", r.gpu_pci_bus}, {"gpu_memory_bytes", r.gpu_memory_bytes}, {"env_file", r.env_file},
       {"diagnostics", r.diagnostics}};
  put_optional(j, "slurm_procid", r.slurm_procid);
  put_optional(j, "slurm_localid", r.slurm_localid);
  put_optional(j, "slurm_nodeid", r.slurm_nodeid);
  put_optional(j, "cuda_visible_devices", r.cuda_visible_devices);
  put_optional(j, "gpus_on_node", r.gpus_on_node);
}

void from_json(const nlohmann::json& j, RankReport& r) {
  r.rank = j.at("rank").get<int>();
  r.node = j.at("node").get<std::string>();
  r.node_index = j.at("node_index").get<int>();
  r.local_rank = j.at("local_rank").get<int>();
  r.host = j.at("host").get<std::string>();
  r.pid = j.at("pid").get<long>();
  r.cpu_affinity = j.at("cpu_affinity").get<std::string>();
  r.current_cpu = j.at("current_cpu").get<int>();
  r.device = j.at("device").get<std::string>();
  r.binding_reason = j.at("binding_reason").get<std::string>();
  r.gpu_identity = j.at("gpu_identity").get<std::string>();
  r.sharing_allowed = j.at("sharing_allowed").get<bool>();
  r.gpu_name = j.at("gpu_name").get<std::string>();
  r.gpu_uuid = j.at("gpu_uuid").get<std::string>();
  r.gpu_pci_bus = j.at("gpu_pci_bus").get<std::string>();
  r.gpu_memory_bytes = j.at("gpu_memory_bytes").get<std::int64_t>();
  r.env_file = j.at("env_file").get<std::string>();
  r.diagnostics = j.at("diagnostics").get<std::vector<cluster::Diagnostic>>();
  r.slurm_procid = get_optional<int>(j, "slurm_procid");
  r.slurm_localid = get_optional<int>(j, "slurm_localid");
  r.slurm_nodeid = get_optional<int>(j, "slurm_nodeid");
  r.cuda_visible_devices = get_optional<std::string>(j, "cuda_visible_devices");
  r.gpus_on_node = get_optional<int>(j, "gpus_on_node");
}

RankReport make_rank_report(const cluster::RankContext& context, const cluster::Environment& env,
                            const std::string& env_file, bool sharing_allowed) {
  RankReport r;
  r.rank = context.rank;
  r.node = context.node_name;
  r.node_index = context.layout.node_index;
  r.local_rank = context.layout.local_rank;
  r.slurm_procid = context.slurm.procid;
  r.slurm_localid = context.slurm.localid;
  r.slurm_nodeid = context.slurm.nodeid;
  r.host = context.host_name;
  r.pid = static_cast<long>(::getpid());
  r.cpu_affinity = cluster::format_cpu_ranges(cluster::allowed_cpus());
  r.current_cpu = cluster::current_cpu();
  r.cuda_visible_devices = env.get("CUDA_VISIBLE_DEVICES");
  r.device = context.gpu.describe();
  r.binding_reason = context.gpu.reason;
  r.gpus_on_node = context.slurm.gpus_on_node;
  r.sharing_allowed = sharing_allowed;
  if (context.gpu_info) {
    r.gpu_name = context.gpu_info->name;
    r.gpu_uuid = context.gpu_info->uuid;
    r.gpu_pci_bus = context.gpu_info->pci_bus_id;
    r.gpu_memory_bytes = static_cast<std::int64_t>(context.gpu_info->total_memory_bytes);
  }
  // The same physical GPU must be recognised across ranks: its UUID when one answered,
  // else the mask entry Slurm gave (physical indices when devices are not cgroup-renumbered).
  r.gpu_identity = !r.gpu_uuid.empty() ? r.gpu_uuid : context.gpu.planned_device ? context.gpu.physical_id : "";
  r.env_file = env_file;
  r.diagnostics = cluster::check_task_environment(context.slurm, context.rank, context.size);
  if (context.binding_error) r.diagnostics.push_back(*context.binding_error);
  return r;
}

std::string environment_file_text(const cluster::Environment& env) {
  std::string text;
  for (const auto& [name, value] : env.variables()) {
    text += name;
    text += '=';
    for (char c : value) {
      if (c == '\n') text += "\\n";
      else text += c;
    }
    text += '\n';
  }
  return text;
}

std::vector<cluster::Diagnostic> collect_diagnostics(const std::vector<RankReport>& reports) {
  std::vector<cluster::Diagnostic> all;
  std::vector<cluster::TaskPlacement> placements;
  for (const auto& r : reports) {
    all.insert(all.end(), r.diagnostics.begin(), r.diagnostics.end());
    std::optional<std::string> cpu_reason;  // device is "cuda:N..." on a GPU (GpuBinding::describe)
    if (r.device.rfind("cuda:", 0) != 0) cpu_reason = r.binding_reason.empty() ? std::string("no GPU") : r.binding_reason;
    placements.push_back({r.rank, r.node, r.gpus_on_node, r.gpu_identity, r.sharing_allowed, cpu_reason});
  }
  auto placement = cluster::check_placement(placements);
  all.insert(all.end(), placement.begin(), placement.end());
  auto unique = cluster::unique_diagnostics(std::move(all));
  std::stable_sort(unique.begin(), unique.end(), [](const auto& a, const auto& b) { return a.severity > b.severity; });
  return unique;
}

std::string ntasks_per_node_explanation(const cluster::SlurmEnvironment& slurm) {
  if (!slurm.in_job) return "SLURM_NTASKS_PER_NODE is not set: not inside a Slurm job.";
  if (slurm.ntasks_per_node)
    return "SLURM_NTASKS_PER_NODE=" + std::to_string(*slurm.ntasks_per_node) +
           ": set because the job asked for --ntasks-per-node.";
  std::string layout = slurm.tasks_per_node.empty() ? "" : " Tasks per node here: " + join(slurm.tasks_per_node) + ".";
  return "SLURM_NTASKS_PER_NODE is not set: Slurm defines it only when --ntasks-per-node is given, and this job "
         "asked for --ntasks/--nodes instead, so the per-node count is whatever Slurm chose." + layout;
}

std::string format_job_summary(const cluster::SlurmEnvironment& slurm, int world_size, int node_count,
                               const cluster::GpuRuntimeStatus& runtime) {
  std::ostringstream out;
  auto row = [&out](const std::string& key, const std::string& value) {
    out << "  " << key << std::string(key.size() < 16 ? 16 - key.size() : 1, ' ') << value << '\n';
  };
  if (!slurm.in_job) {
    out << "Not inside a Slurm job (no SLURM_JOB_ID): " << world_size << " MPI rank(s) on " << node_count
        << " host(s).\n";
  } else {
    out << "Slurm job " << *slurm.job_id << " \"" << slurm.job_name.value_or("") << "\" ("
        << cluster::to_string(slurm.job_kind) << (slurm.launched_by_srun ? ", srun step " + slurm.step_id.value_or("?") : ", not an srun step")
        << ")\n";
    if (slurm.partition) row("partition", *slurm.partition);
    if (slurm.user) row("user", *slurm.user);
    std::string nodes = slurm.nodelist.value_or("-");
    if (!slurm.nodes.empty()) {
      nodes += "  ->";
      for (const auto& n : slurm.nodes) nodes += " " + n;
    }
    row("nodes", std::to_string(slurm.nnodes.value_or(static_cast<int>(slurm.nodes.size()))) + ": " + nodes);
    row("tasks", or_dash(slurm.ntasks) + (slurm.tasks_per_node.empty() ? "" : "  (per node: " + join(slurm.tasks_per_node) + ")"));
    row("ntasks-per-node", ntasks_per_node_explanation(slurm));
    row("cpus-per-task", slurm.cpus_per_task ? std::to_string(*slurm.cpus_per_task)
                                             : "not set (SLURM_CPUS_PER_TASK appears only with --cpus-per-task)");
    std::string gpus;
    auto add = [&gpus](const char* name, const std::string& value) { gpus += std::string(gpus.empty() ? "" : "  ") + name + "=" + value; };
    if (slurm.gpus_on_node) add("SLURM_GPUS_ON_NODE", std::to_string(*slurm.gpus_on_node));
    if (slurm.job_gpus) add("SLURM_JOB_GPUS", *slurm.job_gpus);
    if (slurm.step_gpus) add("SLURM_STEP_GPUS", *slurm.step_gpus);
    if (slurm.gpus_per_task) add("SLURM_GPUS_PER_TASK", *slurm.gpus_per_task);
    if (slurm.gpus_per_node) add("SLURM_GPUS_PER_NODE", *slurm.gpus_per_node);
    row("GPU request", gpus.empty() ? "none (no GPU variables from Slurm)" : gpus);
  }
  row("MPI world", std::to_string(world_size) + " rank(s) on " + std::to_string(node_count) + " node(s)");
  row("GPU runtime", runtime.device_count > 0 ? std::to_string(runtime.device_count) + " device(s) visible to rank 0"
                                              : "none on rank 0: " + runtime.note);
  return out.str();
}

std::string format_rank_table(const std::vector<RankReport>& reports) {
  const bool any_gpu = std::any_of(reports.begin(), reports.end(), [](const auto& r) { return !r.gpu_name.empty(); });
  std::vector<std::string> header{"rank", "node", "nodeid", "local", "SLURM_LOCALID", "host", "pid", "cpus", "cpu",
                                  "CUDA_VISIBLE_DEVICES", "device"};
  if (any_gpu) header.insert(header.end(), {"gpu", "uuid", "pci", "memory"});
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : reports) {
    std::vector<std::string> row{std::to_string(r.rank), r.node, std::to_string(r.node_index), std::to_string(r.local_rank),
                                 or_dash(r.slurm_localid), r.host, std::to_string(r.pid), or_dash(r.cpu_affinity),
                                 std::to_string(r.current_cpu),
                                 r.cuda_visible_devices ? (r.cuda_visible_devices->empty() ? "''" : *r.cuda_visible_devices) : "unset",
                                 r.device};
    if (any_gpu)
      row.insert(row.end(), {or_dash(r.gpu_name), or_dash(r.gpu_uuid), or_dash(r.gpu_pci_bus),
                             r.gpu_memory_bytes ? format_bytes(r.gpu_memory_bytes) : "-"});
    rows.push_back(std::move(row));
  }
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  std::ostringstream out;
  auto emit = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      line += cells[c];
      if (c + 1 < cells.size()) line += std::string(width[c] - cells[c].size() + 2, ' ');
    }
    out << line << '\n';
  };
  emit(header);
  for (const auto& row : rows) emit(row);
  return out.str();
}

std::string format_diagnostics(const std::vector<cluster::Diagnostic>& diagnostics) {
  if (diagnostics.empty()) return "Diagnostics: none; the job layout looks right.\n";
  std::string text = "Diagnostics (" + std::to_string(diagnostics.size()) + "):\n";
  for (const auto& d : diagnostics) text += "  " + d.text() + "\n";
  return text;
}

nlohmann::json make_json_report(const cluster::SlurmEnvironment& slurm, int world_size,
                                const std::vector<RankReport>& reports,
                                const std::vector<cluster::Diagnostic>& diagnostics) {
  nlohmann::json job = {{"in_job", slurm.in_job},
                        {"job_kind", cluster::to_string(slurm.job_kind)},
                        {"launched_by_srun", slurm.launched_by_srun},
                        {"world_size", world_size},
                        {"nodes", slurm.nodes},
                        {"tasks_per_node", slurm.tasks_per_node},
                        {"ntasks_per_node_explanation", ntasks_per_node_explanation(slurm)}};
  put_optional(job, "job_id", slurm.job_id);
  put_optional(job, "step_id", slurm.step_id);
  put_optional(job, "job_name", slurm.job_name);
  put_optional(job, "nodelist", slurm.nodelist);
  put_optional(job, "nnodes", slurm.nnodes);
  put_optional(job, "ntasks", slurm.ntasks);
  put_optional(job, "ntasks_per_node", slurm.ntasks_per_node);
  put_optional(job, "cpus_per_task", slurm.cpus_per_task);
  put_optional(job, "gpus_on_node", slurm.gpus_on_node);
  put_optional(job, "job_gpus", slurm.job_gpus);
  put_optional(job, "step_gpus", slurm.step_gpus);
  return {{"program", "env-dump"}, {"job", job}, {"ranks", reports}, {"diagnostics", diagnostics}};
}

void write_hdf5_report(const std::string& path, const cli::RunAttributes& attributes,
                       const cluster::SlurmEnvironment& slurm, const std::vector<RankReport>& reports,
                       const std::vector<cluster::Diagnostic>& diagnostics) {
  io::MetricsWriter writer(path);
  cli::write_run_attributes(writer, attributes);
  writer.set_attribute("", "job_name", slurm.job_name.value_or(""));
  writer.set_attribute("", "job_kind", cluster::to_string(slurm.job_kind));
  writer.set_attribute("", "nodelist", slurm.nodelist.value_or(""));
  writer.set_attribute("", "ntasks_per_node", slurm.ntasks_per_node ? std::to_string(*slurm.ntasks_per_node) : "unset");
  writer.set_attribute("", "ntasks_per_node_explanation", ntasks_per_node_explanation(slurm));

  auto ints = [&](auto field) {
    std::vector<std::int64_t> column;
    for (const auto& r : reports) column.push_back(static_cast<std::int64_t>(field(r)));
    return column;
  };
  auto strings = [&](auto field) {
    std::vector<std::string> column;
    for (const auto& r : reports) column.push_back(field(r));
    return column;
  };
  writer.write("ranks/rank", ints([](const RankReport& r) { return r.rank; }));
  writer.write("ranks/node_index", ints([](const RankReport& r) { return r.node_index; }));
  writer.write("ranks/local_rank", ints([](const RankReport& r) { return r.local_rank; }));
  writer.write("ranks/slurm_localid", ints([](const RankReport& r) { return r.slurm_localid.value_or(-1); }));
  writer.write("ranks/pid", ints([](const RankReport& r) { return r.pid; }));
  writer.write("ranks/current_cpu", ints([](const RankReport& r) { return r.current_cpu; }));
  writer.write("ranks/gpu_memory_bytes", ints([](const RankReport& r) { return r.gpu_memory_bytes; }));
  writer.write("ranks/node", strings([](const RankReport& r) { return r.node; }));
  writer.write("ranks/host", strings([](const RankReport& r) { return r.host; }));
  writer.write("ranks/cpu_affinity", strings([](const RankReport& r) { return r.cpu_affinity; }));
  writer.write("ranks/cuda_visible_devices", strings([](const RankReport& r) { return r.cuda_visible_devices.value_or("unset"); }));
  writer.write("ranks/device", strings([](const RankReport& r) { return r.device; }));
  writer.write("ranks/gpu_name", strings([](const RankReport& r) { return r.gpu_name; }));
  writer.write("ranks/gpu_uuid", strings([](const RankReport& r) { return r.gpu_uuid; }));
  writer.write("ranks/gpu_pci_bus", strings([](const RankReport& r) { return r.gpu_pci_bus; }));
  writer.set_attribute("ranks/rank", "note", "one entry per MPI rank, in rank order");

  std::vector<std::string> severity, code, message, hint;
  for (const auto& d : diagnostics) {
    severity.emplace_back(cluster::to_string(d.severity));
    code.push_back(d.code);
    message.push_back(d.message);
    hint.push_back(d.hint);
  }
  writer.write("diagnostics/severity", severity);
  writer.write("diagnostics/code", code);
  writer.write("diagnostics/message", message);
  writer.write("diagnostics/hint", hint);
  writer.close();
}

}  // namespace slurmlab::env_dump
