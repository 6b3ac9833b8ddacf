#!/usr/bin/env bash
# tests/slurm/installed_template.sh BUILD_DIR: a cluster user's path through an installed
# slurmlab: cmake --install into a prefix, `module load slurmlab` (Debian's Lmod), then from a
# directory outside the source tree `sbatch $SLURMLAB_ROOT/share/slurmlab/jobs/env-dump.sbatch`
# on a local 4-node Slurm of its own (port base 29817, below the ephemeral port range). The job must run the installed
# env-dump (not the build tree's) on 8 ranks over 4 nodes. Exit 77: skipped (not root).
set -euo pipefail
build="$(cd "$1" && pwd -P)"
source_dir="$(cd "$(dirname "$0")/../.." && pwd -P)"
base="$build/installed-template-test"
prefix="$base/prefix"
cluster=("$source_dir/tools/local-slurm" --dir "$base/cluster")
source "$source_dir/tests/support/checks.sh"

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the local Slurm needs root (mknod, mount namespaces, slurmd)"
  exit 77
fi
lmod_init="$(ls /usr/share/lmod/*/init/bash 2>/dev/null | head -n 1)"
[ -n "$lmod_init" ] || { echo "FAILED: Lmod is not installed (env/debian.sh installs the lmod package)"; exit 1; }

rm -rf "$base/prefix" "$base/user"
mkdir -p "$base/user"
cmake --install "$build" --prefix "$prefix" >"$base/install.log"
trap '"${cluster[@]}" down >/dev/null 2>&1 || true' EXIT
"${cluster[@]}" --port-base "${SLURMLAB_INSTALLED_TEST_PORT:-29817}" --share "$build" up --timeout 120
slurm_env="$("${cluster[@]}" env)"

# A login shell of a user who knows nothing of the checkout: Lmod, the module, a home folder.
out="$(env -i HOME="$base/user" PATH=/usr/bin:/bin bash -c "
  set -e
  $slurm_env
  source '$lmod_init'
  module use '$prefix/share/modulefiles'
  module load slurmlab
  cd '$base/user'
  job=\$(sbatch --parsable \$SLURMLAB_ROOT/share/slurmlab/jobs/env-dump.sbatch)
  echo JOB=\$job
  '$source_dir/tools/local-slurm' --dir '$base/cluster' wait \$job --timeout 180 >/dev/null || true
  cat env-dump-\$job.out" 2>&1)"
printf '%s\n' "$out"
job="$(sed -n 's/^JOB=//p' <<<"$out")"
check "sbatch took the installed template" has "$job" "^[0-9]+$"
check "the job ran the installed env-dump" has "$out" "^env-dump.sbatch: program $prefix/bin/env-dump$"
check "its results are under the user's directory" test -d "$base/user/results/env-dump-$job"
check "8 ranks reported" test "$(ls "$base/user/results/env-dump-$job"/rank-"$job"-*.out 2>/dev/null | wc -l)" -eq 8
check "over the 4 nodes" has "$out" "nodes +4: node\[1-4\]"
check "the job ended with exit 0" has "$out" "^env-dump.sbatch: finished .* with exit 0$"

[ "$failures" -ne 0 ] || rm -rf "$base/prefix" "$base/user"  # kept for a look when a check failed
finish
