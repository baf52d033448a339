#!/usr/bin/env bash
# The quickstart: a fresh data dir, a topic, records in and out through the
# CLI, a Lua job tested without a worker, then the same job on a worker
# with its state queried over HTTP, stopped cleanly with SIGTERM.
# Run it through `./build.sh quickstart`, or directly:
#   examples/quickstart/run.sh path/to/runnel
set -euo pipefail
RUNNEL=${1:-runnel}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${QUICKSTART_DATA:-$(mktemp -d "${TMPDIR:-/tmp}/runnel-quickstart.XXXXXX")}
WORKER_PID=
trap '[ -n "$WORKER_PID" ] && kill "$WORKER_PID" 2>/dev/null; rm -rf "$DATA"' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
say() { printf '%s\n' "$*"; }
R() { "$RUNNEL" "$@" --data-dir "$DATA/data"; }

say "runnel quickstart, data dir $DATA/data"

step "runnel topics create clicks --partitions 3"
R topics create clicks --partitions 3

step "runnel produce clicks --key-delimiter : < clicks.txt"
R produce clicks --key-delimiter : < "$HERE/clicks.txt"

step "runnel topics describe clicks"
R topics describe clicks

step "runnel consume clicks --from-beginning --partition 0 --format json"
R consume clicks --from-beginning --partition 0 --format json

step "runnel consume clicks --group report --from-beginning --max 4"
R consume clicks --group report --from-beginning --max 4
step "runnel consume clicks --group report   (resumes where the group stopped)"
R consume clicks --group report

step "cat clicks.lua"
cat "$HERE/clicks.lua"
step "runnel test clicks.lua < input.jsonl   (no worker, no disk)"
"$RUNNEL" test "$HERE/clicks.lua" < "$HERE/input.jsonl"

step "runnel run clicks.lua --set listeners=http://127.0.0.1:0 &"
"$RUNNEL" run "$HERE/clicks.lua" --data-dir "$DATA/data" --set listeners=http://127.0.0.1:0 \
  2>"$DATA/worker.log" &
WORKER_PID=$!
for _ in $(seq 1 100); do grep -q "worker: started" "$DATA/worker.log" 2>/dev/null && break; sleep 0.1; done
cat "$DATA/worker.log"
PORT=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\)$/\1/p' "$DATA/worker.log" | head -1)
[ -n "$PORT" ] || { say "the worker did not start"; exit 1; }
URL="http://127.0.0.1:$PORT"

step "curl $URL/health"
curl -s "$URL/health"; echo
step "curl $URL/jobs/clicks/stores/clicks-per-page   (clicks per page, live)"
for _ in $(seq 1 50); do
  body=$(curl -s "$URL/jobs/clicks/stores/clicks-per-page")
  [[ "$body" == *'"/home","value":3'* ]] && break
  sleep 0.1
done
echo "$body"
step "curl $URL/jobs/clicks/stores/clicks-per-page/keys/%2Fpricing"
curl -s "$URL/jobs/clicks/stores/clicks-per-page/keys/%2Fpricing"; echo
step "curl $URL/metrics | grep runnel_log_end_offset"
curl -s "$URL/metrics" | grep '^runnel_log_end_offset{topic="clicks"'

step "kill -TERM \$WORKER_PID"
kill -TERM "$WORKER_PID"
status=0
wait "$WORKER_PID" || status=$?
WORKER_PID=
tail -n 3 "$DATA/worker.log"
[ "$status" -eq 0 ] || { say "worker exited with status $status"; exit 1; }

say ""
say "Done. Next: docs/lua-jobs.md (writing jobs), docs/cli.md (topics, produce,"
say "consume), docs/configuration.md (worker.json), docs/durability.md."
