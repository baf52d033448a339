# The log under injected faults, through the CLI: torn and garbage segment
# tails (truncated on open), a corrupt batch mid-segment (an error naming
# topic, partition and offset, never wrong data), lost or garbage indexes
# (rebuilt), an unreadable partition, a full disk (write limit), and bad
# input (topic names, unknown topic/partition, oversized records, offsets
# past the end). Exit statuses: 0 ok, 1 run-time failure, 2 usage.
source "$(dirname "$0")/lib.sh"

run() { set +e; OUT=$("$@" 2>"$T/.err"); RC=$?; ERR=$(cat "$T/.err"); set -e; }
# produce_lines DIR TOPIC PART LINES...: one produce call (one batch).
produce_lines() {
  local dir=$1 topic=$2 part=$3; shift 3
  printf '%s\n' "$@" | "$RUNNEL" produce "$topic" --partition "$part" --data-dir "$dir" >/dev/null
}
seg() { echo "$1/log/$2/00000000000000000000"; } # DIR TOPIC-PART -> path without extension
# batch_ends FILE: the end position of each batch (batchLength at bytes
# 8..11, big-endian; a batch is batchLength + 12 bytes).
batch_ends() {
  local f=$1 pos=0 size len
  size=$(stat -c %s "$f")
  while [ "$pos" -lt "$size" ]; do
    len=$(od -An -tu4 --endian=big -j $((pos + 8)) -N4 "$f" | tr -d ' ')
    pos=$((pos + 12 + len))
    echo "$pos"
  done
}
flip_byte() { # FILE POSITION
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\x$(printf %02x $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
values() { # DIR TOPIC [consume args...]: the values, space-separated
  local dir=$1 topic=$2; shift 2
  "$RUNNEL" consume "$topic" --from-beginning --data-dir "$dir" "$@" 2>/dev/null | tr '\n' ' '
}
offsets() { # DIR TOPIC PART: the offsets read back, space-separated
  "$RUNNEL" consume "$2" --from-beginning --partition "$3" --format json --data-dir "$1" \
    2>/dev/null | sed 's/.*"offset":\([0-9]*\),.*/\1/' | tr '\n' ' '
}

# ---- 1. a segment cut mid-batch (a torn write) ---------------------------
D=$T/trunc
"$RUNNEL" topics create t --data-dir "$D" >/dev/null 2>&1
produce_lines "$D" t 0 a1 a2 a3
produce_lines "$D" t 0 b1 b2 b3
produce_lines "$D" t 0 c1 c2 c3
f=$(seg "$D" t-0).log
mapfile -t ends < <(batch_ends "$f")
assert_eq "three batches written" 3 "${#ends[@]}"
truncate -s $(((ends[1] + ends[2]) / 2)) "$f"
run "$RUNNEL" consume t --from-beginning --data-dir "$D"
assert_eq "torn tail: consume status" 0 "$RC"
assert_eq "torn tail: whole batches before the cut" "a1 a2 a3 b1 b2 b3" "$(tr '\n' ' ' <<<"$OUT" | sed 's/ $//')"
assert_contains "torn tail: recovery reports the truncation" "$ERR" "recovery truncated segment 0 at position ${ends[1]} (offset 6)"
assert_eq "torn tail: file cut back to the last whole batch" "${ends[1]}" "$(stat -c %s "$f")"
produce_lines "$D" t 0 d1 d2
assert_eq "torn tail: produce continues with dense offsets" "0 1 2 3 4 5 6 7 " "$(offsets "$D" t 0)"
assert_eq "torn tail: values after the new append" "a1 a2 a3 b1 b2 b3 d1 d2 " "$(values "$D" t)"

# ---- 2. garbage after the last batch --------------------------------------
D=$T/garbage
"$RUNNEL" topics create g --data-dir "$D" >/dev/null 2>&1
produce_lines "$D" g 0 x1 x2 x3
f=$(seg "$D" g-0).log
size=$(stat -c %s "$f")
head -c 300 /dev/urandom >> "$f"
run "$RUNNEL" consume g --from-beginning --data-dir "$D"
assert_eq "random garbage: consume status" 0 "$RC"
assert_eq "random garbage: records intact" "x1 x2 x3" "$(tr '\n' ' ' <<<"$OUT" | sed 's/ $//')"
assert_eq "random garbage: truncated on open" "$size" "$(stat -c %s "$f")"
# Zeros, as a file system may leave after a crash with a preallocated tail.
head -c 4096 /dev/zero >> "$f"
run "$RUNNEL" consume g --from-beginning --data-dir "$D"
assert_eq "zero tail: consume status" 0 "$RC"
assert_eq "zero tail: truncated on open" "$size" "$(stat -c %s "$f")"
produce_lines "$D" g 0 x4
assert_eq "garbage: produce continues with dense offsets" "0 1 2 3 " "$(offsets "$D" g 0)"

# ---- 3. a flipped byte mid-segment, below the recovery point -------------
D=$T/flip
"$RUNNEL" topics create fl --partitions 2 --data-dir "$D" >/dev/null 2>&1
produce_lines "$D" fl 0 a1 a2 a3
produce_lines "$D" fl 0 b1-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb b2 b3
produce_lines "$D" fl 0 c1 c2 c3
produce_lines "$D" fl 1 p1 p2
f=$(seg "$D" fl-0).log
mapfile -t ends < <(batch_ends "$f")
size=$(stat -c %s "$f")
flip_byte "$f" $((ends[0] + 61 + 10)) # inside the second batch's first record
run "$RUNNEL" consume fl --from-beginning --partition 0 --data-dir "$D"
assert_eq "flipped byte: consume fails" 1 "$RC"
assert_eq "flipped byte: the records before it are printed" "a1 a2 a3" "$(tr '\n' ' ' <<<"$OUT" | sed 's/ $//')"
assert_contains "flipped byte: error names topic-partition and offset" "$ERR" "fl-0 offset 3"
assert_contains "flipped byte: error says why" "$ERR" "CRC mismatch"
assert_not_contains "flipped byte: no record after the corrupt batch" "$OUT" "c1"
assert_eq "flipped byte: the segment is not truncated" "$size" "$(stat -c %s "$f")"
run "$RUNNEL" consume fl --from-beginning --partition 1 --data-dir "$D"
assert_eq "flipped byte: the other partition reads fine" "0 p1 p2 " "$RC $(tr '\n' ' ' <<<"$OUT")"
run "$RUNNEL" consume fl --partition 0 --offset 6 --data-dir "$D"
assert_eq "flipped byte: reading past the corrupt batch works" "0 c1 c2 c3 " "$RC $(tr '\n' ' ' <<<"$OUT")"

# ---- 4. lost and garbage indexes -----------------------------------------
D=$T/index
"$RUNNEL" topics create ix --data-dir "$D" >/dev/null 2>&1
seq 1 20000 | "$RUNNEL" produce ix --data-dir "$D" >/dev/null 2>&1 # 20 batches
s=$(seg "$D" ix-0)
check "index has entries" test -s "$s.index"
expect_all=$(seq 1 20000 | tr '\n' ' ')
index_case() { # description
  run "$RUNNEL" consume ix --partition 0 --offset 12345 --max 3 --data-dir "$D"
  assert_eq "$1: seek by offset" "0 12346 12347 12348 " "$RC $(tr '\n' ' ' <<<"$OUT")"
  assert_eq "$1: full read" "$expect_all" "$(values "$D" ix)"
}
index_case "intact index"
rm -f "$s.index" "$s.timeindex"
index_case "deleted .index and .timeindex"
check "deleted index rebuilt" test -s "$s.index"
head -c 4096 /dev/urandom > "$s.index"
head -c 4096 /dev/urandom > "$s.timeindex"
index_case "garbage .index and .timeindex"
head -c 7 /dev/urandom > "$s.index"
index_case "index of a torn size"
# A plausible index that points at the wrong place: the last entry's
# position moved (its low byte inverted), its relative offset kept.
idx_len=$(stat -c %s "$s.index")
if [ "$idx_len" -ge 8 ]; then
  flip_byte "$s.index" $((idx_len - 1))
  index_case "index entry pointing into the middle of a batch"
fi

# ---- 5. an unreadable partition directory --------------------------------
# Root ignores permissions; run as nobody when we are root and can.
D=$(mktemp -d /tmp/runnel-perm.XXXXXX)
as_user=()
if [ "$(id -u)" -eq 0 ]; then
  if command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
    as_user=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
    chmod 755 "$D"
  else
    echo "note: running as root without setpriv: unreadable-directory case skipped"
    D=
  fi
fi
if [ -n "$D" ]; then
  "$RUNNEL" topics create pm --partitions 2 --data-dir "$D/data" >/dev/null 2>&1
  produce_lines "$D/data" pm 1 ok
  [ "$(id -u)" -eq 0 ] && chown -R nobody "$D/data"
  chmod 000 "$D/data/log/pm-0"
  if "${as_user[@]}" test -r "$D/data/log/pm-0"; then
    echo "note: chmod 000 does not stop this user: unreadable-directory case skipped"
  else
    run "${as_user[@]}" "$RUNNEL" consume pm --from-beginning --partition 1 --data-dir "$D/data"
    assert_eq "unreadable partition dir: status" 1 "$RC"
    assert_contains "unreadable partition dir: names the directory" "$ERR" "pm-0"
    assert_contains "unreadable partition dir: says why" "$ERR" "Permission denied"
    chmod 755 "$D/data/log/pm-0"
    run "${as_user[@]}" "$RUNNEL" consume pm --from-beginning --partition 1 --data-dir "$D/data"
    assert_eq "readable again: status and records" "0 ok" "$RC $OUT"
  fi
  chmod -R u+rwx "$D" 2>/dev/null || true
  rm -rf "$D"
fi

# ---- 6. a full disk -------------------------------------------------------
# A file size limit makes the segment write fail with EFBIG, as ENOSPC
# would (SIGXFSZ ignored, so the write returns the error).
D=$T/full
"$RUNNEL" topics create fu --data-dir "$D" >/dev/null 2>&1
produce_lines "$D" fu 0 before1 before2
f=$(seg "$D" fu-0).log
line=$(head -c 100 /dev/zero | tr '\0' z)
# 3000 lines of 100 bytes are 3 batches of ~104 KiB; 128 KiB lets one in.
run bash -c 'trap "" XFSZ; ulimit -f 128; for i in $(seq 3000); do echo "$0"; done |
             exec "$1" produce fu --data-dir "$2"' "$line" "$RUNNEL" "$D"
assert_eq "file size limit: produce status" 1 "$RC"
assert_contains "file size limit: message names the file" "$ERR" "$f"
assert_contains "file size limit: message says why" "$ERR" "File too large"
assert_contains "file size limit: says what got in" "$ERR" "1000 records were appended before the failure"
check "file size limit: segment within the limit" test "$(stat -c %s "$f")" -le $((128 * 1024))
# The log is consistent: whole batches only, dense offsets, and it takes
# appends again once there is room.
run "$RUNNEL" consume fu --from-beginning --data-dir "$D"
assert_eq "after the failure: consume status" 0 "$RC"
assert_eq "after the failure: records" 1002 "$(wc -l <<<"$OUT")"
produce_lines "$D" fu 0 after1
assert_eq "after the failure: dense offsets" "$(seq 0 1002 | tr '\n' ' ')" "$(offsets "$D" fu 0)"
assert_eq "after the failure: the new record" "after1" "$(values "$D" fu | awk '{print $NF}')"
# A real small file system, when we may mount one.
M=$T/tmpfs
mkdir -p "$M"
if mount -t tmpfs -o size=1m tmpfs "$M" 2>/dev/null; then
  trap 'umount "$M" 2>/dev/null || true; cleanup' EXIT
  "$RUNNEL" topics create fs --data-dir "$M/d" >/dev/null 2>&1
  run bash -c 'for i in $(seq 20000); do echo "$0"; done | exec "$1" produce fs --data-dir "$2"' \
    "$line" "$RUNNEL" "$M/d"
  assert_eq "ENOSPC: produce status" 1 "$RC"
  assert_contains "ENOSPC: message says why" "$ERR" "No space left on device"
  run "$RUNNEL" consume fs --from-beginning --data-dir "$M/d"
  assert_eq "ENOSPC: consume after the failure" 0 "$RC"
  n=$(grep -c . <<<"$OUT" || true)
  check "ENOSPC: whole chunks only ($n records)" test $((n % 1000)) -eq 0
  umount "$M"
  trap cleanup EXIT
else
  echo "note: cannot mount a tmpfs here: ENOSPC case skipped (the file size limit case covers failed writes)"
fi

# ---- 7. bad input ---------------------------------------------------------
D=$T/input
for name in "../x" "" "." ".." "$(printf 'a%.0s' $(seq 250))" "a/b" "sp ace"; do
  run "$RUNNEL" topics create "$name" --data-dir "$D"
  assert_eq "topic name [${name:0:20}]: status" 2 "$RC"
  assert_contains "topic name [${name:0:20}]: message" "$ERR" "invalid topic name"
done
check "no directory made for ../x" test ! -e "$D/x-0" -a ! -e "$D/log/../x-0"
run "$RUNNEL" topics create "$(printf 'b%.0s' $(seq 249))" --data-dir "$D"
assert_eq "249-character topic name is valid" 0 "$RC"

"$RUNNEL" topics create in --partitions 2 --data-dir "$D" >/dev/null 2>&1
run "$RUNNEL" topics create in --data-dir "$D"
assert_eq "existing topic: status" 1 "$RC"
assert_contains "existing topic: message" "$ERR" "topic in already exists"
run "$RUNNEL" produce nope --data-dir "$D" </dev/null
assert_eq "produce to unknown topic: status" 1 "$RC"
assert_contains "produce to unknown topic: message" "$ERR" "unknown topic nope"
run "$RUNNEL" consume nope --from-beginning --data-dir "$D"
assert_eq "consume unknown topic: status" 1 "$RC"
assert_contains "consume unknown topic: message" "$ERR" "unknown topic nope"
run "$RUNNEL" produce in --partition 5 --data-dir "$D" <<<"x"
assert_eq "produce to unknown partition: status" 1 "$RC"
assert_contains "produce to unknown partition: message" "$ERR" "in: unknown partition 5 (the topic has 2)"
run "$RUNNEL" consume in --partition 5 --data-dir "$D"
assert_eq "consume unknown partition: status" 1 "$RC"
assert_contains "consume unknown partition: message" "$ERR" "in: unknown partition 5 (the topic has 2)"
run "$RUNNEL" consume in --partition -1 --data-dir "$D"
assert_eq "negative partition: usage status" 2 "$RC"

produce_lines "$D" in 0 r1 r2 r3
run "$RUNNEL" consume in --partition 0 --offset 1000 --data-dir "$D"
assert_eq "offset past the end: status" 1 "$RC"
assert_contains "offset past the end: message" "$ERR" "in-0: offset 1000 is out of range [0, 3]"
run "$RUNNEL" consume in --partition 0 --offset 3 --data-dir "$D"
assert_eq "offset at the end: nothing, status 0" "0 " "$RC $OUT"

"$RUNNEL" topics create small --config max.message.bytes=200 --data-dir "$D" >/dev/null 2>&1
big=$(head -c 500 /dev/zero | tr '\0' x)
run "$RUNNEL" produce small --data-dir "$D" <<<"$big"
assert_eq "oversized record: status" 1 "$RC"
assert_contains "oversized record: message" "$ERR" "small-0: record 0 of 1 is"
assert_contains "oversized record: names the limit" "$ERR" "max.message.bytes is 200"
run "$RUNNEL" produce small --data-dir "$D" <<<"$(printf 'ok1\nok2\n%s\nok3' "$big")"
assert_eq "oversized record among small ones: status" 1 "$RC"
assert_contains "oversized record among small ones: names it" "$ERR" "record 2 of 4"
run "$RUNNEL" topics describe small --data-dir "$D"
assert_contains "oversized records: nothing partially appended" "$OUT" "EndOffset: 0"
check "oversized records: segment empty" test ! -s "$(seg "$D" small-0).log"
# Records that fit alone but not together go in several batches.
run "$RUNNEL" produce small --data-dir "$D" <<<"$(for i in $(seq 10); do head -c 50 /dev/zero | tr '\0' y; echo; done)"
assert_eq "small records split into batches: status" 0 "$RC"
assert_eq "small records split into batches: all there" 10 "$(values "$D" small | wc -w)"
check "small records split into batches: several batches" \
  test "$(batch_ends "$(seg "$D" small-0).log" | wc -l)" -gt 1

finish
