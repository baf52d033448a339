# Tests written in Lua: runnel test --script with runnel.test_driver.
source "$(dirname "$0")/lib.sh"
run() { set +e; OUT=$("$@" 2>&1); RC=$?; set -e; }

run "$RUNNEL" test --script "$RUNNEL_SOURCE_DIR/tests/lua/test_wordcount.lua"
assert_eq "passing script: status ($OUT)" 0 "$RC"
assert_contains "passing script: output" "$OUT" "test_wordcount.lua: ok"
run "$RUNNEL" test --script "$RUNNEL_SOURCE_DIR/tests/lua/test_windows.lua"
assert_eq "windows script: status ($OUT)" 0 "$RC"
assert_contains "windows script: output" "$OUT" "test_windows.lua: ok"
run "$RUNNEL" test --script "$RUNNEL_SOURCE_DIR/tests/lua/test_fails.lua"
assert_eq "failing script: status" 1 "$RC"
assert_contains "failing script: file:line and message" "$OUT" "test_fails.lua:5: expected a count of 2, got 1"
printf 'runnel.load_job("missing.lua")\n' > "$T/t.lua"
run "$RUNNEL" test --script "$T/t.lua"
assert_eq "missing job file" 1 "$RC"
assert_contains "missing job file message" "$OUT" "t.lua:1: $T/missing.lua: No such file or directory"
finish
