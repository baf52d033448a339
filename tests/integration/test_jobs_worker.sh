# Lua jobs on a worker: runnel run, the /jobs REST API, interactive queries,
# the dead-letter topic, the sandbox, and jobs surviving a restart.
source "$(dirname "$0")/lib.sh"

D="$T/data"
R() { "$RUNNEL" "$@" --data-dir "$D"; }
run() { set +e; OUT=$("$@" 2>&1); RC=$?; set -e; }

R topics create lines --partitions 2 >/dev/null
printf 'the quick brown fox\nthe lazy dog\nthe end\n' | R produce lines >/dev/null

# A job that does not load stops start-up with file:line and status 2.
printf 'local job = runnel.job("x")\njob:stream("lines"):nope()\nreturn job\n' > "$T/bad.lua"
run "$RUNNEL" run "$T/bad.lua" --data-dir "$D" --set listeners=http://127.0.0.1:0
assert_eq "bad job: exit status" 2 "$RC"
assert_contains "bad job: file:line" "$OUT" "bad.lua:2: unknown method \"nope\" on a stream"

start_worker w1 run "$RUNNEL_SOURCE_DIR/examples/wordcount/wordcount.lua" --data-dir "$D" \
  --set listeners=http://127.0.0.1:0 --set stream.threads=2 --set commit.interval.ms=200

# wait_for PATH NEEDLE: polls until the body contains NEEDLE (10 s).
wait_for() {
  local i
  for i in $(seq 1 100); do
    http GET "$1"
    [[ "$BODY" == *"$2"* ]] && return 0
    sleep 0.1
  done
  fail "timed out waiting for [$2] in GET $1 (last: $CODE $BODY)"
  return 1
}

wait_for /jobs/wordcount/stores/word-counts/keys/the '"value":3'
assert_eq "query a key" '{"key":"the","value":3}' "$BODY"
http GET /jobs/wordcount/stores/word-counts/keys/dog
assert_eq "query another key" '{"key":"dog","value":1}' "$BODY"
http GET /jobs/wordcount/stores/word-counts/keys/d%6Fg
assert_eq "percent-encoded key" '{"key":"dog","value":1}' "$BODY"
http GET /jobs/wordcount/stores/word-counts/keys/%zz
assert_eq "bad percent escape in a key" 400 "$CODE"
http GET /jobs/wordcount/stores/word-counts/keys/zebra
assert_eq "unknown key status" 404 "$CODE"
assert_contains "unknown key body" "$BODY" '"error_code":404'
http GET /jobs/wordcount/stores/nope/keys/the
assert_eq "unknown store" 404 "$CODE"
http GET /jobs/nope/stores/word-counts/keys/the
assert_eq "unknown job (query)" 404 "$CODE"
http GET "/jobs/wordcount/stores/word-counts?from=d&to=m&limit=10"
assert_eq "range" '[{"key":"dog","value":1},{"key":"end","value":1},{"key":"fox","value":1},{"key":"lazy","value":1}]' "$BODY"
http GET "/jobs/wordcount/stores/word-counts?limit=2"
assert_eq "range with limit" '[{"key":"brown","value":1},{"key":"dog","value":1}]' "$BODY"
http GET "/jobs/wordcount/stores/word-counts?limit=x"
assert_eq "bad limit" 400 "$CODE"

http GET /jobs
assert_eq "list jobs" '["wordcount"]' "$BODY"
http GET /jobs/wordcount
assert_eq "describe status" 200 "$CODE"
assert_contains "describe: repartition topic" "$BODY" '"topic":"wordcount-word-counts-repartition"'
assert_contains "describe: store" "$BODY" '"changelog":"wordcount-word-counts-changelog"'
http GET /jobs/wordcount/status
assert_contains "status running" "$BODY" '"state":"RUNNING"'
assert_contains "status task ids" "$BODY" '"id":"1_1"'
http GET /metrics
assert_contains "job metrics: records in" "$BODY" 'runnel_job_records_in_total{job="wordcount",task="0_0"}'
assert_contains "job metrics: cache misses" "$BODY" 'runnel_job_cache_misses_total{job="wordcount",task="1_0"}'
assert_contains "job metrics: per operator" "$BODY" 'runnel_job_operator_records_total{job="wordcount",operator="FLAT-MAP-VALUES-2",thread="0"} 3'
http GET /jobs/nope
assert_eq "describe unknown job" 404 "$CODE"

