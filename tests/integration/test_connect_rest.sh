# The connector framework through Kafka Connect's REST API on a real
# worker: every endpoint with its status codes and error bodies, a file
# source -> topic -> file sink pipeline checked line by line, pause /
# resume / stop, KIP-875 offsets, restarts, a failing task with its trace
# restarted through REST, the dead letter queue with its context headers,
# a worker restart resuming every connector in its state, and bad
# connector files refused on the command line.
source "$(dirname "$0")/lib.sh"

cat > "$T/worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$T/data", "offset.flush.interval.ms": 200}
JSON

# wait_for DESCRIPTION COMMAND...: retries for up to 15 s.
wait_for() {
  local d=$1 i; shift
  for i in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then pass; return 0; fi
    sleep 0.1
  done
  fail "$d (waited 15 s)"
  return 0
}
body_has() { http GET "$1"; [[ "$BODY" == *"$2"* ]]; }
file_is() { [ -f "$1" ] && [ "$(cat "$1")" == "$2" ]; }
J='Content-Type: application/json'

# ---- bad connector files on the command line --------------------------------
echo '{"name": "x", "config": {"connector.class": "file-source", "topic": "t"}}' > "$T/nofile.json"
echo '{"name": "x", "config": {"connector.class": "file-sink", "topics": "t", "tasks.max": "many"}}' > "$T/badmax.json"
echo '{"name": "x", "config": {"connector.class": "NoSuchConnector"}}' > "$T/badclass.json"
printf '{"name": "x",\n "config": {"connector.class": }}\n' > "$T/syntax.json"
for f in nofile badmax badclass syntax missing; do
  set +e
  out=$("$RUNNEL" worker --config "$T/worker.json" "$T/$f.json" 2>&1)
  rc=$?
  set -e
  assert_eq "bad connector file $f: exit status" 2 "$rc"
  assert_contains "bad connector file $f names the file" "$out" "$T/$f.json"
done
out=$(cd "$T" && "$RUNNEL" worker --config worker.json nofile.json 2>&1 || true)
assert_contains "missing file key named" "$out" 'nofile.json: connector x: Connector configuration is invalid and contains the following 1 error(s):'
assert_contains "missing file key named" "$out" 'Missing required configuration "file" which has no default value.'
set +e
out=$("$RUNNEL" worker --config "$T/worker.json" "$T/badmax.json" 2>&1)
set -e
assert_contains "tasks.max named" "$out" "Invalid value many for configuration tasks.max"
out=$("$RUNNEL" worker --config "$T/worker.json" "$T/badclass.json" 2>&1 || true)
assert_contains "unknown class named" "$out" "connector.class: Failed to find any class that implements Connector and which name matches NoSuchConnector"
out=$("$RUNNEL" worker --config "$T/worker.json" "$T/syntax.json" 2>&1 || true)
assert_contains "syntax error with line:col" "$out" "$T/syntax.json:2:"
check "nothing was started by bad files" test ! -e "$T/data/log/connect-configs-0"

# ---- a worker with a source and a sink from files ------------------------------
printf 'one\ntwo\nthree\n' > "$T/in.txt"
cat > "$T/src.json" <<JSON
{"name": "src", "config": {"connector.class": "FileStreamSource", "file": "$T/in.txt", "topic": "lines"}}
JSON
start_worker w1 --config "$T/worker.json" "$T/src.json"
WID="127.0.0.1:$PORT"

http GET /connectors
assert_eq "GET /connectors" 200 "$CODE"
assert_eq "GET /connectors body" '["src"]' "$BODY"

# POST /connectors: Kafka's 201 body, then 409 for the same name.
http POST /connectors -H "$J" -d "{\"name\": \"sink\", \"config\": {\"connector.class\": \"org.apache.kafka.connect.file.FileStreamSinkConnector\", \"file\": \"$T/out.txt\", \"topics\": \"lines\", \"tasks.max\": 1}}"
assert_eq "POST /connectors" 201 "$CODE"
assert_eq "POST /connectors body" "{\"name\":\"sink\",\"config\":{\"connector.class\":\"org.apache.kafka.connect.file.FileStreamSinkConnector\",\"file\":\"$T/out.txt\",\"topics\":\"lines\",\"tasks.max\":\"1\",\"name\":\"sink\"},\"tasks\":,\"type\":\"sink\"}" "$(sed 's/"tasks":\[[^]]*\]/"tasks":/' <<<"$BODY")"
http POST /connectors -H "$J" -d "{\"name\": \"sink\", \"config\": {\"connector.class\": \"file-sink\", \"file\": \"$T/o2.txt\", \"topics\": \"lines\"}}"
assert_eq "POST existing" 409 "$CODE"
assert_eq "POST existing body" '{"error_code":409,"message":"Connector sink already exists"}' "$BODY"
wait_for "the pipeline copies the file" file_is "$T/out.txt" $'one\ntwo\nthree'
printf 'four\n' >> "$T/in.txt"
wait_for "appended lines follow" file_is "$T/out.txt" $'one\ntwo\nthree\nfour'

