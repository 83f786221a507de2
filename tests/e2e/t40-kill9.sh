#!/bin/bash
# SPDX-License-Identifier: MIT
# kill -9 during import, several times, then import again: the same
# messages as an uninterrupted import, each exactly once, each intact.
. "$(dirname "$0")/lib.sh"

N=${MV_KILL_COUNT:-6000}
rc_of() { "$@" >/dev/null 2>&1; echo $?; }
$GEN --out "$WORK/mail" --count "$N" --seed 40 --layout mbox --manifest "$WORK/manifest" 2>/dev/null
A=$WORK/a
new_archive "$A"

begin_subtest "interrupt imports mid-stream: kill -9 three times, then Ctrl-C"
# How long an uninterrupted import takes here, to aim the kills inside it.
S=$WORK/scratch
new_archive "$S"
t0=$(date +%s.%N)
mvk "$S" import --quiet "$WORK/mail" >/dev/null 2>&1
full=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
rm -rf "$S"
echo "# an uninterrupted import takes $full s"
kills=0
for frac in 0.2 0.4 0.6 0.5; do
    sig=KILL
    [ "$frac" = 0.5 ] && sig=INT
    "$MV" --archive "$A" --key-file "$A.key" import --quiet "$WORK/mail" >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v f="$full" -v x="$frac" 'BEGIN { printf "%.2f", f * x }')"
    if kill -$sig $pid 2>/dev/null; then kills=$((kills + 1)); fi
    wait $pid 2>/dev/null
done
echo "# interrupted $kills of 4 imports while they ran"
mid=$(mvk "$A" stats --format json)
echo "# after the interruptions: $mid"
check "at least one import was interrupted while it ran" [ $kills -ge 1 ]

begin_subtest "import again completes"
out=$(mvk "$A" import --format json --quiet "$WORK/mail")
check "exit 0" [ $? -eq 0 ]
echo "# $out"
check "the spool is empty" bash -c "\"$MV\" --archive '$A' --key-file '$A.key' stats | grep -qx 'spool: 0'"

begin_subtest "same result as an uninterrupted import"
check "every message once, byte-exact" python3 "$ROOT/tests/e2e/roundtrip.py" --sample 200 "$A" "$A.key" "$WORK/manifest"
serials=$(mvk "$A" list --format json | python3 -c 'import json,sys; s=[m["serial"] for m in json.load(sys.stdin)]; print(s==list(range(1,len(s)+1)))')
check "serials are gapless" [ "$serials" = True ]
begin_subtest "the spool keeps imported files by reference: read back from the file, kept while it is gone"
# An import spools a reference to each message's file and its digest, not
# a second copy of the bytes.  After a kill -9 the next import reads the
# spooled messages back from their files, whatever paths it is given; a
# file that has gone keeps them in the spool until it is back.
C=$WORK/c
new_archive "$C"
# (without the index, so that the kills land while mail goes in)
t0=$(date +%s.%N)
mvk "$C" import --quiet --no-index "$WORK/mail" >/dev/null 2>&1
fast=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
rm -rf "$C" "$C.key"
new_archive "$C"
spooled=0
for frac in 0.3 0.5 0.2 0.7 0.4 0.6 0.1; do
    "$MV" --archive "$C" --key-file "$C.key" import --quiet --no-index "$WORK/mail" >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v f="$fast" -v x="$frac" 'BEGIN { printf "%.2f", f * x }')"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    spooled=$(mvk "$C" stats | sed -n 's/^spool: //p')
    [ "${spooled:-0}" -gt 0 ] && break
