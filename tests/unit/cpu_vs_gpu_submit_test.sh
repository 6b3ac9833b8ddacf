#!/usr/bin/env bash
# tools/cpu-vs-gpu refuses what it cannot run before it asks Slurm anything: each bad option
# gives one sentence naming it and the fix, exit status 2, and submits nothing.
#   tests/unit/cpu_vs_gpu_submit_test.sh SOURCE_DIR
set -uo pipefail
tool="$1/tools/cpu-vs-gpu"
failures=0
refused() {  # EXPECTED_PHRASE ARGS...
  local phrase="$1" out status
  shift
  out="$("$tool" "$@" 2>&1)"
  status=$?
  if [ "$status" -eq 2 ] && grep -qF -- "$phrase" <<<"$out" && [ "$(wc -l <<<"$out")" -eq 1 ]; then
    echo "ok: $* -> $out"
  else
    echo "FAILED: $* gave exit $status and: $out (expected exit 2 and one line with: $phrase)"
    failures=$((failures + 1))
  fi
}
refused "--cores '1,x' holds 'x', which is not a whole number of cores" --cores 1,x
refused "--cores '0,2' holds '0'" --cores 0,2
refused "'vgg' is not a model this lab trains; choose from mlp, mlp-extra, tutorial-cnn" --models mlp,vgg
refused "--epochs must be a whole number of at least 1, not '0'" --epochs 0
refused "--gpu must be auto or no, not 'maybe'" --gpu maybe
refused "--data '/data/mnist' is not a data set spec; write mnist:DIR" --data /data/mnist
refused "option --cores needs a value" --cores
refused "unknown option '--cpus'" --cpus 4
"$tool" --help | grep -q "remove the two extra layers" || { echo "FAILED: --help does not describe --extra-layers"; failures=$((failures + 1)); }
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
