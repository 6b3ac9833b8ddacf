// train-classifier as users run it: learning on the synthetic set, evaluating the best
// checkpoint reproduces its logged validation numbers, predict and export, 2 ranks against one
// for the same global batch, fast-dev-run writes nothing, the config round trip, and every bad
// input it handles refused with one sentence and exit 2, nothing written half.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "../support/process.hpp"

namespace fs = std::filesystem;
using namespace slurmlab::testing;

namespace {

const std::string kProgram = SLURMLAB_BINARY_DIR "/bin/train-classifier";
// A small synthetic set: 2700 train / 300 validation / 500 test images of 3x32x32 (the tutorial
// CNN needs about 6 epochs of it for 90 %).
const std::string kSmall = " --synthetic-count 3000 --synthetic-test-count 500 --loader-threads 1";

CommandResult run_in(const fs::path& dir, const std::string& arguments, int timeout = 300) {
  return run_command("cd " + dir.string() + " && OPENBLAS_NUM_THREADS=1 " + kProgram + " " + arguments, timeout);
}

// The first number after `label` in `text` (e.g. "accuracy " -> 91.2).
double number_after(const std::string& text, const std::string& label) {
  const auto at = text.find(label);
  if (at == std::string::npos) return -1.0;
  return std::stod(text.substr(at + label.size()));
}

// A fitted run shared by the tests that evaluate, predict and export: fitted by the first of
// them (each test is its own process under ctest), reused while newer than the program.
const fs::path& fitted_run() {
  static const fs::path dir = [] {
    const auto d = fs::path(SLURMLAB_BINARY_DIR) / "test-output" / "train-classifier-fit";
    const auto done = d / "fit-output.txt", command = d / "fit-command.txt";
    const std::string arguments = "fit --output-dir run --epochs 6 --seed 3" + kSmall;
    if (fs::exists(done) && fs::last_write_time(done) > fs::last_write_time(kProgram) &&
        read_file(command) == arguments) {
      return d;
    }
    fresh_dir("train-classifier-fit");
    const auto r = run_in(d, arguments);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    if (r.exit_code == 0) {
      std::ofstream(done) << r.output;
      std::ofstream(command) << arguments;
    }
    return d;
  }();
  return dir;
}

}  // namespace

TEST(TrainClassifier, TutorialCnnLearnsTheSyntheticShapes) {
  const auto& dir = fitted_run();
  const auto output = read_file(dir / "fit-output.txt");
  EXPECT_NE(output.find("SYNTHETIC image set"), std::string::npos) << output;
  for (int e = 1; e <= 6; ++e) EXPECT_NE(output.find("epoch " + std::to_string(e) + "/6 "), std::string::npos) << output;
  // Start-up latency is reported (measured from the process's start, so never zero).
  EXPECT_GT(number_after(output, "first training step done "), 0.0) << output;
  const auto report = read_file(dir / "run" / "test_report.txt");
  const double accuracy = number_after(report, "accuracy ");
  EXPECT_GE(accuracy, 90.0) << report;
  for (const char* file : {"summary.txt", "metrics.h5", "loss_curves.png", "accuracy_curves.png", "confusion_test.png",
                           "predictions.png", "test.h5", "checkpoints/last.h5", "rank-0.log"}) {
    EXPECT_TRUE(fs::exists(dir / "run" / file)) << file;
  }
  // save_top_k 1: exactly one best checkpoint besides last.
  int best = 0;
  for (const auto& entry : fs::directory_iterator(dir / "run" / "checkpoints"))
    if (entry.path().extension() == ".h5" && entry.path().filename() != "last.h5") ++best;
  EXPECT_EQ(best, 1);
  bool event_file = false;
  for (const auto& entry : fs::directory_iterator(dir / "run" / "tensorboard"))
    event_file |= entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_TRUE(event_file);
}

