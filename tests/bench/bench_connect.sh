#!/usr/bin/env bash
# bench_connect.sh BUILD_DIR SCRATCH [sqlite|postgres ...]: connectors end
# to end on a real worker, beside the databases' own bulk loaders.
#
#   runnel:  N JSON lines in a file -> file-source (format=json) -> topic ->
#            sqlite-sink / postgres-sink (insert mode, auto.create), timed
#            from the worker's start until the table holds N rows
#   beside:  the same rows as CSV: sqlite3's `.import` into a fresh
#            database; psql's `\copy` into a fresh table of the same types
#
# Prints records/s of both and runnel/tool (target >= 0.5). The PostgreSQL
# case starts a private cluster with tests/integration/pg_lib.sh (as the
# postgres user when root) with the server's default durability; its sink
# session commits with synchronous_commit=off (see docs/connectors.md).
# BENCH_CONNECT_RECORDS (default 1000000) sets N; BENCH_CONNECT_PUT the
# records per put, i.e. per transaction (default 5000 into SQLite, 20000
# into PostgreSQL, where each put costs a COPY's start and end and a
# COMMIT round trip; docs/benchmarks.md has both sizes); BENCH_REPS
# (default 3) the repetitions (medians printed). BENCH_CONNECT_CPU=1 also
# prints, per run, the CPU seconds of each worker thread and of the
# PostgreSQL backend serving the sink (from /proc, read before the worker
# stops): on a loaded machine those move less than the wall clock.
set -euo pipefail
BUILD=${1:?usage: bench_connect.sh BUILD_DIR SCRATCH [sqlite|postgres ...]}
S=${2:?scratch directory}
shift 2
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(sqlite postgres)
N=${BENCH_CONNECT_RECORDS:-1000000}
# Records per put (consumer.override.max.poll.records) and per COPY or
# multi-row statement (batch.size): each put is one transaction.
SQLITE_PUT=${BENCH_CONNECT_PUT:-5000}
PG_PUT=${BENCH_CONNECT_PUT:-20000}
REPS=${BENCH_REPS:-3}
RUNNEL=$BUILD/runnel
SRC=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$S"
T=$S
WPID=

fail() { echo "bench_connect: $*" >&2; }
cleanup() { :; }
stop_worker() {
  if [ -n "$WPID" ]; then
    kill -TERM "$WPID" 2>/dev/null || true
    wait "$WPID" 2>/dev/null || true
    WPID=
  fi
}
# pg_lib.sh installs its own EXIT trap (stop the cluster, then cleanup).
source "$SRC/tests/integration/pg_lib.sh"
cleanup() { stop_worker; done_postgres_close; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The data: clicks with five fields, as JSON lines and as CSV.
echo "bench_connect: generating $N records"
awk -v n="$N" 'BEGIN {
  for (i = 0; i < n; i++)
    printf "{\"id\":%d,\"page\":\"/p/%d\",\"user\":\"u%d\",\"ms\":%.0f,\"ok\":%s}\n",
      i, i % 1000, i % 5000, 1700000000000 + i, (i % 3 ? "true" : "false") }' >"$S/in.jsonl"
awk -v n="$N" 'BEGIN { print "id,page,user,ms,ok"
  for (i = 0; i < n; i++)
    printf "%d,/p/%d,u%d,%.0f,%s\n", i, i % 1000, i % 5000, 1700000000000 + i, (i % 3 ? "true" : "false") }' >"$S/in.csv"

