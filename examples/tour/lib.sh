# examples/tour/lib.sh: what every tour script shares. Source it, then call
# tour_init "$@". A tour is a sequence of
#   section "Title"          a heading
#   explain "prose ..."      what to look at (printed after the output it explains)
#   show 'command'           print "$ command", run it in this shell, print its real output
#   show_fail 'command'      the same for a command that is expected to fail
#   hidden 'command'         run without printing (set-up, clean-up)
#   wait_for SECONDS 'test'  poll until the shell test succeeds (fails the tour on timeout)
# A tour's shown commands and prose are fixed text (job ids live in shell variables such
# as $blocker), so the walkthroughs generated from them (examples/tour/markdown) differ
# from run to run only inside output blocks; `markdown --check` compares everything else.
#
# Modes (first argument of the tour):
#   (none)        narrate: command, output, explanation
#   --quiet       commands and output only (for tests and logs)
#   --markdown    the same as Markdown (examples/tour/markdown writes it to examples/)
#   --outline     Markdown without running anything: output blocks are left empty
# The cluster comes from the environment: SLURM_CONF if set, else the local Slurm of
# tools/local-slurm (SLURMLAB_SLURM_DIR, default $HOME/.slurmlab/slurm), else whatever
# Slurm answers (a real cluster's login node). Extra sbatch/srun/salloc options for a real
# cluster (partition, account) go in SBATCH_PARTITION/SBATCH_ACCOUNT, SLURM_PARTITION/
# SLURM_ACCOUNT and SALLOC_PARTITION/SALLOC_ACCOUNT as Slurm itself reads them.
# shellcheck shell=bash

tour_name="$(basename "$0" .sh)"
tour_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck disable=SC2034 # used by the tours
tour_repo="$(cd "$tour_dir/../.." && pwd -P)"
tour_mode=narrate
tour_jobs=()

tour_die() {
  printf 'tour %s: %s\n' "$tour_name" "$*" >&2
  exit 1
}

tour_init() {
  case "${1:-}" in
  "") ;;
  --quiet) tour_mode=quiet ;;
  --markdown) tour_mode=markdown ;;
  --outline) tour_mode=outline ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e '/shellcheck/d' -e 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    printf 'tour %s: unknown argument %s; use --quiet, --markdown, --outline or --help.\n' "$tour_name" "'$1'" >&2
    exit 2
    ;;
  esac
  [ "$tour_mode" = outline ] && return 0
  # The commands shown use $USER as people type them; cron and containers may lack it.
  USER="${USER:-$(id -un)}"
  export USER
  tour_find_cluster
  # Jobs write their files here (batch logs, per-rank output): a directory every node
  # sees. TOUR_WORKDIR overrides it; the default lies beside the local cluster.
  tour_work="${TOUR_WORKDIR:-${SLURMLAB_SLURM_DIR:-$PWD}/tour-work}"
  mkdir -p "$tour_work/$tour_name"
  cd "$tour_work/$tour_name" || exit 1
  trap tour_cleanup EXIT
}

# The cluster: SLURM_CONF as given, else the local one, else the default Slurm config.
tour_find_cluster() {
  local dir="${SLURMLAB_SLURM_DIR:-${HOME:-/root}/.slurmlab/slurm}" answer
  if [ -z "${SLURM_CONF:-}" ] && [ -r "$dir/slurm.conf" ]; then
    export SLURM_CONF="$dir/slurm.conf" SLURMLAB_SLURM_DIR="$dir"
  fi
  command -v squeue >/dev/null 2>&1 ||
    tour_die "Slurm's client commands (squeue, sbatch) are not installed: install slurm-client (bash env/debian.sh) or run this on a cluster's login node."
  if ! answer="$(squeue -h -o %i 2>&1 >/dev/null)" || [ -n "$answer" ]; then
    answer="$(printf '%s\n' "$answer" | tail -n 1)"
    tour_die "no Slurm cluster answers (${answer:-squeue failed}); start the local one with 'tools/local-slurm up' (then eval \"\$(tools/local-slurm env)\"), or run this on a cluster's login node."
  fi
}

# Cancels what this tour submitted and left behind.
tour_cleanup() {
  terminal_stop
  if [ ${#tour_jobs[@]} -gt 0 ]; then scancel "${tour_jobs[@]}" >/dev/null 2>&1 || true; fi
}

# track JOBID...: jobs cancelled when the tour ends.
track() {
  local id
  for id in "$@"; do [ -n "$id" ] && tour_jobs+=("${id%%;*}"); done
}

tour_fence_open=0
fence_open() {
  if [ "$tour_mode" = markdown ] || [ "$tour_mode" = outline ]; then
    [ "$tour_fence_open" -eq 1 ] || printf '```console\n'
  fi
  tour_fence_open=1
}
fence_close() {
  if [ "$tour_fence_open" -eq 1 ] && { [ "$tour_mode" = markdown ] || [ "$tour_mode" = outline ]; }; then
    printf '```\n\n'
  fi
  tour_fence_open=0
}

title() {
  case "$tour_mode" in
  markdown | outline) printf '%s\n\n' "# $*" ;;
  *) printf '==== %s\n\n' "$*" ;;
  esac
}

section() {
  fence_close
  case "$tour_mode" in
  markdown | outline) printf '## %s\n\n' "$*" ;;
  quiet) printf '\n## %s\n' "$*" ;;
  *) printf '\n---- %s\n\n' "$*" ;;
  esac
}

