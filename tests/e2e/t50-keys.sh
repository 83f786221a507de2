#!/bin/bash
# SPDX-License-Identifier: MIT
# Key hierarchy: list, rotate, rotate --rewrap-existing, rewrap to a new
# master key or passphrase; mail stays readable, old master keys stop working.
. "$(dirname "$0")/lib.sh"

A=$WORK/a
$GEN --out "$WORK/mail" --count 80 --seed 50 --layout eml 2>/dev/null
new_archive "$A"
mvk "$A" import --quiet "$WORK/mail" >/dev/null
first=$(mvk "$A" show 1 --raw | sha256sum)
printf 'name,addresses\nKeys Tester,keys.tester@example.com\n' > "$WORK/cust.csv"
mvk "$A" custodian import "$WORK/cust.csv" >/dev/null

begin_subtest "keys list"
out=$(mvk "$A" keys list)
check "shows the signing key fingerprint" grep -q "signing key:" <<<"$out"
check "shows an active bucket KEK" grep -q "default/.*active" <<<"$out"
check "json parses" bash -c "\"$MV\" --archive '$A' --key-file '$A.key' keys list --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"keks\"]'"

begin_subtest "rotate: new keys for new writes, old still open old mail"
mvk "$A" keys rotate >/dev/null
check "rotate exits 0" [ $? -eq 0 ]
check "old KEKs are retired" bash -c "\"$MV\" --archive '$A' --key-file '$A.key' keys list | grep -q retired"
check "mail still reads" [ "$(mvk "$A" show 1 --raw | sha256sum)" = "$first" ]
$GEN --out "$WORK/mail2" --count 20 --seed 51 --layout eml 2>/dev/null
mvk "$A" import --quiet "$WORK/mail2" >/dev/null
check "import after rotation" [ $? -eq 0 ]

begin_subtest "rotate --rewrap-existing destroys the retired keys"
out=$(mvk "$A" keys rotate --rewrap-existing)
check "reports rewrapped keys" grep -q "rewrapped [1-9]" <<<"$out"
check "no retired KEK is left" bash -c "! \"$MV\" --archive '$A' --key-file '$A.key' keys list | grep -q retired"
check "the custodian record still opens" bash -c "\"$MV\" --archive '$A' --key-file '$A.key' custodian list | grep -q 'Keys Tester'"
check "stored text still opens (snippets)" bash -c "\"$MV\" --archive '$A' --key-file '$A.key' search 'date:1970..2100' --limit 3 --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"total\"]>0 and all(h.get(\"snippet\") for h in d[\"results\"]), d'"
word=$(mvk "$A" search 'date:1970..2100' --limit 1 --format json | python3 -c 'import json,re,sys; d=json.load(sys.stdin); print(next(w for w in re.findall(r"[^\W\d_]{6,}", d["results"][0]["snippet"])))')
check "wildcards still open the vocabulary" bash -c "\"$MV\" --archive '$A' --key-file '$A.key' search '${word:0:4}*' --count | grep -q '^[1-9]'"
check "every message still round-trips" bash -c "for s in \$(seq 1 \$(\"$MV\" --archive '$A' --key-file '$A.key' list | wc -l)); do \"$MV\" --archive '$A' --key-file '$A.key' show \$s --raw >/dev/null || exit 1; done"

begin_subtest "rewrap to a passphrase, then back to a new key file"
printf 'correct horse battery staple\n' >"$WORK/pass"; chmod 600 "$WORK/pass"
mvk "$A" keys rewrap --new-passphrase-file "$WORK/pass" --scrypt-n 1024 >/dev/null
check "rewrap exits 0" [ $? -eq 0 ]
"$MV" --archive "$A" --key-file "$A.key" list >/dev/null 2>&1
check "the old key file no longer opens the archive" [ $? -eq 77 ]
check "the passphrase does" [ "$("$MV" --archive "$A" --passphrase-file "$WORK/pass" show 1 --raw | sha256sum)" = "$first" ]
head -c 32 /dev/urandom >"$WORK/new.key"; chmod 600 "$WORK/new.key"
"$MV" --archive "$A" --passphrase-file "$WORK/pass" keys rewrap --new-key-file "$WORK/new.key" >/dev/null
check "rewrap back to a key file" [ "$("$MV" --archive "$A" --key-file "$WORK/new.key" show 1 --raw | sha256sum)" = "$first" ]
"$MV" --archive "$A" --passphrase-file "$WORK/pass" list >/dev/null 2>&1
check "the passphrase no longer opens it" [ $? -eq 77 ]

begin_subtest "passphrase archives"
printf 'another fine passphrase\n' >"$WORK/p2"; chmod 600 "$WORK/p2"
"$MV" init --archive "$WORK/b" --passphrase-file "$WORK/p2" --scrypt-n 1024 >/dev/null
check "init with a passphrase" [ $? -eq 0 ]
printf 'a wrong passphrase here\n' >"$WORK/p3"; chmod 600 "$WORK/p3"
"$MV" --archive "$WORK/b" --passphrase-file "$WORK/p3" list >/dev/null 2>&1
check "a wrong passphrase is refused (77)" [ $? -eq 77 ]
finish
