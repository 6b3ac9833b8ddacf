#include "slurmlab/cli/options.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <ostream>

#include <iostream>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/cluster/mpi_session.hpp"
#include "slurmlab/cluster/gpu_binding.hpp"

namespace po = boost::program_options;

namespace slurmlab::cli {

OptionParser::OptionParser(std::string program, std::string summary, std::string default_output_dir)
    : program_(std::move(program)), summary_(std::move(summary)) {
  common_.output_dir = std::move(default_output_dir);
  common_description_.add_options()
    ("help,h", "print this help and exit")
    ("print-config", "print every option's value as a config file (for --config) and exit")
    ("config", po::value<std::string>(&common_.config_file), "read options from FILE (key = value lines); the command line wins")
    ("output-dir", po::value<std::string>(&common_.output_dir)->default_value(common_.output_dir),
     "directory for results; srun patterns such as %j (job id) and %x (job name) are expanded")
    ("log-pattern", po::value<std::string>(&common_.log_pattern)->default_value(common_.log_pattern),
     "every rank's own log file in the output dir; srun patterns, %t = rank")
    ("device", po::value<std::string>(&common_.device)->default_value(common_.device), "auto | cpu | cuda")
    ("seed", unsigned_value("seed", common_.seed), "random seed: fixes the results");
  printers_.push_back({"output-dir", [this] { return common_.output_dir; }});
  printers_.push_back({"log-pattern", [this] { return common_.log_pattern; }});
  printers_.push_back({"device", [this] { return common_.device; }});
  printers_.push_back({"seed", [this] { return std::to_string(common_.seed); }});
}

OptionParser& OptionParser::add_flag(const std::string& name, bool& destination, const std::string& help) {
  // Not po::bool_switch: that takes no value, so `--name=false` could not override a config
  // file's (or a preset's) `name = true`. Bare --name is true; help shows --name [=true|false] (=false).
  specific_.add_options()(name.c_str(),
                          po::value<bool>(&destination)
                              ->default_value(destination, to_text(destination))
                              ->implicit_value(true, "")
                              ->value_name("[=true|false]"),
                          help.c_str());
  printers_.push_back({name, [&destination] { return to_text(destination); }});
  return *this;
}

unsigned long long OptionParser::parse_unsigned(const std::string& name, const std::string& text,
                                                unsigned long long max) {
  unsigned long long value = 0;
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end || value > max)
    throw UsageError("--" + name + " '" + text + "' is not a whole number from 0 to " + std::to_string(max) +
                     "; give one such as --" + name + " 42.");
  return value;
}

std::string OptionParser::usage() const {
  std::ostringstream text;
  text << "Usage: " << program_ << " [options]\n" << summary_ << "\n\n" << specific_ << "\n" << common_description_;
  return text.str();
}

std::string OptionParser::config_text() const {
  std::string text = "# " + program_ + " configuration; read it back with: " + program_ + " --config FILE\n";
  for (const auto& printer : printers_) {
    const auto value = printer.value();
    // A config file reads '#' as the start of a comment (Boost has no escape for it): such a
    // value would come back cut short.
    if (value.find('#') != std::string::npos) {
      throw UsageError("--print-config: --" + printer.name + " '" + value +
                       "' holds '#', which a config file reads as the start of a comment; give this option on the "
                       "command line beside --config instead, or use a value without '#'");
    }
    text += printer.name + " = " + value + "\n";
  }
  return text;
}

OptionParser::Outcome OptionParser::parse(int argc, const char* const argv[], std::ostream& out) {
  po::options_description all;
  all.add(specific_).add(common_description_);
  const std::string see_help = " Run '" + program_ + " --help' for the options.";
  po::variables_map values;
  std::vector<std::string> stray;  // positional words: none is expected, each is named
  po::options_description hidden;
  hidden.add_options()("slurmlab-positional", po::value<std::vector<std::string>>(&stray));
  po::options_description command_line;
  command_line.add(all).add(hidden);
  po::positional_options_description positional;
  positional.add("slurmlab-positional", -1);
  try {
    try {
      // No prefix guessing: --devic must not silently mean --device.
      const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
      po::store(po::command_line_parser(argc, argv).options(command_line).style(style).positional(positional).run(),
                values);
      if (values.count("config")) {
        const auto file = values["config"].as<std::string>();
        std::error_code error;
        if (std::filesystem::is_directory(file, error)) {
          throw UsageError("config file '" + file + "' is a folder; name the file itself (write one with --print-config > " +
                           file + "/config.ini).");
        }
        std::ifstream stream(file);
        if (!stream)
          throw UsageError("config file '" + file + "' cannot be read; check the path, or write one with --print-config > " +
                           file + ".");
        try {
          const auto parsed = po::parse_config_file(stream, all, /*allow_unregistered=*/false);
          for (const auto& option : parsed.options) {
            if (option.string_key == "help" || option.string_key == "config" || option.string_key == "print-config") {
              throw UsageError("config file '" + file + "' sets '" + option.string_key +
                               "', which only the command line takes; remove that line");
            }
          }
          po::store(parsed, values);
        } catch (const po::error& e) {
          throw UsageError("config file '" + file + "': " + e.what() + "." + see_help);
        }
      }
      po::notify(values);
      given_.clear();
      for (const auto& [name, value] : values)
        if (!value.defaulted() && name != "slurmlab-positional") given_.insert(name);
    } catch (const po::error& e) {
      throw UsageError(std::string(e.what()) + "." + see_help);
    }
    if (!stray.empty())
      throw UsageError("unexpected argument '" + stray.front() + "': every setting is an --option." + see_help);
    cluster::parse_device_preference(common_.device);
    if (common_.output_dir.empty()) throw UsageError("--output-dir is empty; give a directory such as --output-dir results.");
  } catch (const UsageError& e) {
    throw UsageError(e.what(), usage());  // every option error comes with the usage text
  }

  if (values.count("help")) {
    out << usage();
    return Outcome::exit;
  }
  if (values.count("print-config")) {
    std::string text;
    try {
      text = config_text();
    } catch (const UsageError& e) {
      throw UsageError(e.what(), usage());
    }
    out << text;
    return Outcome::exit;
  }
  return Outcome::run;
}

void parse_on_all_ranks(const cluster::MpiSession& session, OptionParser& parser, int argc, char** argv,
                        const std::function<void()>& validate) {
  std::ostringstream text;
  auto outcome = OptionParser::Outcome::run;
  session.run_collectively([&] {
    outcome = parser.parse(argc, argv, text);
    if (outcome == OptionParser::Outcome::run && validate) validate();
  });
  if (outcome == OptionParser::Outcome::exit) {
    if (session.is_root()) std::cout << text.str() << std::flush;
    throw ProgramExit(0);
  }
}

}  // namespace slurmlab::cli
