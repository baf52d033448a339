#!/usr/bin/env bash
# The SQLite and PostgreSQL connectors on a real worker:
#   - file -> log -> sqlite-sink (insert mode, no key) with the worker
#     SIGKILLed again and again: every line lands exactly once (the sink's
#     offsets commit with its rows);
#   - bad configs through REST (bad URL, missing key, wrong type), a table
#     name with quotes;
#   - postgres-source -> log -> postgres-sink (upsert) while PostgreSQL is
#     stopped and started again: the task shows the retry in its status,
#     and the copy ends equal to the original;
#   - an unreachable database: the task keeps retrying and says why.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg_lib.sh"
J='Content-Type: application/json'

cat >"$T/worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$T/data", "offset.flush.interval.ms": 200}
JSON

# wait_for DESCRIPTION SECONDS COMMAND...
wait_for() {
  local d=$1 s=$2 i; shift 2
  for i in $(seq 1 $((s * 10))); do
    if "$@" >/dev/null 2>&1; then pass; return 0; fi
    sleep 0.1
  done
  fail "$d (waited $s s)"
}
sq() { sqlite3 "$T/out.db" "$1" 2>/dev/null; }
rows_are() { [ "$(sq 'SELECT count(*) FROM lines')" = "$1" ]; }

# ---- file -> SQLite, SIGKILLed many times ---------------------------------------
N=30000
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "{\"id\":%d,\"text\":\"line %d\"}\n", i, i }' \
  >"$T/in.jsonl"
cat >"$T/src.json" <<JSON
{"name": "lines-in", "config": {"connector.class": "file-source", "file": "$T/in.jsonl",
 "topic": "lines", "format": "json", "batch.size": "500"}}
JSON
cat >"$T/sink.json" <<JSON
{"name": "lines-out", "config": {"connector.class": "sqlite-sink", "topics": "lines",
 "connection.url": "sqlite://$T/out.db", "auto.create": "true",
 "consumer.override.max.poll.records": "300"}}
JSON
for k in 1 2 3 4 5 6; do
  start_worker "kill$k" --config "$T/worker.json" "$T/src.json" "$T/sink.json"
  sleep "0.$((RANDOM % 6 + 2))"
  kill -KILL "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null || true
done
start_worker final --config "$T/worker.json" "$T/src.json" "$T/sink.json"
wait_for "all lines in SQLite" 60 rows_are "$N"
assert_eq "every line exactly once" "$N|$N|0|$((N - 1))" \
  "$(sq 'SELECT count(*), count(DISTINCT id), min(id), max(id) FROM lines')"
assert_eq "sink offsets" "lines-out|lines|0|$((N - 1))" "$(sq 'SELECT * FROM __runnel_sink_offsets')"

# ---- SQLite -> log -> SQLite: a source table copied by key, updates included -------
sqlite3 "$T/src.db" "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL,
  changed TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now', '-5 seconds')));
  WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 300)
  INSERT INTO items (name, price) SELECT 'item ' || i, i / 4.0 FROM g;"
http POST /connectors -H "$J" -d "{\"name\": \"items-in\", \"config\": {\"connector.class\": \"sqlite-source\", \"connection.url\": \"sqlite://$T/src.db\", \"mode\": \"timestamp+incrementing\", \"timestamp.column.name\": \"changed\", \"incrementing.column.name\": \"id\", \"table.whitelist\": \"items\", \"topic.prefix\": \"sq-\", \"poll.interval.ms\": \"200\"}}"
assert_eq "sqlite source: 201" 201 "$CODE"
http POST /connectors -H "$J" -d "{\"name\": \"items-out\", \"config\": {\"connector.class\": \"sqlite-sink\", \"topics\": \"sq-items\", \"connection.url\": \"sqlite://$T/copy.db\", \"table.name.format\": \"items\", \"insert.mode\": \"upsert\", \"pk.mode\": \"record_value\", \"pk.fields\": \"id\", \"auto.create\": \"true\"}}"
assert_eq "sqlite sink: 201" 201 "$CODE"
sums() { sqlite3 "$1" "SELECT count(*), sum(price), group_concat(name, ',') FROM (SELECT * FROM items ORDER BY id)" 2>/dev/null; }
same_items() { [ "$(sums "$T/src.db")" = "$(sums "$T/copy.db")" ]; }
wait_for "sqlite copy equals the source" 30 same_items
sqlite3 "$T/src.db" "UPDATE items SET name = 'renamed', price = 99,
  changed = strftime('%Y-%m-%d %H:%M:%f', 'now', '-2 seconds') WHERE id = 7"