# Bad requests: 400 naming what is wrong.
http POST /connectors -H "$J" -d '{"name": "bad", "config": {"connector.class": "file-sink", "topics": "t", "tasks.max": "x"}}'
assert_eq "POST bad tasks.max" 400 "$CODE"
assert_contains "POST bad tasks.max body" "$BODY" '"error_code":400,"message":"Connector configuration is invalid and contains the following 1 error(s):\nInvalid value x for configuration tasks.max: Not a number of type INT'
http POST /connectors -H "$J" -d '{"name": "bad", "config": {"connector.class": "nope"}}'
assert_eq "POST unknown class" 400 "$CODE"
assert_contains "POST unknown class body" "$BODY" 'connector.class: Failed to find any class that implements Connector and which name matches nope'
http POST /connectors -H "$J" -d '{"name": "bad", "config": {"connector.class": "file-sink"}}'
assert_eq "POST sink without topics" 400 "$CODE"
assert_contains "POST sink without topics body" "$BODY" 'error(s):\nMust configure one of topics or topics.regex\n'
http POST /connectors -H "$J" -d '{"name": "bad"'
assert_eq "POST malformed JSON" 400 "$CODE"
assert_contains "POST malformed JSON body" "$BODY" 'request body:1:'
http POST /connectors -H "$J" -d '{"name": "bad"}'
assert_eq "POST without config" 400 "$CODE"
assert_eq "POST without config body" '{"error_code":400,"message":"request body: config: expected an object of connector settings"}' "$BODY"
http POST /connectors -H "$J" -d '{"name": "a", "config": {"name": "b", "connector.class": "file-sink", "topics": "t"}}'
assert_eq "POST name mismatch" 400 "$CODE"
assert_contains "POST name mismatch body" "$BODY" "Connector name configuration (b) doesn't match connector name in the request (a)"

# Lists with ?expand.
http GET /connectors
assert_eq "GET /connectors two" '["sink","src"]' "$BODY"
http GET '/connectors?expand=status'
assert_eq "expand=status" 200 "$CODE"
assert_eq "expand=status body" "{\"sink\":{\"status\":{\"name\":\"sink\",\"connector\":{\"state\":\"RUNNING\",\"worker_id\":\"$WID\"},\"tasks\":[{\"id\":0,\"state\":\"RUNNING\",\"worker_id\":\"$WID\"}],\"type\":\"sink\"}},\"src\":{\"status\":{\"name\":\"src\",\"connector\":{\"state\":\"RUNNING\",\"worker_id\":\"$WID\"},\"tasks\":[{\"id\":0,\"state\":\"RUNNING\",\"worker_id\":\"$WID\"}],\"type\":\"source\"}}}" "$BODY"
http GET '/connectors?expand=info'
assert_contains "expand=info" "$BODY" "\"src\":{\"info\":{\"name\":\"src\",\"config\":{\"connector.class\":\"FileStreamSource\",\"file\":\"$T/in.txt\",\"topic\":\"lines\",\"name\":\"src\"},\"tasks\":[{\"connector\":\"src\",\"task\":0}],\"type\":\"source\"}}"
http GET '/connectors?expand=info&expand=status'
assert_contains "expand both: info" "$BODY" '"sink":{"info":{"name":"sink"'
assert_contains "expand both: status" "$BODY" '"status":{"name":"sink","connector":{"state":"RUNNING"'

