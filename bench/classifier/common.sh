# Shared by the bench/classifier scripts (sourced): the programs they need from BUILD_DIR.
# require_built SCRIPT BUILD_DIR: sets `ours` (train-classifier) and `writer` (loader_bench,
# which writes the CIFAR-10-sized set), or says how to build them and exits 2.
require_built() {
  local script=$1 build=$2 program
  ours="$build/bin/train-classifier"
  writer="$build/bin/loader_bench"
  for program in "$ours" "$writer"; do
    [ -x "$program" ] || { echo "$script: $program not built; run: cmake --build $build --target train-classifier loader_bench" >&2; exit 2; }
  done
}