// bf16 on the CPU (oneDNN's bf16 convolutions and matrix products): learns as fp32 does where
// the CPU has native bf16; refused with the reason and exit 2, before anything is written, where
// it has not (simulated by capping oneDNN at AVX2, which any x86-64 CPU can be).
TEST(TrainClassifier, Bf16OnTheCpuLearnsWhereTheCpuHasItAndIsRefusedWhereNot) {
  const auto dir = fresh_dir("train-classifier-bf16");
  const auto refused = run_command("cd " + dir.string() + " && DNNL_MAX_CPU_ISA=AVX2 " + kProgram +
                                        " fit --precision bf16 --output-dir capped" + kSmall, 120);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("--precision bf16 on the CPU: this CPU has no native bfloat16 instructions"),
            std::string::npos)
      << refused.output;
  EXPECT_FALSE(fs::exists(dir / "capped")) << "a refused run created its output directory";
  const auto probe = run_command("grep -qw avx512_bf16 /proc/cpuinfo", 10);
  if (probe.exit_code != 0) GTEST_SKIP() << "this CPU has no AVX512-BF16: the learning half needs one";
  const auto r = run_in(dir, "fit --precision bf16 --output-dir run --epochs 6 --seed 3" + kSmall);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("device cpu, precision bf16"), std::string::npos) << r.output;
  EXPECT_GE(number_after(read_file(dir / "run" / "test_report.txt"), "accuracy "), 90.0) << r.output;
  // Its checkpoint is an ordinary fp32 one: evaluated in fp32 it gives about the same accuracy.
  const auto fp32 = run_in(dir, "test --output-dir run --ckpt best" + kSmall);
  ASSERT_EQ(fp32.exit_code, 0) << fp32.output;
  EXPECT_GE(number_after(fp32.output, "accuracy "), 90.0) << fp32.output;
}