# One connector: info, config, status, tasks.
http GET /connectors/src
assert_eq "GET connector" 200 "$CODE"
assert_eq "GET connector body" "{\"name\":\"src\",\"config\":{\"connector.class\":\"FileStreamSource\",\"file\":\"$T/in.txt\",\"topic\":\"lines\",\"name\":\"src\"},\"tasks\":[{\"connector\":\"src\",\"task\":0}],\"type\":\"source\"}" "$BODY"
http GET /connectors/nope
assert_eq "GET unknown connector" 404 "$CODE"
assert_eq "GET unknown connector body" '{"error_code":404,"message":"Connector nope not found"}' "$BODY"
http GET /connectors/src/config
assert_eq "GET config" 200 "$CODE"
assert_eq "GET config body" "{\"connector.class\":\"FileStreamSource\",\"file\":\"$T/in.txt\",\"topic\":\"lines\",\"name\":\"src\"}" "$BODY"
http GET /connectors/nope/config
assert_eq "GET config unknown" 404 "$CODE"
http GET /connectors/src/status
assert_eq "GET status" "{\"name\":\"src\",\"connector\":{\"state\":\"RUNNING\",\"worker_id\":\"$WID\"},\"tasks\":[{\"id\":0,\"state\":\"RUNNING\",\"worker_id\":\"$WID\"}],\"type\":\"source\"}" "$BODY"
http GET /connectors/nope/status
assert_eq "GET status unknown" 404 "$CODE"
http GET /connectors/src/tasks/0/status
assert_eq "GET task status" 200 "$CODE"
assert_eq "GET task status body" "{\"id\":0,\"state\":\"RUNNING\",\"worker_id\":\"$WID\"}" "$BODY"
http GET /connectors/src/tasks/7/status
assert_eq "GET unknown task status" 404 "$CODE"
assert_eq "GET unknown task status body" '{"error_code":404,"message":"No status found for task src-7"}' "$BODY"
http GET /connectors/nope/tasks/0/status
assert_eq "GET task status of unknown connector" 404 "$CODE"
http GET /connectors/src/tasks
assert_eq "GET tasks" 200 "$CODE"
assert_eq "GET tasks body" "[{\"id\":{\"connector\":\"src\",\"task\":0},\"config\":{\"connector.class\":\"FileStreamSource\",\"file\":\"$T/in.txt\",\"topic\":\"lines\",\"name\":\"src\"}}]" "$BODY"
http GET /connectors/nope/tasks
assert_eq "GET tasks unknown" 404 "$CODE"

# PUT and PATCH config.
http PUT /connectors/sink2/config -H "$J" -d "{\"connector.class\": \"file-sink\", \"file\": \"$T/out2.txt\", \"topics.regex\": \"li.*\"}"
assert_eq "PUT new config" 201 "$CODE"
# (tasks may already be there: the herder thread is quick)
assert_eq "PUT new config body" "{\"name\":\"sink2\",\"config\":{\"connector.class\":\"file-sink\",\"file\":\"$T/out2.txt\",\"topics.regex\":\"li.*\",\"name\":\"sink2\"},\"tasks\":,\"type\":\"sink\"}" "$(sed 's/"tasks":\[[^]]*\]/"tasks":/' <<<"$BODY")"
wait_for "topics.regex sink copies the topic" file_is "$T/out2.txt" $'one\ntwo\nthree\nfour'
http PUT /connectors/sink2/config -H "$J" -d "{\"connector.class\": \"file-sink\", \"file\": \"$T/out3.txt\", \"topics\": \"lines\"}"
assert_eq "PUT existing config" 200 "$CODE"
assert_contains "PUT existing config body" "$BODY" "\"file\":\"$T/out3.txt\""
# The sink's group offsets stay: the new file gets only what comes next.
printf 'five\n' >> "$T/in.txt"
wait_for "reconfigured sink writes to its new file" file_is "$T/out3.txt" 'five'
http PUT /connectors/sink2/config -H "$J" -d '{"name": "other", "connector.class": "file-sink", "topics": "t"}'
assert_eq "PUT config name mismatch" 400 "$CODE"
assert_eq "PUT config name mismatch body" '{"error_code":400,"message":"Connector name configuration (other) doesn'"'"'t match connector name in the URL (sink2)"}' "$BODY"
http PUT /connectors/sink2/config -H "$J" -d '{"connector.class": "file-sink", "topics": "t", "errors.tolerance": "maybe"}'
assert_eq "PUT config invalid value" 400 "$CODE"
assert_contains "PUT config invalid value body" "$BODY" 'Invalid value maybe for configuration errors.tolerance: String must be one of: none, all'
http PATCH /connectors/sink2/config -H "$J" -d '{"flush.lines": "1", "file.max.bytes": null}'
assert_eq "PATCH config" 200 "$CODE"
assert_contains "PATCH config body" "$BODY" '"flush.lines":"1"'
http PATCH /connectors/nope/config -H "$J" -d '{"a": "1"}'
assert_eq "PATCH unknown" 404 "$CODE"
http DELETE /connectors/sink2
assert_eq "DELETE connector" 204 "$CODE"
assert_eq "DELETE body" "" "$BODY"
http DELETE /connectors/sink2
assert_eq "DELETE again" 404 "$CODE"
assert_eq "DELETE again body" '{"error_code":404,"message":"Connector sink2 not found"}' "$BODY"
http GET /connectors
assert_eq "list after delete" '["sink","src"]' "$BODY"

