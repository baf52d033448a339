#!/usr/bin/env bash
# The quickstart: a fresh data dir, a topic, records in and out through the
# CLI, then a worker on the same data dir answering /health and /metrics,
# stopped cleanly with SIGTERM. Run it through `./build.sh quickstart`, or
# directly: examples/quickstart/run.sh path/to/runnel
set -euo pipefail
RUNNEL=${1:-runnel}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${QUICKSTART_DATA:-$(mktemp -d "${TMPDIR:-/tmp}/runnel-quickstart.XXXXXX")}
WORKER_PID=
trap '[ -n "$WORKER_PID" ] && kill "$WORKER_PID" 2>/dev/null; rm -rf "$DATA"' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
say() { printf '%s\n' "$*"; }

say "runnel quickstart, data dir $DATA"

step "runnel topics create clicks --partitions 3"
"$RUNNEL" topics create clicks --partitions 3 --data-dir "$DATA"

step "runnel produce clicks --key-delimiter : < clicks.txt"
"$RUNNEL" produce clicks --key-delimiter : --data-dir "$DATA" < "$HERE/clicks.txt"

step "runnel topics describe clicks"
"$RUNNEL" topics describe clicks --data-dir "$DATA"

step "runnel consume clicks --from-beginning --partition 0 --format json"
"$RUNNEL" consume clicks --from-beginning --partition 0 --format json --data-dir "$DATA"

step "runnel consume clicks --group report --from-beginning --max 4"
"$RUNNEL" consume clicks --group report --from-beginning --max 4 --data-dir "$DATA"
step "runnel consume clicks --group report   (resumes where the group stopped)"
"$RUNNEL" consume clicks --group report --data-dir "$DATA"

step "runnel worker --data-dir DATA --set listeners=http://127.0.0.1:0 &"
"$RUNNEL" worker --data-dir "$DATA" --set listeners=http://127.0.0.1:0 2>"$DATA/worker.log" &
WORKER_PID=$!
for _ in $(seq 1 100); do grep -q "worker: started" "$DATA/worker.log" 2>/dev/null && break; sleep 0.1; done
cat "$DATA/worker.log"
PORT=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\)$/\1/p' "$DATA/worker.log" | head -1)
[ -n "$PORT" ] || { say "the worker did not start"; exit 1; }

step "curl http://127.0.0.1:$PORT/health"
curl -s "http://127.0.0.1:$PORT/health"; echo
step "curl http://127.0.0.1:$PORT/metrics | grep runnel_log_end_offset"
curl -s "http://127.0.0.1:$PORT/metrics" | grep '^runnel_log_end_offset{topic="clicks"'

step "kill -TERM \$WORKER_PID"
kill -TERM "$WORKER_PID"
status=0
wait "$WORKER_PID" || status=$?
WORKER_PID=
tail -n 3 "$DATA/worker.log"
[ "$status" -eq 0 ] || { say "worker exited with status $status"; exit 1; }

say ""
say "Done. Next: docs/cli.md (topics, produce, consume), docs/configuration.md"
say "(worker.json keys), docs/durability.md (what log.flush guarantees)."
