#!/bin/bash
# SPDX-License-Identifier: MIT
# The integrity log (docs/integrity.md): checkpoints, inclusion proofs
# checked by mailvault and by plain openssl, and verify against tampering
# done with RocksDB's own ldb: a flipped byte, a deleted record, two
# swapped records, a cut log, an archive rolled back to an older copy, and
# an archive from before the log (leaves given on open).
. "$(dirname "$0")/lib.sh"
require_prereq ldb
require_prereq openssl

A=$WORK/a
$GEN --out "$WORK/mail" --count 120 --seed 120 --layout mbox --dup-ratio 0.1 2>/dev/null
new_archive "$A"
mvk "$A" import --quiet "$WORK/mail" >/dev/null
last=$(mvk "$A" stats --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"])')

# ldb on the archive's store, hex keys and values
ldbh() { ldb --db="$1/store" --column_family="$2" --hex "${@:3}"; }
hex64() { printf '%016X' "$1"; }

begin_subtest "an untouched archive verifies"
out=$(mvk "$A" verify)
check "exit 0" [ $? -eq 0 ]
check "every message verified" grep -q "verified: $last messages (serials 1 to $last)" <<<"$out"
check "says a rollback needs a kept head" grep -q "cannot be detected without a tree head kept" <<<"$out"
check "result OK" grep -q '^result: OK' <<<"$out"
j=$(mvk "$A" verify --format json)
check "json: OK, leaves, copies, audit records, no failure" python3 -c '
import json,sys
d=json.loads(sys.argv[1]); n=int(sys.argv[2])
assert d["result"]=="OK" and d["failed"]==0 and not d["failures"], d
assert d["messages"]==n and d["copies"]>n and d["audit_records"]>=2, d
assert d["leaves"]>=d["messages"]+d["copies"]+d["audit_records"], d
assert d["rollback_detectable"] is False and d["checkpoint"] is None' "$j" "$last"

begin_subtest "checkpoint: a signed C2SP note"
mvk "$A" checkpoint >"$WORK/head1"
check "exit 0" [ $? -eq 0 ]
origin=$(head -1 "$WORK/head1")
check "origin names the archive" grep -Eq '^mailvault/[0-9a-f]{32}$' <<<"$origin"
check "size, root, time, blank line, signature line" python3 -c '
import sys,base64,re
t=open(sys.argv[1],encoding="utf-8").read()
body,sig=t.split("\n\n",1)
l=body.split("\n")
assert l[1].isdigit() and int(l[1])>0
assert len(base64.b64decode(l[2],validate=True))==32
assert re.match(r"time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",l[3])
m=re.match(r"\u2014 (\S+) (\S+)\n$",sig); assert m and m.group(1)==l[0]
assert len(base64.b64decode(m.group(2)))==68' "$WORK/head1"
# the signature is a plain Ed25519 signature over the note's text
sed '/^$/,$d' "$WORK/head1" >"$WORK/body"
tail -1 "$WORK/head1" | awk '{print $3}' | base64 -d | tail -c 64 >"$WORK/sig"
fpr=$(mvk "$A" keys signing | grep -Eo '[0-9a-f]{64}' | head -1)
check "keys signing prints the fingerprint" [ ${#fpr} -eq 64 ]
mvk "$A" proof 1 >"$WORK/p1"
grep '^key ' "$WORK/p1" | cut -d' ' -f2 | base64 -d >"$WORK/pub.raw"
(printf '\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00'; cat "$WORK/pub.raw") >"$WORK/pub.der"
openssl pkey -pubin -inform DER -in "$WORK/pub.der" -out "$WORK/pub.pem" 2>/dev/null
check "openssl verifies the head's signature" bash -c "openssl pkeyutl -verify -pubin -inkey '$WORK/pub.pem' -rawin -in '$WORK/body' -sigfile '$WORK/sig' | grep -q 'Verified Successfully'"
check "the key in the proof has the published fingerprint" [ "$(openssl dgst -sha256 -r "$WORK/pub.raw" | cut -d' ' -f1)" = "$fpr" ]
again=$(mvk "$A" checkpoint | sed -n 2p)
check "no new leaf but the audit record: a fresh head counts it" [ "$again" -gt "$(sed -n 2p "$WORK/head1")" ]

begin_subtest "proofs for random serials verify"
bad=0
for s in $(python3 -c "import random; r=random.Random(7); print(*sorted(r.sample(range(1,$last+1),12)))"); do
    mvk "$A" proof "$s" >"$WORK/p.$s" || bad=1
    "$MV" verify-proof "$WORK/p.$s" --fingerprint "$fpr" >/dev/null || bad=1
done
check "12 proofs made and verified against the published fingerprint" [ $bad -eq 0 ]
out=$("$MV" verify-proof "$WORK/p.$s")
check "without --fingerprint it says the key was not checked" grep -q 'not checked against a published fingerprint' <<<"$out"
"$MV" verify-proof "$WORK/p.$s" --format json | python3 -c "import json,sys; d=json.load(sys.stdin); assert d['result']=='OK' and d['serial']==$s, d"
check "json form" [ $? -eq 0 ]
"$MV" verify-proof "$WORK/p.$s" --fingerprint "$(printf '%064d' 0)" >/dev/null 2>&1
check "another fingerprint: 65" [ $? -eq 65 ]

begin_subtest "the documented openssl procedure checks a proof"
sed -n '/<!-- proof-check:begin -->/,/<!-- proof-check:end -->/p' "$ROOT/docs/integrity.md" |
    sed '1,2d;$d' | sed '$d' >"$WORK/proofcheck.sh"
check "the procedure is in docs/integrity.md" grep -q 'openssl dgst' "$WORK/proofcheck.sh"
out=$(cd "$WORK" && PROOF="$WORK/p.$s" SERIAL=$s bash "$WORK/proofcheck.sh" 2>&1)
check "it accepts a good proof" grep -q '^PROOF OK' <<<"$out"
# one node changed: the path leads elsewhere
python3 - "$WORK/p.$s" "$WORK/p.bad" <<'EOF'
import sys,base64
lines=open(sys.argv[1],encoding="utf-8").read().split("\n")
for i,l in enumerate(lines):
    if l.startswith("node "):
        b=bytearray(base64.b64decode(l[5:])); b[0]^=1
        lines[i]="node "+base64.b64encode(bytes(b)).decode(); break
open(sys.argv[2],"w",encoding="utf-8").write("\n".join(lines))
EOF
out=$(cd "$WORK" && PROOF="$WORK/p.bad" SERIAL=$s bash "$WORK/proofcheck.sh" 2>&1)
check "it refuses a changed node" bash -c "! grep -q '^PROOF OK' <<<\"\$1\"" _ "$out"
"$MV" verify-proof "$WORK/p.bad" >/dev/null 2>&1
check "so does verify-proof (65)" [ $? -eq 65 ]
sed "s/^serial $s\$/serial $((s % last + 1))/" "$WORK/p.$s" >"$WORK/p.other"
"$MV" verify-proof "$WORK/p.other" >/dev/null 2>&1
check "a proof claiming another serial fails" [ $? -eq 65 ]

begin_subtest "a proof against a head the auditor kept"
mvk "$A" proof 3 --head "$WORK/head1" >"$WORK/p3k"
check "made against the kept head" [ "$(sed -n '/^$/,$p' "$WORK/p3k" | sed -n 3p)" = "$(sed -n 2p "$WORK/head1")" ]
"$MV" verify-proof "$WORK/p3k" --head "$WORK/head1" --fingerprint "$fpr" >/dev/null
check "verifies with --head" [ $? -eq 0 ]
mvk "$A" proof 3 >"$WORK/p3"
"$MV" verify-proof "$WORK/p3" --head "$WORK/head1" >"$WORK/vp.out" 2>&1
check "a proof against another head: 65, says how to make it" bash -c "[ $? -eq 65 ] && grep -q -- '--head' '$WORK/vp.out'"
B=$WORK/b
new_archive "$B"
mvk "$B" import --quiet "$WORK/mail" >/dev/null
mvk "$B" checkpoint >"$WORK/headB"
"$MV" verify-proof "$WORK/p3" --head "$WORK/headB" >/dev/null 2>&1
check "the head of another archive: 65" [ $? -eq 65 ]
mvk "$A" proof 3 --head "$WORK/headB" >/dev/null 2>&1
check "proof refuses another archive's head (65)" [ $? -eq 65 ]

begin_subtest "an export carries the tree head and each message's inclusion proof"
mvk "$A" export --serials 1-10 --as eml --out "$WORK/x" >/dev/null
out=$("$MV" verify-export "$WORK/x" --fingerprint "$fpr")
check "verify-export checks the 10 proofs against the head" grep -q '^10 inclusion proofs lead to' <<<"$out"
python3 - "$WORK/x/integrity/proofs.txt" "$WORK/xp" <<'PY'
import sys
t = open(sys.argv[1], encoding="utf-8").read().split("mailvault inclusion proof v1\n")[1:]
open(sys.argv[2], "w", encoding="utf-8").write("mailvault inclusion proof v1\n" + t[3])
PY
"$MV" verify-proof "$WORK/xp" --head "$WORK/x/integrity/tree_head.txt" --fingerprint "$fpr" >/dev/null
check "one of them, alone, verifies against the package's head" [ $? -eq 0 ]
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tree_size"] and d["inclusion_proofs"]=="integrity/proofs.txt", d' "$WORK/x/custody.json"
check "custody.json names the tree head" [ $? -eq 0 ]

begin_subtest "tamper: a flipped byte in a message record"
T=$WORK/t1; cp -a "$A" "$T"; cp "$A.key" "$T.key"
v=$(ldbh "$T" msg get 0x$(hex64 5))
flip=$(python3 -c "import sys; v=sys.argv[1]; i=40; print(v[:i]+('0' if v[i]!='0' else '1')+v[i+1:])" "$v")
ldbh "$T" msg put 0x$(hex64 5) "$flip" >/dev/null
out=$(mvk "$T" verify 2>&1); rc=$?
check "verify exits 65" [ $rc -eq 65 ]
check "reports serial 5" grep -q '^FAILED serial 5: message record' <<<"$out"
check "and nothing else" [ "$(grep -c '^FAILED' <<<"$out")" -eq 1 ]

begin_subtest "tamper: a deleted copy record"
T=$WORK/t2; cp -a "$A" "$T"; cp "$A.key" "$T.key"
ldbh "$T" copy delete 0x$(hex64 7)00000001 >/dev/null
out=$(mvk "$T" verify 2>&1); rc=$?
check "verify exits 65" [ $rc -eq 65 ]
check "reports serial 7's copy as missing" grep -q '^FAILED serial 7: copy record 1 is missing' <<<"$out"

begin_subtest "tamper: two message records swapped"
T=$WORK/t3; cp -a "$A" "$T"; cp "$A.key" "$T.key"
v10=$(ldbh "$T" msg get 0x$(hex64 10)); v11=$(ldbh "$T" msg get 0x$(hex64 11))
ldbh "$T" msg put 0x$(hex64 10) "$v11" >/dev/null
ldbh "$T" msg put 0x$(hex64 11) "$v10" >/dev/null
out=$(mvk "$T" verify 2>&1); rc=$?
check "verify exits 65" [ $rc -eq 65 ]
check "reports serial 10" grep -q '^FAILED serial 10: ' <<<"$out"
check "reports serial 11" grep -q '^FAILED serial 11: ' <<<"$out"

begin_subtest "tamper: a deleted message, all its records and its salt"
T=$WORK/t4; cp -a "$A" "$T"; cp "$A.key" "$T.key"
ldbh "$T" msg delete 0x$(hex64 20) >/dev/null
ldbh "$T" salt delete 0x$(hex64 20) >/dev/null
out=$(mvk "$T" verify 2>&1); rc=$?
check "verify exits 65, reports serial 20" bash -c "[ $rc -eq 65 ] && grep -q '^FAILED serial 20: message record is missing' <<<\"\$1\"" _ "$out"

begin_subtest "tamper: a record added behind the log's back"
T=$WORK/t5; cp -a "$A" "$T"; cp "$A.key" "$T.key"
ldbh "$T" copy put 0x$(hex64 9)00000063 "$(ldbh "$T" copy get 0x$(hex64 9)00000001)" >/dev/null
out=$(mvk "$T" verify 2>&1); rc=$?
check "verify exits 65, names serial 9" bash -c "[ $rc -eq 65 ] && grep -q '^FAILED serial 9: copy of message 9.* has no leaf' <<<\"\$1\"" _ "$out"

begin_subtest "tamper: a stored subtree hash changed"
T=$WORK/t7; cp -a "$A" "$T"; cp "$A.key" "$T.key"
# only subtrees of 16 leaves and more are stored (docs/integrity.md)
low=$(ldbh "$T" log scan --from=0x6E00 --to=0x6E04 | wc -l)
check "no subtree hash below 16 leaves is stored" [ "$low" -eq 0 ]
nk=0x6E04$(hex64 0)
v=$(ldbh "$T" log get "$nk")
check "the first 16 leaves' hash is stored" [ ${#v} -eq 66 ]
flip=$(python3 -c "import sys; v=sys.argv[1]; i=10; print(v[:i]+('0' if v[i]!='0' else '1')+v[i+1:])" "$v")
ldbh "$T" log put "$nk" "$flip" >/dev/null
out=$(mvk "$T" verify 2>&1); rc=$?
check "verify exits 65 and names the node" bash -c "[ $rc -eq 65 ] && grep -q 'node (4, 0) is not the hash of its leaves' <<<\"\$1\"" _ "$out"

begin_subtest "tamper: the log's tail cut"
T=$WORK/t6; cp -a "$A" "$T"; cp "$A.key" "$T.key"
n=$(mvk "$T" verify --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leaves"])')
ldbh "$T" log deleterange 0x6C$(hex64 $((n - 40))) 0x6C$(hex64 $((n + 1000))) >/dev/null
out=$(mvk "$T" verify 2>&1); rc=$?
check "verify exits 65 and says the tail is missing" bash -c "[ $rc -eq 65 ] && grep -q 'tail is missing\|tail was cut' <<<\"\$1\"" _ "$out"
out=$(mvk "$T" verify --from-checkpoint "$WORK/head1" 2>&1); rc=$?
check "also with the auditor's head" [ $rc -eq 65 ]

begin_subtest "rollback: the archive restored from an older copy"
OLD=$WORK/old; cp -a "$A" "$OLD"
$GEN --out "$WORK/mail2" --count 30 --seed 121 --layout eml 2>/dev/null
mvk "$A" import --quiet "$WORK/mail2" >/dev/null
mvk "$A" checkpoint >"$WORK/head2"
out=$(mvk "$A" verify --from-checkpoint "$WORK/head2"); rc=$?
check "the live archive extends the auditor's newer head" bash -c "[ $rc -eq 0 ] && grep -q 'the log still extends it' <<<\"\$1\"" _ "$out"
R=$WORK/r; cp -a "$OLD" "$R"; cp "$A.key" "$R.key"
out=$(mvk "$R" verify 2>&1); rc=$?
check "the old copy is self-consistent: verify alone passes" [ $rc -eq 0 ]
out=$(mvk "$R" verify --from-checkpoint "$WORK/head2" 2>&1); rc=$?
check "with the newer head: 65, truncated or rolled back" bash -c "[ $rc -eq 65 ] && grep -q 'truncated or the archive rolled back' <<<\"\$1\"" _ "$out"
mvk "$R" verify --from-checkpoint "$WORK/head2" --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["result"]=="FAILED" and d["rollback_detectable"] and not d["checkpoint"]["checked"], d'
check "json says FAILED, checkpoint not reached" [ $? -eq 0 ]
out=$(mvk "$R" verify --from-checkpoint "$WORK/headB" 2>&1); rc=$?
check "another archive's head is refused" bash -c "[ $rc -eq 65 ] && grep -q 'not a tree head signed by this archive' <<<\"\$1\"" _ "$out"

begin_subtest "an archive from before the log gets its leaves on open"
U=$WORK/u; cp -a "$OLD" "$U"; cp "$A.key" "$U.key"
ldbh "$U" log deleterange 0x00 0xFF >/dev/null
ldbh "$U" salt deleterange 0x00 0xFF >/dev/null
ldb --db="$U/store" delete log_state >/dev/null
ldb --db="$U/store" delete log_frontier >/dev/null
ldb --db="$U/store" delete log_heads >/dev/null
out=$(mvk "$U" verify 2>&1); rc=$?
check "verify passes after the upgrade" bash -c "[ $rc -eq 0 ] && grep -q \"verified: $last messages\" <<<\"\$1\"" _ "$out"
check "proofs work on it" bash -c "\"$MV\" --archive '$U' --key-file '$U.key' proof 4 > '$WORK/pu' && \"$MV\" verify-proof '$WORK/pu' >/dev/null"

begin_subtest "through the daemon"
P=$(free_port)
if start_serve "$A" "$WORK/serve.log" --smtp 127.0.0.1:$P; then
    out=$(mvk "$A" verify --from-checkpoint "$WORK/head2"); rc=$?
    check "verify --from-checkpoint (the client sends the head)" bash -c "[ $rc -eq 0 ] && grep -q 'the log still extends it' <<<\"\$1\"" _ "$out"
    mvk "$A" proof 2 --head "$WORK/head2" >"$WORK/pd" && "$MV" verify-proof "$WORK/pd" --head "$WORK/head2" >/dev/null
    check "proof --head" [ $? -eq 0 ]
    swaks --server 127.0.0.1 --port "$P" --from a@corp.test --to archive@archive.test \
        --header "Subject: after the checkpoint" >/dev/null 2>&1
    stop_serve
    check "the daemon signed a closing head" bash -c "[ \$(\"$MV\" --archive '$A' --key-file '$A.key' checkpoint | sed -n 2p) -gt \$(sed -n 2p '$WORK/head2') ]"
else
    fail "serve did not start"
fi
out=$(mvk "$A" verify --from-checkpoint "$WORK/head2"); rc=$?
check "after the daemon: still verifies against the auditor's head" [ $rc -eq 0 ]

finish