count_sqlite() { sqlite3 "$S/bench.db" "SELECT count(*) FROM clicks"; }
count_postgres() { pgq "SELECT count(*) FROM clicks"; }
# While the worker runs, progress is read from the sink's offsets table (one
# row, committed in the same transaction as the rows: offset N-1 means N rows
# in the table, one partition): a count(*) of a growing table every 50 ms
# would load the database being measured. The count is checked at the end.
# done_KIND sets DONE (in this shell, so that the PostgreSQL session lives on).
done_sqlite() {
  DONE=$(sqlite3 "$S/bench.db" "SELECT \"offset\" + 1 FROM __runnel_sink_offsets WHERE connector = 'bench-sink'" 2>/dev/null || true)
}
# PostgreSQL is asked through one psql session kept open for the whole
# run (a coprocess). Until this change each poll started a new psql
# (Debian's psql is a Perl wrapper) and a new server backend: about 35 ms
# of CPU (40 polls: 1.29 s in the clients, 0.20 s in the backends), so
# polling every 50 ms took most of a core from the pipeline being
# measured on this 2-core machine, while the \copy beside it had no
# poller. Each question ends with a marker line, as the offsets table may
# not exist yet (an error, no row).
PGQ_PID=
done_postgres() {
  if [ -z "$PGQ_PID" ]; then
    coproc PGQ { psql -X -q -A -t -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d test 2>/dev/null; }
    PGQ_PID=$PGQ_PID
  fi
  echo "SELECT \"offset\" + 1 FROM __runnel_sink_offsets WHERE connector = 'bench-sink';
        SELECT 'end';" >&"${PGQ[1]}"
  local line
  DONE=0
  while read -r line <&"${PGQ[0]}"; do
    [ "$line" = end ] && break
    DONE=$line
  done
}
done_postgres_close() {
  if [ -n "$PGQ_PID" ]; then
    kill "$PGQ_PID" 2>/dev/null || true
    wait "$PGQ_PID" 2>/dev/null || true
    PGQ_PID=
  fi
}

