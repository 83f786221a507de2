#!/bin/bash
# SPDX-License-Identifier: MIT
# kill -9 while the index is being built: a search catching up after a
# `--no-index` import, a `reindex`, and the daemon's indexer under an SMTP
# load.  Afterwards the next command catches up by itself, `status` shows
# `index lag: 0`, and the answers equal those of an uninterrupted index and
# of a clean `reindex`; the daemon's index counts every archived message.
. "$(dirname "$0")/lib.sh"
N=${MV_SEARCH_KILL_COUNT:-3000}
A=$WORK/a
S=$WORK/scratch
$GEN --out "$WORK/mail" --count "$N" --seed 102 --layout mbox --size-avg 1500 \
    --manifest "$WORK/manifest" 2>/dev/null
new_archive "$A"

lag() { "$MV" status --archive "$1" --key-file "$1.key" | sed -n 's/^index lag: //p'; }
# queries: whole-archive filters, and words of some subjects
python3 - "$WORK/manifest" >"$WORK/queries" <<'PY'
import json, random, re, sys
subjects = [m["subject"] for m in map(json.loads, open(sys.argv[1]))
            if not m.get("summary") and m.get("subject")]
r = random.Random(102)
words = sorted({w for s in subjects for w in re.findall(r"[A-Za-z]{5,}", s)})
qs = ["*", "has:attachment", "NOT has:attachment", "date:2001..2010", "date:>=2015-06",
      "size:>8K", "size:<1K"]
qs += r.sample(words, min(12, len(words)))
pairs = r.sample(words, 6)
qs += ["%s OR %s" % (pairs[0], pairs[1]), "%s -%s" % (pairs[2], pairs[3]),
       "subject:%s" % pairs[4], "%s*" % pairs[5][:5]]
print("\n".join(qs))
PY
mapfile -t QUERIES <"$WORK/queries"
# answers ARCHIVE OUT: each query's serials, one line per query.
answers() {
    local q
    for q in "${QUERIES[@]}"; do
        printf '%s\t' "$q"
        "$MV" search --archive "$1" --key-file "$1.key" --format serials --limit 0 --sort date -- "$q" |
            tr '\n' ' '
        echo
    done >"$2"
}

begin_subtest "import --no-index leaves the index behind"
mvk "$A" import --quiet --no-index "$WORK/mail" >/dev/null
check "import succeeds" [ $? -eq 0 ]
L0=$(lag "$A")
echo "# index lag after import: $L0"
check "status: index lag > 0" [ "${L0:-0}" -gt 0 ]
MSGS=$(mvk "$A" stats --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"])')

begin_subtest "an uninterrupted catch-up (on a copy) as the reference"
cp -a "$A" "$S" && cp "$A.key" "$S.key"
t0=$(date +%s.%N)
n=$("$MV" search --archive "$S" --key-file "$S.key" --count '*')
full=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
echo "# catching up $N messages takes $full s"
check "the first search catches up: every message" [ "$n" = "$MSGS" ]
answers "$S" "$WORK/reference"

begin_subtest "kill -9 a search while it catches up"
# kill when the command is part way through, until one kill lands while
# it runs (the command still alive, the index not caught up)
landed=0
for frac in 0.3 0.5 0.7 0.2 0.4 0.6; do
    "$MV" search --archive "$A" --key-file "$A.key" --count '*' >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v f="$full" -v x="$frac" 'BEGIN { printf "%.2f", f * x }')"
    if kill -9 $pid 2>/dev/null; then
        wait $pid 2>/dev/null
        l=$(lag "$A")
        echo "# killed at $frac of the catch-up: index lag $l"
        [ "${l:-0}" -gt 0 ] && landed=$((landed + 1))
        [ $landed -ge 2 ] && break
    else
        wait $pid 2>/dev/null
        echo "# the catch-up finished before the kill at $frac"
        break
    fi
done
check "a kill landed mid-indexing" [ $landed -ge 1 ]

