#pragma once
// Common options of every program (Boost.Program_options), plus each program's own:
//   --output-dir DIR  --log-pattern P  --device auto|cpu|cuda  --seed N  --config FILE
//   --print-config  --help
// --print-config writes every option's current value as a config file that --config
// reads back; values given on the command line win over the file's.
#include <boost/program_options.hpp>
#include <charconv>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <set>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace slurmlab::cluster {
class MpiSession;
}

namespace slurmlab::cli {

struct CommonOptions {
  std::string output_dir;  // may hold srun-style patterns (%j, %x, ...)
  std::string device = "auto";
  std::uint64_t seed = 0;
  std::string config_file;
  std::string log_pattern = "rank-%t.log";  // every rank's own log in the output dir (io/rank_log.hpp)
};

class OptionParser {
 public:
  // `default_output_dir` is what --output-dir is when not given.
  OptionParser(std::string program, std::string summary, std::string default_output_dir);

  // Registers a program option writing into `destination`; its current value is the
  // default and is what --print-config prints when the option is not given.
  template <class T>
  OptionParser& add(const std::string& name, T& destination, const std::string& help) {
    if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && !std::is_same_v<T, bool>) {
      specific_.add_options()(name.c_str(), unsigned_value(name, destination), help.c_str());
    } else {
      // The default shown by --help is the text --print-config writes (0.1, not 0.10000000000000001).
      specific_.add_options()(name.c_str(),
                              boost::program_options::value<T>(&destination)->default_value(destination, to_text(destination)),
                              help.c_str());
    }
    printers_.push_back({name, [&destination] { return to_text(destination); }});
    return *this;
  }
  // An on/off switch: --name or --name=true turns it on, --name=false (or --name false) off, so
  // the command line can turn off what a config file or preset turned on; in a config file
  // `name = true`.
  OptionParser& add_flag(const std::string& name, bool& destination, const std::string& help);

  enum class Outcome { run, exit };
  // Parses the command line, then --config FILE. Writes help or the config to `out` and
  // returns Exit for --help/--print-config. Throws UsageError (one line naming the option
  // and the fix, with the usage text as details) on anything it cannot accept.
  Outcome parse(int argc, const char* const argv[], std::ostream& out);

  const CommonOptions& common() const { return common_; }
  // Whether the last parse() got a value for the option `name` (without dashes) on the command
  // line or from --config, rather than leaving its default.
  bool given(const std::string& name) const { return given_.count(name) > 0; }
  std::string usage() const;
  std::string config_text() const;

  // How --help shows a default and --print-config writes a value. A float or double is the
  // shortest text that reads back to the same value (0.1, 0.2f -> "0.2"), not 17 digits of
  // binary noise: --print-config output is a config, so it must read back unchanged.
  static std::string to_text(const std::string& value) { return value; }
  static std::string to_text(bool value) { return value ? "true" : "false"; }
  template <class T>
  static std::string to_text(const T& value) {
    if constexpr (std::is_floating_point_v<T>) {
      char text[64];
      const auto result = std::to_chars(text, text + sizeof text, value);
      return std::string(text, result.ptr);
    } else {
      std::ostringstream text;
      text << value;
      return text.str();
    }
  }

 private:
  // Boost reads "-1" into an unsigned option as 2^64 - 1; these options read their text
  // strictly instead (digits only, in range) and say so when it is not.
  template <class T>
  static boost::program_options::typed_value<std::string>* unsigned_value(const std::string& name, T& destination) {
    return boost::program_options::value<std::string>()
        ->default_value(to_text(destination))
        ->notifier([name, &destination](const std::string& text) {
          destination = static_cast<T>(parse_unsigned(name, text, std::numeric_limits<T>::max()));
        });
  }
  static unsigned long long parse_unsigned(const std::string& name, const std::string& text, unsigned long long max);

  struct Printer {
    std::string name;
    std::function<std::string()> value;
  };

  std::string program_;
  std::string summary_;
  CommonOptions common_;
  boost::program_options::options_description common_description_{"Common options"};
  boost::program_options::options_description specific_{"Program options"};
  std::vector<Printer> printers_;
  std::set<std::string> given_;
};

// The start of every program's main(): parses the options on every rank together (a bad
// option ends all ranks with one message from rank 0 and exit status 2), then runs
// `validate` (the program's own checks) the same way; after --help or --print-config rank 0
// prints and every rank ends with status 0 (ProgramExit).
void parse_on_all_ranks(const cluster::MpiSession& session, OptionParser& parser, int argc, char** argv,
                        const std::function<void()>& validate = {});

}  // namespace slurmlab::cli