# Pause: nothing moves; resume: it catches up.
http PUT /connectors/sink/pause
assert_eq "pause" 202 "$CODE"
assert_eq "pause body" "" "$BODY"
wait_for "paused status" body_has /connectors/sink/status "{\"name\":\"sink\",\"connector\":{\"state\":\"PAUSED\",\"worker_id\":\"$WID\"},\"tasks\":[{\"id\":0,\"state\":\"PAUSED\",\"worker_id\":\"$WID\"}],\"type\":\"sink\"}"
printf 'six\n' >> "$T/in.txt"
sleep 1
check "a paused sink writes nothing" file_is "$T/out.txt" $'one\ntwo\nthree\nfour\nfive'
http PUT /connectors/sink/resume
assert_eq "resume" 202 "$CODE"
wait_for "resumed sink catches up" file_is "$T/out.txt" $'one\ntwo\nthree\nfour\nfive\nsix'
http PUT /connectors/nope/pause
assert_eq "pause unknown" 404 "$CODE"
http PUT /connectors/nope/resume
assert_eq "resume unknown" 404 "$CODE"
http PUT /connectors/nope/stop
assert_eq "stop unknown" 404 "$CODE"
assert_eq "stop unknown body" '{"error_code":404,"message":"Connector nope not found"}' "$BODY"
http POST /connectors/sink
assert_eq "wrong method" 405 "$CODE"
assert_contains "wrong method body" "$BODY" '"error_code":405'
http PATCH /connectors/nope/offsets -H "$J" -d '{"offsets": []}'
assert_eq "PATCH offsets of unknown" 404 "$CODE"
http DELETE /connectors/nope/offsets
assert_eq "DELETE offsets of unknown" 404 "$CODE"
assert_eq "DELETE offsets of unknown body" '{"error_code":404,"message":"Connector nope not found"}' "$BODY"

# Offsets (KIP-875).
wait_for "source offsets committed" body_has /connectors/src/offsets "{\"offsets\":[{\"partition\":{\"filename\":\"$T/in.txt\"},\"offset\":{\"position\":28"
wait_for "sink offsets committed" body_has /connectors/sink/offsets '{"offsets":[{"partition":{"kafka_topic":"lines","kafka_partition":0},"offset":{"kafka_offset":6}}]}'
http GET /connectors/nope/offsets
assert_eq "offsets of unknown" 404 "$CODE"
http PATCH /connectors/src/offsets -H "$J" -d "{\"offsets\": [{\"partition\": {\"filename\": \"$T/in.txt\"}, \"offset\": {\"position\": 4}}]}"
assert_eq "PATCH offsets while running" 400 "$CODE"
assert_eq "PATCH offsets while running body" '{"error_code":400,"message":"Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a '"'"'PUT'"'"' request to the '"'"'/connectors/src/stop'"'"' endpoint"}' "$BODY"
http DELETE /connectors/src/offsets
assert_eq "DELETE offsets while running" 400 "$CODE"
http PUT /connectors/src/stop
assert_eq "stop" 202 "$CODE"
wait_for "stopped status" body_has /connectors/src/status "{\"name\":\"src\",\"connector\":{\"state\":\"STOPPED\",\"worker_id\":\"$WID\"},\"tasks\":[],\"type\":\"source\"}"
http GET /connectors/src/tasks/0/status
assert_eq "task status of a stopped connector" 404 "$CODE"
http PATCH /connectors/src/offsets -H "$J" -d '{"offsets": [{"partition": {"filename": "x"}, "offset": 5}]}'
assert_eq "PATCH offsets bad shape" 400 "$CODE"
assert_eq "PATCH offsets bad shape body" '{"error_code":400,"message":"offsets[0].offset: expected a JSON object or null"}' "$BODY"
http PATCH /connectors/src/offsets -H "$J" -d '{"offsets": []}'
assert_eq "PATCH offsets empty" 400 "$CODE"
http PATCH /connectors/src/offsets -H "$J" -d "{\"offsets\": [{\"partition\": {\"filename\": \"$T/in.txt\"}, \"offset\": {\"position\": 4}}]}"
assert_eq "PATCH offsets when stopped" 200 "$CODE"
assert_eq "PATCH offsets body" '{"message":"The Connect framework-managed offsets for this connector have been altered successfully. However, if this connector manages offsets externally, they will need to be manually altered in the system that the connector uses."}' "$BODY"
http GET /connectors/src/offsets
assert_eq "offsets after PATCH" "{\"offsets\":[{\"partition\":{\"filename\":\"$T/in.txt\"},\"offset\":{\"position\":4}}]}" "$BODY"
# Resuming reads again from byte 4: "two" .. "six" come a second time.
http PUT /connectors/src/resume
assert_eq "resume stopped" 202 "$CODE"
wait_for "source resumed from the altered offset" file_is "$T/out.txt" $'one\ntwo\nthree\nfour\nfive\nsix\ntwo\nthree\nfour\nfive\nsix'
http PUT /connectors/src/stop
wait_for "stopped again" body_has /connectors/src/status '"state":"STOPPED"'
http DELETE /connectors/src/offsets
assert_eq "DELETE offsets when stopped" 200 "$CODE"
assert_contains "DELETE offsets body" "$BODY" 'offsets for this connector have been reset successfully'
http GET /connectors/src/offsets
assert_eq "offsets after DELETE" '{"offsets":[]}' "$BODY"
# Sink offsets: alter to 5 while stopped, the last record comes again.
http PUT /connectors/sink/stop
wait_for "sink stopped" body_has /connectors/sink/status '"state":"STOPPED"'
http PATCH /connectors/sink/offsets -H "$J" -d '{"offsets": [{"partition": {"kafka_topic": "lines", "kafka_partition": 0}, "offset": {"kafka_offset": 10}}]}'
assert_eq "PATCH sink offsets" 200 "$CODE"
http GET /connectors/sink/offsets
assert_eq "sink offsets after PATCH" '{"offsets":[{"partition":{"kafka_topic":"lines","kafka_partition":0},"offset":{"kafka_offset":10}}]}' "$BODY"
http PATCH /connectors/sink/offsets -H "$J" -d '{"offsets": [{"partition": {"kafka_topic": "lines"}, "offset": {"kafka_offset": 1}}]}'
assert_eq "PATCH sink offsets bad partition" 400 "$CODE"
assert_contains "PATCH sink offsets bad partition body" "$BODY" 'kafka_partition'
http PUT /connectors/sink/resume
wait_for "sink resumed at offset 10" file_is "$T/out.txt" $'one\ntwo\nthree\nfour\nfive\nsix\ntwo\nthree\nfour\nfive\nsix\nsix'

