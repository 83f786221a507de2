#!/bin/bash
# SPDX-License-Identifier: MIT
# Wrong key, missing or unsafe key file, damaged store: a clear error and a
# meaningful exit code, never a crash and never wrong data.
. "$(dirname "$0")/lib.sh"

A=$WORK/a
$GEN --out "$WORK/mail" --count 120 --seed 30 --layout eml --big-ratio 0.03 2>/dev/null
new_archive "$A"
mvk "$A" import --quiet "$WORK/mail" >/dev/null
n=$(mvk "$A" stats --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"])')

snapshot() { (cd "$A" && find . -type f -exec sha256sum {} + | sort); }

begin_subtest "wrong key"
head -c 32 /dev/urandom >"$WORK/wrong.key"; chmod 600 "$WORK/wrong.key"
before=$(snapshot)
out=$("$MV" --archive "$A" --key-file "$WORK/wrong.key" list 2>&1)
rc=$?
check "exit 77" [ $rc -eq 77 ]
check "says wrong key" grep -q "wrong key or passphrase" <<<"$out"
check "nothing in the archive was written" [ "$before" = "$(snapshot)" ]
check "a passphrase for a key-file archive is refused" bash -c "printf 'some long passphrase\n' > '$WORK/pp'; chmod 600 '$WORK/pp'; \"$MV\" --archive '$A' --passphrase-file '$WORK/pp' list >/dev/null 2>&1; [ \$? -eq 77 ]"

begin_subtest "missing and unsafe key files"
out=$("$MV" --archive "$A" --key-file "$WORK/nonexistent" list 2>&1)
rc=$?
check "missing key file: exit 66" [ $rc -eq 66 ]
check "missing key file: says so" grep -q "does not exist" <<<"$out"
out=$("$MV" --archive "$A" list 2>&1)
check "no key given: usage error" [ $? -eq 64 ]
cp "$A.key" "$WORK/open.key"; chmod 644 "$WORK/open.key"
out=$("$MV" --archive "$A" --key-file "$WORK/open.key" list 2>&1)
rc=$?
check "world-readable key file refused (77)" [ $rc -eq 77 ]
check "and told how to fix it" grep -q "chmod 600" <<<"$out"
head -c 16 /dev/urandom >"$WORK/short.key"; chmod 600 "$WORK/short.key"
"$MV" --archive "$A" --key-file "$WORK/short.key" list >/dev/null 2>&1
check "a 16-byte key file is refused" [ $? -eq 77 ]
check "no archive: exit 66" bash -c "\"$MV\" --archive '$WORK/none' --key-file '$A.key' list >/dev/null 2>&1; [ \$? -eq 66 ]"

begin_subtest "damaged store: errors, never wrong bytes, never a crash"
sums=$WORK/sums
mvk "$A" list --format json | python3 -c 'import json,sys; [print(m["serial"], m["sha256"]) for m in json.load(sys.stdin)]' >"$sums"
damage() { # flip one byte in the middle of every data file of the store
    python3 - "$A/store" <<'PY'
import os, sys
for dp, dn, fn in os.walk(sys.argv[1]):
    for f in fn:
        if f.endswith((".sst", ".blob", ".log")):
            p = os.path.join(dp, f)
            size = os.path.getsize(p)
            if size > 64:
                with open(p, "r+b") as fh:
                    for off in (size // 3, size // 2, 2 * size // 3):
                        fh.seek(off); b = fh.read(1); fh.seek(off); fh.write(bytes([b[0] ^ 0x40]))
PY
}
cp -a "$A" "$WORK/intact"
damage
crashes=0; wrong=0; errors=0; good=0
while read -r serial sha; do
    "$MV" --archive "$A" --key-file "$A.key" show "$serial" --raw >"$WORK/out" 2>"$WORK/err"
    rc=$?
    if [ $rc -ge 128 ] || [ $rc -eq 99 ]; then crashes=$((crashes + 1))
    elif [ $rc -eq 0 ]; then
        if [ "$(sha256sum <"$WORK/out" | cut -d' ' -f1)" = "$sha" ]; then good=$((good + 1)); else wrong=$((wrong + 1)); fi
    else
        grep -q "^mailvault show: " "$WORK/err" && errors=$((errors + 1)) || crashes=$((crashes + 1))
    fi
done <"$sums"
echo "# after damage: $good intact, $errors clear errors, $wrong wrong, $crashes crashes"
check "no crash" [ $crashes -eq 0 ]
check "no wrong bytes" [ $wrong -eq 0 ]
check "the damage was noticed" [ $errors -gt 0 ]

begin_subtest "truncated store files"
rm -rf "$A"; cp -a "$WORK/intact" "$A"
for f in "$A"/store/*.blob "$A"/store/*.sst; do [ -f "$f" ] && truncate -s $(( $(stat -c %s "$f") / 2 )) "$f"; done
"$MV" --archive "$A" --key-file "$A.key" show 1 --raw >/dev/null 2>"$WORK/err"
rc=$?
check "a truncated store gives an error, not a crash (rc=$rc)" [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ $rc -ne 99 ]
finish
