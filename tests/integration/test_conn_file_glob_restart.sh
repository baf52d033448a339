# A file source on a glob whose rotated names still match it
# (file=.../app*.log; logrotate's app.log -> app.1.log -> app.2.log, and a
# dated app-<date>.log), with the worker SIGKILLed around the rotations:
# rotated and fully read before the kill (the new file already read too),
# rotated while the worker is down with an unread tail, and a rename
# straight to a dated name. Offsets are per file name, so a rotated file
# shows up after the restart under a name with no offset of its own: it
# must continue where it was read under its old name, not from 0. At the
# end the topic holds every line of every file exactly once.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/g"
cat > "$T/worker.json" <<JSON
{"listeners": "http://127.0.0.1:0", "data.dir": "$T/data", "offset.flush.interval.ms": 100}
JSON
cat > "$T/src.json" <<JSON
{"name": "g", "config": {"connector.class": "file-source", "file": "$T/g/app*.log",
 "topic": "g", "scan.interval.ms": "100"}}
JSON

# The committed offset of app.log is its end, in the file it names now.
at_end() {
  local f=$T/g/app.log
  local want="{\"partition\":{\"filename\":\"$f\"},\"offset\":{\"position\":$(stat -c %s "$f"),\"inode\":$(stat -c %i "$f")"
  http GET /connectors/g/offsets
  [[ "$BODY" == *"$want,"* || "$BODY" == *"$want}"* ]]
}
# logrotate without copytruncate: app.N.log -> app.N+1.log, app.log -> app.1.log.
rotate() {
  local n
  for n in 3 2 1; do
    if [ -f "$T/g/app.$n.log" ]; then mv "$T/g/app.$n.log" "$T/g/app.$((n + 1)).log"; fi
  done
  mv "$T/g/app.log" "$T/g/app.1.log"
}

cd "$T/g"
printf 'first\n' > app.log
for n in 1 2 3 4 5; do
  start_worker "w$n" --config "$T/worker.json" "$T/src.json"
  echo "a$n" >> app.log
  wait_for "round $n: app.log read and committed" at_end
  case $n in
  1|3) # rotated while running, the new file read, then the kill
    echo "b$n" >> app.log
    rotate
    echo "c$n" > app.log
    wait_for "round $n: the new app.log read and committed" at_end
    sleep 0.3 # a scan or two: the rotated names are seen and skipped
    stop_worker KILL ;;
  2|4) # killed, then rotated with a tail nobody read yet
    stop_worker KILL
    echo "b$n" >> app.log
    rotate
    echo "c$n" > app.log ;;
  5) # killed, then renamed to a dated name, still inside the glob
    stop_worker KILL
    echo "b$n" >> app.log
    mv app.log app-2026-11-22.log
    echo "c$n" > app.log ;;
  esac
done
start_worker final --config "$T/worker.json" "$T/src.json"
wait_for "the restarted source reaches the end of app.log" at_end
sleep 1 # more scans and polls: anything read twice would be in the topic now
stop_worker TERM
cd - >/dev/null

"$RUNNEL" consume g --from-beginning --data-dir "$T/data" > "$T/got"
cat "$T/g/"app*.log | sort > "$T/want"
assert_eq "every line of every file, rotated ones included" \
  "$(cat "$T/want")" "$(sort "$T/got")"
assert_eq "no line read twice" "" "$(sort "$T/got" | uniq -d)"
assert_eq "line count" "$(wc -l < "$T/want")" "$(wc -l < "$T/got")"
check "a rotated file continued under its new name" \
  grep -q "continuing from byte" "$T/w2.log" "$T/w3.log" "$T/w4.log" "$T/w5.log" "$T/final.log"

finish
