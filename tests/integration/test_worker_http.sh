# The worker's REST basics: /, /health, /metrics, error shapes, limits,
# the data dir lock and a clean stop on SIGTERM/SIGINT.
source "$(dirname "$0")/lib.sh"

cat > "$T/worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$T/data",
 "http": {"max.header.bytes": 2048, "max.body.bytes": 4096}}
JSON
start_worker w1 --config "$T/worker.json"

http GET /
assert_eq "GET / status" 200 "$CODE"
assert_contains "GET / names runnel" "$BODY" '"name":"runnel"'
assert_contains "GET / has the version" "$BODY" '"version":"0.1.0"'
assert_contains "GET / has the commit" "$BODY" '"commit":"'

http GET /health
assert_eq "GET /health status" 200 "$CODE"
assert_contains "GET /health body" "$BODY" '"status":"healthy"'

http GET /nope
assert_eq "unknown path" 404 "$CODE"
assert_eq "unknown path body" '{"error_code":404,"message":"Unknown path: /nope"}' "$BODY"

http POST /health
assert_eq "wrong method" 405 "$CODE"
assert_contains "wrong method body" "$BODY" '"error_code":405'

# Headers over http.max.header.bytes (2048) -> 431; body over 4096 -> 413.
http GET /health -H "X-Big: $(head -c 3000 /dev/zero | tr '\0' a)"
assert_eq "oversized headers" 431 "$CODE"
assert_contains "431 body" "$BODY" '"error_code":431'
head -c 5000 /dev/zero | tr '\0' a > "$T/big"
http POST /health --data-binary @"$T/big"
assert_eq "oversized body" 413 "$CODE"
assert_contains "413 body" "$BODY" 'http.max.body.bytes'

# Malformed requests get 400, never a crash.
reply=$(raw_http 'GARBAGE\r\n\r\n')
assert_contains "malformed request line" "$reply" "400 Bad Request"
reply=$(raw_http 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n')
assert_contains "bad content-length" "$reply" "400 Bad Request"
reply=$(raw_http 'GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n')
assert_contains "bad percent escape" "$reply" "400 Bad Request"
# Two pipelined requests on one connection get two answers in order.
reply=$(raw_http 'GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
assert_contains "pipelined first" "$reply" "200 OK"
assert_contains "pipelined second" "$reply" "404 Not Found"

http GET /health
assert_eq "still healthy after bad requests" 200 "$CODE"

http GET /metrics
assert_eq "GET /metrics status" 200 "$CODE"
assert_contains "metrics: build info" "$BODY" 'runnel_build_info{version="0.1.0"'
assert_contains "metrics: process" "$BODY" '# TYPE process_cpu_seconds_total counter'
assert_contains "metrics: rss" "$BODY" 'process_resident_memory_bytes '
assert_contains "metrics: request counts" "$BODY" 'runnel_http_requests_total{code="404"}'
assert_contains "metrics: 431 counted" "$BODY" 'runnel_http_requests_total{code="431"}'

# A second process on the same data dir is refused at once, naming the
# directory and the holder's pid.
set +e
out=$("$RUNNEL" worker --config "$T/worker.json" 2>&1)
rc=$?
set -e
assert_eq "second worker exit status" 1 "$rc"
assert_contains "second worker message" "$out" "data dir $T/data is locked by another process (pid $WORKER_PID)"

stop_worker TERM
assert_eq "exit status after SIGTERM" 0 "$STATUS"
assert_contains "log says stopped" "$(cat "$T/w1.log")" "worker: stopped"
assert_contains "log flushed" "$(cat "$T/w1.log")" "log: flushed and closed"
# The log lines have time, level and module.
first=$(head -1 "$T/w1.log")
check "log line format: $first" grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z INFO  worker: ' <<<"$first"

# The lock is released: the same data dir starts again, and SIGINT stops it.
start_worker w2 --config "$T/worker.json"
http GET /health
assert_eq "restart on the same data dir" 200 "$CODE"
stop_worker INT
assert_eq "exit status after SIGINT" 0 "$STATUS"

# --log-level warn hides the info lines of a whole run.
"$RUNNEL" worker --config "$T/worker.json" --log-level warn 2>"$T/w3.log" &
WORKER_PID=$!
WORKER_PIDS+=("$WORKER_PID")
sleep 1
stop_worker TERM
assert_eq "exit status with --log-level warn" 0 "$STATUS"
assert_eq "--log-level warn hides info lines" "" "$(cat "$T/w3.log")"

finish
