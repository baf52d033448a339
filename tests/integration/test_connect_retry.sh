# Retriable failures: a SQLite sink whose database another process holds
# locked keeps retrying its put with backoff, shows it in the task's
# status (RUNNING with a trace), loses nothing and resumes when the lock
# goes; with errors.retry.timeout the task fails instead, with the trace,
# and POST .../restart brings it back, still without losing a row.
source "$(dirname "$0")/lib.sh"
: "${RUNNEL_TEST_BIN:?set RUNNEL_TEST_BIN to the tests binary dir}"
Q=$RUNNEL_TEST_BIN/helper_sqlite_query
J='Content-Type: application/json'

wait_for() {
  local d=$1 i; shift
  for i in $(seq 1 400); do
    if "$@" >/dev/null 2>&1; then pass; return 0; fi
    sleep 0.1
  done
  fail "$d (waited 40 s)"
}
body_has() { http GET "$1"; [[ "$BODY" == *"$2"* ]]; }
rows() { "$Q" "$T/out.db" "SELECT count(*) || '/' || count(DISTINCT n) FROM t" 2>/dev/null || echo none; }
rows_are() { [ "$(rows)" == "$1" ]; }
lines() { # FROM TO: appends {"n": i} lines
  local i; for i in $(seq "$1" "$2"); do echo "{\"n\":$i}"; done >> "$T/in.jsonl"
}

cat > "$T/worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$T/data", "offset.flush.interval.ms": 200}
JSON
lines 1 100
start_worker w --config "$T/worker.json"
http POST /connectors -H "$J" -d "{\"name\": \"src\", \"config\": {\"connector.class\": \"file-source\", \"file\": \"$T/in.jsonl\", \"topic\": \"nums\"}}"
assert_eq "source created" 201 "$CODE"
http POST /connectors -H "$J" -d "{\"name\": \"db\", \"config\": {\"connector.class\": \"sqlite-sink\", \"connection.url\": \"sqlite://$T/out.db\", \"topics\": \"nums\", \"auto.create\": \"true\", \"table.name.format\": \"t\", \"errors.retry.delay.max.ms\": \"400\"}}"
assert_eq "sink created" 201 "$CODE"
wait_for "first rows" rows_are "100/100"

# The database is locked for 8 s while new lines arrive (long enough for
# a loaded machine to read them and try a put).
"$Q" --lock 8000 "$T/out.db" > "$T/lock.out" &
LOCKER=$!
wait_for "lock taken" grep -q locked "$T/lock.out"
lines 101 200
wait_for "status shows the retries" body_has /connectors/db/status '"tasks":[{"id":0,"state":"RUNNING","worker_id":"'
wait_for "trace says what is retried" body_has /connectors/db/status '"trace":"retrying put (attempt'
assert_contains "the database's reason is in the trace" "$BODY" 'locked'
wait "$LOCKER"
wait_for "all rows once the lock is gone" rows_are "200/200"
wait_for "the trace is cleared" body_has /connectors/db/status "{\"id\":0,\"state\":\"RUNNING\",\"worker_id\":\"127.0.0.1:$PORT\"}]"
http GET /metrics
assert_contains "retries counted" "$BODY" 'runnel_connect_retries_total{connector="db",task="0"}'
n=$(grep -o 'runnel_connect_retries_total{connector="db",task="0"} [0-9]*' <<<"$BODY" | awk '{print $2}')
check "retries metric is not zero ($n)" test "${n:-0}" -gt 0

# With errors.retry.timeout the task gives up and fails, naming why.
http PATCH /connectors/db/config -H "$J" -d '{"errors.retry.timeout": "1500"}'
assert_eq "retry timeout set" 200 "$CODE"
wait_for "reconfigured sink runs" body_has /connectors/db/status '"tasks":[{"id":0,"state":"RUNNING"'
"$Q" --lock 10000 "$T/out.db" > "$T/lock2.out" &
LOCKER=$!
wait_for "lock taken again" grep -q locked "$T/lock2.out"
lines 201 300
wait_for "the task fails after the timeout" body_has /connectors/db/status '"state":"FAILED"'
assert_contains "failure trace" "$BODY" 'put: still failing after errors.retry.timeout=1500 ms'
wait "$LOCKER"
http POST '/connectors/db/restart?includeTasks=true&onlyFailed=true'
assert_eq "restart the failed task" 202 "$CODE"
wait_for "nothing lost after the restart" rows_are "300/300"
wait_for "running again" body_has /connectors/db/status '"tasks":[{"id":0,"state":"RUNNING"'

stop_worker TERM
assert_eq "clean stop" 0 "$STATUS"
finish
