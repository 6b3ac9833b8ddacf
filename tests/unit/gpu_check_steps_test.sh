#!/usr/bin/env bash
# tools/gpu-check's step machinery, on a stand-in GPU (an nvidia-smi that lists one) and a
# stand-in build whose programs are small scripts: a passing GPU test binary, one that skips a
# test (a failure where a GPU answers), one that runs past the deadline (cut there, and the
# next step not started), --only, --pack (the logs in one archive beside the summary) and a
# bad --deadline.
# usage: gpu_check_steps_test.sh REPO WORK
set -u
repo=$1 work=$2
failures=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; failures=$((failures + 1)); fi; }

rm -rf "$work" && mkdir -p "$work/path" "$work/build/bin"
cat >"$work/path/nvidia-smi" <<'SH'
#!/bin/sh
case "$*" in
  -L) echo "GPU 0: Stand-in GPU (UUID: GPU-00000000)" ;;
  *driver_version*name*|*name*) echo "Stand-in GPU, 580.00, 1024 MiB" ;;
  *driver_version*) echo "580.00" ;;
esac
SH
stub() { printf '#!/bin/sh\n%s\n' "$2" >"$work/build/bin/$1" && chmod +x "$work/build/bin/$1"; }
stub train-classifier 'exit 0'
stub test_gpu_probe 'echo "[  PASSED  ] 2 tests."'
stub test_logdet_cuda 'echo "[  SKIPPED ] LogdetCuda.MeanFollowsTheTheory"; echo "[  PASSED  ] 3 tests."'
stub test_nn_cuda 'echo started; exec sleep 60'
chmod +x "$work/path/nvidia-smi"
export PATH="$work/path:$PATH"
gpu_check() { (cd "$repo" && tools/gpu-check --build-dir "$work/build" --no-build "$@"); }

gpu_check --out "$work/a" --only 'gpu-probe|gpu-logdet' >"$work/a.log" 2>&1
status=$?
summary=$work/a/gpu-check.md
check "a passing GPU test binary is a passed row" 'grep -q "^| gpu-probe | passed |" "$summary"'
check "a test skipped where a GPU answers is a failure naming it" \
  'grep -q "^| gpu-logdet | FAILED (1 test(s) skipped although a GPU answers: LogdetCuda.MeanFollowsTheTheory)" "$summary"'
check "steps not named by --only do not run" '! grep -q "gpu-nn-cuda\|classifier-\|bench-" "$summary"'
check "one failed step: exit 1" '[ "$status" -eq 1 ] && grep -q "1 step(s) failed, 0 not run" "$work/a.log"'

start=$(date +%s)
mkdir -p "$work/b" && echo keep >"$work/b/earlier.txt"  # OUT held a file before the run
OUT=$work/b gpu_check --deadline 25 --only 'gpu-nn-cuda-backend|gpu-probe' >"$work/b.log" 2>&1
status=$?
took=$(($(date +%s) - start))
check "the step running at the deadline is cut there" '[ "$took" -ge 20 ] && [ "$took" -lt 45 ]'
check "with \$OUT set only the summary and the log archive are left" \
  '[ "$(ls "$work/b" | paste -sd" ")" = "earlier.txt gpu-check-logs.tar.gz gpu-check.md" ]'
check "what OUT held before is neither packed nor removed" \
  '[ "$(cat "$work/b/earlier.txt")" = keep ] && ! tar -tzf "$work/b/gpu-check-logs.tar.gz" | grep -q earlier'
tar -C "$work/b" -xzf "$work/b/gpu-check-logs.tar.gz" 2>/dev/null
check "the archive holds the step's log" 'grep -q "^started$" "$work/b/gpu-nn-cuda-backend.log"'
check "the cut step is a failure that says so" 'grep -qE "^\| gpu-nn-cuda-backend \| FAILED \(stopped after its 2[0-9] s\)" "$work/b/gpu-check.md"'
check "the step after the deadline is listed as not run" 'grep -q "^| gpu-probe | not run (the --deadline of 25 s was reached)" "$work/b/gpu-check.md"'
check "exit 1 and the count of steps not run" '[ "$status" -eq 1 ] && grep -q "1 step(s) failed, 1 not run for the deadline" "$work/b.log"'

bad=$(gpu_check --deadline soon 2>&1)
bad_status=$?
check "a deadline that is not a number is one sentence and exit 2" \
  '[ "$bad_status" -eq 2 ] && echo "$bad" | grep -q "is not a whole number of seconds"'

none=$(gpu_check --out "$work/c" --only 'gpu-nccl' 2>&1)
none_status=$?
check "--only that names no step is one sentence and exit 2" \
  '[ "$none_status" -eq 2 ] && echo "$none" | grep -q "names no step of --part all"'
help=$(gpu_check --help)
check "--help lists every option" 'for o in --deadline --bench-rounds --only --pack --no-build --no-bench; do echo "$help" | grep -q -- "^#   $o" || exit 1; done'

[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
