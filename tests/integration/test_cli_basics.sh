# The command line: help, version, and refusal of bad configs with status 2
# and messages naming the file, the key path and the expected form.
source "$(dirname "$0")/lib.sh"

run() { set +e; OUT=$("$@" 2>&1); RC=$?; set -e; }

run "$RUNNEL" --help
assert_eq "--help status" 0 "$RC"
assert_contains "--help lists worker" "$OUT" "worker"
assert_contains "--help lists topics" "$OUT" "topics"
run "$RUNNEL" version
assert_eq "version status" 0 "$RC"
check "version format: $OUT" grep -Eq '^runnel 0\.1\.0 \(commit [0-9a-f]+|unknown\)' <<<"$OUT"
run "$RUNNEL" frobnicate
assert_eq "unknown command status" 2 "$RC"
assert_contains "unknown command message" "$OUT" 'unknown command "frobnicate"'
run "$RUNNEL"
assert_eq "no command status" 2 "$RC"
for cmd in worker topics produce consume; do
  run "$RUNNEL" "$cmd" --help
  assert_eq "$cmd --help status" 0 "$RC"
  assert_contains "$cmd --help text" "$OUT" "runnel $cmd"
  assert_contains "$cmd --help usage" "$OUT" "Usage:"
done

bad_config() { # description json expected-message
  printf '%s' "$2" > "$T/worker.json"
  run "$RUNNEL" worker --config "$T/worker.json"
  assert_eq "$1: exit status" 2 "$RC"
  assert_contains "$1: message" "$OUT" "$3"
}
bad_config "wrong type" '{"log.segment.bytes": "big"}' \
  "$T/worker.json: log.segment.bytes: expected an integer between 1048576 and 2147483647, got \"big\""
bad_config "nested key path" '{"log": {"flush": "sometimes"}}' \
  "$T/worker.json: log.flush: expected one of always, interval, never, got \"sometimes\""
bad_config "unknown key" '{"listners": "http://127.0.0.1:1"}' \
  "$T/worker.json: unknown key \"listners\""
bad_config "out of range" '{"num.partitions": 0}' \
  "$T/worker.json: num.partitions: expected an integer between 1 and 100000, got 0"
bad_config "bad listeners" '{"listeners": "127.0.0.1:8083"}' \
  "listeners: expected a comma-separated list of http://HOST:PORT"
bad_config "syntax error with line" $'{\n "data.dir": "x",\n "a" 1\n}' "$T/worker.json:3:"
bad_config "not an object" '[]' "expected a JSON object at the top level"
run "$RUNNEL" worker --config "$T/missing.json"
assert_eq "missing config status" 2 "$RC"
assert_contains "missing config message" "$OUT" "$T/missing.json: cannot read: No such file or directory"
run "$RUNNEL" worker --log-level loud
assert_eq "bad --log-level" 2 "$RC"
run "$RUNNEL" worker --set log.flush=weekly
assert_eq "bad --set" 2 "$RC"
assert_contains "bad --set message" "$OUT" '--set: log.flush: expected one of always, interval, never, got "weekly"'

# A port that is taken is a run-time failure (1) with a clear message.
printf '{"listeners": "http://127.0.0.1:0", "data.dir": "%s/d1"}' "$T" > "$T/w.json"
start_worker holder --config "$T/w.json"
run "$RUNNEL" worker --data-dir "$T/d2" --set "listeners=http://127.0.0.1:$PORT"
assert_eq "port in use status" 1 "$RC"
assert_contains "port in use message" "$OUT" "cannot listen on http://127.0.0.1:$PORT (listeners): address already in use"
stop_worker TERM

# docs/configuration.md carries the generated key table, unchanged.
"$RUNNEL" worker --config-docs > "$T/keys.md"
check "docs/configuration.md is up to date (regenerate with runnel worker --config-docs)" \
  grep -qF -f <(head -3 "$T/keys.md") "$RUNNEL_SOURCE_DIR/docs/configuration.md"
while IFS= read -r line; do
  grep -qxF -- "$line" "$RUNNEL_SOURCE_DIR/docs/configuration.md" || { fail "docs/configuration.md lacks: $line"; break; }
done < "$T/keys.md"
pass

finish