# CPU seconds (user + system) of a process or thread from its stat file.
cpu_of() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "$1"
}
# cpu_report KIND: the worker's threads (by name) and the sink's backend.
cpu_report() {
  local t line="  cpu s:"
  for t in /proc/"$WPID"/task/*; do
    line+=" $(cat "$t/comm" 2>/dev/null)=$(cpu_of "$t/stat" 2>/dev/null)"
  done
  if [ "$1" = postgres ]; then
    local b
    b=$(pgq "SELECT pid FROM pg_stat_activity WHERE application_name = 'runnel' LIMIT 1" 2>/dev/null)
    [ -n "$b" ] && line+=" pg-backend=$(cpu_of "/proc/$b/stat" 2>/dev/null)"
  fi
  echo "$line"
}

# run_worker NAME SINK_CONFIG KIND: seconds until done_KIND prints N.
run_worker() {
  local name=$1 sink=$2 kind=$3
  rm -rf "$S/data"
  cat >"$S/worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$S/data"}
JSON
  cat >"$S/src.json" <<JSON
{"name": "bench-src", "config": {"connector.class": "file-source", "file": "$S/in.jsonl",
 "topic": "clicks", "format": "json", "batch.size": "5000"}}
JSON
  echo "$sink" >"$S/sink.json"
  local t0 t1 c=0
  t0=$(now)
  "$RUNNEL" worker --config "$S/worker.json" "$S/src.json" "$S/sink.json" 2>"$S/$name.log" &
  WPID=$!
  while :; do
    "done_$kind"; c=$DONE
    [ "${c:-0}" -ge "$N" ] && break
    if ! kill -0 "$WPID" 2>/dev/null; then
      echo "bench_connect: the worker exited:" >&2; tail -20 "$S/$name.log" >&2; exit 1
    fi
    sleep 0.05
  done
  t1=$(now)
  [ "${BENCH_CONNECT_CPU:-0}" = 1 ] && cpu_report "$kind" >&2
  stop_worker
  c=$("count_$kind")
  if [ "$c" -ne "$N" ]; then echo "bench_connect: $c rows, expected $N" >&2; exit 1; fi
  elapsed "$t0" "$t1"
}

report() { # label runnel_seconds tool_seconds tool_label
  awk -v n="$N" -v r="$2" -v t="$3" -v lab="$1" -v tool="$4" 'BEGIN {
    printf "  %-44s %10.0f records/s  %6.2f s\n", "runnel file -> log -> " lab, n / r, r
    printf "  %-44s %10.0f records/s  %6.2f s\n", tool, n / t, t
    printf "  ratio runnel/%s: %.2f   target >= 0.5   %s\n", lab, t / r, (t / r >= 0.5 ? "MET" : "NOT MET") }'
}

bench_sqlite() {
  local db=$S/bench.db r=() t=() i s
  for i in $(seq 1 "$REPS"); do
    rm -f "$db" "$db-wal" "$db-shm"
    s=$(run_worker sqlite "{\"name\": \"bench-sink\", \"config\": {\"connector.class\": \"sqlite-sink\",
      \"topics\": \"clicks\", \"connection.url\": \"sqlite://$db\", \"auto.create\": \"true\",
      \"consumer.override.max.poll.records\": \"$SQLITE_PUT\", \"batch.size\": \"$SQLITE_PUT\"}}" \
      sqlite)
    r+=("$s")
    rm -f "$S/import.db"
    local t0 t1
    t0=$(now)
    sqlite3 "$S/import.db" -cmd ".mode csv" ".import $S/in.csv clicks"
    t1=$(now)
    t+=("$(elapsed "$t0" "$t1")")
    [ "$(sqlite3 "$S/import.db" 'SELECT count(*) FROM clicks')" -eq "$N" ]
  done
  echo "a) $N JSON records into SQLite ($(sqlite3 --version | cut -d' ' -f1)), puts of $SQLITE_PUT, $REPS runs, medians:"
  report sqlite "$(printf '%s\n' "${r[@]}" | median)" "$(printf '%s\n' "${t[@]}" | median)" \
    "sqlite3 .import (CSV)"
  echo "  (runnel $(printf '%s\n' "${r[@]}" | sort -g | head -1)..$(printf '%s\n' "${r[@]}" | sort -g | tail -1) s," \
       "sqlite3 $(printf '%s\n' "${t[@]}" | sort -g | head -1)..$(printf '%s\n' "${t[@]}" | sort -g | tail -1) s)"
}

bench_postgres() {
  pg_start
  local r=() t=() i s
  pgq "CREATE TABLE copied (id bigint, page text, \"user\" text, ms bigint, ok boolean)"
  for i in $(seq 1 "$REPS"); do
    pgq "DROP TABLE IF EXISTS clicks; DROP TABLE IF EXISTS __runnel_sink_offsets" >/dev/null 2>&1
    s=$(run_worker postgres "{\"name\": \"bench-sink\", \"config\": {\"connector.class\": \"postgres-sink\",
      \"topics\": \"clicks\", \"connection.url\": \"$PG_URL\", \"auto.create\": \"true\",
      \"consumer.override.max.poll.records\": \"$PG_PUT\", \"batch.size\": \"$PG_PUT\"}}" \
      postgres)
    r+=("$s")
    pgq "TRUNCATE copied"
    local t0 t1
    t0=$(now)
    psql -X -q -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d test \
      -c "\\copy copied FROM '$S/in.csv' WITH (FORMAT csv, HEADER true)"
    t1=$(now)
    t+=("$(elapsed "$t0" "$t1")")
    [ "$(pgq 'SELECT count(*) FROM copied')" -eq "$N" ]
  done
  echo "b) $N JSON records into PostgreSQL $(pgq 'SHOW server_version'), puts of $PG_PUT, $REPS runs, medians:"
  report postgres "$(printf '%s\n' "${r[@]}" | median)" "$(printf '%s\n' "${t[@]}" | median)" \
    "psql \\copy (CSV)"
  echo "  (runnel $(printf '%s\n' "${r[@]}" | sort -g | head -1)..$(printf '%s\n' "${r[@]}" | sort -g | tail -1) s," \
       "psql $(printf '%s\n' "${t[@]}" | sort -g | head -1)..$(printf '%s\n' "${t[@]}" | sort -g | tail -1) s)"
}

echo "runnel connectors benchmark: $N records, scratch $S"
for c in "${CASES[@]}"; do
  case "$c" in
    sqlite) bench_sqlite ;;
    postgres) bench_postgres ;;
    *) echo "unknown case $c" >&2; exit 2 ;;
  esac
done
