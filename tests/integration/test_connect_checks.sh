# Config checks and REST details of the connector framework a review found
# missing: a sink's dead letter queue among its own topics (refused as
# Kafka's SinkConnectorConfig does), connector names (trimmed, no control
# characters), label values escaped on /metrics, a deleted connector's
# series removed, the Location header of 201 answers.
source "$(dirname "$0")/lib.sh"

cat > "$T/worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$T/data", "offset.flush.interval.ms": 200}
JSON
J='Content-Type: application/json'
wait_for() {
  local d=$1 i; shift
  for i in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then pass; return 0; fi
    sleep 0.1
  done
  fail "$d (waited 15 s)"
}
body_has() { http GET "$1"; [[ "$BODY" == *"$2"* ]]; }

# ---- refused on the command line ---------------------------------------------
echo '{"name": "x", "config": {"connector.class": "file-sink", "file": "/dev/null", "topics": "a, loop", "errors.deadletterqueue.topic.name": "loop"}}' > "$T/loop.json"
printf '{"name": "bad\\tname", "config": {"connector.class": "file-sink", "file": "/dev/null", "topics": "a"}}\n' > "$T/ctl.json"
for f in loop ctl; do
  set +e
  out=$("$RUNNEL" worker --config "$T/worker.json" "$T/$f.json" 2>&1)
  rc=$?
  set -e
  assert_eq "connector file $f refused: exit status" 2 "$rc"
  case $f in
  loop) assert_contains "DLQ loop named" "$out" "errors.deadletterqueue.topic.name: The DLQ topic 'loop' may not be included in the list of topics ('topics=a, loop') consumed by the connector" ;;
  ctl) assert_contains "control character named" "$out" "for configuration name: String may not contain control sequences but had the following ASCII chars: 9" ;;
  esac
done
check "nothing was started by bad files" test ! -e "$T/data/log/connect-configs-0"

start_worker w1 --config "$T/worker.json"

# ---- the DLQ may not be one of the sink's topics ------------------------------
http POST /connectors -H "$J" -d '{"name": "loop", "config": {"connector.class": "file-sink", "file": "/dev/null", "topics": "in,loop", "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "loop"}}'
assert_eq "DLQ in topics" 400 "$CODE"
assert_eq "DLQ in topics body" '{"error_code":400,"message":"Connector configuration is invalid and contains the following 1 error(s):\nerrors.deadletterqueue.topic.name: The DLQ topic '"'"'loop'"'"' may not be included in the list of topics ('"'"'topics=in,loop'"'"') consumed by the connector\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`"}' "$BODY"
http POST /connectors -H "$J" -d '{"name": "loop", "config": {"connector.class": "file-sink", "file": "/dev/null", "topics.regex": "lo.*", "errors.deadletterqueue.topic.name": "loop"}}'
assert_eq "DLQ matched by topics.regex" 400 "$CODE"
assert_contains "DLQ matched by topics.regex body" "$BODY" "The DLQ topic 'loop' may not be included in the regex matching the topics ('topics.regex=lo.*') consumed by the connector"
http PUT /connectors/loop/config -H "$J" -d '{"connector.class": "file-sink", "file": "/dev/null", "topics": "loop", "errors.deadletterqueue.topic.name": "loop"}'
assert_eq "DLQ loop by PUT" 400 "$CODE"
http PUT /connector-plugins/file-sink/config/validate -H "$J" -d '{"name": "v", "file": "/dev/null", "topics": "loop", "errors.deadletterqueue.topic.name": "loop"}'
assert_contains "validate: DLQ loop count" "$BODY" '"error_count":1,'
assert_contains "validate: error on the DLQ key" "$BODY" '"value":{"name":"errors.deadletterqueue.topic.name","value":"loop","recommended_values":[],"errors":["The DLQ topic '"'"'loop'"'"' may not be included in the list of topics ('"'"'topics=loop'"'"') consumed by the connector"]'
# A regex that only matches a prefix of the DLQ's name is no loop.
http POST /connectors -H "$J" -d '{"name": "noloop", "config": {"connector.class": "file-sink", "file": "/dev/null", "topics.regex": "lo", "errors.deadletterqueue.topic.name": "loop"}}'
assert_eq "DLQ not matched by the whole regex" 201 "$CODE"
http GET /connectors
assert_eq "no looping sink was created" '["noloop"]' "$BODY"

