#!/usr/bin/env bash
# KIP-875 on the postgres-sink against a real PostgreSQL (pg_lib.sh; skipped,
# exit 77, without one): its offsets live in the target database
# (__runnel_sink_offsets), so GET/PATCH/DELETE /connectors/{name}/offsets
# read and change that table. Two sinks of one topic, one in upsert mode
# and one in insert mode: stopped, their offsets read; PATCHed back to an
# earlier offset (refused while running), then resumed: the rows from there
# are delivered again (upsert: rewritten in place, no duplicate; insert:
# appended again); DELETEd: each starts from the beginning again, as Kafka
# resets a sink's offsets, and the other connector's row is left alone.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg_lib.sh"
J='Content-Type: application/json'

pg_start
cat > "$T/worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$T/data", "offset.flush.interval.ms": 100}
JSON
start_worker w --config "$T/worker.json"

body_has() { http GET "$1"; [[ "$BODY" == *"$2"* ]]; }
pg_is() { [ "$(pgq "$1" 2>/dev/null)" == "$2" ]; }
stop_conn() {
  http PUT "/connectors/$1/stop"
  assert_eq "stop $1" 202 "$CODE"
  wait_for "$1 stopped" body_has "/connectors/$1/status" '"connector":{"state":"STOPPED"'
}
resume_conn() {
  http PUT "/connectors/$1/resume"
  assert_eq "resume $1" 202 "$CODE"
}
off_patch() { http PATCH "/connectors/$1/offsets" -H "$J" -d "{\"offsets\": [$2]}"; }
offsets_json() { # TOPIC-OFFSET: GET .../offsets of one partition of topic rows
  echo "{\"offsets\":[{\"partition\":{\"kafka_topic\":\"rows\",\"kafka_partition\":0},\"offset\":{\"kafka_offset\":$1}}]}"
}
UP="SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM up_rows"
INS="SELECT string_agg(id::text, ',' ORDER BY id) FROM ins_rows"

printf '{"id":1,"v":"a"}\n{"id":2,"v":"b"}\n{"id":3,"v":"c"}\n' > "$T/rows.jsonl"
http POST /connectors -H "$J" -d "{\"name\": \"rows-in\", \"config\": {\"connector.class\": \"file-source\", \"file\": \"$T/rows.jsonl\", \"topic\": \"rows\"}}"
assert_eq "source created" 201 "$CODE"
# (insert mode without a key: a row delivered again is a second row)
for s in up ins; do
  keys='"insert.mode": "insert", "pk.mode": "none"'
  [ $s = up ] && keys='"insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id"'
  http POST /connectors -H "$J" -d "{\"name\": \"$s\", \"config\": {\"connector.class\": \"postgres-sink\", \"topics\": \"rows\", \"connection.url\": \"$PG_URL\", \"table.name.format\": \"${s}_rows\", $keys, \"auto.create\": \"true\", \"value.converter\": \"org.apache.kafka.connect.json.JsonConverter\", \"value.converter.schemas.enable\": \"false\"}}"
  assert_eq "postgres-sink $s created" 201 "$CODE"
done
wait_for "upsert sink wrote the three rows" pg_is "$UP" "1=a,2=b,3=c"
wait_for "insert sink wrote the three rows" pg_is "$INS" "1,2,3"

# ---- GET, and PATCH refused while running -------------------------------------------
off_patch up '{"partition": {"kafka_topic": "rows", "kafka_partition": 0}, "offset": {"kafka_offset": 1}}'
assert_eq "PATCH while running" 400 "$CODE"
assert_contains "PATCH while running: Kafka's message" "$BODY" "Connectors must be in the STOPPED state before their offsets can be modified"
stop_conn up
stop_conn ins
for s in up ins; do
  http GET /connectors/$s/offsets
  assert_eq "GET $s offsets: 200" 200 "$CODE"
  assert_eq "GET $s offsets: the table's row, as the next offset" "$(offsets_json 3)" "$BODY"
done
assert_eq "the rows of __runnel_sink_offsets" "ins|rows|0|2
up|rows|0|2" "$(pgq 'SELECT * FROM __runnel_sink_offsets ORDER BY connector')"

