# run.sh BUILD_DIR: the benchmarks, as `./build.sh bench` runs them.
#
# Starts a private redis-server (AOF on, fsync every second, no RDB
# snapshots, unix socket only) for the Redis Streams comparison, runs
# bench_log on scratch space inside BUILD_DIR (the disk the build is on),
# and stops and deletes everything on the way out, failure or not. Then
# runs bench_jobs (Lua stream jobs on the runner beside a bare Lua loop and
# plain SQLite) on scratch space there too, then bench_connect.sh (file ->
# log -> SQLite / PostgreSQL sinks on a worker beside sqlite3 .import and
# psql \copy; BENCH_CONNECT_RECORDS, default 1000000), then
# bench_conn_transforms (connector transform chains in memory).
# BENCH_SIZE_MB (default 1024) sets the size of each log for a quick run;
# BENCH_JOBS_RECORDS (default 1000000) the records per job measurement;
# BENCH_REPS (default 3) the repetitions of both.
# Installs nothing: build.sh installs redis-server.
set -euo pipefail
BUILD=${1:?usage: run.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
SCRATCH=$(mktemp -d "$BUILD/bench-tmp.XXXXXX")
REDIS_PID=

cleanup() {
  if [ -n "$REDIS_PID" ]; then
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$REDIS_PID" 2>/dev/null || true
  fi
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis_args=()
if command -v redis-server >/dev/null; then
  mkdir -p "$SCRATCH/redis"
  redis-server --port 0 --unixsocket "$SCRATCH/redis/redis.sock" --unixsocketperm 700 \
    --dir "$SCRATCH/redis" --appendonly yes --appendfsync everysec --save '' \
    --daemonize no --logfile "$SCRATCH/redis/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 1 100); do [ -S "$SCRATCH/redis/redis.sock" ] && break; sleep 0.05; done
  if [ -S "$SCRATCH/redis/redis.sock" ]; then
    redis_args=(--redis "$SCRATCH/redis/redis.sock")
    echo "redis: $(redis-server --version | head -1)"
  else
    echo "redis-server did not start; Redis comparison skipped:" >&2
    cat "$SCRATCH/redis/redis.log" >&2 || true
  fi
else
  echo "redis-server not installed; Redis comparison skipped (./build.sh bench installs it)"
fi

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)," \
     "$(df -h --output=source,fstype "$SCRATCH" | tail -1 | awk '{print $1" ("$2")"}')"
"$BUILD/tests/bench_log" --dir "$SCRATCH/data" ${BENCH_SIZE_MB:+--size-mb "$BENCH_SIZE_MB"} \
  "${redis_args[@]}"
# The log's scratch space is not needed any more: free the disk first.
rm -rf "$SCRATCH/data"
echo
"$BUILD/tests/bench_jobs" --dir "$SCRATCH/jobs"
echo
bash "$(dirname "$0")/bench_connect.sh" "$BUILD" "$SCRATCH/connect"
echo
"$BUILD/tests/bench_conn_transforms"
