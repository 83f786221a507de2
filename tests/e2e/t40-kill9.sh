#!/bin/bash
# SPDX-License-Identifier: MIT
# kill -9 during import, several times, then import again: the same
# messages as an uninterrupted import, each exactly once, each intact.
. "$(dirname "$0")/lib.sh"

N=${MV_KILL_COUNT:-6000}
$GEN --out "$WORK/mail" --count "$N" --seed 40 --layout mbox --manifest "$WORK/manifest" 2>/dev/null
A=$WORK/a
new_archive "$A"

begin_subtest "kill -9 mid-import, three times"
kills=0
for delay in 0.4 0.9 1.5; do
    mvk "$A" import --quiet "$WORK/mail" >/dev/null 2>&1 &
    pid=$!
    sleep $delay
    if kill -9 $pid 2>/dev/null; then kills=$((kills + 1)); fi
    wait $pid 2>/dev/null
done
echo "# killed $kills imports"
mid=$(mvk "$A" stats --format json)
echo "# after the kills: $mid"
check "something was archived before the kills" python3 -c 'import json,sys; assert json.loads(sys.argv[1])["messages"]>0' "$mid"

begin_subtest "import again completes"
out=$(mvk "$A" import --format json --quiet "$WORK/mail")
check "exit 0" [ $? -eq 0 ]
echo "# $out"
check "the spool is empty" bash -c "\"$MV\" --archive '$A' --key-file '$A.key' stats | grep -qx 'spool: 0'"

begin_subtest "same result as an uninterrupted import"
check "every message once, byte-exact" python3 "$ROOT/tests/e2e/roundtrip.py" --sample 200 "$A" "$A.key" "$WORK/manifest"
serials=$(mvk "$A" list --format json | python3 -c 'import json,sys; s=[m["serial"] for m in json.load(sys.stdin)]; print(s==list(range(1,len(s)+1)))')
check "serials are gapless" [ "$serials" = True ]
finish