# A source has no DLQ (as in Kafka): accepted, with a warning.
printf 'x\n' > "$T/one.txt"
http POST /connectors -H "$J" -d "{\"name\": \"srcdlq\", \"config\": {\"connector.class\": \"file-source\", \"file\": \"$T/one.txt\", \"topic\": \"t1\", \"errors.deadletterqueue.topic.name\": \"d\"}}"
assert_eq "source with a DLQ name" 201 "$CODE"
assert_contains "source DLQ warning" "$(cat "$T/w1.log")" "connector srcdlq: errors.deadletterqueue.topic.name (d) is ignored: source connectors have no dead letter queue"

# ---- names: trimmed, no control characters, Location of 201 -------------------
http POST /connectors -H "$J" -D "$T/hdr" -d "{\"name\": \"  spaced  \", \"config\": {\"connector.class\": \"file-source\", \"file\": \"$T/one.txt\", \"topic\": \"t2\"}}"
assert_eq "trimmed name" 201 "$CODE"
assert_contains "trimmed name body" "$BODY" '{"name":"spaced","config":'
assert_contains "Location of POST" "$(tr -d '\r' < "$T/hdr")" $'\nLocation: /connectors/spaced\n'
http POST /connectors -H "$J" -d '{"name": "bad\nname", "config": {"connector.class": "file-sink", "file": "/dev/null", "topics": "a"}}'
assert_eq "newline in a name" 400 "$CODE"
assert_contains "newline in a name body" "$BODY" 'Invalid value bad\nname for configuration name: String may not contain control sequences but had the following ASCII chars: 10'
http PUT /connectors/a%01b/config -H "$J" -d '{"connector.class": "file-sink", "file": "/dev/null", "topics": "a"}'
assert_eq "control character in a PUT name" 400 "$CODE"
assert_contains "control character in a PUT name body" "$BODY" 'had the following ASCII chars: 1'
http PUT '/connectors/a%20b%22c%2Fd/config' -H "$J" -D "$T/hdr" -d "{\"connector.class\": \"file-source\", \"file\": \"$T/one.txt\", \"topic\": \"t3\"}"
assert_eq "PUT creates" 201 "$CODE"
assert_contains "Location of PUT, encoded" "$(tr -d '\r' < "$T/hdr")" $'\nLocation: /connectors/a%20b%22c%2Fd\n'
http PUT '/connectors/a%20b%22c%2Fd/config' -H "$J" -D "$T/hdr" -d "{\"connector.class\": \"file-source\", \"file\": \"$T/one.txt\", \"topic\": \"t4\"}"
assert_eq "PUT updates" 200 "$CODE"
assert_not_contains "no Location on update" "$(cat "$T/hdr")" "Location"

