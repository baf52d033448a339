# Joins on a worker: the co-partitioning check when a job is submitted
# (runnel run and POST /jobs), a global table bootstrapped from every
# partition of its topic before the first record and followed as the topic
# grows, interactive queries of a global table and of a materialised
# table-table join, and a restart that resumes the global table where its
# rows stop.
source "$(dirname "$0")/lib.sh"

D="$T/data"
R() { "$RUNNEL" "$@" --data-dir "$D"; }
run() { set +e; OUT=$("$@" 2>&1); RC=$?; set -e; }

for t in products:2 orders:2 users:2 scores:2 customers:3 product-updates:1 more-orders:1; do
  R topics create "${t%%:*}" --partitions "${t##*:}" >/dev/null
done

# Co-partitioning: orders (2) with customers (3) is refused, naming both.
cat > "$T/bad.lua" <<'EOF'
local job = runnel.job("bad")
local customers = job:table("customers")
job:stream("orders"):join(customers, function(o, c) return o .. c end):to("x")
return job
EOF
run "$RUNNEL" run "$T/bad.lua" --data-dir "$D" --set listeners=http://127.0.0.1:0
assert_eq "co-partitioning: exit status" 2 "$RC"
assert_contains "co-partitioning: message" "$OUT" \
  "bad.lua:3: job bad: topics orders (2 partitions) and customers (3 partitions) are joined"

# Products in both partitions before the job starts: every task must see
# all of them before its first order.
printf 'p1:{"price":10}\n' | R produce products --key-delimiter : --partition 0 >/dev/null
printf 'p2:{"price":3}\n' | R produce products --key-delimiter : --partition 1 >/dev/null
printf 'o1:{"product":"p1","qty":2}\no2:{"product":"p2","qty":5}\n' |
  R produce orders --key-delimiter : --partition 0 >/dev/null
printf 'o3:{"product":"p2","qty":1}\no4:{"product":"p9","qty":1}\n' |
  R produce orders --key-delimiter : --partition 1 >/dev/null
printf 'a:Ana\nb:Bo\n' | R produce users --key-delimiter : >/dev/null
printf 'a:7\nc:9\n' | R produce scores --key-delimiter : >/dev/null

cat > "$T/enrich.lua" <<'EOF'
local job = runnel.job("enrich")
local products = job:global_table("products", { value = "json", store = "products" })
job:stream("orders", { value = "json" })
   :join(products, function(_, o) return o.product end, function(o, p)
      return { product = o.product, total = o.qty * p.price }
   end)
   :to("priced", { value = "json" })
local users = job:table("users", { store = "users" })
local scores = job:table("scores", { store = "scores" })
users:join(scores, function(u, s) return u .. "=" .. s end, { store = "user-scores" })
return job
EOF
start_worker w1 run "$T/enrich.lua" --data-dir "$D" --set listeners=http://127.0.0.1:0 \
  --set stream.threads=2 --set commit.interval.ms=100

wait_for() { # PATH NEEDLE
  local i
  for i in $(seq 1 100); do
    http GET "$1"
    [[ "$BODY" == *"$2"* ]] && return 0
    sleep 0.1
  done
  fail "timed out waiting for [$2] in GET $1 (last: $CODE $BODY)"
  return 1
}

wait_for /jobs/enrich/stores/user-scores/keys/a '"value":"Ana=7"'
assert_eq "materialised table-table join: a" '{"key":"a","value":"Ana=7"}' "$BODY"
http GET /jobs/enrich/stores/user-scores/keys/b
assert_eq "inner join: b has no score" 404 "$CODE"
http GET "/jobs/enrich/stores/products?limit=0"
assert_eq "global table: every partition" \
  '[{"key":"p1","value":{"price":10}},{"key":"p2","value":{"price":3}}]' "$BODY"

# The global table follows its topic while the job runs: after a restart
# (the task resumes the topic where its rows stop), another job copies a
# new price into it; the orders another job copies in later see it.
stop_worker TERM
printf 'p2:{"price":4}\n' | R produce product-updates --key-delimiter : >/dev/null
printf 'o5:{"product":"p2","qty":5}\n' | R produce more-orders --key-delimiter : >/dev/null
printf 'c9:C9\n' | R produce customers --key-delimiter : --partition 2 >/dev/null
start_worker w2 run "$T/enrich.lua" --data-dir "$D" --set listeners=http://127.0.0.1:0 \
  --set stream.threads=2 --set commit.interval.ms=100
feed() { # NAME FROM TO
  http POST /jobs -H 'Content-Type: application/json' \
    --data "{\"name\":\"$1\",\"script\":\"local job = runnel.job(\\\"$1\\\")\\njob:stream(\\\"$2\\\"):to(\\\"$3\\\")\\nreturn job\"}"
  assert_eq "POST /jobs $1 ($BODY)" 201 "$CODE"
}
feed feed-products product-updates products
wait_for /jobs/enrich/stores/products/keys/p2 '"price":4'
feed feed-orders more-orders orders
for i in $(seq 1 100); do
  n=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^runnel_job_records_out_total\{job="enrich"/ { s += $2 } END { print s + 0 }')
  [ "$n" -ge 4 ] && break
  sleep 0.1
done
# Merged topics need no co-partitioning (Kafka checks joins only): orders
# (2 partitions) and customers (3) run in 3 tasks; the record in customers'
# partition 2, which orders lacks, comes through with the orders.
http POST /jobs -H 'Content-Type: application/json' --data '{"name":"merger","script":"local job = runnel.job(\"merger\")\njob:stream(\"orders\"):merge(job:stream(\"customers\")):to(\"merged\")\nreturn job"}'
assert_eq "POST a merge of 2 and 3 partitions ($BODY)" 201 "$CODE"
for i in $(seq 1 100); do
  n=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^runnel_job_records_out_total\{job="merger"/ { s += $2 } END { print s + 0 }')
  [ "$n" -ge 5 ] && break
  sleep 0.1
done
stop_worker TERM
assert_eq "clean stop" 0 "$STATUS"
merged=$(R consume merged --from-beginning)
assert_contains "merge: customers partition 2" "$merged" "C9"
assert_contains "merge: orders" "$merged" '"product":"p9"'

# Outputs (o4 has no product: the inner join drops it).
got=$(R consume priced --from-beginning | LC_ALL=C sort)
want='{"product":"p1","total":20}
{"product":"p2","total":15}
{"product":"p2","total":20}
{"product":"p2","total":3}'
assert_eq "priced orders" "$want" "$got"
finish
