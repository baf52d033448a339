# crash_lib.sh: helpers for crash tests of a job on a worker (sourced after
# lib.sh). The caller sets JOB (the job's name) and WORKER_ARGS (the
# arguments of `runnel`, e.g. (run job.lua --data-dir D ...)).
#
#   job_lag_sum        the job's total input lag from /status, or "" when a
#                      task is not RUNNING
#   job_records_in_sum records this worker process read, over all tasks
#   wait_job_idle [S]  polls until every task runs with lag 0 (S seconds, 60)
#   crash_cycle NAME [busy]
#                      starts the worker, SIGKILLs it after 0.2-1.5 s
#                      (RANDOM: seed it), or with `busy` as soon as the job
#                      shows input left to read, counts kills (KILLED) and kills
#                      that hit while input was unread (KILLED_BUSY; BUSY=1
#                      for this one), and fails on errors in its log
# CUR_PID is killed by the exit trap if the script stops in between.

job_lag_sum() {
  http GET "/jobs/$JOB/status"
  [[ "$CODE" == 200 && "$BODY" == *'"state":"RUNNING"'* ]] || { echo ""; return 0; }
  grep -o '"lag":[0-9-]*' <<<"$BODY" | awk -F: '{ s += $2 } END { print s + 0 }'
}

job_records_in_sum() {
  http GET "/jobs/$JOB/status"
  grep -o '"records_in":[0-9]*' <<<"$BODY" | awk -F: '{ s += $2 } END { print s + 0 }'
}

wait_job_idle() { # [SECONDS, default 60]
  local i lag s=${1:-60}
  for i in $(seq 1 $((s * 10))); do
    lag=$(job_lag_sum)
    [ "$lag" = 0 ] && return 0
    sleep 0.1
  done
  http GET "/jobs/$JOB/status"
  fail "job did not catch up within $s s: $BODY"
  return 1
}

CUR_PID=
trap 'if [ -n "$CUR_PID" ]; then kill -KILL "$CUR_PID" 2>/dev/null || true; fi; cleanup' EXIT
KILLED=0
KILLED_BUSY=0
crash_port() { sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\)$/\1/p' "$T/$1.log" | head -1; }
crash_cycle() {
  local name=$1 mode=${2:-}
  "$RUNNEL" "${WORKER_ARGS[@]}" 2>"$T/$name.log" &
  CUR_PID=$!
  local ms=$(( 200 + RANDOM % 1301 )) i
  if [ "$mode" = busy ]; then
    # Wait (up to 10 s) until the job is seen with input left to read, then
    # a little more: on a fast machine a fixed delay can miss the whole
    # time the job works.
    for i in $(seq 1 200); do
      PORT=$(crash_port "$name")
      [ -n "$PORT" ] && [ "$(job_lag_sum)" != "" ] && [ "$(job_lag_sum)" -gt 0 ] && break
      sleep 0.05
    done
    ms=$(( RANDOM % 150 ))
  fi
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  if ! kill -0 "$CUR_PID" 2>/dev/null; then
    fail "$name: the worker exited by itself:"; cat "$T/$name.log" >&2
  fi
  PORT=$(crash_port "$name")
  local lag=""
  BUSY=0
  [ -n "$PORT" ] && lag=$(job_lag_sum)
  kill -KILL "$CUR_PID" 2>/dev/null || true
  wait "$CUR_PID" 2>/dev/null || true
  CUR_PID=
  KILLED=$((KILLED + 1))
  if [ -n "$lag" ] && [ "$lag" -gt 0 ]; then KILLED_BUSY=$((KILLED_BUSY + 1)); BUSY=1; fi
  if grep -q 'ERROR\|AddressSanitizer\|runtime error' "$T/$name.log"; then
    fail "$name: errors in the worker log:"; grep 'ERROR\|AddressSanitizer\|runtime error' "$T/$name.log" | head -5 >&2
  fi
}
