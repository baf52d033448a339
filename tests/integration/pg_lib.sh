# pg_lib.sh: a throwaway PostgreSQL cluster for integration tests.
# Source after lib.sh:
#
#   source "$RUNNEL_SOURCE_DIR/tests/integration/pg_lib.sh"
#   pg_start            # initdb + start; sets PG_URL, PG_SOCK, PG_PORT
#   pgq "SELECT ..."    # psql -At against the test database
#   pg_stop [fast|immediate]; pg_resume    # stop / start the same cluster
#
# The cluster lives in $T/pg (the test's scratch space under
# $RUNNEL_TEST_TMP) and listens on a unix socket only (listen_addresses
# is empty), in $T/pg/sock, on a random port number (which only names the
# socket file), so concurrent tests never meet. It is stopped (immediate)
# when the test exits, whatever happens, before lib.sh removes $T.
#
# initdb and postgres refuse to run as root: as root (CI), the server runs
# as Debian's `postgres` system user through runuser, and $T is made
# traversable for it. PostgreSQL itself is installed by ./build.sh; when it
# is missing the test exits 77, which ctest reports as skipped (not
# passed), with a message saying so.

PG_BIN=
PG_DIR=
PG_SOCK=
PG_PORT=
PG_URL=
PG_RUNNING=0

pg_find_bin() {
  local d
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    PG_BIN=$(pg_config --bindir)
    return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then PG_BIN=$d; fi
  done
  [ -n "$PG_BIN" ]
}

# pg_as CMD...: runs CMD as the cluster's owner.
pg_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_cleanup() {
  if [ "$PG_RUNNING" -eq 1 ]; then
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    PG_RUNNING=0
  fi
}
trap 'pg_cleanup; cleanup' EXIT

pg_start() {
  if ! pg_find_bin; then
    echo "SKIPPED: PostgreSQL server binaries not found (no initdb in pg_config --bindir" \
         "or /usr/lib/postgresql/*/bin); ./build.sh installs postgresql" >&2
    exit 77
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "SKIPPED: running as root and there is no postgres system user to run the" \
         "server as (Debian's postgresql package creates it)" >&2
    exit 77
  fi
  PG_DIR=$T/pg
  PG_SOCK=$PG_DIR/sock
  PG_PORT=$((20000 + RANDOM % 20000))
  mkdir -p "$PG_SOCK"
  if [ "$(id -u)" -eq 0 ]; then
    chmod o+x "$T"
    chown -R postgres: "$PG_DIR"
  fi
  pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --locale=C \
    --no-sync >"$T/pg-initdb.log" 2>&1 || {
    cat "$T/pg-initdb.log" >&2; fail "initdb failed"; exit 1; }
  pg_resume
  pgq_db postgres "CREATE DATABASE test" >/dev/null
  PG_URL="postgresql://postgres@/test?host=$PG_SOCK&port=$PG_PORT"
}

# Starts (again) the cluster pg_start made.
pg_resume() {
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
    -o "-c listen_addresses='' -c unix_socket_directories='$PG_SOCK' -p $PG_PORT -c fsync=off" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; fail "postgres did not start"; exit 1; }
  PG_RUNNING=1
}

# pg_stop [fast|immediate]: stops the server (immediate: as a crash).
pg_stop() {
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m "${1:-fast}" -w stop >/dev/null
  PG_RUNNING=0
}

pgq_db() { # DB SQL: prints rows as a|b lines
  local db=$1; shift
  psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d "$db" -c "$1"
}

pgq() { pgq_db test "$1"; }
