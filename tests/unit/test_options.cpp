#include <gtest/gtest.h>

#include <filesystem>
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
  OptionParser parser{"demo", "A demo program.", "demo-%j"};
  Program() {
    parser.add("dim", dim, "matrix size").add("eta", eta, "LKJ shape").add("pattern", pattern, "file pattern");
    parser.add("count", count, "an unsigned option");
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
}
