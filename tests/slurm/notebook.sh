#!/usr/bin/env bash
# tests/slurm/notebook.sh BUILD_DIR: tools/notebook with jobs/jupyter.sbatch and
# jobs/tensorboard.sbatch on their own local Slurm (1 node, port base 31817, under
# BUILD_DIR/notebook-test). JupyterLab must answer with its token and refuse without it, the
# token must be in the user-only connection file and nowhere in the job's output, Enter must
# end the job, a second server gets its own port, and a missing jupyter is one sentence.
# Both servers are also opened in headless Chromium (tests/slurm/browser_check.py): JupyterLab's
# launcher, a kernel on the node running print(...), TensorBoard drawing a fit-regression run's
# loss curves; screenshots go to BUILD_DIR/notebook-test/screenshots for a person to look at.
# Exit 77: skipped (not root, or no JupyterLab in the checkout's .venv: run env/python.sh).
set -euo pipefail
build="$(cd "$1" && pwd -P)"
source_dir="$(cd "$(dirname "$0")/../.." && pwd -P)"
base="$build/notebook-test"
shots="$base/screenshots"
browser_check=(/usr/bin/python3 "$source_dir/tests/slurm/browser_check.py")
port_base="${SLURMLAB_NOTEBOOK_TEST_PORT:-31817}"
cluster=("$source_dir/tools/local-slurm" --dir "$base/cluster")
notebook="$source_dir/tools/notebook"
source "$source_dir/tests/support/checks.sh"

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the local Slurm needs root (mknod, mount namespaces, slurmd)"
  exit 77
fi
if ! "$source_dir/.venv/bin/python" -c 'import jupyterlab, tensorboard' 2>/dev/null; then
  echo "SKIP: $source_dir/.venv lacks jupyterlab or tensorboard (run env/python.sh; it needs PyPI)"
  exit 77
fi