done
echo "# $spooled arrivals left in the spool by the kill"
if [ "${spooled:-0}" -gt 0 ]; then
    mkdir -p "$WORK/other" # an import of nothing: only what the spool holds
    mv "$WORK/mail" "$WORK/mail.away"
    out=$(mvk "$C" import --quiet --format json "$WORK/other" 2>"$WORK/away.err")
    echo "# files away: $out"
    check "while the file is away they are reported and kept" \
        python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d['spooled_unresolved'] == $spooled and d['replayed_from_spool'] == 0 else 1)" "$out"
    check "the warning says so" grep -q "kept in the spool" "$WORK/away.err"
    check "stats still counts them" bash -c "\"$MV\" --archive '$C' --key-file '$C.key' stats | grep -qx 'spool: $spooled'"
    # On a copy of the archive: a file gone for good is forgotten, on the record.
    F=$WORK/f
    cp -a "$C" "$F" && cp "$C.key" "$F.key"
    check "--forget-unresolved needs a reason" [ "$(rc_of mvk "$F" import --forget-unresolved '' "$WORK/other")" -eq 64 ]
    out=$(mvk "$F" import --quiet --format json --forget-unresolved "mailbox deleted by its owner" "$WORK/other" 2>"$WORK/forget.err")
    echo "# forgotten: $out"
    check "--forget-unresolved drops them and counts them" \
        python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d['forgotten_unresolved'] == $spooled and d['spooled_unresolved'] == 0 else 1)" "$out"
    check "the warning says they were dropped" grep -q "dropped from the spool as asked" "$WORK/forget.err"
    check "the spool is empty after forgetting" bash -c "\"$MV\" --archive '$F' --key-file '$F.key' stats | grep -qx 'spool: 0'"
    mvk "$F" audit --format json >"$WORK/forget-audit.json"
    check "the audit record gives the reason and names every one forgotten" python3 - "$WORK/forget-audit.json" "$spooled" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))
rec = [r for r in recs if r["command"] == "import" and "--forget-unresolved" in r["detail"]]
assert len(rec) == 1, rec
d = rec[0]["detail"]
assert 'reason="mailbox deleted by its owner"' in d, d
assert d.count("forgot=") == int(sys.argv[2]) and "forgotten=" + sys.argv[2] in d, d
PY
    mv "$WORK/mail.away" "$WORK/mail"
    out=$(mvk "$C" import --quiet --format json "$WORK/other")
    echo "# file back: $out"
    check "back, they are read from it by an import of other paths" \
        python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d['spooled_unresolved'] == 0 and d['replayed_from_spool'] == $spooled else 1)" "$out"
    check "the spool is empty" bash -c "\"$MV\" --archive '$C' --key-file '$C.key' stats | grep -qx 'spool: 0'"
    mvk "$C" import --quiet "$WORK/mail" >/dev/null
    check "the rest imported: every message once, byte-exact" python3 "$ROOT/tests/e2e/roundtrip.py" --sample 60 "$C" "$C.key" "$WORK/manifest"
    n=$(mvk "$C" list --format json | python3 -c 'import json,sys; s=[m["serial"] for m in json.load(sys.stdin)]; print(len(s), s==list(range(1,len(s)+1)))')
    n0=$(mvk "$A" list --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    check "as many messages as an uninterrupted import; gapless" [ "$n" = "$n0 True" ]
    mvk "$F" import --quiet "$WORK/mail" >/dev/null
    n=$(mvk "$F" list --format json | python3 -c 'import json,sys; s=[m["serial"] for m in json.load(sys.stdin)]; print(len(s), s==list(range(1,len(s)+1)))')
    check "forgotten, then the file back: they import anew, nothing lost or doubled" [ "$n" = "$n0 True" ]
else
    echo "# the kills never caught arrivals in the spool on this machine: nothing to check"
fi

begin_subtest "a large message: kill -9 while it is spooled, then import again"
mkdir -p "$WORK/big"
python3 - "$WORK/big/big.eml" <<'PY'
import base64, os, sys
with open(sys.argv[1], "wb") as f:
    f.write(b"From: a@example.com\r\nTo: b@example.com\r\nSubject: large\r\n"
            b"Message-ID: <large@example.com>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n")
    f.write(base64.encodebytes(os.urandom(40 << 20)).replace(b"\n", b"\r\n"))
PY
B=$WORK/b
new_archive "$B"
"$MV" --archive "$B" --key-file "$B.key" import --quiet "$WORK/big" >/dev/null 2>&1 &
pid=$!
sleep 0.5
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
mvk "$B" import --quiet "$WORK/big" >/dev/null
check "import after the kill" [ $? -eq 0 ]
check "the large message is archived once, byte-exact" \
    [ "$(mvk "$B" show 1 --raw | sha256sum)" = "$(sha256sum <"$WORK/big/big.eml")" ]
check "and only once" bash -c "[ \$(\"$MV\" --archive '$B' --key-file '$B.key' list | wc -l) -eq 1 ]"
check "verify passes" bash -c "\"$MV\" --archive '$B' --key-file '$B.key' verify >/dev/null"
finish