begin_subtest "kill -9 a reindex"
"$MV" reindex --archive "$A" --key-file "$A.key" >/dev/null 2>&1 &
pid=$!
sleep "$(awk -v f="$full" 'BEGIN { printf "%.2f", f * 0.4 }')"
if kill -9 $pid 2>/dev/null; then echo "# reindex killed while it ran"; else echo "# reindex had finished"; fi
wait $pid 2>/dev/null

begin_subtest "the next search catches up by itself"
n=$(mvk "$A" search --count '*')
check "search '*' --count equals the archived messages ($MSGS)" [ "$n" = "$MSGS" ]
check "status: index lag: 0" [ "$(lag "$A")" = 0 ]
answers "$A" "$WORK/after-kill"
check "answers equal the uninterrupted index's (${#QUERIES[@]} queries)" cmp -s "$WORK/reference" "$WORK/after-kill"
diff "$WORK/reference" "$WORK/after-kill" | head -5 | cut -c1-200 | sed 's/^/# /'
mvk "$A" reindex >/dev/null 2>&1
check "a clean reindex succeeds" [ $? -eq 0 ]
answers "$A" "$WORK/after-reindex"
check "answers equal those after a clean reindex" cmp -s "$WORK/reference" "$WORK/after-reindex"
check "the reference had hits" [ "$(awk -F'\t' '$2 != ""' "$WORK/reference" | wc -l)" -ge 10 ]
rm -rf "$S" "$S.key"

begin_subtest "kill -9 the daemon while it indexes mail flowing in"
LOAD=$(dirname "$MV")/tools/mvload
if [ ! -x "$LOAD" ]; then
    echo "# skip: $LOAD not built"
    finish
fi
B=$WORK/b
new_archive "$B"
LOG=$WORK/serve.log
P=$(free_port)
M=${MV_SEARCH_SERVE_COUNT:-2000}
start_serve "$B" "$LOG" --smtp "127.0.0.1:$P" || { fail "serve did not start"; finish; }
: >"$WORK/acks"
"$LOAD" --connect "127.0.0.1:$P" --sessions 4 --count "$M" --size 2000 --seed 102 --retry 60 \
    --ack-log "$WORK/acks" >"$WORK/load.out" 2>&1 &
load=$!
kills=0
for k in 1 2; do
    target=$((M * k / 3))
    for _ in $(seq 1 600); do
        [ "$(wc -l <"$WORK/acks")" -ge "$target" ] && break
        sleep 0.05
    done
    l=$("$MV" --archive "$B" status 2>/dev/null | sed -n 's/^index lag: //p')
    if kill -9 "$SERVE_PID" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$SERVE_PID" 2>/dev/null
    echo "# kill $k after $(wc -l <"$WORK/acks") acknowledgements (index lag just before: ${l:-?})"
    start_serve "$B" "$LOG" --smtp "127.0.0.1:$P" || { fail "restart $k failed"; finish; }
done
wait $load
echo "# $(tail -1 "$WORK/load.out")"
check "two kills while mail flowed" [ $kills -eq 2 ]
for _ in $(seq 1 300); do
    "$MV" --archive "$B" status | grep -qx 'spool: 0' && "$MV" --archive "$B" status | grep -qx 'index lag: 0' && break
    sleep 0.1
done
check "the daemon catches up: spool 0, index lag: 0" \
    bash -c "'$MV' --archive '$B' status | grep -qx 'spool: 0' && '$MV' --archive '$B' status | grep -qx 'index lag: 0'"
n=$("$MV" --archive "$B" search --count '*')
m=$("$MV" --archive "$B" stats --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"])')
echo "# archived $m messages, $(wc -l <"$WORK/acks") acknowledged"
check "through the daemon: search '*' --count = stats messages ($m)" [ "$n" = "$m" ]
check "every acknowledged message archived" [ "$m" -ge "$(wc -l <"$WORK/acks")" ]
check "serve stops cleanly" stop_serve
check "without the daemon: index lag: 0" [ "$(lag "$B")" = 0 ]
n=$(mvk "$B" search --count '*')
check "without the daemon: search '*' --count = $m" [ "$n" = "$m" ]
finish