TEST(TrainClassifier, ValidatingTheBestCheckpointReproducesItsLoggedNumbers) {
  const auto& dir = fitted_run();
  const auto fit_output = read_file(dir / "fit-output.txt");
  // The best checkpoint's name carries its epoch and val_loss: epoch=E-val_loss=L.h5.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(fit_output, m, std::regex(R"(best val_loss ([0-9.]+): \S*epoch=([0-9]+)-val_loss)")))
      << fit_output;
  const auto epoch = std::stoi(m[2].str());
  std::smatch line;
  ASSERT_TRUE(std::regex_search(fit_output, line,
                                std::regex("epoch " + std::to_string(epoch + 1) + "/6 .*val_acc ([0-9.]+)%")));
  // Without the fit's data options: the checkpoint carries them (the synthetic set's size).
  const auto r = run_in(dir, "validate --output-dir run --ckpt best --loader-threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NEAR(number_after(r.output, "accuracy "), std::stod(line[1].str()), 1e-9) << r.output;
  EXPECT_NEAR(number_after(r.output, ": loss "), std::stod(m[1].str()), 1e-4) << r.output;
  EXPECT_NE(r.output.find("on 300 images"), std::string::npos) << r.output;  // padding not counted
  // On two ranks the same numbers (evaluation has no batch statistics).
  const auto two = run_command("cd " + dir.string() + " && OPENBLAS_NUM_THREADS=1 " + mpirun(2) + kProgram +
                                   " validate --output-dir run --ckpt best" + kSmall,
                               300);
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NEAR(number_after(two.output, "accuracy "), std::stod(line[1].str()), 1e-9) << two.output;
}

TEST(TrainClassifier, PredictPrintsTopKAndExportWritesAModelHubLayout) {
  const auto& dir = fitted_run();
  const auto r = run_in(dir, "predict --output-dir run --ckpt best --input test:4 --top-k 2" + kSmall);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_occurrences(r.output, "test["), 4) << r.output;
  EXPECT_NE(r.output.find("test[0] (true disc):"), std::string::npos) << r.output;
  const auto csv = read_file(dir / "run" / "predictions.csv");
  EXPECT_EQ(count_occurrences(csv, "\n"), 5) << csv;  // header + 4
  const auto e = run_in(dir, "export --output-dir run --ckpt best --out exported");
  ASSERT_EQ(e.exit_code, 0) << e.output;
  for (const char* file : {"model.safetensors", "config.json", "README.md"}) EXPECT_TRUE(fs::exists(dir / "exported" / file));
  const auto config = read_file(dir / "exported" / "config.json");
  EXPECT_NE(config.find("\"architecture\": \"tutorial-cnn\""), std::string::npos) << config;
  EXPECT_NE(config.find("\"9\": \"checker\""), std::string::npos) << config;
  EXPECT_NE(read_file(dir / "exported" / "README.md").find("val_loss (best)"), std::string::npos);
  // An --out that cannot be made is refused naming --out (not --output-dir), exit 2.
  const auto bad = run_in(dir, "export --output-dir run --ckpt best --out /proc/slurmlab-nope");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--out '/proc/slurmlab-nope' cannot be used ("), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("choose a writable directory with --out."), std::string::npos) << bad.output;
  EXPECT_EQ(bad.output.find("--output-dir '"), std::string::npos) << bad.output;
}

TEST(TrainClassifier, TwoRanksTrainAsOneForTheSameGlobalBatch) {
  // The MLP has no batch statistics, so 2 ranks x 32 and 1 rank x 64 are the same training.
  const std::string flags = " --model mlp --dropout 0 --epochs 1 --batch-size 64 --limit-train-batches 20"
                            " --test-after-fit false --tensorboard false --seed 5" + kSmall;
  const auto one = fresh_dir("train-classifier-np1");
  const auto r1 = run_in(one, "fit --output-dir run" + flags);
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  const auto two = fresh_dir("train-classifier-np2");
  const auto r2 = run_command("cd " + two.string() + " && OPENBLAS_NUM_THREADS=1 " + mpirun(2) + kProgram +
                                  " fit --output-dir run" + flags,
                              300);
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_NE(r2.output.find("global batch 64 = 32 per rank x 2 rank(s)"), std::string::npos) << r2.output;
  EXPECT_NE(r2.output.find("MPI gradient all-reduce"), std::string::npos) << r2.output;
  const auto v1 = number_after(r1.output, "val_loss "), v2 = number_after(r2.output, "val_loss ");
  EXPECT_GT(v1, 0.0);
  EXPECT_NEAR(v1, v2, 2e-4) << r1.output << r2.output;
  EXPECT_NEAR(number_after(r1.output, "train_loss "), number_after(r2.output, "train_loss "), 2e-4);
  // Every rank keeps its own log; only rank 0 writes checkpoints (one directory).
  EXPECT_TRUE(fs::exists(two / "run" / "rank-1.log"));
  EXPECT_TRUE(fs::exists(two / "run" / "checkpoints" / "last.h5"));
}

TEST(TrainClassifier, FastDevRunRunsFewBatchesAndWritesNothing) {
  const auto dir = fresh_dir("train-classifier-fastdev");
  const auto r = run_in(dir, "fit --output-dir run --fast-dev-run 2" + kSmall);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("fast-dev-run: 2 batch(es)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(2 steps)"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "run" / "checkpoints"));
  EXPECT_FALSE(fs::exists(dir / "run" / "metrics.h5"));
  EXPECT_FALSE(fs::exists(dir / "run" / "tensorboard"));
  // Nor the test's report: only the rank logs are left.
  for (const auto& entry : fs::directory_iterator(dir / "run")) {
    EXPECT_EQ(entry.path().filename().string().rfind("rank-", 0), 0u) << entry.path() << " written";
  }
}

