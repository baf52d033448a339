# Crash test of stream-stream joins on a worker: an inner, a left and an
# outer join of the streams left and right (within 200 ms, grace 10 s), the
# worker SIGKILLed at random moments many times while it reads either side
# (some restarts without its SQLite state files, so that the window stores
# and the outer join's waiting records come back from their changelogs).
#
# The input is built so that an uninterrupted run has one exact result
# whatever the order of the records between the two topics
# (docs/windows-and-joins.md, "Stream-stream joins"). Round r's records lie
# in the event times [B_r, B_r + 10 s), B_(r+1) - B_r = 12 s, so records of
# different rounds never join. A round is two sub-rounds, one per topic,
# each appended only once the one before was read and committed (a clean
# stop): first one side (left in odd rounds, right in even ones) in event
# time order (out of order by less than `within`, so that a record never
# finds its window already past: no early half result), then the other
# side in any order, which joins what the first side's window store holds.
# Nothing of a round closes before its second side is read (grace 10 s
# covers a round), and every waiting record of round r is closed by round
# r + 1's records; a last record far ahead on every partition closes the
# last round. So every join result depends on the state kept across the
# kills (window stores, outer join store, stream time), and the result is:
#   - inner: "l+r" for every left and right record with the same key at
#     most 200 ms apart, with the larger timestamp;
#   - left: the same, plus "l+-" for each left record that has no partner
#     at all, with its own timestamp;
#   - outer: as left, plus "-+r" for each right record without a partner.
# What the test checks:
#   - the outputs (key, value, timestamp) are exactly those: none missing,
#     none other;
#   - copies only as at-least-once allows: within one sub-round a task's
#     input is one topic in offset order, so its outputs are one fixed
#     sequence, and each worker run writes a contiguous piece of it that
#     starts at or before where the run before stopped (the outputs since
#     the last commit, written again) and not before where the run before
#     started (commits do not go back; after the state files were deleted
#     the task restores to its last checkpoint, which may be a commit
#     older: then not before the last clean stop); a run after a clean
#     stop starts with new outputs (no copies), and so does the first.
#
# Knobs: RUNNEL_SJCRASH_RECORDS (records per side and round, default
# 15000), RUNNEL_SJCRASH_ROUNDS (3), RUNNEL_SJCRASH_KEYS (1000),
# RUNNEL_SJCRASH_KILLS (kills per sub-round at least, 4), RUNNEL_SJCRASH_SEED.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/crash_lib.sh"

N=${RUNNEL_SJCRASH_RECORDS:-15000}
ROUNDS=${RUNNEL_SJCRASH_ROUNDS:-3}
KEYS=${RUNNEL_SJCRASH_KEYS:-1000}
KILLS=${RUNNEL_SJCRASH_KILLS:-4}
crash_setup sjcrash RUNNEL_SJCRASH_SEED \
  "records/side/round=$N rounds=$ROUNDS keys=$KEYS kills/sub-round>=$KILLS"

# Event times (ms): round r in [B0 + r * P, B0 + r * P + S); within W,
# grace G >= S (a round's first side waits for its second side).
B0=1000000 S=10000 P=12000 W=200 G=10000
CLOSE_TS=$(( B0 + (ROUNDS + 3) * P )) # > the last round's end + W + G

cat > "$T/job.lua" <<EOF
local job = runnel.job("$JOB")
local ts = function(_, v) return tonumber(v:match("^(%d+),")) end
local left = job:stream("left", { timestamp = ts })
local right = job:stream("right", { timestamp = ts })
-- values are "<event time>,<id>"; a result is "<left id>+<right id>"
local function id(v) return v and v:match(",(.*)$") or "-" end
local function pair(l, r) return id(l) .. "+" .. id(r) end
left:join(right, pair, { within = $W, grace = $G, name = "inner" }):to("inner")
left:left_join(right, pair, { within = $W, grace = $G, name = "left" }):to("lefts")
left:outer_join(right, pair, { within = $W, grace = $G, name = "outer" }):to("outer")
return job
EOF

OUTPUTS="inner lefts outer"
crash_topics left right $OUTPUTS

