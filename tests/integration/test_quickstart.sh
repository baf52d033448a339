#!/usr/bin/env bash
# The README's main command, end to end: examples/quickstart/run.sh with
# this build's binary. The SQLite table it leaves must equal clicks per
# page per minute counted independently (awk) from the generated file, the
# three appended clicks included, and the worker must stop with status 0.
source "$(dirname "$0")/lib.sh"

out=$(bash "$RUNNEL_SOURCE_DIR/examples/quickstart/run.sh" "$RUNNEL" "$T/qs" 2>&1) || {
  fail "run.sh failed: $out"; finish; }
assert_contains "quickstart prints the pivot" "$out" "minute  total  home"
assert_contains "quickstart stops cleanly" "$out" "worker: stopped"

# Expected rows: floor(ts / 60000) * 60000 per (page, minute), from the file.
sed 's/.*"ts":\([0-9]*\).*"page":"\([^"]*\)".*/\2|\1/' "$T/qs/clicks.jsonl" |
  awk -F'|' '{ n[sprintf("%s|%.0f", $1, $2 - $2 % 60000)]++ }
             END { for (k in n) print k "|" n[k] }' |
  sort > "$T/expected"
sqlite3 "$T/qs/quickstart.db" \
  "SELECT page, window_start, clicks FROM clicks_per_minute" | sort > "$T/actual"
assert_eq "rows of clicks_per_minute" "$(cat "$T/expected")" "$(cat "$T/actual")"
assert_eq "clicks in the file" "5003" "$(wc -l < "$T/qs/clicks.jsonl" | tr -d ' ')"
assert_eq "window ends" "0" \
  "$(sqlite3 "$T/qs/quickstart.db" 'SELECT count(*) FROM clicks_per_minute WHERE window_end - window_start <> 60000')"
finish