# More input flows through the running job.
R_LOCKED=$(R topics list 2>&1 || true)
assert_contains "CLI refused while the worker runs" "$R_LOCKED" "locked"

# POST /jobs: a JSON job with a dead-letter path.
R_SCRIPT='local job = runnel.job("doubler")
job:stream("nums", { value = "json" })
   :map_values(function(v) return v.n * 2 end)
   :to("doubled")
return job'
# json_string TEXT: TEXT as a JSON string (backslashes, quotes, newlines).
json_string() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | awk 'NR > 1 {printf "\\n"} {printf "%s", $0}')"; }
body="{\"name\":\"doubler\",\"script\":$(json_string "$R_SCRIPT")}"
http POST /jobs -H 'Content-Type: application/json' --data-binary "$body"
assert_eq "POST a job whose source topic is missing" 400 "$CODE"
assert_contains "missing topic message" "$BODY" "the source topic nums does not exist"
stop_worker TERM
R topics create nums >/dev/null
printf '{"n":1}\n{"m":2}\nnot json\n{"n":21}\n' | R produce nums >/dev/null
start_worker w2 run "$RUNNEL_SOURCE_DIR/examples/wordcount/wordcount.lua" --data-dir "$D" \
  --set listeners=http://127.0.0.1:0 --set commit.interval.ms=200
http POST /jobs --data-binary "$body"
assert_eq "POST a job" 201 "$CODE"
assert_contains "POST returns the description" "$BODY" '"name":"doubler"'
http POST /jobs --data-binary "$body"
assert_eq "POST the same job again" 409 "$CODE"
http POST /jobs --data-binary '{"name":"x","script":"local job = runnel.job(\"x\")\njob:stream(\"nums\"):to(\"y\"\nreturn job"}'
assert_eq "POST a syntax error" 400 "$CODE"
assert_contains "syntax error names the line" "$BODY" 'x.lua:3:'
http POST /jobs --data-binary '{"name":"other","script":"local job = runnel.job(\"x\")\njob:stream(\"nums\"):to(\"y\")\nreturn job"}'
assert_eq "POST with a mismatched name" 400 "$CODE"
http POST /jobs --data-binary 'not json'
assert_eq "POST garbage" 400 "$CODE"
wait_for /jobs/doubler/status '"records_in":4'
assert_contains "doubler DLQ count" "$BODY" '"dlq":2'
stop_worker TERM
assert_eq "clean stop" 0 "$STATUS"

assert_eq "doubled outputs" $'2\n42' "$(R consume doubled --from-beginning)"
dlq=$(R consume doubler-dlq --from-beginning --format json)
assert_contains "DLQ: the original value" "$(head -1 <<<"$dlq")" '"value":"{\"m\":2}"'
assert_contains "DLQ: the error" "$(head -1 <<<"$dlq")" "attempt to perform arithmetic on a nil value (field 'n')"
assert_contains "DLQ: the source offset" "$(head -1 <<<"$dlq")" '"__runnel.errors.offset":"1"'
assert_contains "DLQ: the operator" "$(head -1 <<<"$dlq")" '"__runnel.errors.operator":"MAP-VALUES-2"'
assert_contains "DLQ: the malformed JSON" "$(tail -1 <<<"$dlq")" '"value":"not json"'

# A restart keeps the posted job and the state; DELETE removes the job.
printf 'the start\n' | R produce lines >/dev/null
start_worker w3 --data-dir "$D" --set listeners=http://127.0.0.1:0 \
  --set "jobs=$RUNNEL_SOURCE_DIR/examples/wordcount/wordcount.lua"
http GET /jobs
assert_contains "posted job restarted" "$BODY" '"doubler"'
wait_for /jobs/wordcount/stores/word-counts/keys/the '"value":4'
assert_eq "state kept across restarts" '{"key":"the","value":4}' "$BODY"
http DELETE /jobs/doubler
assert_eq "DELETE" 204 "$CODE"
http DELETE /jobs/doubler
assert_eq "DELETE again" 404 "$CODE"
stop_worker TERM
start_worker w4 --data-dir "$D" --set listeners=http://127.0.0.1:0
http GET /jobs
assert_eq "deleted job stays deleted" '[]' "$BODY"
stop_worker TERM

finish