# gen ROUND SIDE ORDERED FILE: N records "k<j>:<time>,<side><round>_<i>"
# of random keys; ORDERED=1: times rising through the round, each moved
# back by less than W / 2; else anywhere in the round.
gen() {
  crash_gen 0 "$N" "$4" '
    if (i == 0) srand(r * 2 + (side == "r"))
    if (ordered) { ts = base + int(i * s / to) - int(rand() * w / 2); if (ts < base) ts = base }
    else ts = base + int(rand() * s)
    printf "k%d:%d,%s%d_%d\n", int(rand() * keys), ts, side, r, i' \
    r="$1" side="$2" ordered="$3" keys="$KEYS" base=$((B0 + $1 * P)) s="$S" w="$W"
}

# expected FILES...: "topic key value timestamp" of an uninterrupted run,
# sorted (the rules at the top of this file).
expected() {
  cat "$@" | awk -F'[:,]' -v w="$W" '
    { if (substr($3, 1, 1) == "l") { a = ++nl[$1]; lt[$1, a] = $2; li[$1, a] = $3 }
      else { b = ++nr[$1]; rt[$1, b] = $2; ri[$1, b] = $3 } }
    END {
      for (k in nl) for (a = 1; a <= nl[k]; a++) for (b = 1; b <= nr[k]; b++) {
        d = lt[k, a] - rt[k, b]
        if (d < -w || d > w) continue
        t = d > 0 ? lt[k, a] : rt[k, b]
        print "inner", k, li[k, a] "+" ri[k, b], t
        print "lefts", k, li[k, a] "+" ri[k, b], t
        print "outer", k, li[k, a] "+" ri[k, b], t
        lm[k, a] = 1; rm[k, b] = 1
      }
      for (k in nl) for (a = 1; a <= nl[k]; a++) if (!((k, a) in lm)) {
        print "lefts", k, li[k, a] "+-", lt[k, a]
        print "outer", k, li[k, a] "+-", lt[k, a]
      }
      for (k in nr) for (b = 1; b <= nr[k]; b++) if (!((k, b) in rm)) print "outer", k, "-+" ri[k, b], rt[k, b]
    }' | LC_ALL=C sort
}

# Every worker run starts with a mark: "M <run> <how> <topic> <partition>
# <end offset>" for every output topic; how: 1 the run before stopped
# cleanly (or there was none), 0 it was killed, 2 killed and then the
# state files deleted.
RUN=0
PREV_CLEAN=1
mark() { # [STATE_DELETED]
  local t how=$PREV_CLEAN
  RUN=$((RUN + 1))
  if [ "$how" = 0 ] && [ "${1:-0}" = 1 ]; then how=2; fi
  for t in $OUTPUTS; do
    R topics describe "$t" |
      sed -n "s/.*Partition: \([0-9]*\).*EndOffset: \([0-9]*\).*/M $RUN $how $t \1 \2/p" >> "$T/marks.txt"
  done
  PREV_CLEAN=0
}

# Before each kill: the mark, the state files deleted before kill DEL_AT
# (0: never) of this sub-round, and no waiting for a busy job when the
# sub-round has only a few records (NO_BUSY=1).
DEL_AT=0
NO_BUSY=0
before_kill() {
  if [ "$NO_BUSY" = 1 ]; then CYCLE_MODE=; fi
  if [ "$1" -eq "$DEL_AT" ]; then delete_state; mark 1; else mark; fi
}

# sub_round NAME TOPIC FILE DEL_AT: appends FILE (or nothing when FILE is
# -) to TOPIC, kills the worker KILLS times at least, then reads the rest
# and stops cleanly (a commit).
sub_round() {
  if [ "$3" != - ]; then R produce "$2" --key-delimiter : < "$3" >/dev/null; fi
  DEL_AT=$4
  crash_kills "$1" before_kill
  mark
  crash_settle "$1settle" 90
  stop_worker TERM
  PREV_CLEAN=1
  assert_eq "$1: clean stop" 0 "$STATUS"
}