# Restarts.
http POST /connectors/sink/restart
assert_eq "restart connector" 204 "$CODE"
http POST '/connectors/sink/restart?includeTasks=true'
assert_eq "restart with tasks" 202 "$CODE"
assert_eq "restart with tasks body" "{\"name\":\"sink\",\"connector\":{\"state\":\"RESTARTING\",\"worker_id\":\"$WID\"},\"tasks\":[{\"id\":0,\"state\":\"RESTARTING\",\"worker_id\":\"$WID\"}],\"type\":\"sink\"}" "$BODY"
wait_for "running after restart" body_has /connectors/sink/status "\"tasks\":[{\"id\":0,\"state\":\"RUNNING\""
http POST '/connectors/sink/restart?includeTasks=true&onlyFailed=true'
assert_eq "restart only failed" 202 "$CODE"
assert_contains "restart only failed: nothing failed" "$BODY" "\"connector\":{\"state\":\"RUNNING\""
http POST '/connectors/sink/restart?includeTasks=maybe'
assert_eq "restart bad flag" 400 "$CODE"
http POST /connectors/nope/restart
assert_eq "restart unknown" 404 "$CODE"
http POST /connectors/sink/tasks/0/restart
assert_eq "restart task" 204 "$CODE"
http POST /connectors/sink/tasks/3/restart
assert_eq "restart unknown task" 404 "$CODE"
assert_eq "restart unknown task body" '{"error_code":404,"message":"Task sink-3 not found"}' "$BODY"

# A task that fails shows its trace; a REST restart brings it back.
http POST /connectors -H "$J" -d "{\"name\": \"broken\", \"config\": {\"connector.class\": \"file-sink\", \"file\": \"$T/later/out.txt\", \"topics\": \"lines\"}}"
assert_eq "POST broken" 201 "$CODE"
wait_for "failed task with trace" body_has /connectors/broken/status "{\"id\":0,\"state\":\"FAILED\",\"worker_id\":\"$WID\",\"trace\":\""
assert_contains "the trace names the file" "$BODY" "$T/later/out.txt"
mkdir "$T/later"
http POST '/connectors/broken/restart?includeTasks=true&onlyFailed=true'
assert_eq "restart failed task" 202 "$CODE"
assert_contains "restarting shown" "$BODY" '"state":"RESTARTING"'
wait_for "restarted task runs" body_has /connectors/broken/status '"tasks":[{"id":0,"state":"RUNNING"'
wait_for "restarted task wrote the topic" test -s "$T/later/out.txt"

