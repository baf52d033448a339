#!/usr/bin/env bash
# The end-to-end quickstart: web clicks as JSON lines in a file, a file
# source connector into the topic "clicks", a Lua job counting clicks per
# page per minute (tumbling event-time windows), and a SQLite sink
# connector upserting the counts into quickstart.db. It then prints the
# table, appends a few clicks to show the pipeline following the file,
# and stops the worker cleanly.
#
# Run it through `./build.sh quickstart`, or directly:
#   examples/quickstart/run.sh path/to/runnel [directory]
# The directory (default ./quickstart-data) is emptied first and kept
# afterwards, so that you can query quickstart.db yourself.
set -euo pipefail
RUNNEL=$(cd "$(dirname "${1:-runnel}")" && pwd)/$(basename "${1:-runnel}")
[ -x "$RUNNEL" ] || RUNNEL=$(command -v "${1:-runnel}")
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${2:-${QUICKSTART_DIR:-$PWD/quickstart-data}}
CLICKS=${QUICKSTART_CLICKS:-5000}
WORKER_PID=
trap '[ -n "$WORKER_PID" ] && kill "$WORKER_PID" 2>/dev/null; true' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
say() { printf '%s\n' "$*"; }
fail() { say "quickstart: $*" >&2; [ -f worker.log ] && tail -n 20 worker.log >&2; exit 1; }
# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local t=$(( $1 * 10 )); shift
  while ! "$@" >/dev/null 2>&1; do
    t=$((t - 1)); [ "$t" -gt 0 ] || return 1; sleep 0.1
  done
}
total_in_db() { sqlite3 quickstart.db 'SELECT sum(clicks) FROM clicks_per_minute' 2>/dev/null; }
db_has() { [ "$(total_in_db)" = "$1" ]; }

rm -rf "$DIR"
mkdir -p "$DIR"
cd "$DIR"
cp "$HERE/clicks-per-minute.lua" "$HERE/clicks-source.json" "$HERE/quickstart-sink.json" .
say "runnel quickstart in $DIR"

step "gen-clicks.sh $CLICKS > clicks.jsonl   (ten minutes of web clicks)"
"$HERE/gen-clicks.sh" "$CLICKS" > clicks.jsonl
head -n 3 clicks.jsonl

step "cat clicks-per-minute.lua"
cat clicks-per-minute.lua
step "cat clicks-source.json quickstart-sink.json"
cat clicks-source.json quickstart-sink.json

step "runnel topics create clicks --partitions 3 --data-dir data"
"$RUNNEL" topics create clicks --partitions 3 --data-dir data

step "runnel worker --set jobs=clicks-per-minute.lua clicks-source.json quickstart-sink.json &"
"$RUNNEL" worker --data-dir data --set listeners=http://127.0.0.1:0 \
  --set jobs=clicks-per-minute.lua clicks-source.json quickstart-sink.json 2>worker.log &
WORKER_PID=$!
wait_for 10 grep -q "worker: started" worker.log || fail "the worker did not start"
PORT=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\)$/\1/p' worker.log | head -1)
[ -n "$PORT" ] || fail "the worker did not say its port"
URL="http://127.0.0.1:$PORT"
say "worker listening on $URL (log: $DIR/worker.log)"

wait_for 40 db_has "$CLICKS" || fail "quickstart.db has $(total_in_db) of $CLICKS clicks after 40 s"

step "curl $URL/connectors?expand=status"
curl -s "$URL/connectors?expand=status"; echo
step "curl $URL/jobs/clicks-per-minute/status"
curl -s "$URL/jobs/clicks-per-minute/status" | head -c 400; echo '...'

pivot() {
  sqlite3 -header -column quickstart.db "
    SELECT strftime('%H:%M', window_start / 1000, 'unixepoch') AS minute,
           sum(clicks) AS total,
           sum(CASE page WHEN '/home' THEN clicks END) AS home,
           sum(CASE page WHEN '/docs' THEN clicks END) AS docs,
           sum(CASE page WHEN '/pricing' THEN clicks END) AS pricing,
           sum(CASE page WHEN '/blog' THEN clicks END) AS blog,
           sum(CASE page WHEN '/login' THEN clicks END) AS login,
           sum(CASE page WHEN '/signup' THEN clicks END) AS signup,
           sum(CASE page NOT IN ('/home','/docs','/pricing','/blog','/login','/signup')
               WHEN 1 THEN clicks END) AS other
    FROM clicks_per_minute GROUP BY window_start ORDER BY window_start"
}
step "sqlite3 quickstart.db   (clicks per minute, one column per page)"
pivot

# The file source follows the file like tail -F: three more clicks on
# /pricing in the last minute update that minute's row.
LAST=$(tail -n 1 clicks.jsonl | sed 's/.*"ts":\([0-9]*\).*/\1/')
step "three more /pricing clicks appended to clicks.jsonl"
for i in 1 2 3; do
  printf '{"ts":%d,"user":"u9%02d","page":"/pricing","ms":50}\n' "$((LAST + i))" "$i" >> clicks.jsonl
done
tail -n 3 clicks.jsonl
wait_for 20 db_has "$((CLICKS + 3))" || fail "the appended clicks did not reach quickstart.db"
sqlite3 -header -column quickstart.db "
  SELECT page, strftime('%H:%M', window_start / 1000, 'unixepoch') AS minute, clicks
  FROM clicks_per_minute WHERE page = '/pricing' ORDER BY window_start DESC LIMIT 2"

step "kill -TERM \$WORKER_PID"
kill -TERM "$WORKER_PID"
status=0
wait "$WORKER_PID" || status=$?
WORKER_PID=
tail -n 2 worker.log
[ "$status" -eq 0 ] || fail "worker exited with status $status"

cat <<EOF

Done. The table stays in $DIR/quickstart.db; query it with:
  sqlite3 -header -column $DIR/quickstart.db \\
    "SELECT page, datetime(window_start/1000, 'unixepoch') AS minute, clicks
     FROM clicks_per_minute ORDER BY clicks DESC LIMIT 5"
Start the worker again (same data dir) and it resumes where it stopped:
  cd $DIR && $RUNNEL worker --data-dir data --set jobs=clicks-per-minute.lua
Next: docs/connectors.md (connectors and their REST API), docs/lua-jobs.md
and docs/windows-and-joins.md (jobs), docs/cli.md, docs/configuration.md.
EOF