// --preset airbench94: the recipe's settings as defaults (the command line still wins), its
// frozen whitening filters and BatchNorm scales left out of training, and it learns the shapes.
TEST(TrainClassifier, Airbench94PresetSetsItsRecipeAndLearns) {
  const auto dir = fresh_dir("train-classifier-airbench94");
  const auto config = run_in(dir, "fit --preset airbench94 --batch-size 100 --print-config");
  ASSERT_EQ(config.exit_code, 0) << config.output;
  for (const char* line : {"model = airbench94\n", "optimizer = sgd\n", "nesterov = true\n",
                           "lr = 1.5\n", "schedule = triangle:0.23:0.2:0.07\n",
                           "flip = true\n", "crop-padding = 2\n", "crop-padding-mode = reflect\n", "tta = 2\n", "batch-size = 100\n", "epochs = 10\n"}) {
    EXPECT_NE(config.output.find(line), std::string::npos) << line << config.output;
  }
  EXPECT_NEAR(number_after(config.output, "\nmomentum = "), 0.85, 1e-12);  // printed to round-trip (shortest text)
  EXPECT_NEAR(number_after(config.output, "\nlabel-smoothing = "), 0.2, 1e-12);
  const auto r = run_in(dir, "fit --preset airbench94 --output-dir run --epochs 3 --batch-size 100 --seed 2 "
                             "--synthetic-count 800 --synthetic-test-count 200 --val-size 100 --loader-threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 1,972,792 parameters, of which frozen: the whitening filters (24*3*2*2 = 288) and the
  // BatchNorm scales (64+64+256*4 = 1152).
  EXPECT_NE(r.output.find("1972792 parameters (1971352 trained, the rest frozen); SGD (Nesterov) lr 1.5"),
            std::string::npos) << r.output;
  const double accuracy = number_after(read_file(dir / "run" / "test_report.txt"), "accuracy ");
  EXPECT_GE(accuracy, 80.0) << r.output;
  EXPECT_EQ(run_in(dir, "fit --preset nanogpt").exit_code, 2);
  EXPECT_NE(run_in(dir, "fit --preset nanogpt").output.find("--preset 'nanogpt' is not known; choose airbench94"),
            std::string::npos);
  const auto nesterov = run_in(dir, "fit --nesterov --optimizer adam");
  EXPECT_EQ(nesterov.exit_code, 2);
  EXPECT_NE(nesterov.output.find("--nesterov needs --optimizer sgd"), std::string::npos) << nesterov.output;
}

TEST(TrainClassifier, PrintConfigIsAConfigThatConfigReadsBack) {
  const auto dir = fresh_dir("train-classifier-config");
  const auto printed = run_in(dir, "fit --epochs 7 --model alexnet --resize 70 --crop 64 --flip --print-config > fit.cfg");
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  const auto again = run_in(dir, "fit --config fit.cfg --print-config");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.output, read_file(dir / "fit.cfg"));
  for (const char* line : {"epochs = 7\n", "model = alexnet\n", "crop = 64\n", "flip = true\n",
                           // the shortest text of each default, not 0.10000000000000001 or 0.200000003
                           "val-size = 0.1\n", "momentum = 0.9\n", "dropout = 0.2\n", "lr = 0.001\n"}) {
    EXPECT_NE(again.output.find(line), std::string::npos) << line << again.output;
  }
  // The command line wins over the config file, for a flag too: the config's flip = true is turned off.
  const auto off = run_in(dir, "fit --config fit.cfg --flip=false --epochs 8 --print-config");
  ASSERT_EQ(off.exit_code, 0) << off.output;
  EXPECT_NE(off.output.find("\nflip = false\n"), std::string::npos) << off.output;
  EXPECT_NE(off.output.find("\nepochs = 8\n"), std::string::npos) << off.output;
  // --help shows the same short defaults.
  const auto help = run_in(dir, "fit --help");
  ASSERT_EQ(help.exit_code, 0) << help.output;
  for (const char* text : {"--val-size arg (=0.1)", "--momentum arg (=0.9)", "--dropout arg (=0.2)", "--flip [=true|false] (=false)"}) {
    EXPECT_NE(help.output.find(text), std::string::npos) << text << "\n" << help.output;
  }
  EXPECT_EQ(help.output.find("00000000"), std::string::npos) << help.output;
}

