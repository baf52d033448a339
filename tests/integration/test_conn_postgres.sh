#!/usr/bin/env bash
# The postgres-source and postgres-sink plugins against a real PostgreSQL
# server (a throwaway cluster, pg_lib.sh), driven through their callbacks
# by helper_jdbc the way the framework drives them: the four source modes
# and resuming from committed offsets; sink insert/upsert/delete, refused
# rows reported one by one, a quoted table name; the server stopped in
# the middle of a stream and started again (nothing lost, nothing
# duplicated, offsets exact); an unreachable server; bad configs.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg_lib.sh"
H=$RUNNEL_TEST_BIN/helper_jdbc

pg_start
SINK=(connection.url="$PG_URL")

# ---- bad configs ------------------------------------------------------------
out=$("$H" validate postgres-sink connection.url=mysql://h/db || true)
assert_contains "bad url" "$out" "connection.url: Invalid value mysql://h/db for configuration connection.url: must start with postgresql:// (e.g. postgresql://user@host:5432/db)"
out=$("$H" validate postgres-sink connection.url='postgresql://h:x:y/db?nosuchoption=1' || true)
assert_contains "unparsable url" "$out" "connection.url: not a valid PostgreSQL URI"
# Options a retry can never fix are refused at validation, not retried.
out=$("$H" validate postgres-sink connection.url='postgresql://u@h:notaport/db' || true)
assert_contains "bad port" "$out" 'port must be a number from 1 to 65535, got "notaport"'
out=$("$H" validate postgres-sink connection.url='postgresql://u@h:99999/db' || true)
assert_contains "port out of range" "$out" 'got "99999"'
out=$("$H" validate postgres-sink connection.url='postgresql://u@h/db?sslmode=bogus' || true)
assert_contains "bad sslmode" "$out" 'sslmode must be disable, allow, prefer, require, verify-ca or verify-full, got "bogus"'
check "multi-host URL with default ports" "$H" validate postgres-sink connection.url='postgresql://u@h1,h2:5433/db'
out=$("$H" validate postgres-sink || true)
assert_contains "missing url" "$out" "connection.url:"
out=$("$H" validate postgres-sink "${SINK[@]}" batch.size=lots || true)
assert_contains "wrong type" "$out" "batch.size:"
out=$("$H" validate postgres-sink "${SINK[@]}" insert.mode=upsert || true)
assert_contains "upsert without key" "$out" "pk.mode: insert.mode=upsert needs a primary key"
out=$("$H" validate postgres-source "${SINK[@]}" mode=timestamp table.whitelist=t topic.prefix=p || true)
assert_eq "timestamp without column" "timestamp.column.name: mode timestamp needs timestamp.column.name" "$out"

# ---- sink: upsert and delete by key, auto.create -----------------------------
# Column types come from the first record: n is bigint, so 4.5 is refused
# (reported), the rest is written.
T1=$(printf 'u\t0\t0\t{"id":1}\t{"name":"a","n":1,"tags":["x"]}
u\t0\t1\t{"id":2}\t{"name":"b","n":2,"tags":null}
u\t0\t2\t{"id":1}\t{"name":"a2","n":3,"tags":[]}
u\t0\t3\t{"id":2}\t\\N
u\t0\t4\t{"id":3}\t{"name":"c","n":4.5,"tags":{"k":true}}')
out=$(echo "$T1" | "$H" sink postgres-sink up 2 "${SINK[@]}" insert.mode=upsert \
      pk.mode=record_key auto.create=true delete.enabled=true 2>"$T/sink1.err")
assert_eq "upsert sink output" 'report 4 postgresql: ERROR:  invalid input syntax for type bigint: "4.5"' "$out"
assert_eq "upsert rows" '1|a2|3|[]' "$(pgq 'SELECT id, name, n, tags FROM u ORDER BY id')"
assert_eq "auto.create types" 'id|bigint|NO
name|text|YES
n|bigint|YES
tags|text|YES' "$(pgq "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = 'u' ORDER BY ordinal_position")"
assert_eq "offsets stored" "up|u|0|4" "$(pgq 'SELECT * FROM __runnel_sink_offsets')"
# A second run resumes after the stored offset: nothing written again.
out=$(echo "$T1" | "$H" sink postgres-sink up 2 "${SINK[@]}" insert.mode=upsert \
      pk.mode=record_key auto.create=true delete.enabled=true 2>/dev/null)
assert_eq "resume seeks" "seek u 0 5" "$out"

# ---- sink: insert mode, refused rows one by one; quoted table name -------------
NAME='we"ird; DROP TABLE u; --'
pgq "CREATE TABLE \"we\"\"ird; DROP TABLE u; --\" (id int PRIMARY KEY, v text NOT NULL)"
T2=$(printf 'w\t0\t0\t\\N\t{"id":1,"v":"a"}
w\t0\t1\t\\N\t{"id":1,"v":"dup"}
w\t0\t2\t\\N\t{"id":2,"v":null}
w\t0\t3\t\\N\tnot json
w\t0\t4\t\\N\t{"id":"x","v":"bad int"}
w\t0\t5\t\\N\t{"id":3,"v":"c"}')
out=$(echo "$T2" | "$H" sink postgres-sink ins 100 "${SINK[@]}" table.name.format="$NAME" 2>"$T/sink2.err")
assert_eq "refused rows reported" 'report 3 the value is not JSON: 1:2: lexical error: invalid string in json text.
report 1 postgresql: ERROR:  duplicate key value violates unique constraint "we"ird; DROP TABLE u; --_pkey" DETAIL:  Key (id)=(1) already exists.
report 2 postgresql: ERROR:  null value in column "v" of relation "we"ird; DROP TABLE u; --" violates not-null constraint DETAIL:  Failing row contains (2, null).
report 4 postgresql: ERROR:  invalid input syntax for type integer: "x"' \
  "$(echo "$out" | sed -E 's/(lexical error: invalid string in json text\.).*/\1/')"
assert_eq "good rows written" "1|a
3|c" "$(pgq "SELECT id, v FROM \"we\"\"ird; DROP TABLE u; --\" ORDER BY id")"
assert_eq "table u survived" "1" "$(pgq 'SELECT count(*) FROM u')"

# Plain inserts travel as COPY text: tabs, newlines, backslashes, \N-like
# text and NULL survive.
printf 'esc\t0\t0\t\\N\t{"s":"a\\tb\\nc\\\\d\\r\\\\N","n":null,"f":0.1}\n' >"$T/esc.tsv"
out=$("$H" sink postgres-sink esc 10 "${SINK[@]}" auto.create=true <"$T/esc.tsv" 2>/dev/null)
assert_eq "copy escaping" "t|t|0.1" "$(pgq "SELECT s = E'a\\tb\\nc\\\\d\\r\\\\N', n IS NULL, f FROM esc")"

# A NUL in a string (\u0000): refused by PostgreSQL text, reported, never cut short.
printf 'nul\t0\t0\t\\N\t{"s":"ok"}\nnul\t0\t1\t\\N\t{"s":"a\\u0000b"}\n' >"$T/nul.tsv"
out=$("$H" sink postgres-sink nul 10 "${SINK[@]}" auto.create=true <"$T/nul.tsv" 2>/dev/null)
assert_eq "NUL reported" 'report 1 postgresql: a text value holds a NUL character (\u0000), which PostgreSQL text can not store' "$out"
assert_eq "NUL: the good row written" "ok" "$(pgq 'SELECT s FROM nul')"

# Plain inserts stream each put's rows into its COPY as they are parsed: a
# COPY ends every batch.size rows and a row of another shape (here one
# without "b", then a field auto.evolve adds) ends the stream; the put
# then goes the usual way. Every row once, in one transaction per put.
printf 'shp\t0\t%d\t\\N\t{"a":%d,"b":"x%d"}\n' 0 0 0 1 1 1 2 2 2 >"$T/shape.tsv"
printf 'shp\t0\t3\t\\N\t{"a":3}\nshp\t0\t4\t\\N\t{"a":4,"b":"x4"}\n' >>"$T/shape.tsv"
printf 'shp\t0\t5\t\\N\t{"a":5,"b":"x5","c":true}\nshp\t0\t6\t\\N\t{"a":6,"b":"x6"}\n' >>"$T/shape.tsv"
printf 'shp\t0\t%d\t\\N\t{"a":%d,"b":"x%d"}\n' 7 7 7 8 8 8 9 9 9 >>"$T/shape.tsv"
# The server logs the sink's statements, to show that the puts did stream.
pgq "ALTER DATABASE test SET log_statement = 'all'"
out=$("$H" sink postgres-sink shp 5 "${SINK[@]}" auto.create=true auto.evolve=true batch.size=2 \
  <"$T/shape.tsv" 2>/dev/null)
pgq "ALTER DATABASE test RESET log_statement"
assert_eq "streamed puts: no report" "" "$out"
# Puts 1 and 2 begin streaming at their first row (a COPY with BEGIN; put
# 2 after auto.evolve added "c"); each gives up at its first row of
# another shape (put 1 its fourth, put 2 its second).
assert_eq "streamed puts: streams started" 2 "$(grep -c 'statement: BEGIN; COPY "shp"' "$PG_DIR/server.log")"
assert_eq "streamed puts: every row once" "0|x0|
1|x1|
2|x2|
3||
4|x4|
5|x5|t
6|x6|
7|x7|
8|x8|
9|x9|" "$(pgq 'SELECT a, b, c FROM shp ORDER BY a')"
assert_eq "streamed puts: offsets" "9" "$(pgq "SELECT \"offset\" FROM __runnel_sink_offsets WHERE connector = 'shp'")"

# ---- sink: PostgreSQL stopped mid-stream ----------------------------------------
# 3000 records over 1000 keys (three passes), 100 per put with a pause
# after each; the server is stopped for a second in the middle.
awk 'BEGIN { for (i = 0; i < 3000; i++) {
  printf "s\t0\t%d\t{\"k\":%d}\t{\"pass\":%d,\"off\":%d}\n", i, i % 1000, int(i / 1000), i
  if (i % 100 == 99) print "PAUSE" } }' >"$T/stream.tsv"
