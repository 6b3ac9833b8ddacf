#!/usr/bin/env bash
# tests/unit/install_test.sh BUILD_DIR: `cmake --install` into a temporary prefix, then use it
# as a cluster user would, from outside the source tree and without LD_LIBRARY_PATH: the
# programs run (env-dump alone, a tiny fit-regression), examples/consumer builds against the
# installed CMake package and runs, and Lmod loads both module files (Lua and Tcl), after
# which the programs are on PATH and SLURMLAB_ROOT names the prefix.
set -euo pipefail
build="$(cd "$1" && pwd -P)"
source_dir="$(cd "$(dirname "$0")/../.." && pwd -P)"
work="$build/install-test"
prefix="$work/prefix"
source "$source_dir/tests/support/checks.sh"

rm -rf "$work"
mkdir -p "$work/elsewhere"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
cd "$work/elsewhere"  # nothing of the checkout around
unset LD_LIBRARY_PATH
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

echo "== the layout"
for program in env-dump logdet-histogram fit-regression train-classifier local-slurm slurmlab-seff slurmlab-notebook cpu-vs-gpu \
  cpu-vs-gpu-report slurmlab-plot slurmlab-fetch-data; do
  check "bin/$program is installed and executable" test -x "$prefix/bin/$program"
done
for file in lib/libslurmlab_cluster.a lib/libslurmlab_train.a include/slurmlab/cluster/rank_context.hpp \
  include/slurmlab/train/trainer.hpp lib/cmake/slurmlab/slurmlabConfig.cmake \
  lib/cmake/slurmlab/slurmlabConfigVersion.cmake share/slurmlab/jobs/env-dump.sbatch \
  share/slurmlab/jobs/jupyter.sbatch share/slurmlab/jobs/cpu-vs-gpu.sbatch share/slurmlab/examples/consumer/where_am_i.cpp \
  share/modulefiles/slurmlab/0.1.0.lua share/modulefiles-tcl/slurmlab/0.1.0; do
  check "$file is installed" test -f "$prefix/$file"
done

echo "== the programs, from the prefix, without LD_LIBRARY_PATH"
for program in env-dump logdet-histogram fit-regression train-classifier; do
  check "$program finds every library it needs" bash -c "! ldd '$prefix/bin/$program' | grep -q 'not found'"
  check "$program --help runs" bash -c "'$prefix/bin/$program' --help >/dev/null"
done
out="$("$prefix/bin/env-dump" --output-dir env 2>&1)"
check "env-dump runs alone and writes its summary" test -s env/summary.txt
check "... naming this host" has "$out" "$(hostname -s)"
check "a tiny fit-regression runs (synthetic data, 20 epochs)" bash -c \
  "'$prefix/bin/fit-regression' --epochs 20 --output-dir fit >fit.log 2>&1 && test -s fit/metrics.h5"
check "tools find their installed templates (cpu-vs-gpu --help)" bash -c "'$prefix/bin/cpu-vs-gpu' --help >/dev/null"
check "slurmlab-notebook --help runs" bash -c "'$prefix/bin/slurmlab-notebook' --help >/dev/null"
# An installed fetch-data works in the user's directory, never inside the (shared, read-only) prefix.
mkdir -p mirror
SLURMLAB_FETCH_MIRROR="file://$work/elsewhere/mirror/" "$prefix/bin/slurmlab-fetch-data" mnist >fetch.log 2>&1 || true
check "slurmlab-fetch-data works in the current directory (data/ here)" test -d data
check "... and writes nothing into the prefix" test ! -e "$prefix/data"

echo "== find_package(slurmlab): examples/consumer against the prefix"
cmake -S "$prefix/share/slurmlab/examples/consumer" -B consumer -DCMAKE_PREFIX_PATH="$prefix" >consumer.log 2>&1 &&
  cmake --build consumer >>consumer.log 2>&1 || { tail -n 20 consumer.log; }
check "the consumer builds" test -x consumer/where-am-i
out="$(mpirun --oversubscribe --bind-to none -np 2 consumer/where-am-i 2>&1 || true)"
printf '%s\n' "$out"
check "its two ranks print their binding in rank order" has "$(head -n 1 <<<"$out")" "^rank 0 of 2, node .*device (cpu|cuda:[0-9])"
check "... rank 1 second" has "$(sed -n 2p <<<"$out")" "^rank 1 of 2"

echo "== module load slurmlab (Lmod; Lua and Tcl module files)"
lmod_init="$(ls /usr/share/lmod/*/init/bash 2>/dev/null | head -n 1)"
if [ -z "$lmod_init" ]; then
  echo "FAILED: Lmod is not installed (env/debian.sh installs the lmod package)"
  failures=$((failures + 1))
else
  for flavour in modulefiles modulefiles-tcl; do
    out="$(env -i HOME="$HOME" PATH=/usr/bin:/bin OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 bash -c "
      source '$lmod_init'
      module use '$prefix/share/$flavour'
      module load slurmlab
      echo SLURMLAB_ROOT=\$SLURMLAB_ROOT
      echo CMAKE_PREFIX_PATH=\$CMAKE_PREFIX_PATH
      echo ENV_DUMP=\$(command -v env-dump)
      module whatis slurmlab 2>&1
      env-dump --output-dir module-$flavour >/dev/null && echo ENV_DUMP_RAN" 2>&1)"
    check "$flavour: SLURMLAB_ROOT is the prefix" has "$out" "^SLURMLAB_ROOT=$prefix/?$"
    check "$flavour: CMAKE_PREFIX_PATH has the prefix" has "$out" "^CMAKE_PREFIX_PATH=$prefix/?(:|$)"
    check "$flavour: env-dump on PATH is the installed one" has "$out" "^ENV_DUMP=$prefix/bin/env-dump$"
    check "$flavour: whatis describes it" has "$out" "Version: 0.1.0"
    check "$flavour: env-dump runs from the module" has "$out" "^ENV_DUMP_RAN$"
  done
fi

[ "$failures" -ne 0 ] || rm -rf "$work"  # kept for a look when a check failed
finish