# ---- PATCH to an earlier offset, resume: re-delivered from there -----------------------
for s in up ins; do
  off_patch $s '{"partition": {"kafka_topic": "rows", "kafka_partition": 0}, "offset": {"kafka_offset": 1}}'
  assert_eq "PATCH $s" 200 "$CODE"
  assert_eq "PATCH $s: Kafka's answer for connector-managed offsets" '{"message":"The offsets for this connector have been altered successfully"}' "$BODY"
  http GET /connectors/$s/offsets
  assert_eq "GET $s after PATCH" "$(offsets_json 1)" "$BODY"
done
assert_eq "PATCH changed the rows (last written = next - 1)" "ins|rows|0|0
up|rows|0|0" "$(pgq 'SELECT * FROM __runnel_sink_offsets ORDER BY connector')"
# Marks the rows so that a rewrite shows: only ids 2 and 3 come again.
pgq "UPDATE up_rows SET v = 'x'" >/dev/null
resume_conn up
resume_conn ins
wait_for "upsert: ids 2 and 3 rewritten, id 1 not (no duplicate)" pg_is "$UP" "1=x,2=b,3=c"
wait_for "insert: ids 2 and 3 appended again" pg_is "$INS" "1,2,2,3,3"
wait_for "offsets at the end again" pg_is "SELECT string_agg(\"offset\"::text, ',') FROM __runnel_sink_offsets" "2,2"

# ---- PATCH with a null offset: that partition's row goes ---------------------------------
stop_conn up
off_patch up '{"partition": {"kafka_topic": "rows", "kafka_partition": 0}, "offset": null}'
assert_eq "PATCH null offset" 200 "$CODE"
assert_eq "PATCH null: up's row deleted, ins's kept" "ins|rows|0|2" "$(pgq 'SELECT * FROM __runnel_sink_offsets')"

# ---- DELETE: from the beginning, as Kafka --------------------------------------------------
stop_conn ins
http DELETE /connectors/ins/offsets
assert_eq "DELETE ins" 200 "$CODE"
assert_eq "DELETE ins: Kafka's answer" '{"message":"The offsets for this connector have been reset successfully"}' "$BODY"
assert_eq "DELETE: no row left" "0" "$(pgq 'SELECT count(*) FROM __runnel_sink_offsets')"
http DELETE /connectors/up/offsets
assert_eq "DELETE up" 200 "$CODE"
for s in up ins; do
  http GET /connectors/$s/offsets
  assert_eq "GET $s after DELETE" '{"offsets":[]}' "$BODY"
done
pgq "UPDATE up_rows SET v = 'y'" >/dev/null
resume_conn up
resume_conn ins
wait_for "upsert after DELETE: every row rewritten" pg_is "$UP" "1=a,2=b,3=c"
wait_for "insert after DELETE: every row again" pg_is "$INS" "1,1,2,2,2,3,3,3"
wait_for "offsets written again" pg_is "SELECT string_agg(connector || ':' || \"offset\", ',' ORDER BY connector) FROM __runnel_sink_offsets" "ins:2,up:2"
sleep 0.5 # nothing more comes
assert_eq "insert: nothing delivered twice after the reset" "1,1,2,2,2,3,3,3" "$(pgq "$INS")"

# ---- the database unreachable: GET 500, PATCH 400, each saying why -----------------------
stop_conn up
pg_stop fast
http GET /connectors/up/offsets
assert_eq "GET with PostgreSQL down" 500 "$CODE"
assert_contains "GET with PostgreSQL down: why" "$BODY" "cannot reach the connector's database: postgresql: cannot connect"
off_patch up '{"partition": {"kafka_topic": "rows", "kafka_partition": 0}, "offset": {"kafka_offset": 0}}'
assert_eq "PATCH with PostgreSQL down" 400 "$CODE"
assert_contains "PATCH with PostgreSQL down: why" "$BODY" "offsets[0]: cannot reach the connector's database"

stop_worker TERM
assert_eq "clean stop" 0 "$STATUS"
finish
