# The log through the CLI: topics, produce, consume, groups, Kafka's
# partitioner, JSON output, and the data dir lock against a running worker.
source "$(dirname "$0")/lib.sh"

D="$T/data"
run() { set +e; OUT=$("$@" 2>&1); RC=$?; set -e; }
R() { "$RUNNEL" "$@" --data-dir "$D"; }

run R topics create events --partitions 7 --config retention.ms=3600000
assert_eq "create status" 0 "$RC"
assert_eq "create output" "Created topic events." "$OUT"
run R topics create events --partitions 7
assert_eq "create twice status" 1 "$RC"
assert_contains "create twice message" "$OUT" "events"
assert_contains "create twice says exists" "$OUT" "exists"
R topics create other >/dev/null
assert_eq "list" $'events\nother' "$(R topics list)"
assert_contains "list --include-internal" "$(R topics list --include-internal)" "__consumer_offsets"
run R topics describe events
assert_contains "describe header" "$OUT" $'Topic: events\tPartitionCount: 7'
assert_contains "describe config" "$OUT" "retention.ms=3600000"
assert_contains "describe partition 6" "$OUT" $'Partition: 6\tStartOffset: 0\tEndOffset: 0'

# Keys land where Kafka's default partitioner puts them (murmur2, 7
# partitions): 21 -> 3, abc -> 4, foobar -> 0, alpha -> 1.
printf '21:a\nabc:b\nfoobar:c\nalpha:d\n21:e\n' > "$T/keyed.txt"
run R produce events --key-delimiter : < "$T/keyed.txt"
assert_eq "produce status" 0 "$RC"
assert_eq "produce output" "Appended 5 records to events." "$OUT"
assert_eq "partition 3 has key 21" $'a\ne' "$(R consume events --from-beginning --partition 3)"
assert_eq "partition 4 has key abc" "b" "$(R consume events --from-beginning --partition 4)"
assert_eq "partition 0 has key foobar" "c" "$(R consume events --from-beginning --partition 0)"
assert_eq "partition 1 has key alpha" "d" "$(R consume events --from-beginning --partition 1)"

# JSON format: offsets, keys, null keys, non-UTF-8 bytes as base64.
json=$(R consume events --from-beginning --partition 3 --format json)
check "json record 0: $json" grep -Eq '^\{"topic":"events","partition":3,"offset":0,"timestamp":[0-9]{13},"key":"21","value":"a","headers":\{\}\}$' <<<"$(head -1 <<<"$json")"
assert_contains "json record 1 offset" "$(tail -1 <<<"$json")" '"offset":1,'
printf 'plain\n\xff\xfe\n' | R produce other >/dev/null
json=$(R consume other --from-beginning --format json)
assert_contains "null key" "$(head -1 <<<"$json")" '"key":null,"value":"plain"'
assert_contains "non-UTF-8 as base64" "$(tail -1 <<<"$json")" '"value":{"base64":"//4="}'

# Unkeyed records spread over partitions, batch by batch.
seq 1 5000 | R produce events >/dev/null
total=0; used=0
for p in 0 1 2 3 4 5 6; do
  n=$(R consume events --from-beginning --partition $p | wc -l)
  total=$((total + n)); [ "$n" -gt 0 ] && used=$((used + 1))
done
assert_eq "all records readable" 5005 "$total"
check "unkeyed records spread over >= 4 partitions (got $used)" test "$used" -ge 4

# --offset and --max.
assert_eq "--offset 1" "e" "$(R consume events --partition 3 --offset 1 --max 1)"
run R consume events --offset 3
assert_eq "--offset without --partition" 2 "$RC"
run R consume events --partition 3 --offset 99999
assert_eq "--offset past the end status" 1 "$RC"
assert_contains "--offset past the end message" "$OUT" "99999"
run R consume events --partition 9
assert_eq "unknown partition status" 1 "$RC"
assert_contains "unknown partition message" "$OUT" "unknown partition 9"
run R consume nosuch --from-beginning
assert_eq "unknown topic status" 1 "$RC"
assert_contains "unknown topic message" "$OUT" "nosuch"
# Default start is the log end: nothing printed.
assert_eq "default starts at the end" "" "$(R consume events)"

# Groups resume where they stopped, and survive restarts of the CLI.
seq 1 10 | R produce other --partition 0 >/dev/null
first=$(R consume other --group g1 --from-beginning --max 5 | tr '\n' ' ')
assert_eq "group first part" "plain $(printf '\xff\xfe') 1 2 3 " "$first"
rest=$(R consume other --group g1 | tr '\n' ' ')
assert_eq "group resumes" "4 5 6 7 8 9 10 " "$rest"
assert_eq "group at the end" "" "$(R consume other --group g1)"
assert_eq "other group is independent" "12" "$(R consume other --group g2 --from-beginning | wc -l | tr -d ' ')"

# --follow waits for new records and stops cleanly on SIGTERM, committing.
"$RUNNEL" consume other --group follower --follow --data-dir "$D" > "$T/follow.out" 2>"$T/follow.err" &
fpid=$!
sleep 0.5
# The follower holds the data dir lock, so produce must wait for it:
# this checks the lock, then we stop the follower.
run R produce other <<<"late"
assert_eq "produce while a consumer holds the lock" 1 "$RC"
assert_contains "lock message names the holder" "$OUT" "(pid $fpid)"
kill -TERM "$fpid"; wait "$fpid" && frc=0 || frc=$?
assert_eq "follow exits 0 on SIGTERM" 0 "$frc"
R produce other <<<"late" >/dev/null
assert_eq "follower group resumes at the new record" "late" "$(R consume other --group follower)"

# A running worker holds the lock: CLI commands are refused with its pid.
P3_END=$(R consume events --from-beginning --partition 3 | wc -l | tr -d ' ')
start_worker w --data-dir "$D" --set listeners=http://127.0.0.1:0
run R topics list
assert_eq "locked status" 1 "$RC"
assert_contains "locked message" "$OUT" "data dir $D is locked by another process (pid $WORKER_PID)"
http GET /metrics
assert_contains "worker exports end offsets" "$BODY" "runnel_log_end_offset{topic=\"events\",partition=\"3\"} $P3_END"
stop_worker TERM
assert_eq "worker stop" 0 "$STATUS"

run R topics delete other
assert_eq "delete status" 0 "$RC"
# (the worker created the connector framework's internal topics, which
# Kafka Connect names without "__", so they are listed)
assert_eq "after delete" $'connect-configs\nconnect-offsets\nconnect-status\nevents' "$(R topics list)"
run R consume other --from-beginning
assert_eq "consume deleted topic" 1 "$RC"
# Bad names never reach outside the data dir.
for bad in "../x" "." ".." "a/b" "$(printf 'x%.0s' $(seq 1 250))" "sp ace"; do
  run R topics create "$bad"
  assert_eq "bad name [$bad] status" 2 "$RC"
  assert_contains "bad name [$bad] message" "$OUT" "invalid topic name"
done
check "nothing created outside the data dir" test ! -e "$T/x"
run R topics create t --config retention.ms=soon
assert_eq "bad topic config status" 2 "$RC"
assert_contains "bad topic config message" "$OUT" "retention.ms"
run R topics create t --partitions 0
assert_eq "zero partitions" 2 "$RC"

finish
