# Golden tests: every examples/*/ with a job (*.lua), input.jsonl and
# expected.jsonl runs through `runnel test` and must print exactly the
# expected lines (written by hand from the documented semantics).
source "$(dirname "$0")/lib.sh"

found=0
for dir in "$RUNNEL_SOURCE_DIR"/examples/*/ "$RUNNEL_SOURCE_DIR"/tests/golden/*/; do
  [ -f "$dir/expected.jsonl" ] || continue
  job=$(ls "$dir"/*.lua | head -1)
  name=$(basename "$dir")
  found=$((found + 1))
  set +e
  (cd "$dir" && "$RUNNEL" test "$(basename "$job")" < input.jsonl) > "$T/$name.out" 2> "$T/$name.err"
  rc=$?
  set -e
  want_rc=0
  [ -f "$dir/expected.status" ] && want_rc=$(cat "$dir/expected.status")
  assert_eq "$name: exit status ($(cat "$T/$name.err"))" "$want_rc" "$rc"
  if diff -u "$dir/expected.jsonl" "$T/$name.out" > "$T/$name.diff"; then
    pass
  else
    fail "$name: output differs from expected.jsonl:"; cat "$T/$name.diff" >&2
  fi
  if [ -f "$dir/expected.stderr" ]; then
    while IFS= read -r want; do
      assert_contains "$name: stderr" "$(cat "$T/$name.err")" "$want"
    done < "$dir/expected.stderr"
  fi
done
check "found golden tests" test "$found" -ge 1
finish