# explain TEXT...: a paragraph (each argument a sentence or more); wrapped at 88 columns.
explain() {
  fence_close
  case "$tour_mode" in
  quiet) return 0 ;;
  markdown | outline) printf '%s\n' "$*" | fold -s -w 88 | sed 's/ *$//'; printf '\n' ;;
  *) printf '%s\n' "$*" | fold -s -w 84 | sed -e 's/ *$//' -e 's/^/  | /'; printf '\n' ;;
  esac
}

# show COMMAND: print and run it in this shell (assignments stay), output as it came.
# A failing command ends the tour (a tour that cannot do its step must not narrate on).
show() {
  tour_run 0 "$1"
}
# show_fail COMMAND: a command that must fail (exit status printed).
show_fail() {
  tour_run 1 "$1"
}

tour_run() {
  local expect_failure="$1" command="$2" out status=0
  fence_open
  printf '$ %s\n' "$command"
  [ "$tour_mode" = outline ] && return 0
  out="$(mktemp)"
  # shellcheck disable=SC2294 # the tours' commands are their own literal text
  eval "$command" >"$out" 2>&1 || status=$?
  cat "$out"
  rm -f "$out"
  if [ "$expect_failure" -eq 1 ]; then
    [ "$status" -ne 0 ] || tour_die "'$command' was expected to fail but succeeded"
    printf '(exit status %d)\n' "$status"
  elif [ "$status" -ne 0 ]; then
    fence_close
    tour_die "'$command' failed with exit status $status"
  fi
  return 0
}

# hidden COMMAND: set-up or clean-up nobody needs to read.
hidden() {
  [ "$tour_mode" = outline ] && return 0
  eval "$1"
}

# wait_for SECONDS TEST: poll TEST (a shell expression) every half second.
wait_for() {
  local limit="$1" test="$2" deadline
  [ "$tour_mode" = outline ] && return 0
  deadline=$((SECONDS + limit))
  until eval "$test" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || tour_die "waited ${limit}s for: $test"
    sleep 0.5
  done
}

# job_state JOBID: the job's state word (PENDING, RUNNING, COMPLETED, ...).
job_state() {
  scontrol -o show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1
}
# job_ended JOBID: true once it left the queue's active states.
job_ended() {
  case "$(job_state "$1")" in
  PENDING | RUNNING | COMPLETING | CONFIGURING | SUSPENDED | REQUEUED | RESIZING) return 1 ;;
  *) return 0 ;;
  esac
}

# ---- a real terminal (tmux) for the interactive steps: salloc and srun --pty need one.
# terminal_start: a shell in a detached tmux pane (private tmux server), prompt "login$ ".
# type_in COMMAND [REGEX] [SECONDS]: type COMMAND and Enter, wait until REGEX shows up in
#   what appeared since (default: nothing), then until a shell prompt ends the screen and
#   it stops changing; print "$ COMMAND" and the new screen lines, as typed on a terminal.
# terminal_stop: end the pane (also done when the tour ends).
tour_tmux=""
tour_seen=0
tmux_tour() { tmux -L "$tour_tmux" "$@"; }
terminal_start() {
  [ "$tour_mode" = outline ] && return 0
  command -v tmux >/dev/null 2>&1 ||
    tour_die "the interactive steps need tmux (a terminal for salloc and srun --pty): install it (bash env/debian.sh or apt-get install tmux)."
  tour_tmux="slurmlab-tour-$$"
  # A plain bash with a short prompt; the pane is wide so lines do not wrap.
  tmux_tour -f /dev/null new-session -d -s tour -x 200 -y 50 \
    "env PS1='login\$ ' PROMPT_COMMAND= bash --norc --noprofile -i"
  tmux_tour set-option -g history-limit 10000 >/dev/null
  tour_seen=0
  wait_for 10 'terminal_lines | tail -n 1 | grep -qx "login[$]"'
}
terminal_lines() {
  tmux_tour capture-pane -p -J -S - -t tour | sed 's/ *$//' | awk 'NF { last = NR } { line[NR] = $0 } END { for (i = 1; i <= last; i++) print line[i] }'
}
terminal_stop() {
  [ -n "$tour_tmux" ] || return 0
  tmux_tour kill-server >/dev/null 2>&1 || true
  tour_tmux=""
}
type_in() {
  local command="$1" regex="${2:-}" limit="${3:-60}" deadline before now new count
  fence_open
  printf '$ %s\n' "$command"
  [ "$tour_mode" = outline ] && return 0
  tmux_tour send-keys -t tour -l "$command"
  tmux_tour send-keys -t tour Enter
  deadline=$((SECONDS + limit))
  before=""
  while :; do
    sleep 0.3
    now="$(terminal_lines)"
    new="$(printf '%s\n' "$now" | tail -n +"$((tour_seen + 2))")"
    if { [ -z "$regex" ] || grep -qE -- "$regex" <<<"$new"; } &&
      printf '%s\n' "$now" | tail -n 1 | grep -qE '[$#] ?$' &&
      [ "$now" = "$before" ] && [ -n "$new" ]; then
      break
    fi
    before="$now"
    if [ "$SECONDS" -ge "$deadline" ]; then
      printf '%s\n' "$now" | tail -n 20
      fence_close
      tour_die "typed '$command' but the terminal did not show ${regex:-a prompt} within ${limit}s"
    fi
  done
  # The new lines without the typed line's echo and without the fresh prompt at the end.
  count="$(printf '%s\n' "$now" | wc -l)"
  printf '%s\n' "$new" | head -n -1
  tour_seen=$((count - 1))
}

tour_end() {
  fence_close
}
