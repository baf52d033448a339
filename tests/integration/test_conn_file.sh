# The file source and file sink on a real worker: rotation by rename (with
# late writes to the renamed file) and truncation followed while running, a
# glob of JSON-lines files with keys, malformed JSON lines under
# errors.tolerance none (the task fails naming file:line:col) and all
# (skipped, the rest delivered), sink rotation by size, rotation by rename
# with SIGKILL before the old file's tail was read (found again by its
# inode after the restart), and SIGKILL of the
# worker again and again while a writer appends to a file read into a
# SQLite sink: the topic and the table end with every line exactly once.
source "$(dirname "$0")/lib.sh"

cat > "$T/worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$T/data", "offset.flush.interval.ms": 100}
JSON
J='Content-Type: application/json'

file_is() { [ -f "$1" ] && [ "$(cat "$1")" == "$2" ]; }
body_has() { http GET "$1"; [[ "$BODY" == *"$2"* ]]; }
# put_connector NAME CONFIG-JSON: creates it through REST (201 expected).
put_connector() {
  http PUT "/connectors/$1/config" -H "$J" -d "$2"
  assert_eq "PUT connector $1" 201 "$CODE"
}

start_worker w1 --config "$T/worker.json"

# ---- rotation and truncation while running -------------------------------------
printf '1\n2\n3\n' > "$T/rot.log"
put_connector rot-src "{\"connector.class\": \"file-source\", \"file\": \"$T/rot.log\", \"topic\": \"rot\"}"
put_connector rot-sink "{\"connector.class\": \"file-sink\", \"file\": \"$T/rot.out\", \"topics\": \"rot\"}"
wait_for "lines copied" file_is "$T/rot.out" $'1\n2\n3'

# Rotation by rename, as logrotate's default: the writer still has the old
# file open and writes once more to it, one line without its newline.
exec 4>>"$T/rot.log"
printf '4\n' >&4
mv "$T/rot.log" "$T/rot.log.1"
printf '5\n6' >&4
exec 4>&-
printf '7\n8\n' > "$T/rot.log"
wait_for "rotated file finished, then the new one" file_is "$T/rot.out" $'1\n2\n3\n4\n5\n6\n7\n8'

# copytruncate: emptied in place, then written again.
: > "$T/rot.log"
printf '9\n' >> "$T/rot.log"
wait_for "truncated file read from its start" file_is "$T/rot.out" $'1\n2\n3\n4\n5\n6\n7\n8\n9'
# (offsets are committed every offset.flush.interval.ms: wait for it)
wait_for "source offset of the file" body_has /connectors/rot-src/offsets "{\"partition\":{\"filename\":\"$T/rot.log\"},\"offset\":{\"position\":2,\"inode\":"

# ---- a glob of JSON-lines files, keys, sink json envelope and rotation -----------
mkdir -p "$T/clicks"
printf '{"page": "/a", "n": 1}\n{"page": "/b", "n": 2}\n' > "$T/clicks/x.json"
printf '{"page": "/c", "n": 3}\n' > "$T/clicks/y.json"
printf 'not matched\n' > "$T/clicks/z.txt"
put_connector clicks-src "{\"connector.class\": \"FileStreamSource\", \"file\": \"$T/clicks/*.json\", \"topic\": \"clicks\", \"format\": \"json\", \"key.field\": \"page\", \"scan.interval.ms\": \"100\"}"
put_connector clicks-sink "{\"connector.class\": \"FileStreamSink\", \"file\": \"$T/clicks.out\", \"topics\": \"clicks\", \"format\": \"json\", \"include.key\": \"true\", \"file.max.bytes\": \"100\"}"
all_clicks() { cat "$T/clicks.out".* "$T/clicks.out" 2>/dev/null | sort; }
clicks_are() { [ "$(all_clicks)" == "$1" ]; }
wait_for "glob files copied with keys" clicks_are '{"key":"/a","value":{"page":"/a","n":1}}
{"key":"/b","value":{"page":"/b","n":2}}
{"key":"/c","value":{"page":"/c","n":3}}'
printf '{"page": "/d", "n": 4}\n' > "$T/clicks/w.json"
wait_for "a new file matching the glob is read" body_has /connectors/clicks-src/offsets "w.json"
wait_for "its line copied" clicks_are '{"key":"/a","value":{"page":"/a","n":1}}
{"key":"/b","value":{"page":"/b","n":2}}
{"key":"/c","value":{"page":"/c","n":3}}
{"key":"/d","value":{"page":"/d","n":4}}'
# 42-byte lines and a 100-byte limit: at most two lines per file.
check "sink rotated by size" test -f "$T/clicks.out.1"
for f in "$T/clicks.out"*; do
  check "rotated file $f within the limit" test "$(stat -c %s "$f")" -le 100
done

# ---- malformed JSON lines ---------------------------------------------------------
printf '{"a": 1}\n{"a": oops}\n{"a": 3}\n' > "$T/bad.json"
put_connector bad-none "{\"connector.class\": \"file-source\", \"file\": \"$T/bad.json\", \"topic\": \"bad1\", \"format\": \"json\"}"
wait_for "errors.tolerance=none: the task fails" body_has /connectors/bad-none/status '"state":"FAILED"'
http GET /connectors/bad-none/status
assert_contains "the trace names file:line:col" "$BODY" "$T/bad.json:2:8: lexical error: invalid char in json text."
put_connector bad-all "{\"connector.class\": \"file-source\", \"file\": \"$T/bad.json\", \"topic\": \"bad2\", \"format\": \"json\", \"errors.tolerance\": \"all\", \"errors.log.enable\": \"true\"}"
put_connector bad-sink "{\"connector.class\": \"file-sink\", \"file\": \"$T/bad.out\", \"topics\": \"bad2\"}"
wait_for "errors.tolerance=all: the bad line skipped, the rest delivered" file_is "$T/bad.out" $'{"a": 1}\n{"a": 3}'
check "the skipped line is logged with its place" grep -q "$T/bad.json:2:8" "$T/w1.log"