# Errors: JSON converter, tolerance all, dead letter queue with context.
printf '{"a":1}\nnot json\n{"b":2}\n' > "$T/mixed.txt"
http POST /connectors -H "$J" -d "{\"name\": \"msrc\", \"config\": {\"connector.class\": \"file-source\", \"file\": \"$T/mixed.txt\", \"topic\": \"mixed\"}}"
assert_eq "POST mixed source" 201 "$CODE"
http POST /connectors -H "$J" -d "{\"name\": \"jsink\", \"config\": {\"connector.class\": \"file-sink\", \"file\": \"$T/json.txt\", \"topics\": \"mixed\", \"value.converter\": \"org.apache.kafka.connect.json.JsonConverter\", \"value.converter.schemas.enable\": \"false\", \"errors.tolerance\": \"all\", \"errors.log.enable\": \"true\", \"errors.log.include.messages\": \"true\", \"errors.deadletterqueue.topic.name\": \"dlq\", \"errors.deadletterqueue.context.headers.enable\": \"true\"}}"
assert_eq "POST json sink" 201 "$CODE"
wait_for "good records written, the bad one skipped" file_is "$T/json.txt" $'{"a":1}\n{"b":2}'
wait_for "the error is logged" grep -q "Error encountered in task jsink-0. Executing stage 'VALUE_CONVERTER' with class 'org.apache.kafka.connect.json.JsonConverter', where consumed record is {topic='mixed', partition=0, offset=1" "$T/w1.log"
# The same without tolerance fails the task, naming the record.
http POST /connectors -H "$J" -d "{\"name\": \"strict\", \"config\": {\"connector.class\": \"file-sink\", \"file\": \"$T/strict.txt\", \"topics\": \"mixed\", \"value.converter\": \"JsonConverter\"}}"
wait_for "strict sink fails" body_has /connectors/strict/status '"state":"FAILED"'
assert_contains "strict trace" "$BODY" "Tolerance exceeded in error handler: executing stage 'VALUE_CONVERTER' with class 'org.apache.kafka.connect.json.JsonConverter', where consumed record is {topic='mixed', partition=0, offset=1"
http POST /connectors -H "$J" -d '{"name": "s", "config": {"connector.class": "file-sink", "topics": "t", "value.converter": "JsonConverter", "value.converter.schemas.enable": "true"}}'
assert_eq "schemas.enable=true refused" 400 "$CODE"
assert_contains "schemas.enable=true message" "$BODY" 'value.converter.schemas.enable: runnel'"'"'s JsonConverter reads and writes plain JSON'

# Plugins.
http GET /connector-plugins
assert_eq "GET /connector-plugins" 200 "$CODE"
assert_contains "file-source listed" "$BODY" '{"class":"file-source","type":"source","version":"'
assert_contains "file-sink listed" "$BODY" '{"class":"file-sink","type":"sink","version":"'
http GET /connector-plugins/FileStreamSource/config
assert_eq "plugin config by alias" 200 "$CODE"
assert_contains "plugin config shape" "$BODY" '{"name":"file","type":"STRING","required":true,"default_value":null,"importance":"HIGH","documentation":"'
http GET /connector-plugins/nope/config
assert_eq "plugin config unknown" 404 "$CODE"
assert_eq "plugin config unknown body" '{"error_code":404,"message":"Unknown plugin nope."}' "$BODY"
http PUT /connector-plugins/file-source/config/validate -H "$J" -d '{"name": "v", "tasks.max": "0"}'
assert_eq "validate" 200 "$CODE"
assert_contains "validate: name and count" "$BODY" '{"name":"file-source","error_count":3,"groups":["Common",'
assert_contains "validate: a config entry" "$BODY" '{"definition":{"name":"tasks.max","type":"INT","required":false,"default_value":"1","importance":"HIGH","documentation":"Maximum number of tasks to use for this connector.","group":"Common","width":"NONE","display_name":"tasks.max","dependents":[],"order":3},"value":{"name":"tasks.max","value":"0","recommended_values":[],"errors":["Invalid value 0 for configuration tasks.max: Value must be at least 1"],"visible":true}}'
assert_contains "validate: missing topic" "$BODY" '"errors":["Missing required configuration \"topic\" which has no default value."]'
http PUT /connector-plugins/nope/config/validate -H "$J" -d '{}'
assert_eq "validate unknown plugin" 400 "$CODE"
assert_eq "validate unknown plugin body" '{"error_code":400,"message":"Failed to find any class that implements Connector and which name matches nope"}' "$BODY"
http PUT /connector-plugins/file-source/config/validate -H "$J" -d '[1]'
assert_eq "validate non-object body" 400 "$CODE"
http PUT /connector-plugins/file-source/config/validate -H "$J" -d '{"connector.class": "file-sink"}'
assert_eq "validate with another class" 400 "$CODE"
assert_eq "validate with another class body" '{"error_code":400,"message":"Included connector type file-sink does not match request type file-source"}' "$BODY"

