# Crash test of a stateful job on a worker: a counting job over many keyed
# records, SIGKILLed at random moments many times and restarted (twice
# with its SQLite state files deleted, so that tasks restore from their
# changelogs and checkpoints); the counts read through the interactive-query
# API must equal an independent count of the input exactly.
#
# The job counts by the input key with no repartition in between: outputs
# are at-least-once, so a repartition before the count could legitimately
# count a record twice after a crash (docs/lua-jobs.md). Store updates and
# input positions commit together, so this job must be exact.
#
# Knobs (environment):
#   RUNNEL_CRASH_RECORDS  records in all (default 3000000: the ASan/UBSan
#                         test build processes about 250k records/s with two
#                         stream threads; with 1M records most kills found
#                         the job idle, with 3M most land while records are
#                         processed and committed; the test takes ~30 s)
#   RUNNEL_CRASH_ROUNDS   produce rounds, each followed by kills (default 3)
#   RUNNEL_CRASH_KILLS    SIGKILLs per round at least (default 5); a round
#                         goes on while kills find input left to read, up to
#                         three times as many
#   RUNNEL_CRASH_SEED     seed of the kill delays (default: random, printed)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/crash_lib.sh"

N=${RUNNEL_CRASH_RECORDS:-3000000}
ROUNDS=${RUNNEL_CRASH_ROUNDS:-3}
KILLS=${RUNNEL_CRASH_KILLS:-5}
crash_setup crashcount RUNNEL_CRASH_SEED "records=$N rounds=$ROUNDS kills/round>=$KILLS"

cat > "$T/job.lua" <<EOF
local job = runnel.job("$JOB")
job:stream("events"):group_by_key():count("counts")
return job
EOF

# Four partitions on two threads: two tasks per thread.
crash_topics events

# The input: round r holds records [from, to). Keys are skewed: 30% go to
# three hot keys, the rest spread over 1000 keys.
gen_round() { # FROM TO FILE
  crash_gen "$1" "$2" "$3" '
    if (i % 10 < 3) k = "hot" (i % 3); else k = "k" ((i * 7919) % 1000)
    printf "%s:v%d\n", k, i'
}

# expected_counts FILES...: "key count" lines, sorted, from the input alone.
expected_counts() {
  cat "$@" | awk -F: '{ c[$1]++ } END { for (k in c) print k, c[k] }' | LC_ALL=C sort
}

# The worker's counts as "key count" lines, sorted (keys have no quotes).
actual_counts() {
  http GET "/jobs/$JOB/stores/counts?limit=0"
  if [ "$CODE" != 200 ]; then echo "range query: $CODE $BODY" >&2; return 0; fi
  sed 's/},{/}\n{/g' <<<"$BODY" | sed -n 's/.*"key":"\([^"]*\)","value":\([0-9]*\)}.*/\1 \2/p' |
    LC_ALL=C sort
}

# compare_counts DESCRIPTION FILES...: the worker's counts against the input.
compare_counts() {
  local d=$1; shift
  expected_counts "$@" > "$T/expected.txt"
  actual_counts > "$T/actual.txt"
  if cmp -s "$T/expected.txt" "$T/actual.txt"; then
    pass
  else
    fail "$d: counts differ from the input; first differing keys (key expected actual):"
    LC_ALL=C join -a 1 -a 2 -e - -o 0,1.2,2.2 "$T/expected.txt" "$T/actual.txt" |
      awk '$2 != $3' | head -20 >&2 || true
    echo "  keys expected $(wc -l < "$T/expected.txt"), got $(wc -l < "$T/actual.txt");" \
         "sum expected $(awk '{s+=$2} END {print s+0}' "$T/expected.txt")," \
         "got $(awk '{s+=$2} END {print s+0}' "$T/actual.txt")" >&2
  fi
}

# The last round starts without state files and is killed during or soon
# after the restore (its first kill not waiting for a busy job).
before_kill() {
  if [ "$r" -eq "$ROUNDS" ] && [ "$1" -eq 1 ]; then delete_state; CYCLE_MODE=; fi
}

DEL_ROUND=$(( ROUNDS >= 2 ? 2 : 1 ))
for r in $(seq 1 "$ROUNDS"); do
  crash_input "$r" gen_round events

  crash_kills "r$r" before_kill

  # Round 2 (or 1) ends without state files: the tasks restore from the
  # changelog up to their checkpoints and read only the input after them.
  if [ "$r" -eq "$DEL_ROUND" ]; then delete_state; fi
  crash_settle "r${r}settle"
  compare_counts "after round $r" "${CRASH_FILES[@]}"
  if [ "$r" -eq "$DEL_ROUND" ]; then
    read_in=$(job_records_in_sum)
    check "restore from checkpoints: read $read_in of $TO records, not all again" \
      test "$read_in" -lt "$TO"
  fi
  if [ "$r" -lt "$ROUNDS" ]; then stop_worker KILL; else stop_worker TERM; fi
done

crash_finish