stop_worker TERM
assert_eq "clean stop" 0 "$STATUS"

# ---- rotation by rename, then SIGKILL before the old file's end was read ----------
# The restarted task finds the old file under its new name by the committed
# inode and reads its tail before the new file. The path is relative (the
# worker's directory), as in the report of this data loss.
mkdir -p "$T/rotk"
cat > "$T/rotk-worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$T/rotk-data", "offset.flush.interval.ms": 100}
JSON
cat > "$T/rotk/r.json" <<JSON
{"name": "r", "config": {"connector.class": "file-source", "file": "app.log", "topic": "r"}}
JSON
cd "$T/rotk"
: > app.log
for n in 1 2 3 4; do
  start_worker "rotk$n" --config "$T/rotk-worker.json" "$T/rotk/r.json"
  echo "before$n" >> app.log
  sleep 1.2 # read and committed
  echo "tail$n" >> app.log
  mv app.log "app.log.$n"
  echo "new$n" > app.log
  stop_worker KILL
done
start_worker rotk-final --config "$T/rotk-worker.json" "$T/rotk/r.json"
cd - >/dev/null
rotk_at_end() { # the committed offset is the end of the current file
  http GET /connectors/r/offsets
  [[ "$BODY" == *"\"position\":$(stat -c %s "$T/rotk/app.log"),\"inode\":$(stat -c %i "$T/rotk/app.log"),"* ]]
}
wait_for "the source reaches the end of the new file" rotk_at_end
stop_worker TERM
"$RUNNEL" consume r --from-beginning --data-dir "$T/rotk-data" > "$T/rotk.got"
assert_eq "rotated while down: every line exactly once, in order" \
  "$(cat "$T/rotk/app.log".[1-4] "$T/rotk/app.log")" "$(cat "$T/rotk.got")"
check "the rotated file was found by its inode" grep -q "rotated while the task was down" "$T/rotk2.log"

# ---- SIGKILL while a writer appends: every line exactly once ---------------------
# file source -> topic -> SQLite sink (whose offsets commit in the rows'
# transaction): the topic holds every line once, in order, and so does the
# table, after five SIGKILLs at random moments.
N=20000
cat > "$T/kill-src.json" <<JSON
{"name": "kill-src", "config": {"connector.class": "file-source", "file": "$T/kill.log", "topic": "killed", "batch.size": "500", "format": "json"}}
JSON
cat > "$T/kill-sink.json" <<JSON
{"name": "kill-sink", "config": {"connector.class": "sqlite-sink", "connection.url": "sqlite://$T/kill.db", "topics": "killed", "auto.create": "true", "insert.mode": "insert"}}
JSON
( for i in $(seq 1 $N); do echo "{\"n\": $i, \"s\": \"line-$i\"}"; done > "$T/kill.all" )
# The writer appends in chunks, some ending mid-line, while workers die.
( exec 5>>"$T/kill.log"
  off=0; size=$(stat -c %s "$T/kill.all")
  while [ "$off" -lt "$size" ]; do
    chunk=$((RANDOM % 20000 + 1))
    # (tail may die of SIGPIPE once head has its bytes: not an error)
    tail -c +$((off + 1)) "$T/kill.all" | head -c "$chunk" >&5 || true
    off=$((off + chunk))
    sleep 0.1
  done ) &
WRITER=$!
for round in 1 2 3 4 5; do
  start_worker "kill$round" --config "$T/worker.json" "$T/kill-src.json" "$T/kill-sink.json"
  sleep "0.$((RANDOM % 5 + 2))"
  stop_worker KILL
done
wait "$WRITER"
start_worker final --config "$T/worker.json" "$T/kill-src.json" "$T/kill-sink.json"
source_at_end() { # the source's committed position is the file's size
  http GET /connectors/kill-src/offsets
  [[ "$BODY" == *"\"position\":$(stat -c %s "$T/kill.log"),"* ]]
}
wait_for "the source reaches the end of the file" source_at_end
table_full() { [ "$(sqlite3 "$T/kill.db" 'SELECT count(*) FROM killed' 2>/dev/null)" == "$N" ]; }
wait_for "the sink has written N rows" table_full
stop_worker TERM
"$RUNNEL" consume killed --from-beginning --data-dir "$T/data" > "$T/kill.got"
assert_eq "topic: every line once, in order" "$(md5sum < "$T/kill.all")" "$(md5sum < "$T/kill.got")"
assert_eq "topic: line count" "$N" "$(wc -l < "$T/kill.got")"
assert_eq "table: every line exactly once" "$N|$N|1|$N" \
  "$(sqlite3 "$T/kill.db" 'SELECT count(*), count(DISTINCT n), min(n), max(n) FROM killed')"
assert_eq "table: values intact" "line-777" "$(sqlite3 "$T/kill.db" 'SELECT s FROM killed WHERE n = 777')"

finish
