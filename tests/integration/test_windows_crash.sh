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
crash_setup wincrash RUNNEL_WCRASH_SEED "records=$N rounds=$ROUNDS kills/round>=$KILLS"

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

crash_topics events

# Record i: key k(i % 50), event time 1e6 + 2i ms; every 10th (by a
# scramble) moved back by up to 1.5 s (inside the grace); every 997th
# moved back 100 s (late: every partition's stream time is far past it).
gen_round() { # FROM TO FILE
  crash_gen "$1" "$2" "$3" '
    ts = 1000000 + 2 * i
    if (i > 0 && i % 997 == 0) ts -= 100000
    else if ((i * 7919) % 10 == 0) ts -= (i * 31) % 1500
    printf "k%d:%d,v%d\n", i % 50, ts, i'
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
  # (through files: `comm | head` would fail the pipeline on a long diff)
  LC_ALL=C comm -13 "$T/expected.txt" "$T/final.txt" > "$T/wrong.txt"
  wrong=$(sed -n 1,5p "$T/wrong.txt")
  assert_eq "$d: final results that an uninterrupted run does not give" "" "$wrong"
  if [ "$complete" = 1 ]; then
    local missing
    LC_ALL=C comm -23 "$T/expected.txt" "$T/final.txt" > "$T/missing.txt"
    missing=$(sed -n 1,5p "$T/missing.txt")
    assert_eq "$d: final results missing" "" "$missing"
    echo "$d: $(wc -l < "$T/expected.txt") windows, $(wc -l < "$T/final-all.txt") final records" \
         "($(( $(wc -l < "$T/final-all.txt") - $(wc -l < "$T/final.txt") )) at-least-once copies)"
  fi
}

DEL_ROUND=$(( ROUNDS >= 2 ? 2 : 1 ))
for r in $(seq 1 "$ROUNDS"); do
  crash_input "$r" gen_round events
  if [ "$r" -eq "$ROUNDS" ]; then
    # Far in event time, on every partition: every window closes.
    crash_produce_all events "zz:$(( 1000000 + 2 * N + 1000000 )),close"
  fi
  crash_kills "r$r"
  if [ "$r" -eq "$DEL_ROUND" ]; then delete_state; fi
  crash_settle "r${r}settle" 90
  if [ "$r" -lt "$ROUNDS" ]; then stop_worker KILL; else stop_worker TERM; fi
  complete=0
  [ "$r" -eq "$ROUNDS" ] && complete=1
  check_finals "after round $r" "$complete" "${CRASH_FILES[@]}"
done

# Late records: all of them in the dead-letter topic, nothing else.
expected_late "${CRASH_FILES[@]}" > "$T/late-expected.txt"
R consume "$JOB-dlq" --from-beginning | LC_ALL=C sort -u > "$T/late.txt"
check "late records are exactly the dead letters ($(wc -l < "$T/late-expected.txt") expected)" \
  cmp -s "$T/late-expected.txt" "$T/late.txt"

# Without crashes there are no copies at all: the first round's input
# (and the closing records) through a fresh worker, never killed.
crash_data_dir "$T/data-uninterrupted"
crash_topics events
R produce events --key-delimiter : < "$T/in1.txt" >/dev/null
crash_produce_all events "zz:$(( 1000000 + 2 * N + 1000000 )),close"
crash_settle "uninterrupted" 90
stop_worker TERM
check_finals "uninterrupted run of round 1" 1 "$T/in1.txt"
assert_eq "uninterrupted run: no copies" "$(wc -l < "$T/final.txt")" "$(wc -l < "$T/final-all.txt")"

crash_finish