TEST(TrainClassifier, BadInputIsOneSentenceAndExitTwo) {
  const auto dir = fresh_dir("train-classifier-bad");
  struct Case {
    std::string arguments, message;
  };
  const std::vector<Case> cases{
      {"fit --model vgg", "unknown --model 'vgg'; choose one of tutorial-cnn, alexnet"},
      {"fit --data mnist:/nonexistent", "/nonexistent"},
      {"fit --data imagenet:/x", "imagenet:/x"},
      {"fit --crop 40", "crop"},
      {"fit --model alexnet", "pass --resize 70 --crop 64"},
      {"fit --optimizer rmsprop", "--optimizer 'rmsprop' is not adam, adamw or sgd"},
      {"test --tta 5 --ckpt last", "--tta must be 0 (none), 1 (flip) or 2"},
      {"fit --model airbench94 --resize 32", "--model airbench94 steps its BatchNorm biases 64x faster, which only --optimizer sgd"},
      {"fit --crop 32 --crop-padding 2 --crop-padding-mode mirror", "--crop-padding-mode 'mirror' is not zeros or reflect"},
      {"fit --schedule triangle:1.5:0.2:0.1", "is not triangle:PEAK:START:END with PEAK in [0, 1)"},
      {"fit --precision tf32 --device cpu", "--precision tf32 is a GPU math mode"},
      {"fit --data-on-gpu yes", "--data-on-gpu 'yes' is not auto, on or off"},
      {"fit --data-on-gpu on --device cpu", "--data-on-gpu on holds the training set on a GPU, but this run computes on the CPU"},
      {"fitt", "'fitt' is not a subcommand"},
      {"predict --ckpt last", "predict needs --input"},
      {"test --output-dir nothing-here --ckpt best", "no checkpoint in nothing-here/checkpoints"},
      // Numeric options out of range: refused before any data is read, naming the option as typed.
      {"fit --accumulate-grad-batches 0", "--accumulate-grad-batches must be at least 1 (batches per optimizer step), not 0"},
      {"fit --dropout 1", "--dropout must be in [0, 1), not 1"},
      {"fit --dropout -0.1", "--dropout must be in [0, 1), not -0.1"},
      {"fit --model mlp --mlp-hidden 0", "--mlp-hidden must be at least 1, not 0"},
      {"fit --optimizer sgd --momentum 1", "--momentum must be in [0, 1), not 1"},
      {"fit --weight-decay -0.01", "--weight-decay must be 0 or more, not -0.01"},
      {"fit --warmup-steps -5", "--warmup-steps must be 0 or more, not -5"},
      {"fit --gradient-clip-norm -1", "--gradient-clip-norm must be 0 (off) or more, not -1"},
      {"fit --gradient-clip-value -0.5", "--gradient-clip-value must be 0 (off) or more, not -0.5"},
      {"fit --threads -2", "--threads must be 0 (from SLURM_CPUS_PER_TASK) or more, not -2"},
      {"fit --check-val-every-n-epoch 0", "--check-val-every-n-epoch must be at least 1, not 0"},
      {"fit --fast-dev-run -1", "--fast-dev-run must be 0 (off) or a number of batches, not -1"},
      {"fit --save-top-k -2", "--save-top-k must be -1 (keep all), 0 (only last) or a count of 1 or more, not -2"},
      // Checkpointing that could never work, refused up front instead of after an epoch.
      {"fit --monitor val_acc", "--monitor 'val_acc' is not a metric train-classifier logs; choose val_loss, val_accuracy, "
                                "train_loss or train_accuracy"},
      {"fit --limit-val-batches 0", "--limit-val-batches 0 validates on no batches, so --monitor val_loss would never get a "
                                    "value; give a batch count of 1 or more or a fraction above 0, or train without "
                                    "validation with --val-size 0"},
      {"fit --limit-val-batches 0.0 --monitor val_accuracy", "--limit-val-batches 0.0 validates on no batches, so --monitor val_accuracy"},
      {"fit --limit-val-batches 0 --monitor train_loss", "--limit-val-batches 0 validates on no batches; give"},
      {"validate --ckpt last --limit-val-batches 0", "--limit-val-batches 0 leaves validate no batches to evaluate"},
      {"export --ckpt best", "export needs --out DIR"},
  };
  for (const auto& c : cases) {
    const auto r = run_in(dir, c.arguments + kSmall);
    EXPECT_EQ(r.exit_code, 2) << c.arguments << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.arguments << "\n" << r.output;
    EXPECT_EQ(r.output.find("ModelCheckpoint"), std::string::npos) << c.arguments << "\n" << r.output;
  }
  // No subcommand is a usage error (the overview follows the sentence); --help is not.
  const auto none = run_in(dir, "");
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("no subcommand given; start with one of fit, validate, test, predict, export"),
            std::string::npos)
      << none.output;
  EXPECT_NE(none.output.find("usage: train-classifier fit|validate|test|predict|export"), std::string::npos) << none.output;
  const auto help = run_in(dir, "--help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find("usage: train-classifier fit|validate|test|predict|export"), std::string::npos) << help.output;
  // A global batch that 2 ranks cannot share.
  const auto odd = run_command("cd " + dir.string() + " && " + mpirun(2) + kProgram + " fit --batch-size 63" + kSmall, 120);
  EXPECT_EQ(odd.exit_code, 2) << odd.output;
  EXPECT_NE(odd.output.find("--batch-size 63 (global) does not divide into 2 ranks"), std::string::npos) << odd.output;
  EXPECT_EQ(count_occurrences(odd.output, "does not divide"), 1) << odd.output;  // one message, from rank 0
}