# ---- /metrics: escaped labels, removed with their connector --------------------
printf 'a\nb\nc\n' > "$T/three.txt"
QN='q\"b\\s' # the JSON text of the name q"b\s
http POST /connectors -H "$J" -d "{\"name\": \"$QN\", \"config\": {\"connector.class\": \"file-source\", \"file\": \"$T/three.txt\", \"topic\": \"t5\"}}"
assert_eq "name with a quote and a backslash" 201 "$CODE"
wait_for "escaped labels" body_has /metrics 'runnel_connect_source_records_polled_total{connector="q\"b\\s",task="0"} 3'
# Every sample line of the scrape is well-formed text format.
http GET /metrics
bad=$(grep -v '^#' <<<"$BODY" | grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? [^ ]+$' || true)
assert_eq "every sample line parses" "" "$bad"

http DELETE '/connectors/q%22b%5Cs'
assert_eq "delete" 204 "$CODE"
wait_for "a deleted connector's series go" bash -c "! curl -s http://127.0.0.1:$PORT/metrics | grep -q 'connector=\"q'"
printf 'z\n' > "$T/z.txt"
http POST /connectors -H "$J" -d "{\"name\": \"$QN\", \"config\": {\"connector.class\": \"file-source\", \"file\": \"$T/z.txt\", \"topic\": \"t6\"}}"
assert_eq "created again" 201 "$CODE"
wait_for "a connector created again counts from zero" body_has /metrics 'runnel_connect_source_records_polled_total{connector="q\"b\\s",task="0"} 1'

# ---- restarts: traces cleared; a STOPPED connector stays STOPPED ----------------
WID="127.0.0.1:$PORT"
http POST /connectors -H "$J" -d "{\"name\": \"broken\", \"config\": {\"connector.class\": \"file-sink\", \"file\": \"$T/later/out.txt\", \"topics\": \"t1\"}}"
wait_for "failed task with trace" body_has /connectors/broken/status '"state":"FAILED","worker_id":"'"$WID"'","trace":"'
http POST '/connectors/broken/restart?includeTasks=true&onlyFailed=true'
assert_eq "restart failed task" 202 "$CODE"
assert_eq "the plan shows RESTARTING without the old trace" "{\"name\":\"broken\",\"connector\":{\"state\":\"RUNNING\",\"worker_id\":\"$WID\"},\"tasks\":[{\"id\":0,\"state\":\"RESTARTING\",\"worker_id\":\"$WID\"}],\"type\":\"sink\"}" "$BODY"
http PUT /connectors/spaced/stop
wait_for "stopped" body_has /connectors/spaced/status '"connector":{"state":"STOPPED"'
http POST '/connectors/spaced/restart?includeTasks=true'
assert_eq "restart of a stopped connector (Kafka: accepted)" 202 "$CODE"
assert_eq "restart of a stopped connector: the plan" "{\"name\":\"spaced\",\"connector\":{\"state\":\"RESTARTING\",\"worker_id\":\"$WID\"},\"tasks\":[],\"type\":\"source\"}" "$BODY"
wait_for "back to its target: STOPPED" body_has /connectors/spaced/status "{\"name\":\"spaced\",\"connector\":{\"state\":\"STOPPED\",\"worker_id\":\"$WID\"},\"tasks\":[]"

# ---- failure traces: the error handler's, naming stage and class ---------------------
# t1 holds the line "x" (not JSON) from srcdlq.
http POST /connectors -H "$J" -d "{\"name\": \"strictdb\", \"config\": {\"connector.class\": \"sqlite-sink\", \"topics\": \"t1\", \"connection.url\": \"sqlite://$T/strict.db\", \"auto.create\": \"true\"}}"
wait_for "sink failing at put" body_has /connectors/strictdb/status '"state":"FAILED"'
assert_contains "put failure trace" "$BODY" "\"trace\":\"Tolerance exceeded in error handler: executing stage 'TASK_PUT' with class 'sqlite-sink', where consumed record is {topic='t1', partition=0, offset=0, timestamp="
http POST /connectors -H "$J" -d "{\"name\": \"strictx\", \"config\": {\"connector.class\": \"file-sink\", \"topics\": \"t1\", \"file\": \"$T/strictx.txt\", \"transforms\": \"e\", \"transforms.e.type\": \"ExtractField\$Value\", \"transforms.e.field\": \"a\"}}"
wait_for "sink failing at a transform" body_has /connectors/strictx/status '"state":"FAILED"'
assert_contains "transform failure trace names the transform's class" "$BODY" "\"trace\":\"Tolerance exceeded in error handler: executing stage 'TRANSFORMATION' with class 'ExtractField\$Value', where consumed record is {topic='t1', partition=0, offset=0"

# ---- KIP-875: the connector checks (and applies) offset changes -------------------
# file-source (spaced is STOPPED): Kafka's FileStreamSourceConnector checks.
off_patch() { http PATCH "/connectors/$1/offsets" -H "$J" -d "{\"offsets\": [$2]}"; }
http GET /connectors/spaced/offsets
BEFORE=$BODY
assert_contains "file source: its offset" "$BEFORE" "{\"offsets\":[{\"partition\":{\"filename\":\"$T/one.txt\"},\"offset\":{\"position\":2,\"inode\":$(stat -c %i "$T/one.txt"),\"head\":\"2:"
off_patch spaced "{\"partition\": {\"filename\": \"$T/one.txt\"}, \"offset\": {\"position\": 0, \"head\": 7}}"
assert_contains "file source: head not a string" "$BODY" "offsets[0]: The value for the 'head' key in the offset, when given, should be a string"
off_patch spaced "{\"partition\": {\"filename\": \"$T/one.txt\"}, \"offset\": {\"position\": \"x\"}}"
assert_eq "file source: position not a number" 400 "$CODE"
assert_eq "file source: position not a number body" "{\"error_code\":400,\"message\":\"offsets[0]: The value for the 'position' key in the offset is expected to be a Long value\"}" "$BODY"
off_patch spaced '{"partition": {"filename": "f"}, "offset": {"position": -1}}'
assert_contains "file source: negative position" "$BODY" "should be a non-negative value"
off_patch spaced '{"partition": {"filename": "f"}, "offset": {"pos": 1}}'
assert_contains "file source: no position" "$BODY" "Offset objects should either be null or contain the key 'position'"
off_patch spaced '{"partition": {"file": "f"}, "offset": {"position": 1}}'
assert_eq "file source: no filename" 400 "$CODE"
assert_contains "file source: no filename body" "$BODY" "offsets[0]: Partition objects should contain the key 'filename'"
http GET /connectors/spaced/offsets
assert_eq "refused changes changed nothing" "$BEFORE" "$BODY"
off_patch spaced "{\"partition\": {\"filename\": \"$T/one.txt\"}, \"offset\": {\"position\": 0}}"
assert_eq "file source: a good offset" 200 "$CODE"
http GET /connectors/spaced/offsets
assert_eq "file source: altered" "{\"offsets\":[{\"partition\":{\"filename\":\"$T/one.txt\"},\"offset\":{\"position\":0}}]}" "$BODY"

# sqlite-source: the offset must fit the mode.
http POST /connectors -H "$J" -d "{\"name\": \"jsrc\", \"initial_state\": \"STOPPED\", \"config\": {\"connector.class\": \"sqlite-source\", \"connection.url\": \"sqlite://$T/src.db\", \"table.whitelist\": \"t\", \"mode\": \"incrementing\", \"incrementing.column.name\": \"id\", \"topic.prefix\": \"db-\"}}"
assert_eq "stopped sqlite source" 201 "$CODE"
wait_for "jsrc stopped" body_has /connectors/jsrc/status '"connector":{"state":"STOPPED"'
off_patch jsrc '{"partition": {"table": "t"}, "offset": {"timestamp": 5}}'
assert_eq "jdbc source: offset without incrementing" 400 "$CODE"
assert_contains "jdbc source: offset without incrementing body" "$BODY" "offsets[0]: mode incrementing: the offset needs the key 'incrementing'"
off_patch jsrc '{"partition": {"table": "t"}, "offset": {"incrementing": "7"}}'
assert_contains "jdbc source: incrementing not a number" "$BODY" "The value for the 'incrementing' key in the offset is expected to be an integer"
off_patch jsrc '{"partition": {"tbl": "t"}, "offset": {"incrementing": 7}}'
assert_contains "jdbc source: bad partition" "$BODY" 'Partition objects should be {\"table\": \"<name>\"}'
off_patch jsrc '{"partition": {"table": "t"}, "offset": {"incrementing": 7}}'
assert_eq "jdbc source: a good offset" 200 "$CODE"

# sqlite-sink: its offsets live in the target's __runnel_sink_offsets.
sq() { sqlite3 "$T/out.db" "$1" 2>/dev/null; }
rows_are() { [ "$(sq 'SELECT count(*) FROM rows')" = "$1" ]; }
printf '{"id":1}\n{"id":2}\n{"id":3}\n' > "$T/rows.jsonl"
http POST /connectors -H "$J" -d "{\"name\": \"rows-in\", \"config\": {\"connector.class\": \"file-source\", \"file\": \"$T/rows.jsonl\", \"topic\": \"rows\", \"format\": \"json\"}}"
http POST /connectors -H "$J" -d "{\"name\": \"rows-out\", \"config\": {\"connector.class\": \"sqlite-sink\", \"topics\": \"rows\", \"connection.url\": \"sqlite://$T/out.db\", \"auto.create\": \"true\"}}"
wait_for "three rows in SQLite" rows_are 3
http PUT /connectors/rows-out/stop
wait_for "rows-out stopped" body_has /connectors/rows-out/status '"connector":{"state":"STOPPED"'
http GET /connectors/rows-out/offsets
assert_eq "sqlite sink: GET reads the table" '{"offsets":[{"partition":{"kafka_topic":"rows","kafka_partition":0},"offset":{"kafka_offset":3}}]}' "$BODY"
off_patch rows-out '{"partition": {"kafka_topic": "rows", "kafka_partition": 0}, "offset": {"kafka_offset": 1}}'
assert_eq "sqlite sink: PATCH" 200 "$CODE"
assert_eq "sqlite sink: PATCH body" '{"message":"The offsets for this connector have been altered successfully"}' "$BODY"
assert_eq "sqlite sink: the table row changed" "rows-out|rows|0|0" "$(sq 'SELECT * FROM __runnel_sink_offsets')"
http GET /connectors/rows-out/offsets
assert_eq "sqlite sink: GET after PATCH" '{"offsets":[{"partition":{"kafka_topic":"rows","kafka_partition":0},"offset":{"kafka_offset":1}}]}' "$BODY"
http PUT /connectors/rows-out/resume
wait_for "the task resumed at the PATCHed offset (ids 2 and 3 again)" rows_are 5
assert_eq "rows after PATCH" "1,2,2,3,3" "$(sq 'SELECT group_concat(id) FROM (SELECT id FROM rows ORDER BY id)')"
http PUT /connectors/rows-out/stop
wait_for "rows-out stopped again" body_has /connectors/rows-out/status '"connector":{"state":"STOPPED"'
http DELETE /connectors/rows-out/offsets
assert_eq "sqlite sink: DELETE" 200 "$CODE"
assert_eq "sqlite sink: DELETE body" '{"message":"The offsets for this connector have been reset successfully"}' "$BODY"
assert_eq "sqlite sink: the rows went" "0" "$(sq 'SELECT count(*) FROM __runnel_sink_offsets')"
http GET /connectors/rows-out/offsets
assert_eq "sqlite sink: GET after DELETE" '{"offsets":[]}' "$BODY"
http PUT /connectors/rows-out/resume
wait_for "the task read everything again after the reset" rows_are 8
# A database that cannot be reached: GET and PATCH say why.
http POST /connectors -H "$J" -d "{\"name\": \"nodb\", \"initial_state\": \"STOPPED\", \"config\": {\"connector.class\": \"sqlite-sink\", \"topics\": \"rows\", \"connection.url\": \"sqlite://$T/no/such/dir/x.db\"}}"
wait_for "nodb stopped" body_has /connectors/nodb/status '"connector":{"state":"STOPPED"'
http GET /connectors/nodb/offsets
assert_eq "unreachable database: GET" 500 "$CODE"
assert_contains "unreachable database: GET body" "$BODY" "cannot reach the connector's database: sqlite $T/no/such/dir/x.db: cannot open: unable to open database file"
off_patch nodb '{"partition": {"kafka_topic": "rows", "kafka_partition": 0}, "offset": {"kafka_offset": 1}}'
assert_eq "unreachable database: PATCH" 400 "$CODE"
assert_contains "unreachable database: PATCH body" "$BODY" "offsets[0]: cannot reach the connector's database"

# ---- validate: entries for each transformation's keys ------------------------------
http PUT /connector-plugins/file-sink/config/validate -H "$J" -d '{"name": "v", "file": "/dev/null", "topics": "a", "transforms": "r", "transforms.r.type": "RegexRouter", "transforms.r.regex": "(", "transforms.r.replacement": "x"}'
assert_contains "validate bad transform: one error" "$BODY" '"error_count":1,'
assert_contains "validate bad transform: its group" "$BODY" '"Transforms: r"'
assert_contains "validate bad transform: type entry" "$BODY" '"value":{"name":"transforms.r.type","value":"RegexRouter","recommended_values":[],"errors":[],"visible":true}'
assert_contains "validate bad transform: negate entry" "$BODY" '{"definition":{"name":"transforms.r.negate","type":"BOOLEAN","required":false,"default_value":"false"'
assert_contains "validate bad transform: the error on its key" "$BODY" '"value":{"name":"transforms.r.regex","value":"(","recommended_values":[],"errors":["'
assert_contains "validate bad transform: replacement entry" "$BODY" '"value":{"name":"transforms.r.replacement","value":"x","recommended_values":[],"errors":[],"visible":true}'
http PUT /connector-plugins/file-sink/config/validate -H "$J" -d '{"name": "v", "file": "/dev/null", "topics": "a", "transforms": "f", "transforms.f.type": "Filter", "transforms.f.predicate": "p", "predicates": "p", "predicates.p.type": "Nope"}'
assert_contains "validate bad predicate: one error" "$BODY" '"error_count":1,'
assert_contains "validate bad predicate: the error on its type" "$BODY" '"value":{"name":"predicates.p.type","value":"Nope","recommended_values":[],"errors":["unknown predicate'

# ---- /connector-plugins?connectorsOnly=false (Kafka 3.2+) -----------------------
http GET /connector-plugins
assert_not_contains "connectors only by default" "$BODY" 'transformation'
http GET '/connector-plugins?connectorsOnly=true'
assert_not_contains "connectorsOnly=true" "$BODY" 'predicate'
http GET '/connector-plugins?connectorsOnly=false'
assert_eq "connectorsOnly=false" 200 "$CODE"
assert_contains "a connector" "$BODY" '{"class":"file-sink","type":"sink","version":"1.0"}'
assert_contains "a transformation" "$BODY" '{"class":"RegexRouter","type":"transformation","version":"'
assert_contains "the lua transformation" "$BODY" '{"class":"lua","type":"transformation","version":"'
assert_contains "a predicate" "$BODY" '{"class":"TopicNameMatches","type":"predicate","version":"'
http GET '/connector-plugins?connectorsOnly=maybe'
assert_eq "connectorsOnly malformed" 400 "$CODE"

stop_worker TERM
assert_eq "clean stop" 0 "$STATUS"
check "no sanitizer reports" bash -c "! grep -q 'ERROR: \\(Address\\|Leak\\)Sanitizer' '$T/w1.log'"
finish
