# Crash safety of the log: an appender (helper_crash_appender, log.flush=
# always) is SIGKILLed at random moments, again and again, each restart
# running recovery. Whatever it acknowledged must survive every later crash
# and recovery: present, intact, at its offset, with dense offsets.
source "$(dirname "$0")/lib.sh"
: "${RUNNEL_TEST_BIN:?set RUNNEL_TEST_BIN to the tests binary dir}"
HELPER=$RUNNEL_TEST_BIN/helper_crash_appender
[ -x "$HELPER" ] || { fail "no helper at $HELPER"; finish; }

KILLS=${CRASH_KILLS:-36}
DIR=$T/log
# Highest acknowledged end (base + count) per partition so far.
declare -A acked=([0]=0 [1]=0)
total_acks=0
lost=0

for i in $(seq 1 "$KILLS"); do
  "$HELPER" append "$DIR" "$((RANDOM * 32768 + RANDOM + i))" >"$T/run.$i.out" 2>"$T/run.$i.err" &
  pid=$!
  WORKER_PIDS+=("$pid")
  # 20..300 ms; the first runs include log creation, later ones recovery.
  sleep "0.$(printf '%03d' $((20 + RANDOM % 281)))"
  kill -KILL "$pid" 2>/dev/null || true
  rc=0
  { wait "$pid"; } 2>/dev/null || rc=$?
  # 137 is death by SIGKILL; anything else means the helper stopped by
  # itself (a failed append or a check), which is a failure.
  if [ "$rc" -ne 137 ]; then
    fail "run $i: appender exited with status $rc before the kill: $(cat "$T/run.$i.err")"
  fi
  # Recovery must never give back less than was acknowledged before.
  while read -r _ p end; do
    if [ "$end" -lt "${acked[$p]}" ]; then
      fail "run $i: partition $p restarted at end offset $end, but offsets below ${acked[$p]} were acknowledged"
      lost=1
    fi
  done < <(grep -E '^START [01] [0-9]+$' "$T/run.$i.out" || true)
  # Only whole lines count: the kill may cut the last one.
  while read -r _ p base count; do
    e=$((base + count))
    if [ "$e" -gt "${acked[$p]}" ]; then acked[$p]=$e; fi
    total_acks=$((total_acks + 1))
  done < <(grep -E '^ACK [01] [0-9]+ [0-9]+$' "$T/run.$i.out" || true)
done
if [ "$lost" -eq 0 ]; then pass; fi
echo "after $KILLS kills: $total_acks acknowledged batches; acked ends: p0=${acked[0]} p1=${acked[1]}"

# At least most runs must have got some appends in: a run of 300 ms that
# acknowledges nothing, every time, means the appender does not work.
runs_with_acks=$(grep -lE '^ACK ' "$T"/run.*.out 2>/dev/null | wc -l)
check "appender acknowledged batches in at least half of the $KILLS runs (got $runs_with_acks)" \
  test "$runs_with_acks" -ge $((KILLS / 2))
check "both partitions received acknowledged records" \
  test "${acked[0]}" -gt 0 -a "${acked[1]}" -gt 0

# Verify: every record from 0 to the end, values matching their offsets.
set +e
"$HELPER" verify "$DIR" >"$T/verify.out" 2>"$T/verify.err"
vrc=$?
set -e
assert_eq "verify exit status ($(cat "$T/verify.err"))" 0 "$vrc"
assert_contains "verify says OK" "$(cat "$T/verify.out")" "OK"
for p in 0 1; do
  end=$(sed -n "s/^END $p \([0-9]*\)$/\1/p" "$T/verify.out")
  if [ -z "$end" ]; then
    fail "verify printed no end offset for partition $p"
  elif [ "$end" -lt "${acked[$p]}" ]; then
    fail "partition $p: end offset $end < acknowledged end ${acked[$p]}: acknowledged records lost"
  else
    pass
  fi
done

# Every acknowledged batch, from every run, lies below the verified end.
end0=$(sed -n 's/^END 0 \([0-9]*\)$/\1/p' "$T/verify.out")
end1=$(sed -n 's/^END 1 \([0-9]*\)$/\1/p' "$T/verify.out")
bad=$(cat "$T"/run.*.out | awk -v e0="${end0:-0}" -v e1="${end1:-0}" '
  $1 == "ACK" && NF == 4 { e = ($2 == 0) ? e0 : e1; if ($3 + $4 > e) n++ }
  END { print n + 0 }')
assert_eq "acknowledged batches beyond the end offset" 0 "$bad"

finish