// A rank that runs out of memory (here a 2 GB address-space limit, as some sites set through
// Slurm, under airbench94's batch of 1024, which needs more) ends with one sentence naming the
// tensor it could not get and the two ways out, exit 1, and no checkpoint written.
TEST(TrainClassifier, RunningOutOfMemoryIsOneSentenceWithTheWaysOut) {
  const auto dir = fresh_dir("train-classifier-memory");
  const auto r = run_command("cd " + dir.string() + " && ulimit -v 2000000 && OPENBLAS_NUM_THREADS=1 " + kProgram +
                                 " fit --preset airbench94 --synthetic-count 2000 --synthetic-test-count 100 --epochs 1"
                                 " --loader-threads 1 --output-dir run",
                             120);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("train-classifier: error: out of host memory"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("; give the job more memory (sbatch --mem, --mem-per-cpu or --mem-per-gpu) or make the run "
                          "smaller (a smaller batch or problem size)"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(count_occurrences(r.output, "error"), 1) << r.output;
  EXPECT_FALSE(fs::exists(dir / "run" / "checkpoints" / "last.h5"));
}

TEST(TrainClassifier, ForeignOrCorruptCheckpointsAreRefusedNamingBoth) {
  const auto& fitted = fitted_run();
  const auto dir = fresh_dir("train-classifier-foreign");
  // Another class count: the fitted 10-class network against a 5-class data set.
  const auto classes = run_in(fitted, "test --output-dir run --ckpt best --synthetic-classes 5" + kSmall);
  EXPECT_EQ(classes.exit_code, 2) << classes.output;
  EXPECT_NE(classes.output.find("holds a tutorial-cnn for 10 classes of 3x32x32 input, but this run builds a "
                                "tutorial-cnn for 5 classes"),
            std::string::npos)
      << classes.output;
  // Same class count and input, another data set: CIFAR-10's classes are not the shapes'.
  const auto cifar = dir / "cifar";
  fs::create_directories(cifar);
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                           "data_batch_5.bin", "test_batch.bin"}) {
    std::ofstream out(cifar / name, std::ios::binary);
    for (int record = 0; record < 4; ++record) out << std::string(1, static_cast<char>(record)) << std::string(3072, 'x');
  }
  const auto named = run_in(fitted, "predict --output-dir run --ckpt best --input test:2 --data cifar10:" + cifar.string());
  EXPECT_EQ(named.exit_code, 2) << named.output;
  EXPECT_NE(named.output.find("this --data names class 0 'airplane'; give the --data the fit used"), std::string::npos)
      << named.output;
  // Resuming a fit of another architecture from that run's last.h5.
  fs::create_directories(dir / "run");
  fs::copy(fitted / "run" / "checkpoints", dir / "run" / "checkpoints");
  const auto other = run_in(dir, "fit --output-dir run --model mlp" + kSmall);
  EXPECT_EQ(other.exit_code, 2) << other.output;
  EXPECT_NE(other.output.find("holds a tutorial-cnn for 10 classes of 3x32x32 input, but this run builds a mlp"),
            std::string::npos)
      << other.output;
  // A flipped byte in the weights: the checksum refuses it.
  const auto last = dir / "run" / "checkpoints" / "last.h5";
  {
    std::fstream file(last, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(0, std::ios::end);
    const auto size = static_cast<std::streamoff>(file.tellg());
    file.seekp(size / 2);
    char byte = 0;
    file.seekg(size / 2);
    file.get(byte);
    file.seekp(size / 2);
    file.put(static_cast<char>(byte ^ 0x5a));
  }
  const auto corrupt = run_in(dir, "test --output-dir run --ckpt last" + kSmall);
  EXPECT_EQ(corrupt.exit_code, 2) << corrupt.output;
  EXPECT_NE(corrupt.output.find("pass another --ckpt"), std::string::npos) << corrupt.output;
  EXPECT_FALSE(fs::exists(dir / "run" / "test_report.txt"));
}

// One folder of class folders (no val/ or test/): the final test is on the held-out validation
// part, said in the data line, never on trained images; train/ and val/ of two image sizes are
// refused without --resize (the test images overran the network's input); a global batch larger
// than the training images is refused before training (it was padded with repeats, and 100000
// ran out of memory).
TEST(TrainClassifier, AFolderWithoutValOrTestIsTestedOnItsValidationPartAndAnOversizedBatchIsRefused) {
  const auto dir = fresh_dir("train-classifier-folder");
  // 2 classes x 30 PNGs of 32x32, written by Python's zlib (no image library needed).
  const auto wrote = run_command("cd " + dir.string() + R"( && python3 - <<'PY'
import os, random, struct, zlib
def png(path, rgb, side=32):
    raw = b''.join(b'\x00' + bytes(rgb) * side for _ in range(side))
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', side, side, 8, 2, 0, 0, 0))
                           + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
random.seed(1)
for name, colour in [('red', (200, 30, 30)), ('blue', (30, 30, 200))]:
    for folder in ['pngs/' + name, 'split/train/' + name, 'split/val/' + name]:
        os.makedirs(folder)
    for i in range(30):
        pixel = [min(255, max(0, v + random.randint(-20, 20))) for v in colour]
        png('pngs/%s/%d.png' % (name, i), pixel)
        png('split/train/%s/%d.png' % (name, i), pixel)
        png('split/val/%s/%d.png' % (name, i), pixel, 40)  # another size than train/
PY)",
                                 60);
  ASSERT_EQ(wrote.exit_code, 0) << wrote.output;
  const auto r = run_in(dir, "fit --data folder:pngs --resize 32x32 --val-size 12 --batch-size 8 --epochs 1 "
                             "--output-dir run --loader-threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("48 train / 12 validation / 12 test images (the validation part: the folder has no val/ or test/)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("on 12 images"), std::string::npos) << r.output;
  const auto none = run_in(dir, "fit --data folder:pngs --resize 32x32 --val-size 0 --output-dir run0");
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("has no val/ or test/ folder, so its test images are held out from it"), std::string::npos)
      << none.output;
  // train/ of 32x32 and val/ of 40x40: the test images would overrun the network's input.
  const auto sizes = run_in(dir, "fit --data folder:split --batch-size 8 --epochs 1 --output-dir sizes");
  EXPECT_EQ(sizes.exit_code, 2) << sizes.output;
  EXPECT_NE(sizes.output.find("come out 3x40x40 after the evaluation transforms, but the training images give the "
                              "network 3x32x32; pass --resize HxW"),
            std::string::npos)
      << sizes.output;
  const auto resized = run_in(dir, "fit --data folder:split --resize 32x32 --batch-size 8 --epochs 1 --output-dir resized "
                                   "--loader-threads 1");
  EXPECT_EQ(resized.exit_code, 0) << resized.output;
  const auto big = run_in(dir, "fit --batch-size 100000 --synthetic-count 64 --output-dir big");
  EXPECT_EQ(big.exit_code, 2) << big.output;
  EXPECT_NE(big.output.find("the global batch of 100000 is larger than the 58 training images of synthetic"),
            std::string::npos)
      << big.output;
  EXPECT_FALSE(fs::exists(dir / "big" / "checkpoints"));
  EXPECT_FALSE(fs::exists(dir / "big" / "metrics.h5"));
}