files=()
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then first=left second=right; else first=right second=left; fi
  gen "$r" "${first:0:1}" 1 "$T/${first}_$r.txt"
  gen "$r" "${second:0:1}" 0 "$T/${second}_$r.txt"
  files+=("$T/${first}_$r.txt" "$T/${second}_$r.txt")
  # Restores from the changelogs: of the left window store (round 1), the
  # right one (round 2), while the first side is read (round 3).
  del_first=0 del_second=0
  case $r in 1 | 2) del_second=1 ;; 3) del_first=2 ;; esac
  sub_round "r${r}${first:0:1}" "$first" "$T/${first}_$r.txt" "$del_first"
  sub_round "r${r}${second:0:1}" "$second" "$T/${second}_$r.txt" "$del_second"
done
# The closing record: every waiting record of the last round gives its
# half (the outer join store restored from its changelog first).
crash_produce_all left "zz:$CLOSE_TS,close"
NO_BUSY=1
sub_round close left - 1

# "topic partition offset key value timestamp" of the output topics.
for t in $OUTPUTS; do
  R consume "$t" --from-beginning --format json |
    sed -n 's/^{"topic":"\([^"]*\)","partition":\([0-9]*\),"offset":\([0-9]*\),"timestamp":\([0-9]*\),"key":"\([^"]*\)","value":"\([^"]*\)".*/\1 \2 \3 \5 \6 \4/p'
done | LC_ALL=C sort -k1,1 -k2,2n -k3,3n > "$T/actual.txt"

expected "${files[@]}" > "$T/expected.txt"
cut -d' ' -f1,4- "$T/actual.txt" | LC_ALL=C sort -u > "$T/actual-set.txt"
LC_ALL=C comm -23 "$T/expected.txt" "$T/actual-set.txt" > "$T/missing.txt"
assert_eq "join results missing (of $(wc -l < "$T/expected.txt"))" "" "$(sed -n 1,5p "$T/missing.txt")"
LC_ALL=C comm -13 "$T/expected.txt" "$T/actual-set.txt" > "$T/wrong.txt"
assert_eq "join results an uninterrupted run does not give" "" "$(sed -n 1,5p "$T/wrong.txt")"

# The copies: the rules at the top of this file, per output partition.
report=$(awk '
  $1 == "M" { start[$4, $5, $2] = $6; how[$2] = $3; if ($2 > nrun) nrun = $2; next }
  function bad(msg) { if (nbad++ < 5) print $1 "/" $2 " offset " $3 ": " msg }
  {
    tp = $1 SUBSEP $2; rec = $4 " " $5 " " $6
    if (tp != cur_tp) { cur_tp = tp; run = 0; n = 0; pos = 0; prev_start = 0; was_clean = 0; was_deleted = 0 }
    # The run that wrote this offset; a new run starts a new piece.
    newrun = 0
    while (run < nrun && start[tp, run + 1] <= $3) {
      run++; newrun = 1
      if (how[run] == 1) { was_clean = 1; clean_n = n }
      if (how[run] == 2) was_deleted = 1
    }
    if (newrun) {
      if ((tp, rec) in idx) {
        j = idx[tp, rec]
        if (was_clean) bad("run " run " (after a clean stop) writes again " rec)
        else if (was_deleted && j < clean_n) bad("run " run " (state files deleted) writes again " rec ", from before the last clean stop")
        else if (!was_deleted && j < prev_start) bad("run " run " writes again " rec ", from before where the run before started")
        pos = j
      } else pos = n
      prev_start = pos; was_clean = 0; was_deleted = 0; resent += (pos < n)
    }
    if (pos < n) {
      if (seq[tp, pos] != rec) bad("run " run " writes " rec " where its copies have " seq[tp, pos])
      pos++; copies++
    } else if ((tp, rec) in idx) {
      bad("run " run " writes " rec " again, not as a copy of the outputs before it")
      copies++
    } else { seq[tp, n] = rec; idx[tp, rec] = n; n++; pos = n }
  }
  END { printf "OK %d %d %d\n", copies + 0, resent + 0, nbad + 0 }' "$T/marks.txt" "$T/actual.txt")
read -r copies resent nbad <<<"${report##*OK }"
if [ "$nbad" = 0 ]; then pass; else fail "copies that at-least-once does not allow:"; echo "$report" | head -5 >&2; fi
echo "$(wc -l < "$T/expected.txt") join results; $copies at-least-once copies" \
     "($resent times a partition's outputs re-sent after a restart); $RUN worker runs"

crash_finish
