# Sourced by the bash tests: named checks that count failures, and a verdict at the end.
#   check WHAT COMMAND...   runs COMMAND; prints "ok: WHAT" or "FAILED: WHAT" and counts it
#   has TEXT REGEX          TEXT has a line matching the extended REGEX
#   has_text TEXT STRING    TEXT contains the fixed STRING
#   finish                  exits 1 naming the failed count, or says all passed
failures=0
check() {
  local what="$1"
  shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; failures=$((failures + 1)); fi
}
has() { grep -qE -- "$2" <<<"$1"; }
has_text() { grep -qF -- "$2" <<<"$1"; }
finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) FAILED"
    exit 1
  fi
  echo "all checks passed"
}