wait_for "sqlite copy follows an update" 30 same_items
assert_eq "sqlite copy: the updated row" "renamed|99.0" "$(sqlite3 "$T/copy.db" 'SELECT name, price FROM items WHERE id = 7')"

# ---- bad configs through REST ------------------------------------------------------
http PUT /connector-plugins/sqlite-sink/config/validate -H "$J" \
  -d '{"name": "v", "connector.class": "sqlite-sink", "topics": "t", "connection.url": "sqlite://host/x.db"}'
assert_eq "validate: 200" 200 "$CODE"
assert_contains "validate: one error" "$BODY" '"error_count":1'
assert_contains "validate: names the url" "$BODY" 'a sqlite: URL has no host'
http POST /connectors -H "$J" -d "{\"name\": \"bad\", \"config\": {\"connector.class\": \"postgres-sink\", \"topics\": \"t\", \"connection.url\": \"mysql://db/x\"}}"
assert_eq "bad url: 400" 400 "$CODE"
assert_contains "bad url: message" "$BODY" "connection.url"
assert_contains "bad url: why" "$BODY" "must start with postgresql://"
http POST /connectors -H "$J" -d '{"name": "bad", "config": {"connector.class": "sqlite-source", "connection.url": "sqlite:x.db", "mode": "bulk", "table.whitelist": "a"}}'
assert_eq "missing key: 400" 400 "$CODE"
assert_contains "missing key: named" "$BODY" 'Missing required configuration \"topic.prefix\"'
http POST /connectors -H "$J" -d '{"name": "bad", "config": {"connector.class": "sqlite-source", "connection.url": "sqlite:x.db", "mode": "bulk", "table.whitelist": "a", "topic.prefix": "p", "batch.max.rows": "lots"}}'
assert_eq "wrong type: 400" 400 "$CODE"
assert_contains "wrong type: named" "$BODY" "batch.max.rows"
http POST /connectors -H "$J" -d '{"name": "bad", "config": {"connector.class": "sqlite-source", "connection.url": "sqlite:x.db", "mode": "incrementing", "table.whitelist": "a", "topic.prefix": "p"}}'
assert_eq "cross-key: 400" 400 "$CODE"
assert_contains "cross-key: named" "$BODY" "incrementing.column.name"

# A table name with quotes and a semicolon: one quoted identifier.
http POST /connectors -H "$J" -d "{\"name\": \"weird\", \"config\": {\"connector.class\": \"sqlite-sink\", \"topics\": \"lines\", \"connection.url\": \"sqlite://$T/weird.db\", \"auto.create\": \"true\", \"table.name.format\": \"it's \\\"\${topic}\\\"; DROP TABLE x\"}}"
assert_eq "weird table: 201" 201 "$CODE"
wq() { [ "$(sqlite3 "$T/weird.db" "SELECT count(*) FROM \"it's \"\"lines\"\"; DROP TABLE x\"" 2>/dev/null)" = "$N" ]; }
wait_for "weird table filled" 30 wq

# tasks.max: a sink runs that many tasks, the partitions spread over them.
http POST /connectors -H "$J" -d "{\"name\": \"multi-in\", \"config\": {\"connector.class\": \"file-source\", \"file\": \"$T/in.jsonl\", \"topic\": \"multi\", \"format\": \"json\", \"key.field\": \"id\", \"topic.creation.default.partitions\": \"3\"}}"
assert_eq "multi source: 201" 201 "$CODE"
http POST /connectors -H "$J" -d "{\"name\": \"multi-out\", \"config\": {\"connector.class\": \"sqlite-sink\", \"topics\": \"multi\", \"tasks.max\": \"3\", \"connection.url\": \"sqlite://$T/multi.db\", \"auto.create\": \"true\", \"insert.mode\": \"upsert\", \"pk.mode\": \"record_value\", \"pk.fields\": \"id\"}}"
assert_eq "multi sink: 201" 201 "$CODE"
mq() { [ "$(sqlite3 "$T/multi.db" 'SELECT count(*) FROM multi' 2>/dev/null)" = "$N" ]; }
wait_for "three sink tasks write every line" 60 mq
http GET /connectors/multi-out/tasks
assert_eq "sink tasks.max=3: three tasks" 3 "$(grep -o '"task":' <<<"$BODY" | wc -l | tr -d ' ')"
assert_eq "each partition written by one task" "multi|0
multi|1
multi|2" "$(sqlite3 "$T/multi.db" 'SELECT topic, partition FROM __runnel_sink_offsets ORDER BY partition')"
stop_worker

# ---- PostgreSQL -> log -> PostgreSQL, server stopped mid-stream ---------------------
pg_start
pgq "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, qty int NOT NULL,
     updated timestamptz NOT NULL DEFAULT now())"