# through_outage NAME TABLE INPUT SINK_ARGS...: runs a sink over INPUT and
# stops the server for a second once TABLE holds 300 rows; sets STATUS to
# the sink's exit status (its stderr in $T/NAME.err).
through_outage() {
  local name=$1 table=$2 input=$3 n hp
  shift 3
  "$H" sink postgres-sink "$name" 100 "${SINK[@]}" "$@" <"$input" >"$T/$name.out" \
    2>"$T/$name.err" &
  hp=$!
  for _ in $(seq 1 100); do
    n=$(pgq "SELECT count(*) FROM $table" 2>/dev/null || echo 0)
    [ "${n:-0}" -gt 300 ] && break
    sleep 0.05
  done
  pg_stop fast
  sleep 1
  pg_resume
  STATUS=0; wait "$hp" || STATUS=$?
}
through_outage mid s "$T/stream.tsv" insert.mode=upsert pk.mode=record_key auto.create=true
assert_eq "sink survived the outage" "0" "$STATUS"
assert_contains "sink retried" "$(cat "$T/mid.err")" "retry: postgresql:"
assert_eq "every key once, last pass" "1000|1000|2|2000|2999" \
  "$(pgq 'SELECT count(*), count(DISTINCT k), min(pass), min(off), max(off) FROM s')"
