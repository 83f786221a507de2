#!/bin/bash
# SPDX-License-Identifier: MIT
# The escrow keyring: `keys escrow add` with keys made by the real tools
# (openssl: PKCS#12 with a password, PEM key + certificate; gpg: an
# OpenPGP secret key with a passphrase), a wrong password refused clearly,
# list, remove, audit - and no private key material in the clear on disk.
. "$(dirname "$0")/lib.sh"
require_prereq openssl
A=$WORK/a
new_archive "$A"
K=$WORK/keys
mkdir -p "$K"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$K/alice.key" -out "$K/alice.pem" -days 30 \
    -subj "/CN=Alice Escrow/O=Corp" >/dev/null 2>&1
printf 'p12-secret\n' >"$K/pw"
printf 'wrong\n' >"$K/badpw"
openssl pkcs12 -export -inkey "$K/alice.key" -in "$K/alice.pem" -out "$K/alice.p12" \
    -passout pass:p12-secret >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$K/bob.key" \
    -out "$K/bob.pem" -days 30 -subj "/CN=Bob Escrow" >/dev/null 2>&1

begin_subtest "PKCS#12 with its password"
out=$(mvk "$A" keys escrow add "$K/alice.p12" --password-file "$K/pw" 2>&1)
check "added as #1" grep -q '^escrow key #1 added: x509 subject .*CN=Alice Escrow' <<<"$out"
out=$(mvk "$A" keys escrow add "$K/alice.p12" --password-file "$K/badpw" </dev/null 2>&1)
rc=$?
check "a wrong password: exit 77" [ $rc -eq 77 ]
check "a wrong password: a clear message" grep -qi 'password' <<<"$out"

begin_subtest "PEM key with its certificate"
out=$(mvk "$A" keys escrow add "$K/bob.key" --cert "$K/bob.pem" 2>&1)
check "added as #2" grep -q '^escrow key #2 added: x509 subject .*CN=Bob Escrow' <<<"$out"

begin_subtest "OpenPGP secret key with a passphrase"
if command -v gpg >/dev/null; then
    export GNUPGHOME=$WORK/gnupg
    mkdir -p "$GNUPGHOME" && chmod 700 "$GNUPGHOME"
    printf 'pgp-secret\n' >"$K/pgppw"
    gpg --batch --pinentry-mode loopback --passphrase pgp-secret --quick-gen-key \
        'Carol Escrow <carol@corp.test>' rsa2048 default never >/dev/null 2>&1
    gpg --batch --pinentry-mode loopback --passphrase pgp-secret --armor \
        --export-secret-keys carol@corp.test >"$K/carol.asc" 2>/dev/null
    out=$(mvk "$A" keys escrow add "$K/carol.asc" --password-file "$K/pgppw" 2>&1)
    check "added as #3" grep -q '^escrow key #3 added: openpgp ' <<<"$out"
    check "its user id is described" grep -q 'Carol Escrow' <<<"$out"
else
    echo "# skip: gpg not installed (Debian package gnupg)"
fi

begin_subtest "list, remove, audit"
j=$(mvk "$A" keys escrow list --format json)
check "list as JSON" python3 -c 'import json,sys; l=json.loads(sys.argv[1]); assert [k["kind"] for k in l][:2]==["x509","x509"] and all(k["decrypted"]==0 for k in l)' "$j"
check "remove #2" bash -c "'$MV' --archive '$A' --key-file '$A.key' keys escrow remove 2 | grep -q 'removed'"
check "#2 is gone" bash -c "! '$MV' --archive '$A' --key-file '$A.key' keys escrow list | grep -q '^#2 '"
check "removing it again: exit 66" bash -c "'$MV' --archive '$A' --key-file '$A.key' keys escrow remove 2 >/dev/null 2>&1; [ \$? -eq 66 ]"
check "audited" bash -c "'$MV' --archive '$A' --key-file '$A.key' audit | grep -c 'keys escrow' | grep -qE '^[5-9]|^[1-9][0-9]'"

begin_subtest "no private key material in the clear"
python3 - "$A" "$K" <<'PY'
import base64, glob, os, subprocess, sys
arch, kdir = sys.argv[1], sys.argv[2]
needles = []
for pem in ("alice.key", "bob.key"):
    text = open(os.path.join(kdir, pem)).read()
    body = "".join(l for l in text.splitlines() if not l.startswith("-----"))
    der = base64.b64decode(body)
    needles += [der[40:72], body[60:100].encode()]
hits = 0
for root, _, files in os.walk(arch):
    for f in files:
        data = open(os.path.join(root, f), "rb").read()
        hits += sum(1 for n in needles if n in data)
print(f"# {len(needles)} fragments of private keys searched: {hits} hits")
sys.exit(1 if hits else 0)
PY
check "none found" [ $? -eq 0 ]
finish