insert_orders() { # count
  pgq "INSERT INTO orders (item, qty) SELECT 'item ' || g, g % 7 FROM generate_series(1, $1) g" >/dev/null
}
insert_orders 500
cat >"$T/pgsrc.json" <<JSON
{"name": "orders-in", "config": {"connector.class": "postgres-source", "connection.url": "$PG_URL",
 "mode": "timestamp+incrementing", "timestamp.column.name": "updated",
 "incrementing.column.name": "id", "table.whitelist": "orders", "topic.prefix": "pg-",
 "poll.interval.ms": "200", "batch.max.rows": "200"}}
JSON
cat >"$T/pgsink.json" <<JSON
{"name": "orders-out", "config": {"connector.class": "postgres-sink", "connection.url": "$PG_URL",
 "topics": "pg-orders", "table.name.format": "orders_copy", "insert.mode": "upsert",
 "pk.mode": "record_value", "pk.fields": "id", "auto.create": "true"}}
JSON
start_worker pg --config "$T/worker.json" "$T/pgsrc.json" "$T/pgsink.json"
copied() { [ "$(pgq 'SELECT count(*) FROM orders_copy' 2>/dev/null)" = "$1" ]; }
wait_for "first 500 copied" 30 copied 500
pg_stop fast
status_retrying() {
  http GET "/connectors/$1/status"
  [[ "$BODY" == *'"state":"RUNNING"'* && "$BODY" == *retrying* && "$BODY" == *postgresql* ]]
}
wait_for "sink status shows the retry" 15 status_retrying orders-in
pg_resume
insert_orders 700
# An update moves a row's timestamp: the upsert replaces it in the copy.
pgq "UPDATE orders SET qty = 100, updated = now() WHERE id = 3" >/dev/null
same() {
  [ "$(pgq 'SELECT count(*), sum(qty), max(id) FROM orders_copy' 2>/dev/null)" = \
    "$(pgq 'SELECT count(*), sum(qty), max(id) FROM orders')" ]
}
wait_for "copy equals the original after the outage" 60 same
assert_eq "no duplicate, the update applied" "1200|1200|100" \
  "$(pgq 'SELECT count(*), count(DISTINCT id), (SELECT qty FROM orders_copy WHERE id = 3) FROM orders_copy')"
http GET /connectors/orders-out/status
assert_contains "sink running again" "$BODY" '"tasks":[{"id":0,"state":"RUNNING","worker_id"'
assert_not_contains "sink trace cleared" "$BODY" "retrying"

# ---- unreachable database ---------------------------------------------------------------
http POST /connectors -H "$J" -d "{\"name\": \"nowhere\", \"config\": {\"connector.class\": \"postgres-sink\", \"topics\": \"pg-orders\", \"connection.url\": \"postgresql://postgres@/test?host=$T/nowhere\"}}"
assert_eq "unreachable: created" 201 "$CODE"
unreachable() {
  http GET /connectors/nowhere/status
  [[ "$BODY" == *'"state":"RUNNING"'* && "$BODY" == *"retrying"*"cannot connect"* ]]
}
wait_for "unreachable: retrying with the reason in the status" 15 unreachable
assert_contains "unreachable: names the socket" "$BODY" "$T/nowhere/.s.PGSQL.5432"
stop_worker
finish
