#include <gtest/gtest.h>

#include <filesystem>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/cli/options.hpp"

using slurmlab::UsageError;
using slurmlab::cli::OptionParser;

namespace {

struct Program {
  int dim = 5000;
  double eta = 1.0;
  std::string pattern = "env-%j-%t.txt";
  bool fp32 = false;
  unsigned count = 3;
  double fraction = 0.1;  // neither is exact in binary: printed as typed, not 0.10000000000000001
  float dropout = 0.2f;
  OptionParser parser{"demo", "A demo program.", "demo-%j"};
  Program() {
    parser.add("dim", dim, "matrix size").add("eta", eta, "LKJ shape").add("pattern", pattern, "file pattern");
    parser.add("count", count, "an unsigned option");
    parser.add("fraction", fraction, "a double").add("dropout", dropout, "a float");
    parser.add_flag("fp32", fp32, "single precision");
  }
  OptionParser::Outcome parse(std::vector<std::string> args, std::ostream& out) {
    args.insert(args.begin(), "demo");
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    return parser.parse(static_cast<int>(argv.size()), argv.data(), out);
  }
};

std::string usage_error(std::vector<std::string> args) {
  Program p;
  std::ostringstream out;
  try {
    p.parse(std::move(args), out);
  } catch (const UsageError& e) {
    EXPECT_FALSE(e.details().empty()) << "usage text missing";
    return e.what();
  }
  return "";
}

std::filesystem::path temp_file(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("slurmlab-options-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir / name;
}

}  // namespace

TEST(Options, DefaultsAndValues) {
  Program p;
  std::ostringstream out;
  EXPECT_EQ(p.parse({"--dim", "50", "--fp32", "--seed", "7", "--device", "cpu"}, out), OptionParser::Outcome::run);
  EXPECT_EQ(p.dim, 50);
  EXPECT_TRUE(p.fp32);
  EXPECT_EQ(p.parser.common().seed, 7u);
  EXPECT_EQ(p.count, 3u);
  EXPECT_EQ(p.parser.common().device, "cpu");
  EXPECT_EQ(p.parser.common().output_dir, "demo-%j");
  EXPECT_DOUBLE_EQ(p.eta, 1.0);
}

TEST(Options, ErrorsAreOneLineNamingTheOption) {
  for (auto [args, needle] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--bogus"}, "--bogus"},
           {{"--dim", "abc"}, "--dim"},
           {{"--seed", "-1x"}, "--seed"},
           {{"--seed", "-1"}, "--seed '-1' is not a whole number from 0 to 18446744073709551615"},
           {{"--seed", "18446744073709551616"}, "--seed"},
           {{"--count", "-2"}, "--count '-2' is not a whole number from 0 to 4294967295"},
           {{"--count", "4294967296"}, "--count"},
           {{"--count", "+3"}, "--count"},
           {{"--device", "gpu"}, "gpu"},
           {{"--dim"}, "--dim"},
           {{"stray"}, "stray"},
           {{"--dimm", "3"}, "--dimm"},  // no prefix guessing
           {{"--output-dir", ""}, "--output-dir"}}) {
    auto message = usage_error(args);
    EXPECT_NE(message.find(needle), std::string::npos) << "args " << args[0] << " -> '" << message << "'";
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(Options, HelpPrintsUsageAndExits) {
  Program p;
  std::ostringstream out;
  EXPECT_EQ(p.parse({"--help"}, out), OptionParser::Outcome::exit);
  EXPECT_NE(out.str().find("--dim"), std::string::npos);
  EXPECT_NE(out.str().find("--output-dir"), std::string::npos);
}

TEST(Options, PrintConfigRoundTripsThroughConfig) {
  Program first;
  std::ostringstream config;
  EXPECT_EQ(first.parse({"--dim", "64", "--eta", "1.23456789012345", "--fp32", "--seed", "18446744073709551615",
                         "--count", "4294967295", "--pattern", "x-%3t.txt", "--print-config"},
                        config),
            OptionParser::Outcome::exit);
  auto file = temp_file("roundtrip.cfg");
  std::ofstream(file) << config.str();

  Program second;
  std::ostringstream out;
  EXPECT_EQ(second.parse({"--config", file.string()}, out), OptionParser::Outcome::run);
  EXPECT_EQ(second.dim, 64);
  EXPECT_EQ(second.eta, 1.23456789012345);  // every digit, not the stream's default 6
  EXPECT_TRUE(second.fp32);
  EXPECT_EQ(second.pattern, "x-%3t.txt");
  EXPECT_EQ(second.parser.common().seed, 18446744073709551615u);
  EXPECT_EQ(second.count, 4294967295u);
  EXPECT_EQ(second.parser.config_text(), first.parser.config_text());
}

TEST(Options, CommandLineWinsOverConfig) {
  auto file = temp_file("wins.cfg");
  std::ofstream(file) << "dim = 10\nseed = 3\n";
  Program p;
  std::ostringstream out;
  p.parse({"--config", file.string(), "--dim", "20"}, out);
  EXPECT_EQ(p.dim, 20);
  EXPECT_EQ(p.parser.common().seed, 3u);
}

TEST(Options, BadConfigFilesAreNamed) {
  EXPECT_NE(usage_error({"--config", "/nonexistent/x.cfg"}).find("/nonexistent/x.cfg"), std::string::npos);
  auto file = temp_file("bad.cfg");
  std::ofstream(file) << "dimension = 10\n";
  auto message = usage_error({"--config", file.string()});
  EXPECT_NE(message.find("dimension"), std::string::npos) << message;
  EXPECT_NE(message.find(file.string()), std::string::npos) << message;
  // A folder named as the config (it used to run with the defaults).
  message = usage_error({"--config", file.parent_path().string()});
  EXPECT_NE(message.find("is a folder; name the file itself"), std::string::npos) << message;
  // Options only the command line takes.
  for (const char* line : {"help = true\n", "config = other.cfg\n", "print-config = true\n"}) {
    std::ofstream(file) << line;
    message = usage_error({"--config", file.string()});
    EXPECT_NE(message.find("which only the command line takes"), std::string::npos) << line << message;
  }
}

// A value with '#' cannot go through a config file ('#' starts a comment there): --print-config
// refuses it instead of writing a config that reads back cut short.
TEST(Options, PrintConfigRefusesAValueAConfigFileWouldCutAtHash) {
  const auto message = usage_error({"--pattern", "run#%t.txt", "--print-config"});
  EXPECT_NE(message.find("--pattern 'run#%t.txt' holds '#'"), std::string::npos) << message;
}

// --help and --print-config show a float or double as the shortest text that reads back to the
// same value: 0.1, not 0.10000000000000001; 0.2f, not 0.200000003.
TEST(Options, FloatingPointValuesPrintShortestRoundTrip) {
  EXPECT_EQ(OptionParser::to_text(0.1), "0.1");
  EXPECT_EQ(OptionParser::to_text(0.9), "0.9");
  EXPECT_EQ(OptionParser::to_text(0.2f), "0.2");
  EXPECT_EQ(OptionParser::to_text(1e-3), "0.001");
  EXPECT_EQ(OptionParser::to_text(1.0), "1");
  EXPECT_EQ(OptionParser::to_text(0.1 + 0.2), "0.30000000000000004");  // that one needs its 17 digits
  EXPECT_EQ(OptionParser::to_text(-2.5), "-2.5");
  EXPECT_EQ(OptionParser::to_text(std::int64_t{-1}), "-1");
  EXPECT_EQ(OptionParser::to_text(true), "true");
  for (double value : {0.1, 1.0 / 3.0, 0.0153 * 1024.0 / (1024.0 * (1.0 + 1.0 / (1.0 - 0.85))) / 1.5, 1e-300, 5e-324,
                       1.7976931348623157e308, 6.02214076e23, -0.0}) {
    const auto text = OptionParser::to_text(value);
    const double back = std::strtod(text.c_str(), nullptr);  // not stod: it refuses subnormals
    EXPECT_EQ(back, value) << text;
    EXPECT_EQ(std::signbit(back), std::signbit(value)) << text;
  }
  for (float value : {0.2f, 1.0f / 3.0f, 1e-38f, 3.4028235e38f}) {
    const auto text = OptionParser::to_text(value);
    EXPECT_EQ(std::strtof(text.c_str(), nullptr), value) << text;
  }

  Program p;
  std::ostringstream help;
  EXPECT_EQ(p.parse({"--help"}, help), OptionParser::Outcome::exit);
  EXPECT_NE(help.str().find("--fraction arg (=0.1)"), std::string::npos) << help.str();
  EXPECT_NE(help.str().find("--dropout arg (=0.2)"), std::string::npos) << help.str();
  EXPECT_NE(help.str().find("--eta arg (=1)"), std::string::npos) << help.str();
  EXPECT_EQ(help.str().find("0000000"), std::string::npos) << help.str();
  EXPECT_EQ(help.str().find("9999999"), std::string::npos) << help.str();
  const auto config = p.parser.config_text();
  EXPECT_NE(config.find("\nfraction = 0.1\n"), std::string::npos) << config;
  EXPECT_NE(config.find("\ndropout = 0.2\n"), std::string::npos) << config;
  EXPECT_NE(config.find("\neta = 1\n"), std::string::npos) << config;
}

// The shortest text still reads back to the very same float and double through --config.
TEST(Options, ShortFloatingPointConfigReadsBackToTheSameValues) {
  Program first;
  std::ostringstream config;
  const double third = 1.0 / 3.0;
  EXPECT_EQ(first.parse({"--fraction", "0.30000000000000004", "--dropout", "0.333333343", "--eta",
                         OptionParser::to_text(third), "--print-config"},
                        config),
            OptionParser::Outcome::exit);
  EXPECT_NE(config.str().find("\ndropout = 0.33333334\n"), std::string::npos) << config.str();
  auto file = temp_file("floats.cfg");
  std::ofstream(file) << config.str();
  Program second;
  std::ostringstream out;
  EXPECT_EQ(second.parse({"--config", file.string()}, out), OptionParser::Outcome::run);
  EXPECT_EQ(second.fraction, 0.1 + 0.2);
  EXPECT_EQ(second.dropout, 1.0f / 3.0f);
  EXPECT_EQ(second.eta, third);
  EXPECT_EQ(second.parser.config_text(), first.parser.config_text());
}

// A flag a config file turns on, the command line can turn off: the command line wins for
// booleans too. Bare --fp32 still means true.
TEST(Options, FlagsTakeAnOptionalValueSoTheCommandLineWinsOverConfig) {
  auto file = temp_file("flag.cfg");
  std::ofstream(file) << "fp32 = true\n";
  {
    Program p;
    std::ostringstream out;
    p.parse({"--config", file.string()}, out);
    EXPECT_TRUE(p.fp32);
  }
  {
    Program p;
    std::ostringstream out;
    p.parse({"--config", file.string(), "--fp32=false"}, out);
    EXPECT_FALSE(p.fp32);
    EXPECT_NE(p.parser.config_text().find("\nfp32 = false\n"), std::string::npos);
  }
  for (const auto& [args, expected] : std::vector<std::pair<std::vector<std::string>, bool>>{
           {{"--fp32"}, true}, {{"--fp32=true"}, true}, {{"--fp32=false"}, false}, {{"--fp32", "false"}, false}, {{}, false}, {{"--fp32", "--dim", "3"}, true}}) {
    Program p;
    std::ostringstream out;
    EXPECT_EQ(p.parse(args, out), OptionParser::Outcome::run);
    EXPECT_EQ(p.fp32, expected) << (args.empty() ? "(none)" : args[0]);
  }
  const auto message = usage_error({"--fp32=maybe"});
  EXPECT_NE(message.find("fp32"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  Program p;
  std::ostringstream help;
  p.parse({"--help"}, help);
  EXPECT_NE(help.str().find("--fp32 [=true|false] (=false)"), std::string::npos) << help.str();
}

// given(): what the user typed (or the config file set), even when it equals the default; the
// programs use it to tell "not given" from "given as the default".
TEST(Options, GivenTellsATypedDefaultFromAnUntouchedOne) {
  Program p;
  std::ostringstream out;
  p.parse({"--eta", "1", "--fp32=false"}, out);
  EXPECT_TRUE(p.parser.given("eta"));
  EXPECT_TRUE(p.parser.given("fp32"));
  EXPECT_FALSE(p.parser.given("dim"));
  EXPECT_FALSE(p.parser.given("pattern"));
  auto file = temp_file("given.cfg");
  std::ofstream(file) << "dim = 5000\n";
  Program q;
  q.parse({"--config", file.string()}, out);
  EXPECT_TRUE(q.parser.given("dim"));
  EXPECT_FALSE(q.parser.given("eta"));
}