http_status() {  # URL -> the HTTP status code, 000 when nothing answers
  /usr/bin/python3 - "$1" <<'EOF'
import sys, urllib.error, urllib.request
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None
try:
    print(urllib.request.build_opener(NoRedirect).open(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as error:
    print(error.code)
except OSError:
    print("000")
EOF
}
gone() { [ -z "$(squeue -h -j "$1" 2>/dev/null)" ]; }
gone_soon() { for _ in $(seq 1 30); do gone "$1" && return 0; sleep 1; done; return 1; }

trap '"${cluster[@]}" down >/dev/null 2>&1 || true' EXIT
"${cluster[@]}" --port-base "$port_base" --share "$build" --nodes 1 --cpus-per-node 2 up --timeout 120
eval "$("${cluster[@]}" env)"
rm -rf "$base/work"
mkdir -p "$base/work/notebooks"
cd "$base/work"
export SLURMLAB_CONNECTION_DIR="$base/work/connections" SLURMLAB_LOGIN_HOST=login.example.org

echo "== bad options: one sentence, exit 2, nothing submitted"
status=0
out="$("$notebook" --timeout soon 2>&1)" || status=$?
check "--timeout soon is refused with exit 2" [ "$status" -eq 2 ]
check "... naming the option" has "$out" "^tools/notebook: --timeout must be a whole number of seconds, not 'soon'$"
status=0
out="$("$notebook" --logdir results 2>&1)" || status=$?
check "--logdir without --tensorboard is refused with exit 2" [ "$status" -eq 2 ]
check "nothing was submitted" [ -z "$(squeue -h)" ]

echo "== JupyterLab, --no-wait"
out="$("$notebook" --no-wait --notebook-dir notebooks --time 00:10:00 --cpus-per-task 1 2>&1)"
printf '%s\n' "$out"
job="$(sed -n 's/^tools\/notebook: submitted job \([0-9]*\).*/\1/p' <<<"$out")"
port="$(sed -n 's/^ *ssh -N -L 8888:node1:\([0-9]*\) root@login.example.org$/\1/p' <<<"$out")"
check "the ssh line names the node, a port and the login host" [ -n "$port" ]
check "the job is running" has "$(squeue -h -j "$job" -o %T)" "^RUNNING$"
connection="$SLURMLAB_CONNECTION_DIR/jupyter-$job.txt"
token="$(sed -n 's/^TOKEN=//p' "$connection")"
check "the connection file holds a 48-digit token" has "$token" "^[0-9a-f]{48}$"
check "the printed URL carries the token" has "$out" "^ *http://localhost:8888/lab\?token=$token$"
check "the connection file is readable by its owner only (600)" [ "$(stat -c %a "$connection")" = 600 ]
check "its folder too (700)" [ "$(stat -c %a "$SLURMLAB_CONNECTION_DIR")" = 700 ]
check "JupyterLab answers with the token (200)" [ "$(http_status "http://127.0.0.1:$port/api/status?token=$token")" = 200 ]
check "and refuses without it (403)" [ "$(http_status "http://127.0.0.1:$port/api/status")" = 403 ]
check "with a wrong token too (403)" [ "$(http_status "http://127.0.0.1:$port/api/status?token=${token/?/0}x")" = 403 ]
check "the job's output file has the ssh line" has "$(cat "jupyter-$job.out")" "ssh -N -L 8888:node1:$port root@login.example.org"
check "... and not the token" bash -c "! grep -q '$token' 'jupyter-$job.out'"
check "Jupyter's own log (which quotes the URL) is readable by its owner only" [ "$(stat -c %a "jupyter-$job.server.log")" = 600 ]
check "the notebook folder is the one asked for" has "$(cat "jupyter-$job.out")" "in $base/work/notebooks$"

echo "== JupyterLab in a browser, at the printed URL (the tunnel's localhost:8888 is node1:$port here)"
rm -rf "$shots"
mkdir -p "$shots"
out="$("${browser_check[@]}" jupyter "http://127.0.0.1:$port/lab?token=$token" "$shots/jupyter" 2>&1)" || true
printf '%s\n' "$out"
check "without the token Chromium gets the login form" has "$out" "^ok: without the token the browser gets the login form, not the lab$"
check "with it, JupyterLab's launcher" has "$out" "^ok: JupyterLab's launcher appears"
check "a notebook from it runs print(...) on node1's kernel" has "$out" "^ok: the kernel ran print\(\.\.\.\): slurmlab kernel on node1 job $job 42$"
check "the screenshots are there" test -s "$shots/jupyter-login.png" -a -s "$shots/jupyter-launcher.png" -a -s "$shots/jupyter-notebook.png"

echo "== a second JupyterLab, stopped with Enter"
out="$( (sleep 6; echo) | "$notebook" --time 00:10:00 --cpus-per-task 1 2>&1)"
printf '%s\n' "$out"
job2="$(sed -n 's/^tools\/notebook: submitted job \([0-9]*\).*/\1/p' <<<"$out")"
port2="$(sed -n 's/^ *ssh -N -L 8888:node1:\([0-9]*\) .*/\1/p' <<<"$out")"
check "it got a port of its own" test -n "$port2" -a "$port2" != "$port"
check "Enter cancelled it" has "$out" "^tools/notebook: cancelled job $job2$"
check "the job is gone from the queue" gone_soon "$job2"
check "its connection file is deleted with it" bash -c "sleep 2; [ ! -e '$SLURMLAB_CONNECTION_DIR/jupyter-$job2.txt' ]"
check "the first one still serves" [ "$(http_status "http://127.0.0.1:$port/api/status?token=$token")" = 200 ]
scancel "$job"
check "scancel ends the first" gone_soon "$job"

echo "== no jupyter: one sentence"
status=0
out="$(SLURMLAB_JUPYTER=/nonexistent/jupyter PATH=/usr/bin:/bin "$notebook" --time 00:05:00 --cpus-per-task 1 2>&1)" || status=$?
printf '%s\n' "$out"
check "tools/notebook fails (exit 1)" [ "$status" -eq 1 ]
check "and shows the job's sentence naming the fix" has "$out" "jupyter.sbatch: no jupyter at /nonexistent/jupyter nor on PATH; run env/python.sh"

echo "== TensorBoard through --tensorboard, on a fit-regression run's logs"
"$build/bin/fit-regression" --epochs 200 --output-dir fit >fit.log 2>&1
out="$("$notebook" --tensorboard --logdir fit/tensorboard --no-wait --time 00:10:00 --cpus-per-task 1 2>&1)"
printf '%s\n' "$out"
job3="$(sed -n 's/^tools\/notebook: submitted job \([0-9]*\).*/\1/p' <<<"$out")"
port3="$(sed -n 's/^ *ssh -N -L 6006:node1:\([0-9]*\) root@login.example.org$/\1/p' <<<"$out")"
check "the ssh line names the node and a port" [ -n "$port3" ]
check "the address to open is localhost:6006" has "$out" "^ *http://localhost:6006/$"
check "TensorBoard answers (200)" [ "$(http_status "http://127.0.0.1:$port3/")" = 200 ]
out="$("${browser_check[@]}" tensorboard "http://127.0.0.1:$port3/" "$shots/tensorboard" loss/train loss/validation 2>&1)" || true
printf '%s\n' "$out"
check "Chromium shows a scalar card for each loss" has "$out" "^ok: the scalars dashboard has a card for each of loss/train, loss/validation$"
check "the training curve is drawn through epoch 199" has "$out" "^ok: loss/train is drawn; its table reads hidden-16 .* 199 "
check "the validation curve too" has "$out" "^ok: loss/validation is drawn; its table reads hidden-16 .* 199 "
check "the screenshot is there" test -s "$shots/tensorboard-scalars.png"
scancel "$job3"
check "scancel ends it" gone_soon "$job3"
check "and its connection file goes with it" bash -c "sleep 2; [ ! -e '$SLURMLAB_CONNECTION_DIR/tensorboard-$job3.txt' ]"

finish
