# Crash test of a windowed aggregation with suppression on a worker: counts
# per key in tumbling windows of 1 s (2 s of grace, 10% of the records out
# of order within the grace, some far too late for the dead-letter topic),
# suppressed until each window closes, written to a topic. The worker is
# SIGKILLed at random moments many times and restarted (once with its
# SQLite state files deleted, so that the window store, the suppression
# buffer and stream time come back from the changelogs and checkpoints).
#
# What must hold (docs/windows-and-joins.md, "Restarts"):
#   - the set of final results equals what an uninterrupted run gives,
#     computed here from the input alone: one line per (key, window) with
#     its exact count, none missing (no committed final result is lost),
#     none with another count (state is exactly-once);
#   - a final result may appear more than once, only as an exact copy
#     (outputs are at-least-once: a batch appended before a crash that
#     preceded its commit is appended again), and without crashes (a last
#     run over a fresh data dir) never;
#   - every late record reaches the dead-letter topic (copies allowed
#     likewise) and no other record does.
#
# Knobs: RUNNEL_WCRASH_RECORDS (default 300000), RUNNEL_WCRASH_ROUNDS (3),
# RUNNEL_WCRASH_KILLS (5 per round at least), RUNNEL_WCRASH_SEED.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/crash_lib.sh"

N=${RUNNEL_WCRASH_RECORDS:-300000}
ROUNDS=${RUNNEL_WCRASH_ROUNDS:-3}
KILLS=${RUNNEL_WCRASH_KILLS:-5}
SEED=${RUNNEL_WCRASH_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$SEED
echo "records=$N rounds=$ROUNDS kills/round>=$KILLS seed=$SEED (RUNNEL_WCRASH_SEED=$SEED reproduces the delays)"

D="$T/data"
JOB=wincrash
R() { "$RUNNEL" "$@" --data-dir "$D"; }
WORKER_ARGS=(run "$T/job.lua" --data-dir "$D" --set listeners=http://127.0.0.1:0
             --set commit.interval.ms=100 --set stream.threads=2)

# Values are "<event time>,v<i>"; the final results "key start count".
cat > "$T/job.lua" <<EOF
local job = runnel.job("$JOB")
job:stream("events", { timestamp = function(_, v) return tonumber(v:match("^(%d+),")) end })
   :group_by_key()
   :window{ tumbling = "1s", grace = "2s", late = "dlq" }
   :count("per-second")
   :suppress{ ["until"] = "window_close" }
   :to_stream()
   :map(function(w, n) return w.key, w.key .. " " .. w.start .. " " .. n end)
   :to("final")
return job
EOF

R topics create events --partitions 4 >/dev/null

# Record i: key k(i % 50), event time 1e6 + 2i ms; every 10th (by a
# scramble) moved back by up to 1.5 s (inside the grace); every 997th
# moved back 100 s (late: every partition's stream time is far past it).
gen_round() { # FROM TO FILE
  awk -v from="$1" -v to="$2" 'BEGIN {
    for (i = from; i < to; i++) {
      ts = 1000000 + 2 * i
      if (i > 0 && i % 997 == 0) ts -= 100000
      else if ((i * 7919) % 10 == 0) ts -= (i * 31) % 1500
      printf "k%d:%d,v%d\n", i % 50, ts, i
    }
  }' > "$3"
}

# The final results of an uninterrupted run: every (key, window) of the
# records that are not late, with its count ("key start count", sorted).
expected_finals() {
  cat "$@" | awk -F'[:,]' '{ i = substr($3, 2) + 0; if (i > 0 && i % 997 == 0) next
                              s = $2 - $2 % 1000; c[$1 " " s]++ }
                            END { for (w in c) print w, c[w] }' | LC_ALL=C sort
}
expected_late() {
  cat "$@" | awk -F: '{ split($2, a, ","); i = substr(a[2], 2) + 0
                        if (i > 0 && i % 997 == 0) print $2 }' | LC_ALL=C sort
}

