# Crash test of a stream-table join on a worker: orders joined with a
# customers table, the worker SIGKILLed at random moments many times while
# it reads the table, and while it joins the orders; once with its state
# files deleted (the table restores from its changelog and checkpoint).
#
# Rounds alternate between table records and order records (the CLI cannot
# append while the worker runs, and each round is read to its end before
# the next), so an uninterrupted run has one exact result: each order
# joined with its customer's row as of the last table round before it.
# What the test checks, per output partition (input and output topics have
# the same partition count, so each output partition is one task's):
#   - every order gives its exact joined record (left join: "none" without
#     a row), at least once;
#   - no record other than those (a stale or missing row would show);
#   - the first occurrences come in the order of the input partition;
#   - a repeated record is identical to its first occurrence: the only
#     duplicates are the re-sent outputs at-least-once allows (records
#     written since the task's last commit, written again after a crash);
#   - the table store (interactive queries) equals the last table round.
#
# Knobs: RUNNEL_CRASH_ORDERS (orders per order round, default 150000),
# RUNNEL_CRASH_KEYS (customers, default 10000), RUNNEL_CRASH_KILLS (kills
# per round at least, default 3), RUNNEL_CRASH_SEED (kill delays).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/crash_lib.sh"

N=${RUNNEL_CRASH_ORDERS:-150000}
K=${RUNNEL_CRASH_KEYS:-10000}
KILLS=${RUNNEL_CRASH_KILLS:-3}
crash_setup crashjoin RUNNEL_CRASH_SEED "orders/round=$N customers=$K kills/round>=$KILLS"

cat > "$T/job.lua" <<EOF
local job = runnel.job("$JOB")
local customers = job:table("customers", { store = "customers" })
job:stream("orders")
   :left_join(customers, function(o, c) return o .. "|" .. (c or "none") end)
   :to("enriched")
return job
EOF

crash_topics customers orders enriched

# Table round V: customers c0..c(K-1) get "vV-cJ" (round 1: all of them;
# round 2: every third one). Order round: orders o(FROM)..o(TO-1), keyed by
# a customer; one in twenty has a key with no row (c(K + ...)).
gen_table() { # V FILE
  crash_gen 0 "$K" "$2" 'if (v == 1 || i % 3 == 0) printf "c%d:v%d-c%d\n", i, v, i' v="$1"
}
gen_orders() { # FROM TO FILE
  crash_gen "$1" "$2" "$3" '
    j = (i * 7919) % k
    if (i % 20 == 0) j = k + i % 100
    printf "c%d:o%d\n", j, i' k="$K"
}

# "partition<TAB>value" lines of a topic, in offset order per partition.
dump() { # TOPIC
  R consume "$1" --from-beginning --format json |
    sed -n 's/^{"topic":"[^"]*","partition":\([0-9]*\),.*"key":"\([^"]*\)","value":"\([^"]*\)".*/\1\t\2\t\3/p'
}

# expected_outputs: each order of the orders topic (per partition, in
# order) joined with its customer's row as of the last table round before
# its order round: table_1.tsv for o0..o(N-1), table_2.tsv after that
# (snapshots of the customers topic taken after each table round).
snapshot_table() { # ROUND
  dump customers > "$T/table_$1.tsv"
}
expected_outputs() {
  dump orders > "$T/orders.tsv"
  local t2="$T/table_2.tsv"
  [ -f "$t2" ] || t2="$T/table_1.tsv"
  awk -F'\t' -v n="$N" '
    FILENAME == ARGV[1] { row1[$2] = $3; next }
    FILENAME == ARGV[2] { row2[$2] = $3; next }
    {
      i = substr($3, 2) + 0
      if (i < n) r = ($2 in row1) ? row1[$2] : "none"
      else r = ($2 in row2) ? row2[$2] : "none"
      printf "%s\t%s|%s\n", $1, $3, r
    }' "$T/table_1.tsv" "$t2" "$T/orders.tsv"
}

# check_outputs DESCRIPTION: the rules at the top of this file.
check_outputs() {
  expected_outputs > "$T/expected.tsv"
  dump enriched | awk -F'\t' '{ print $1 "\t" $3 }' > "$T/actual.tsv"
  local report
  report=$(awk -F'\t' '
    NR == FNR { ex[$1, n[$1]++] = $2; total++; next }
    {
      p = $1; v = $2
      if ((p, v) in seen) { dups++; next }
      want = ex[p, at[p] + 0]
      if (v != want) {
        if (bad++ < 5) printf "partition %s: got %s, expected %s (position %d)\n", p, v, want, at[p] + 0
        next
      }
      seen[p, v] = 1; at[p]++; got++
    }
    END {
      for (p in n) if (at[p] + 0 != n[p]) { printf "partition %s: %d of %d outputs\n", p, at[p] + 0, n[p]; bad++ }
      printf "OK %d %d %d %d\n", total, got, dups + 0, bad + 0
    }' "$T/expected.tsv" "$T/actual.tsv")
  local summary=${report##*OK }
  read -r total got dups bad <<<"$summary"
  if [ "$bad" = 0 ] && [ "$total" = "$got" ] && [ "$total" -gt 0 ]; then
    pass
    echo "$1: $total outputs exact, $dups re-sent duplicates"
  else
    fail "$1: outputs differ from an uninterrupted run:"; echo "$report" | head -8 >&2
  fi
}

# The table store through interactive queries (fetch_table, while the
# worker runs) equals the last table round (check_table, after it stopped:
# the CLI reads the topic only then).
fetch_table() {
  http GET "/jobs/$JOB/stores/customers?limit=0"
  sed 's/},{/}\n{/g' <<<"$BODY" | sed -n 's/.*"key":"\([^"]*\)","value":"\([^"]*\)".*/\1\t\2/p' |
    LC_ALL=C sort > "$T/store.tsv"
}
check_table() {
  dump customers | awk -F'\t' '{ row[$2] = $3 } END { for (k in row) print k "\t" row[k] }' |
    LC_ALL=C sort > "$T/table_expected.tsv"
  if cmp -s "$T/store.tsv" "$T/table_expected.tsv"; then pass; else
    fail "$1: the customers store differs from the topic ($(wc -l < "$T/store.tsv") vs $(wc -l < "$T/table_expected.tsv") rows)"
  fi
}

# round NAME TOPIC FILE DELETE_STATE: appends FILE, kills the worker
# (DELETE_STATE=1: its state files deleted before the second kill), then
# starts it for good.
DELETE_STATE=0
before_kill() { if [ "$DELETE_STATE" = 1 ] && [ "$1" -eq 2 ]; then delete_state; fi; }
round() {
  R produce "$2" --key-delimiter : < "$3" >/dev/null
  DELETE_STATE=$4
  crash_kills "$1" before_kill
  crash_settle "$1settle"
}

gen_table 1 "$T/t1.txt"; round t1 customers "$T/t1.txt" 0
fetch_table; stop_worker KILL; check_table "after table round 1"; snapshot_table 1
gen_orders 0 "$N" "$T/o1.txt"; round o1 orders "$T/o1.txt" 0
stop_worker KILL; check_outputs "after order round 1"
gen_table 2 "$T/t2.txt"; round t2 customers "$T/t2.txt" 1
fetch_table; stop_worker KILL; check_table "after table round 2 (state deleted once)"
snapshot_table 2
gen_orders "$N" $((2 * N)) "$T/o2.txt"; round o2 orders "$T/o2.txt" 1
fetch_table; stop_worker TERM
check_outputs "after order round 2 (state deleted once)"; check_table "at the end"

crash_finish
