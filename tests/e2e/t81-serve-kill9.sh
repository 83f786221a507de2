#!/bin/bash
# SPDX-License-Identifier: MIT
# kill -9 the daemon several times under a load of parallel sessions:
# every message that got a 250 is archived exactly once, byte-identical;
# only messages that never got a 250 may be missing.
. "$(dirname "$0")/lib.sh"
LOAD=$(dirname "$MV")/tools/mvload
[ -x "$LOAD" ] || { echo "# skip: $LOAD not built"; finish; }
N=${MV_SERVE_KILL_COUNT:-4000}
A=$WORK/a
new_archive "$A"
LOG=$WORK/serve.log
P=$(free_port)

begin_subtest "load over 8 sessions, kill -9 three times, restart"
start_serve "$A" "$LOG" --smtp 127.0.0.1:$P || { fail "serve did not start"; finish; }
"$LOAD" --connect 127.0.0.1:$P --sessions 8 --count "$N" --size 3000 --seed 81 --retry 60 \
    --ack-log "$WORK/acks" >"$WORK/load.out" 2>&1 &
load=$!
kills=0
for k in 1 2 3; do
    # wait until about k/4 of the load is acknowledged, then kill
    target=$((N * k / 4))
    for _ in $(seq 1 600); do
        [ "$(wc -l <"$WORK/acks" 2>/dev/null || echo 0)" -ge "$target" ] && break
        sleep 0.05
    done
    if kill -9 "$SERVE_PID" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$SERVE_PID" 2>/dev/null
    echo "# kill $k after $(wc -l <"$WORK/acks") acknowledgements; $(mvk "$A" status | grep "^spool:")"
    start_serve "$A" "$LOG" --smtp 127.0.0.1:$P || { fail "restart $k failed"; finish; }
done
wait $load
echo "# $(cat "$WORK/load.out")"
check "three kills while the load ran" [ $kills -eq 3 ]
check "the load generator finished" grep -q "acknowledged" "$WORK/load.out"
for _ in $(seq 1 300); do
    "$MV" --archive "$A" status | grep -qx 'spool: 0' && break
    sleep 0.1
done
check "resumed: the spool drains to 0" bash -c "'$MV' --archive '$A' status | grep -qx 'spool: 0'"
check "stops cleanly" stop_serve
check "'resuming' logged after a kill" grep -q 'resuming' "$LOG"

begin_subtest "every acknowledged message is archived exactly once, byte-identical"
mvk "$A" list --format json >"$WORK/list.json"
python3 - "$WORK/acks" "$WORK/list.json" <<'PY'
import json, sys
acked = {}
for line in open(sys.argv[1]):
    i, h = line.split()
    acked[int(i)] = h
msgs = json.load(open(sys.argv[2]))
by_sha = {}
for m in msgs:
    by_sha.setdefault(m["sha256"], []).append(m["serial"])
missing = [i for i, h in acked.items() if h not in by_sha]
twice = [i for i, h in acked.items() if len(by_sha.get(h, [])) > 1]
print(f"# acknowledged {len(acked)}, archived messages {len(msgs)}, missing {len(missing)}, stored twice {len(twice)}")
extra = len(msgs) - len(acked)
print(f"# archived without a 250 seen by the client (answer lost in a kill): {extra}")
sys.exit(1 if missing or twice or extra < 0 else 0)
PY
check "none missing, none twice" [ $? -eq 0 ]
check "verify: every stored message matches its SHA-256" bash -c "'$MV' --archive '$A' --key-file '$A.key' verify >/dev/null"
finish