delete_state() { rm -f "$D/state/$JOB"/*.db*; }

# check_finals DESCRIPTION COMPLETE FILES...: (worker stopped: the CLI
# reads the data dir) the "final" topic against the
# expected results: every line is one of them (always), and every one of
# them is there (COMPLETE=1, once every window has closed).
check_finals() {
  local d=$1 complete=$2; shift 2
  expected_finals "$@" > "$T/expected.txt"
  R consume final --from-beginning > "$T/final-all.txt"
  LC_ALL=C sort -u "$T/final-all.txt" > "$T/final.txt"
  local wrong
  wrong=$(LC_ALL=C comm -13 "$T/expected.txt" "$T/final.txt" | head -5)
  assert_eq "$d: final results that an uninterrupted run does not give" "" "$wrong"
  if [ "$complete" = 1 ]; then
    local missing
    missing=$(LC_ALL=C comm -23 "$T/expected.txt" "$T/final.txt" | head -5)
    assert_eq "$d: final results missing" "" "$missing"
    echo "$d: $(wc -l < "$T/expected.txt") windows, $(wc -l < "$T/final-all.txt") final records" \
         "($(( $(wc -l < "$T/final-all.txt") - $(wc -l < "$T/final.txt") )) at-least-once copies)"
  fi
}

DEL_ROUND=$(( ROUNDS >= 2 ? 2 : 1 ))
start_s=$(date +%s)
files=()
for r in $(seq 1 "$ROUNDS"); do
  from=$(( N * (r - 1) / ROUNDS )); to=$(( N * r / ROUNDS ))
  gen_round "$from" "$to" "$T/in$r.txt"
  files+=("$T/in$r.txt")
  R produce events --key-delimiter : < "$T/in$r.txt" >/dev/null
  if [ "$r" -eq "$ROUNDS" ]; then
    # Far in event time, on every partition: every window closes.
    for p in 0 1 2 3; do
      echo "zz:$(( 1000000 + 2 * N + 1000000 )),close" | R produce events --key-delimiter : -p "$p" >/dev/null
    done
  fi
  c=0
  BUSY=1
  while [ "$c" -lt "$KILLS" ] || { [ "$BUSY" = 1 ] && [ "$c" -lt $((3 * KILLS)) ]; }; do
    c=$((c + 1))
    # The first kill of a round waits until the job is busy (a fast machine
    # may otherwise finish between kills).
    if [ "$c" -eq 1 ]; then crash_cycle "r${r}c$c" busy; else crash_cycle "r${r}c$c"; fi
  done
  if [ "$r" -eq "$DEL_ROUND" ]; then delete_state; fi
  start_worker "r${r}settle" "${WORKER_ARGS[@]}"
  wait_job_idle 90 || true
  if [ "$r" -lt "$ROUNDS" ]; then stop_worker KILL; else stop_worker TERM; fi
  complete=0
  [ "$r" -eq "$ROUNDS" ] && complete=1
  check_finals "after round $r" "$complete" "${files[@]}"
done

# Late records: all of them in the dead-letter topic, nothing else.
expected_late "${files[@]}" > "$T/late-expected.txt"
R consume "$JOB-dlq" --from-beginning | LC_ALL=C sort -u > "$T/late.txt"
check "late records are exactly the dead letters ($(wc -l < "$T/late-expected.txt") expected)" \
  cmp -s "$T/late-expected.txt" "$T/late.txt"

# Without crashes there are no copies at all: the first round's input
# (and the closing records) through a fresh worker, never killed.
D="$T/data-uninterrupted"
R topics create events --partitions 4 >/dev/null
R produce events --key-delimiter : < "$T/in1.txt" >/dev/null
for p in 0 1 2 3; do
  echo "zz:$(( 1000000 + 2 * N + 1000000 )),close" | R produce events --key-delimiter : -p "$p" >/dev/null
done
WORKER_ARGS=(run "$T/job.lua" --data-dir "$D" --set listeners=http://127.0.0.1:0
             --set commit.interval.ms=100 --set stream.threads=2)
start_worker "uninterrupted" "${WORKER_ARGS[@]}"
wait_job_idle 90 || true
stop_worker TERM
check_finals "uninterrupted run of round 1" 1 "$T/in1.txt"
assert_eq "uninterrupted run: no copies" "$(wc -l < "$T/final.txt")" "$(wc -l < "$T/final-all.txt")"

echo "kills: $KILLED, of which $KILLED_BUSY with input left to read; $(( $(date +%s) - start_s )) s"
check "some kills hit while records were being processed" test "$KILLED_BUSY" -ge 1
assert_eq "clean stop at the end" 0 "$STATUS"
if grep -l 'ERROR\|AddressSanitizer\|runtime error' "$T"/*.log >/dev/null 2>&1; then
  fail "errors in worker logs: $(grep -l 'ERROR\|AddressSanitizer\|runtime error' "$T"/*.log | tr '\n' ' ')"
fi
finish