# Metrics per connector and task.
http GET /metrics
assert_contains "metric: polled" "$BODY" 'runnel_connect_source_records_polled_total{connector="msrc",task="0"} 3'
assert_contains "metric: written" "$BODY" 'runnel_connect_source_records_written_total{connector="msrc",task="0"} 3'
assert_contains "metric: sink read" "$BODY" 'runnel_connect_sink_records_read_total{connector="jsink",task="0"} 3'
assert_contains "metric: sink put" "$BODY" 'runnel_connect_sink_records_put_total{connector="jsink",task="0"} 2'
assert_contains "metric: errors" "$BODY" 'runnel_connect_record_errors_total{connector="jsink",task="0"} 1'
assert_contains "metric: dlq" "$BODY" 'runnel_connect_dlq_records_total{connector="jsink",task="0"} 1'
assert_contains "metric: lag" "$BODY" 'runnel_connect_sink_lag_records{connector="jsink",task="0"} 0'

# Active topics (KIP-558): a source's the topics it wrote, a sink's those it
# read; reset (allowed while running, as Kafka) empties the set until the
# next records.
topics_are() { http GET "/connectors/$1/topics"; [ "$CODE" = 200 ] && [ "$BODY" = "{\"$1\":{\"topics\":[$2]}}" ]; }
wait_for "src's topics" topics_are src '"lines"'
wait_for "sink's topics" topics_are sink '"lines"'
wait_for "jsink's topics" topics_are jsink '"mixed"'
wait_for "msrc's topics" topics_are msrc '"mixed"'
check "a name without connector: none (Kafka: 200, no 404)" topics_are nope ''
http PUT /connectors/src/topics/reset
assert_eq "reset topics of a stopped connector" 202 "$CODE"
assert_eq "reset topics: no body" "" "$BODY"
check "src's topics after reset" topics_are src ''
http PUT /connectors/msrc/topics/reset
assert_eq "reset topics of a running source" 202 "$CODE"
http PUT /connectors/jsink/topics/reset
assert_eq "reset topics of a running sink" 202 "$CODE"
check "msrc's topics after reset" topics_are msrc ''
check "jsink's topics after reset" topics_are jsink ''
check "sink's topics untouched" topics_are sink '"lines"'
printf '{"c":3}\n' >> "$T/mixed.txt"
wait_for "msrc records its topic again with its next record" topics_are msrc '"mixed"'
wait_for "jsink records its topic again with its next record" topics_are jsink '"mixed"'
http POST /connectors/nope/topics/reset
assert_eq "reset topics: PUT only" 405 "$CODE"

# Pause one, stop another, restart the worker: states and data come back.
http PUT /connectors/jsink/pause
http PUT /connectors/msrc/stop
wait_for "jsink paused" body_has /connectors/jsink/status '"connector":{"state":"PAUSED"'
wait_for "msrc stopped" body_has /connectors/msrc/status '"connector":{"state":"STOPPED"'
stop_worker TERM
assert_eq "clean stop with connectors" 0 "$STATUS"
assert_contains "tasks stopped on shutdown" "$(cat "$T/w1.log")" "connect: sink-0: task stopped"

# The dead letter queue holds the bad record as read, with Kafka's headers.
dlq=$("$RUNNEL" consume dlq --data-dir "$T/data" --from-beginning --format json -n 1 2>&1)
assert_contains "DLQ value" "$dlq" '"value":"not json"'
for h in '"__connect.errors.topic":"mixed"' '"__connect.errors.partition":"0"' '"__connect.errors.offset":"1"' \
         '"__connect.errors.connector.name":"jsink"' '"__connect.errors.task.id":"0"' \
         '"__connect.errors.stage":"VALUE_CONVERTER"' \
         '"__connect.errors.class.name":"org.apache.kafka.connect.json.JsonConverter"' \
         '"__connect.errors.exception.message":"Converting byte[] to Kafka Connect data failed'; do
  assert_contains "DLQ header $h" "$dlq" "$h"