assert_eq "offsets after outage" "2999" "$(pgq "SELECT \"offset\" FROM __runnel_sink_offsets WHERE connector = 'mid'")"

# The same outage with plain inserts (streamed COPY, no key): every record
# exactly once, from the sink's own offsets.
sed 's/^s\t/si\t/' "$T/stream.tsv" >"$T/stream_ins.tsv"
through_outage midins si "$T/stream_ins.tsv" auto.create=true
assert_eq "insert sink survived the outage" "0" "$STATUS"
assert_contains "insert sink retried" "$(cat "$T/midins.err")" "retry: postgresql:"
assert_eq "insert: every record once" "3000|3000|0|2999" \
  "$(pgq 'SELECT count(*), count(DISTINCT off), min(off), max(off) FROM si')"

# ---- source: the four modes ------------------------------------------------------
pgq "CREATE TABLE src (id serial PRIMARY KEY, name text, ok boolean, amount numeric(10,2),
     f double precision, at timestamptz NOT NULL);
     INSERT INTO src (name, ok, amount, f, at) VALUES
       ('a', true, 1.50, 0.25, '2026-01-01 00:00:00.000001+00'),
       ('b\"q', false, NULL, NULL, '2026-01-01 00:00:00.000001+00'),
       ('c', NULL, 3, 1e300, '2026-01-01 00:00:02+00')" >/dev/null
SRC=(connection.url="$PG_URL" table.whitelist=src topic.prefix=pg-)
out=$("$H" source postgres-source "$T/off.inc" 10 "${SRC[@]}" mode=incrementing incrementing.column.name=id batch.max.rows=2)
assert_eq "incrementing" 'pg-src	{"incrementing":1}	{"id":1,"name":"a","ok":true,"amount":1.50,"f":0.25,"at":"2026-01-01 00:00:00.000001+00"}
pg-src	{"incrementing":2}	{"id":2,"name":"b\"q","ok":false,"amount":null,"f":null,"at":"2026-01-01 00:00:00.000001+00"}
pg-src	{"incrementing":3}	{"id":3,"name":"c","ok":null,"amount":3.00,"f":1e+300,"at":"2026-01-01 00:00:02+00"}' "$out"
out=$("$H" source postgres-source "$T/off.ts" 10 "${SRC[@]}" mode=timestamp timestamp.column.name=at | cut -f2)
assert_eq "timestamp offsets" '{"timestamp":1767225600000,"timestamp_nanos":1000}
{"timestamp":1767225600000,"timestamp_nanos":1000}
{"timestamp":1767225602000,"timestamp_nanos":0}' "$out"
out=$("$H" source postgres-source "$T/off.tsi" 10 "${SRC[@]}" mode=timestamp+incrementing \
      timestamp.column.name=at incrementing.column.name=id | cut -f2)
