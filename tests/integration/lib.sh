# lib.sh: helpers for integration tests, which run the real `runnel` binary.
# Sourced by tests/integration/test_*.sh. ctest sets RUNNEL (the binary),
# RUNNEL_TEST_TMP (scratch space) and RUNNEL_SOURCE_DIR.
set -euo pipefail

: "${RUNNEL:?set RUNNEL to the runnel binary}"
: "${RUNNEL_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
TEST_NAME=$(basename "$0" .sh)
mkdir -p "${RUNNEL_TEST_TMP:-/tmp}"
T=$(mktemp -d "${RUNNEL_TEST_TMP:-/tmp}/$TEST_NAME.XXXXXX")
PASSED=0
FAILED=0
WORKER_PIDS=()

cleanup() {
  local pid
  for pid in "${WORKER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ "$FAILED" -eq 0 ]; then rm -rf "$T"; else echo "(scratch kept in $T)"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; FAILED=$((FAILED + 1)); }
pass() { PASSED=$((PASSED + 1)); }

# check DESCRIPTION COMMAND...: runs the command; a non-zero status fails.
check() { local d=$1; shift; if "$@"; then pass; else fail "$d"; fi; }

assert_eq() { # description expected actual
  if [ "$2" == "$3" ]; then pass; else fail "$1: expected [$2], got [$3]"; fi
}
assert_contains() { # description haystack needle
  if [[ "$2" == *"$3"* ]]; then pass; else fail "$1: [$3] not found in [$2]"; fi
}
assert_not_contains() {
  if [[ "$2" != *"$3"* ]]; then pass; else fail "$1: [$3] unexpectedly found in [$2]"; fi
}

# wait_for DESCRIPTION COMMAND...: retries the command every 0.1 s until it
# succeeds (pass) or WAIT_FOR_SECONDS (default 20) have passed (fail). A
# test may define its own instead.
wait_for() {
  local d=$1 i; shift
  for i in $(seq 1 $((${WAIT_FOR_SECONDS:-20} * 10))); do
    if "$@" >/dev/null 2>&1; then pass; return 0; fi
    sleep 0.1
  done
  fail "$d (waited ${WAIT_FOR_SECONDS:-20} s)"
  return 0
}

# Closing line that ctest output shows; exit status says it all.
finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# start_worker NAME [run] ARGS...: starts `runnel worker ARGS` (or
# `runnel run ARGS`) in the background with its stderr in $T/NAME.log, waits
# for "started", and sets PORT (the first listener's port) and WORKER_PID.
start_worker() {
  local name=$1 cmd=worker; shift
  if [ "${1:-}" = run ]; then cmd=run; shift; fi
  "$RUNNEL" "$cmd" "$@" 2>"$T/$name.log" &
  WORKER_PID=$!
  WORKER_PIDS+=("$WORKER_PID")
  local i
  for i in $(seq 1 200); do
    if grep -q "worker: started" "$T/$name.log" 2>/dev/null; then
      PORT=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\)$/\1/p' "$T/$name.log" | head -1)
      return 0
    fi
    if ! kill -0 "$WORKER_PID" 2>/dev/null; then
      echo "worker $name exited during start-up:" >&2; cat "$T/$name.log" >&2; return 1
    fi
    sleep 0.05
  done
  echo "worker $name did not start in 10 s:" >&2; cat "$T/$name.log" >&2
  return 1
}

# stop_worker [SIGNAL]: signals the worker, waits up to 20 s, sets STATUS.
stop_worker() {
  local sig=${1:-TERM} i
  kill -"$sig" "$WORKER_PID"
  for i in $(seq 1 400); do
    kill -0 "$WORKER_PID" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$WORKER_PID" 2>/dev/null; then
    fail "worker did not stop within 20 s of SIG$sig"; kill -KILL "$WORKER_PID"
  fi
  STATUS=0
  wait "$WORKER_PID" || STATUS=$?
}

# http METHOD PATH [curl args...]: sets CODE and BODY.
http() {
  local method=$1 path=$2; shift 2
  local out
  out=$(curl -s -S -X "$method" -o "$T/.body" -w '%{http_code}' "$@" \
        "http://127.0.0.1:$PORT$path") || out=000
  CODE=$out
  BODY=$(cat "$T/.body" 2>/dev/null || true)
}

# raw_http TEXT: sends TEXT over a fresh TCP connection, prints the reply.
raw_http() {
  exec 3<>"/dev/tcp/127.0.0.1/$PORT"
  printf '%b' "$1" >&3
  timeout 5 cat <&3 || true
  exec 3>&-
}
