# crash_lib.sh: helpers for crash tests of a job on a worker (sourced after
# lib.sh). A test writes its job to $T/job.lua and calls crash_setup first.
#
#   crash_setup JOB SEED_VAR TEXT
#                      the start-up every crash test shares: JOB, RANDOM
#                      seeded from the environment variable named SEED_VAR
#                      (default: the clock), TEXT and the seed printed, the
#                      data dir D with WORKER_ARGS (`runnel run $T/job.lua`
#                      on it, two stream threads, commits every 100 ms)
#   crash_data_dir DIR the same D and WORKER_ARGS for another data dir
#   R ARGS...          the CLI on D (only while no worker runs)
#   crash_topics T...  creates topics of CRASH_PARTITIONS (4) partitions
#   crash_produce_all TOPIC KEY:VALUE
#                      appends the record to every partition of TOPIC
#   crash_gen FROM TO FILE PROGRAM [VAR=VALUE...]
#                      writes FILE with awk: PROGRAM (statements that print
#                      the lines of record i) for i = FROM .. TO-1, with the
#                      awk variables VAR set
#   crash_input ROUND GEN TOPIC
#                      round ROUND's share [FROM, TO) of N records over
#                      ROUNDS rounds: `GEN FROM TO FILE` writes it to
#                      $T/inROUND.txt, which is added to CRASH_FILES and
#                      appended to TOPIC
#   delete_state       deletes the job's SQLite state files
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
#   crash_kills NAME [HOOK]
#                      a round of kills: crash_cycle NAMEc1, NAMEc2, ...,
#                      KILLS times at least and on while kills find input left
#                      to read (up to 3 * KILLS); the first one `busy`. HOOK
#                      runs before each with the kill's number and may set
#                      CYCLE_MODE ("" or busy) for it
#   crash_settle NAME [S]
#                      starts the worker for good (start_worker) and waits
#                      until the job has read its input (S seconds, 60)
#   crash_finish       the closing checks (some kill found the job busy, the
#                      last stop was clean, no errors in any worker log),
#                      then finish
# CUR_PID is killed by the exit trap if the script stops in between.

CRASH_PARTITIONS=4

crash_data_dir() { # DIR
  D=$1
  WORKER_ARGS=(run "$T/job.lua" --data-dir "$D" --set listeners=http://127.0.0.1:0
               --set commit.interval.ms=100 --set stream.threads=2)
}

crash_setup() { # JOB SEED_VAR TEXT
  JOB=$1
  SEED=${!2:-$(( $(date +%s) % 32768 ))}
  RANDOM=$SEED
  echo "$3 seed=$SEED ($2=$SEED reproduces the kill delays)"
  crash_data_dir "$T/data"
  CRASH_START_S=$(date +%s)
}

R() { "$RUNNEL" "$@" --data-dir "$D"; }

crash_topics() {
  local t
  for t in "$@"; do R topics create "$t" --partitions "$CRASH_PARTITIONS" >/dev/null; done
}

crash_produce_all() { # TOPIC KEY:VALUE
  local p
  for p in $(seq 0 $((CRASH_PARTITIONS - 1))); do
    echo "$2" | R produce "$1" --key-delimiter : -p "$p" >/dev/null
  done
}

crash_gen() { # FROM TO FILE PROGRAM [VAR=VALUE...]
  local from=$1 to=$2 file=$3 prog=$4 vars=() v
  shift 4
  for v in "$@"; do vars+=(-v "$v"); done
  awk -v from="$from" -v to="$to" "${vars[@]}" \
    "BEGIN { for (i = from; i < to; i++) { $prog } }" > "$file"
}

CRASH_FILES=()
crash_input() { # ROUND GEN TOPIC
  FROM=$(( N * ($1 - 1) / ROUNDS )) TO=$(( N * $1 / ROUNDS ))
  "$2" "$FROM" "$TO" "$T/in$1.txt"
  CRASH_FILES+=("$T/in$1.txt")
  R produce "$3" --key-delimiter : < "$T/in$1.txt" >/dev/null
}

delete_state() { rm -f "$D/state/$JOB"/*.db*; }

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
crash_port() { # (the log appears once the background shell opened it)
  [ -f "$T/$1.log" ] || return 0
  sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\)$/\1/p' "$T/$1.log" | head -1
}
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

crash_kills() { # NAME [HOOK]
  local name=$1 hook=${2:-} c=0
  BUSY=1
  while [ "$c" -lt "$KILLS" ] || { [ "$BUSY" = 1 ] && [ "$c" -lt $((3 * KILLS)) ]; }; do
    c=$((c + 1))
    # The first kill waits until the job is busy: on a fast machine a fixed
    # delay may find every round already done.
    CYCLE_MODE=
    [ "$c" -eq 1 ] && CYCLE_MODE=busy
    if [ -n "$hook" ]; then "$hook" "$c"; fi
    crash_cycle "${name}c$c" ${CYCLE_MODE:+"$CYCLE_MODE"}
  done
}

crash_settle() { # NAME [SECONDS]
  start_worker "$1" "${WORKER_ARGS[@]}"
  wait_job_idle "${2:-60}" || true
}

crash_finish() {
  echo "kills: $KILLED, of which $KILLED_BUSY with input left to read; $(( $(date +%s) - CRASH_START_S )) s"
  check "some kills hit while records were being processed" test "$KILLED_BUSY" -ge 1
  assert_eq "clean stop at the end" 0 "$STATUS"
  if grep -l 'ERROR\|AddressSanitizer\|runtime error' "$T"/*.log >/dev/null 2>&1; then
    fail "errors in worker logs: $(grep -l 'ERROR\|AddressSanitizer\|runtime error' "$T"/*.log | tr '\n' ' ')"
  fi
  finish
}
