# A connector's transform chain on a real worker: a file source whose
# records go through MaskField, ReplaceField, ValueToKey, ExtractField, a
# lua transform (drops some records, adds a header), RegexRouter and a
# Filter with a HasHeaderKey predicate; the resulting topic is checked
# record by record, and so is a file sink's output through InsertField
# (offset, partition, topic of the sink records). Then bad transform configs refused at start, naming
# the key (and the script's file:line).
source "$(dirname "$0")/lib.sh"

D="$T/data"
R() { "$RUNNEL" "$@" --data-dir "$D"; }
cat > "$T/worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$D", "offset.flush.interval.ms": 200}
JSON

cat > "$T/in.json" <<'IN'
{"user":"ann","email":"ann@example.com","page":"/a?x=1","debug":true,"n":1}
{"user":"bob","email":"bob@example.com","page":"/b","bot":true,"n":2}
{"user":"cy","email":"cy@example.com","page":"/c","test":true,"n":3}
{"user":"dee","email":"dee@example.com","page":"/dd","n":4.50}
IN
mkdir -p "$T/lua"
cat > "$T/lua/enrich.lua" <<'LUA'
-- drops bots, marks test traffic, adds the path length
return function(r)
  if r.value.bot then return nil end
  if r.value.test then r.headers.test = "1" end
  r.value.len = #r.value.path
  r.headers.via = "lua"
  return r
end
LUA

cat > "$T/src.json" <<JSON
{"name": "clicks-in", "config": {
  "connector.class": "file-source", "file": "$T/in.json", "format": "json", "topic": "clicks-raw",
  "transforms": "mask,rename,toKey,keyOnly,enrich,route,noTests",
  "transforms.mask.type": "org.apache.kafka.connect.transforms.MaskField\$Value",
  "transforms.mask.fields": "email",
  "transforms.rename.type": "ReplaceField\$Value",
  "transforms.rename.exclude": "debug",
  "transforms.rename.renames": "page:path",
  "transforms.toKey.type": "ValueToKey",
  "transforms.toKey.fields": "user",
  "transforms.keyOnly.type": "ExtractField\$Key",
  "transforms.keyOnly.field": "user",
  "transforms.enrich.type": "lua",
  "transforms.enrich.script": "$T/lua/enrich.lua",
  "transforms.route.type": "RegexRouter",
  "transforms.route.regex": "(.*)-raw",
  "transforms.route.replacement": "\$1-clean",
  "transforms.noTests.type": "Filter",
  "transforms.noTests.predicate": "isTest",
  "predicates": "isTest",
  "predicates.isTest.type": "HasHeaderKey",
  "predicates.isTest.name": "test"}}
JSON

# A transform that fails on a record (text where InsertField needs a JSON
# object): with errors.tolerance=none the task fails, its trace naming the
# transform and the record.
printf 'plain text\n' > "$T/text.txt"
cat > "$T/failing.json" <<JSON
{"name": "failing", "config": {"connector.class": "file-source", "file": "$T/text.txt", "topic": "text",
  "transforms": "ins", "transforms.ins.type": "InsertField\$Value", "transforms.ins.topic.field": "t"}}
JSON

# A sink with a chain: offset.field exists for sink records only.
cat > "$T/sink.json" <<JSON
{"name": "clicks-out", "config": {"connector.class": "file-sink", "topics": "clicks-clean",
  "file": "$T/out.txt", "transforms": "where",
  "transforms.where.type": "InsertField\$Value", "transforms.where.offset.field": "off",
  "transforms.where.partition.field": "p", "transforms.where.topic.field": "t"}}
JSON

start_worker w1 --config "$T/worker.json" "$T/src.json" "$T/failing.json" "$T/sink.json"
# Four lines polled; two records written (lua dropped one, Filter one).
L='connector="clicks-in",task="0"'
ok=0
for i in $(seq 1 150); do
  http GET /metrics
  if [[ "$BODY" == *"runnel_connect_source_records_polled_total{$L} 4"* &&
        "$BODY" == *"runnel_connect_source_records_written_total{$L} 2"* ]]; then ok=1; break; fi
  sleep 0.1
done
assert_eq "4 records polled, 2 written (metrics)" 1 "$ok"
sleep 0.3 # nothing more may arrive
want='{"email":"","len":6,"n":1,"path":"/a?x=1","user":"ann","t":"clicks-clean","p":0,"off":0}
{"email":"","len":3,"n":4.5,"path":"/dd","user":"dee","t":"clicks-clean","p":0,"off":1}'
for i in $(seq 1 150); do
  [ "$(cat "$T/out.txt" 2>/dev/null)" == "$want" ] && break
  sleep 0.1
done
assert_eq "the sink's chain adds offset, partition and topic" "$want" "$(cat "$T/out.txt" 2>/dev/null)"
ok=0
for i in $(seq 1 150); do
  http GET /connectors/failing/status
  if [[ "$BODY" == *'"id":0,"state":"FAILED"'* ]]; then ok=1; break; fi
  sleep 0.1
done
assert_eq "the failing task is FAILED" 1 "$ok"
assert_contains "its trace names the transform and the record" "$BODY" \
  "transform 'ins' (InsertField\$Value) failed on record topic=text"
assert_contains "... and why" "$BODY" "value is not JSON"
stop_worker TERM
assert_eq "clean stop" 0 "$STATUS"

# Lua re-encodes what it decoded: keys sorted, 4.50 read as 4.5.
assert_eq "values, transformed in chain order" \
  '{"email":"","len":6,"n":1,"path":"/a?x=1","user":"ann"}
{"email":"","len":3,"n":4.5,"path":"/dd","user":"dee"}' \
  "$(R consume clicks-clean --from-beginning)"
got=$(R consume clicks-clean --from-beginning --format json)
assert_contains "key from ValueToKey + ExtractField" "$(head -1 <<<"$got")" '"key":"\"ann\""'
assert_contains "header added by lua" "$(head -1 <<<"$got")" '"via":"lua"'
assert_eq "no record on the source topic" "" "$(R consume clicks-raw --from-beginning 2>/dev/null || true)"

# ---- bad transform configs: the worker refuses the connector file ------------
bad() { # NAME EXTRA-CONFIG-JSON EXPECTED-TEXT
  cat > "$T/$1.json" <<JSON
{"name": "$1", "config": {"connector.class": "file-source", "file": "$T/in.json", "topic": "t", $2}}
JSON
  set +e
  out=$("$RUNNEL" worker --config "$T/worker.json" "$T/$1.json" 2>&1)
  rc=$?
  set -e
  assert_eq "$1: exit status" 2 "$rc"
  assert_contains "$1: error names the key" "$out" "$3"
}
bad badregex '"transforms": "r", "transforms.r.type": "RegexRouter", "transforms.r.regex": "(", "transforms.r.replacement": "x"' \
  "transforms.r.regex: invalid regular expression '('"
bad badtype '"transforms": "x", "transforms.x.type": "NoSuchTransform"' \
  "transforms.x.type: unknown transform 'NoSuchTransform'"
bad missing '"transforms": "m", "transforms.m.type": "MaskField$Value"' \
  'transforms.m.fields: Missing required configuration "fields"'
printf 'return function(r)\n  return r +\nend\n' > "$T/lua/broken.lua"
bad badlua "\"transforms\": \"l\", \"transforms.l.type\": \"lua\", \"transforms.l.script\": \"$T/lua/broken.lua\"" \
  "broken.lua:3:"

finish