done
# Active topics are records of the status topic, in Kafka's format; a
# reset writes tombstones.
st=$("$RUNNEL" consume connect-status --data-dir "$T/data" --from-beginning --format json 2>&1)
assert_contains "topic status record key" "$st" '"key":"status-topic-lines:connector-sink"'
assert_contains "topic status record value" "$st" '{\"topic\":{\"name\":\"lines\",\"connector\":\"sink\",\"task\":0,\"discoverTimestamp\":'
assert_contains "reset: a tombstone" "$st" '"key":"status-topic-lines:connector-src","value":null'
# The last record of a poll carries the source partition and offset (the
# three lines were one poll); the others carry no header.
recs=$("$RUNNEL" consume mixed --data-dir "$T/data" --from-beginning --format json -n 3 2>&1)
assert_eq "no source header on the poll's first record" 0 "$(echo "$recs" | sed -n 1p | grep -c __runnel.connect.source)"
assert_contains "source header on the poll's last record" "$(echo "$recs" | sed -n 3p)" \
  '"__runnel.connect.source":"[\"msrc\",{\"filename\":'
assert_contains "the header's offset is past the last line" "$(echo "$recs" | sed -n 3p)" '{\"position\":25,'

printf 'seven\n' >> "$T/in.txt"
start_worker w2 --config "$T/worker.json"
WID="127.0.0.1:$PORT"
http GET /connectors
assert_eq "connectors after restart" '["broken","jsink","msrc","sink","src","strict"]' "$BODY"
wait_for "paused stays paused" body_has /connectors/jsink/status "{\"name\":\"jsink\",\"connector\":{\"state\":\"PAUSED\",\"worker_id\":\"$WID\"},\"tasks\":[{\"id\":0,\"state\":\"PAUSED\""
wait_for "stopped stays stopped" body_has /connectors/msrc/status "{\"name\":\"msrc\",\"connector\":{\"state\":\"STOPPED\",\"worker_id\":\"$WID\"},\"tasks\":[]"
wait_for "src (stopped, offsets reset) stays stopped" body_has /connectors/src/status '"connector":{"state":"STOPPED"'
wait_for "sink runs again" body_has /connectors/sink/status '"tasks":[{"id":0,"state":"RUNNING"'
check "active topics survive a restart" topics_are sink '"lines"'
check "a reset survives a restart" topics_are src ''
check "strict's topics" topics_are strict '"mixed"'
http DELETE /connectors/strict
check "deleting a connector resets its topics (Kafka's onDeletion)" topics_are strict ''
http PUT /connectors/src/resume
# offsets were reset: the whole file comes again, then "seven".
wait_for "resumed source after restart" file_is "$T/out.txt" $'one\ntwo\nthree\nfour\nfive\nsix\ntwo\nthree\nfour\nfive\nsix\nsix\none\ntwo\nthree\nfour\nfive\nsix\nseven'
stop_worker INT
assert_eq "clean stop after restart" 0 "$STATUS"
# topic.tracking.allow.reset=false, then topic.tracking.enable=false: 403.
sed 's/}$/, "topic.tracking.allow.reset": false}/' "$T/worker.json" > "$T/noreset.json"
start_worker w3 --config "$T/noreset.json"
check "allow.reset=false: GET works" topics_are sink '"lines"'
http PUT /connectors/sink/topics/reset
assert_eq "allow.reset=false: reset" 403 "$CODE"
assert_eq "allow.reset=false: Kafka's message" '{"error_code":403,"message":"Topic tracking reset is disabled."}' "$BODY"
stop_worker TERM
sed 's/}$/, "topic.tracking.enable": false}/' "$T/worker.json" > "$T/notrack.json"
start_worker w4 --config "$T/notrack.json"
http GET /connectors/sink/topics
assert_eq "tracking disabled: GET" 403 "$CODE"
assert_eq "tracking disabled: Kafka's message" '{"error_code":403,"message":"Topic tracking is disabled."}' "$BODY"
http PUT /connectors/sink/topics/reset
assert_eq "tracking disabled: reset" '{"error_code":403,"message":"Topic tracking is disabled."}' "$BODY"
stop_worker TERM
check "no sanitizer reports" bash -c "! grep -q 'ERROR: \\(Address\\|Leak\\)Sanitizer' '$T/w1.log' '$T/w2.log' '$T/w3.log' '$T/w4.log'"

finish