assert_eq "timestamp+incrementing offsets" '{"timestamp":1767225600000,"timestamp_nanos":1000,"incrementing":1}
{"timestamp":1767225600000,"timestamp_nanos":1000,"incrementing":2}
{"timestamp":1767225602000,"timestamp_nanos":0,"incrementing":3}' "$out"
out=$("$H" source postgres-source "$T/off.bulk" 10 "${SRC[@]}" mode=bulk | wc -l)
assert_eq "bulk" "3" "$out"

# New rows: each mode resumes from its offsets file; bulk reads everything.
pgq "INSERT INTO src (name, at) VALUES ('d', '2026-01-01 00:00:02+00'), ('e', '2026-01-01 00:00:03+00');
     UPDATE src SET name = 'c2', at = '2026-01-01 00:00:05+00' WHERE id = 3" >/dev/null
out=$("$H" source postgres-source "$T/off.inc" 10 "${SRC[@]}" mode=incrementing incrementing.column.name=id | cut -f3 | cut -c1-20)
assert_eq "incrementing resumes" '{"id":4,"name":"d","
{"id":5,"name":"e","' "$out"
out=$("$H" source postgres-source "$T/off.ts" 10 "${SRC[@]}" mode=timestamp timestamp.column.name=at | cut -f3 | cut -c1-20)
assert_eq "timestamp resumes (sees the update)" '{"id":5,"name":"e","
{"id":3,"name":"c2",' "$out"
out=$("$H" source postgres-source "$T/off.tsi" 10 "${SRC[@]}" mode=timestamp+incrementing \
      timestamp.column.name=at incrementing.column.name=id | cut -f3 | cut -c1-20)
assert_eq "timestamp+incrementing resumes" '{"id":4,"name":"d","
{"id":5,"name":"e","
{"id":3,"name":"c2",' "$out"
out=$("$H" source postgres-source "$T/off.bulk" 10 "${SRC[@]}" mode=bulk | wc -l)
assert_eq "bulk again" "5" "$out"

# A custom query, with its own WHERE.
out=$("$H" source postgres-source "$T/off.q" 10 connection.url="$PG_URL" topic.prefix=q \
      mode=incrementing incrementing.column.name=id "query=SELECT id, upper(name) AS n FROM src WHERE id > 3")
assert_eq "query mode" 'q	{"incrementing":4}	{"id":4,"n":"D"}
q	{"incrementing":5}	{"id":5,"n":"E"}' "$out"

# ---- source: server down at start, then up --------------------------------------
pg_stop fast
( sleep 1; pg_resume ) &
RP=$!
out=$("$H" source postgres-source "$T/off.down" 10 "${SRC[@]}" mode=incrementing incrementing.column.name=id 2>"$T/down.err" | wc -l)
wait "$RP"
PG_RUNNING=1
assert_eq "source after the outage" "5" "$out"
assert_contains "source retried" "$(cat "$T/down.err")" "retry: postgresql: cannot connect"

# ---- unreachable server ------------------------------------------------------------
STATUS=0
timeout 2 "$H" sink postgres-sink x 10 connection.url="postgresql://postgres@/test?host=$T/nowhere" \
  </dev/null >/dev/null 2>"$T/unreach.err" || STATUS=$?
assert_eq "unreachable: still retrying when killed" "124" "$STATUS"
assert_contains "unreachable: says why" "$(cat "$T/unreach.err")" \
  "retry: postgresql: cannot connect: connection to server on socket \"$T/nowhere/.s.PGSQL.5432\" failed: No such file or directory"

# ---- connection.user / connection.password override the URL's ------------------------
NOUSER_URL="postgresql:///test?host=$PG_SOCK&port=$PG_PORT"
out=$(printf 'cu\t0\t0\t\\N\t{"a":1}\n' | "$H" sink postgres-sink cu 10 connection.url="$NOUSER_URL" \
      connection.user=postgres connection.password=ignored-by-trust auto.create=true 2>/dev/null)
assert_eq "connection.user: rows written" "1" "$(pgq 'SELECT a FROM cu')"
STATUS=0
printf 'cu\t0\t1\t\\N\t{"a":2}\n' | timeout 2 "$H" sink postgres-sink cu 10 \
  connection.url="postgresql://postgres@/test?host=$PG_SOCK&port=$PG_PORT" connection.user=nosuch \
  >/dev/null 2>"$T/nosuch.err" || STATUS=$?
assert_eq "connection.user wins over the URL's user: retrying" "124" "$STATUS"
assert_contains "connection.user: the server's reason" "$(cat "$T/nosuch.err")" 'role "nosuch" does not exist'

finish
