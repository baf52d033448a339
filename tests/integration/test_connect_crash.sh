# Exactly once through a crashing worker: a file source reads JSON lines
# that a writer keeps appending into a topic, a SQLite sink (insert mode,
# pk.mode none: a duplicate would be a second row) writes them into a
# table, and the worker is SIGKILLed many times at random moments. At the
# end the table holds every line exactly once: the source neither skipped
# nor repeated a line across the kills (source header scan, see
# docs/durability.md), and the sink committed rows and offsets together.
#
# A second source reads two files (a glob) into a topic of 3 partitions,
# keyed so that a poll (lines of both files) goes to all three, file a's
# lines all to partition 1 ("a"), file b's to 2 and 0 ("b", "h0"): every
# line must be there at least once, and copies only as a poll cut short
# by a kill allows (one poll: batch.size lines), never the lines since the
# last commit of a file whose position is in no header of the poll.
source "$(dirname "$0")/lib.sh"
: "${RUNNEL_TEST_BIN:?set RUNNEL_TEST_BIN to the tests binary dir}"
Q=$RUNNEL_TEST_BIN/helper_sqlite_query

N=${CONNECT_CRASH_LINES:-6000}
KILLS=${CONNECT_CRASH_KILLS:-15}

cat > "$T/worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$T/data", "offset.flush.interval.ms": 2000}
JSON
cat > "$T/src.json" <<JSON
{"name": "lines-in", "config": {"connector.class": "file-source", "file": "$T/in.jsonl",
 "topic": "lines", "batch.size": "200"}}
JSON
cat > "$T/multi.json" <<JSON
{"name": "multi-in", "config": {"connector.class": "file-source", "file": "$T/m-*.jsonl",
 "topic": "mlines", "format": "json", "key.field": "host", "batch.size": "1000",
 "topic.creation.default.partitions": "3", "scan.interval.ms": "100"}}
JSON
cat > "$T/sink.json" <<JSON
{"name": "lines-out", "config": {"connector.class": "sqlite-sink",
 "connection.url": "sqlite://$T/out.db", "topics": "lines", "insert.mode": "insert",
 "pk.mode": "none", "auto.create": "true", "table.name.format": "lines",
 "value.converter": "org.apache.kafka.connect.json.JsonConverter",
 "value.converter.schemas.enable": "false"}}
JSON
: > "$T/in.jsonl"
: > "$T/m-a.jsonl"
: > "$T/m-b.jsonl"

# The writer: N lines in chunks, while the worker dies and comes back.
(
  i=0
  while [ "$i" -lt "$N" ]; do
    chunk=""
    for k in $(seq 1 200); do
      i=$((i + 1))
      chunk+="{\"n\":$i,\"text\":\"line $i\"}"$'\n'
    done
    printf '%s' "$chunk" >> "$T/in.jsonl"
    for f in a b; do
      chunk=""
      for k in $(seq $((i - 199)) "$i"); do
        h=a; [ "$f" = b ] && { h=b; [ $((k % 2)) = 0 ] && h=h0; }
        chunk+="{\"f\":\"$f\",\"n\":$k,\"host\":\"$h\"}"$'\n'
      done
      printf '%s' "$chunk" >> "$T/m-$f.jsonl"
    done
    sleep 0.1
  done
) &
WRITER=$!

rows() { "$Q" "$T/out.db" "SELECT count(*) FROM lines" 2>/dev/null || echo 0; }

for k in $(seq 1 "$KILLS"); do
  start_worker "w$k" --config "$T/worker.json" "$T/src.json" "$T/multi.json" "$T/sink.json"
  sleep "0.$((RANDOM % 9 + 2))"
  kill -KILL "$WORKER_PID"
  wait "$WORKER_PID" 2>/dev/null || true
done
wait "$WRITER"

start_worker final --config "$T/worker.json"
for i in $(seq 1 300); do
  [ "$(rows)" -ge "$N" ] && break
  sleep 0.1
done
sleep 1 # anything extra (a duplicate) would arrive now
assert_eq "rows in the table" "$N" "$(rows)"
assert_eq "distinct lines" "$N" "$("$Q" "$T/out.db" "SELECT count(DISTINCT n) FROM lines")"
assert_eq "first and last line" "1|$N" "$("$Q" "$T/out.db" "SELECT min(n), max(n) FROM lines")"
assert_eq "text matches its number" "0" "$("$Q" "$T/out.db" "SELECT count(*) FROM lines WHERE text <> 'line ' || n")"
# The topic itself holds every line exactly once too (the source side).
"$RUNNEL" consume lines --data-dir "$T/data" --from-beginning >/dev/null 2>&1 && fail "consume should be refused while the worker runs"
stop_worker TERM
assert_eq "clean stop" 0 "$STATUS"
in_topic=$("$RUNNEL" consume lines --data-dir "$T/data" --from-beginning | sort -u | wc -l | tr -d ' ')
all=$("$RUNNEL" consume lines --data-dir "$T/data" --from-beginning | wc -l | tr -d ' ')
assert_eq "records in the topic" "$N" "$all"
assert_eq "distinct records in the topic" "$N" "$in_topic"
# The keyed glob source: every line of both files, copies at most one poll.
"$RUNNEL" consume mlines --data-dir "$T/data" --from-beginning --format json |
  sed -n 's/.*"value":"{\\"f\\":\\"\([ab]\)\\",\\"n\\":\([0-9]*\),.*/\1 \2/p' > "$T/m.txt"
assert_eq "keyed glob: distinct lines in the topic" "$((2 * N))" "$(sort -u "$T/m.txt" | wc -l | tr -d ' ')"
copies=$(( $(wc -l < "$T/m.txt") - 2 * N ))
echo "keyed glob: $copies copies (records of polls cut short by a kill)"
[ "$copies" -le 1000 ] || fail "keyed glob: $copies copies, more than one poll (1000) re-produced"
assert_eq "keyed glob: spread over 3 partitions" 3 "$("$RUNNEL" consume mlines --data-dir "$T/data" --from-beginning --format json | sed -n 's/.*"partition":\([0-9]*\),.*/\1/p' | sort -u | wc -l | tr -d ' ')"
restored=$(cat "$T"/w*.log "$T/final.log" | grep -c "written after the last offset commit found in the log" || true)
echo "source restarts that found uncommitted records in the log: $restored"

finish
