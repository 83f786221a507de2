#!/bin/bash
# SPDX-License-Identifier: MIT
# S/MIME and OpenPGP in one message, made by the real tools (`openssl cms`,
# `gpg`): an S/MIME-signed entity around PGP/MIME encryption, an S/MIME
# signature and an S/MIME envelope inside PGP/MIME encryption, PGP/MIME
# inside an S/MIME envelope, and an S/MIME envelope holding an OpenPGP
# block to a key that is not escrowed.  Each is opened as far as the
# escrowed keys reach, with the inner signature reported and the outer one
# named; the form is what both layers held.
. "$(dirname "$0")/lib.sh"
require_prereq openssl
require_prereq gpg
K=$WORK/keys
mkdir -p "$K" "$WORK/gh" "$WORK/mail" && chmod 700 "$WORK/gh"
G() { gpg --homedir "$WORK/gh" --batch --quiet --trust-model always "$@"; }

# an escrowed S/MIME recipient, an S/MIME signer, an escrowed OpenPGP key
# and one OpenPGP key that is not escrowed
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$K/rcpt.key" -out "$K/rcpt.pem" -days 30 \
    -subj "/CN=mixed escrow" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$K/sig.key" -out "$K/sig.pem" -days 30 \
    -subj "/CN=mixed signer" 2>/dev/null
for u in 'Escrowed <escrowed@corp.test>' 'Outsider <outsider@else.test>'; do
    G --passphrase '' --quick-gen-key "$u" rsa2048 sign,cert never 2>/dev/null
    fpr=$(G --with-colons --list-keys "$u" 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}')
    G --passphrase '' --quick-add-key "$fpr" rsa2048 encr never 2>/dev/null
done
G --pinentry-mode loopback --passphrase '' -a --export-secret-keys escrowed@corp.test >"$K/escrowed.asc"
check "keys made" [ -s "$K/escrowed.asc" ] && [ -s "$K/rcpt.pem" ]

crlf() { sed 's/\r*$/\r/'; }
# pgpmime RECIPIENT < entity : a PGP/MIME multipart/encrypted entity (no top header)
pgpmime() {
    local ct
    ct=$(G -a -e -r "$1")
    printf 'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="pgpB"\r\n\r\n'
    printf -- '--pgpB\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n'
    printf -- '--pgpB\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n'
    printf '%s\r\n' "$ct" | crlf
    printf -- '--pgpB--\r\n'
}
smime_sign() { openssl cms -sign -signer "$K/sig.pem" -inkey "$K/sig.key" -outform SMIME | crlf; }
smime_enc() { openssl cms -encrypt -aes-256-cbc -recip "$K/rcpt.pem" -outform SMIME | crlf; }
hdr() { printf 'From: a@corp.test\r\nTo: b@corp.test\r\nSubject: mixed %s\r\nMessage-ID: <%s@mixed.test>\r\n' "$1" "$1"; }
text() { printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n' "$1"; }

# 1. S/MIME-signed around PGP/MIME encryption
{ hdr m1; text "plain one ocelot" | pgpmime escrowed@corp.test | smime_sign; } >"$WORK/mail/m1.eml"
# 2. PGP/MIME encryption around an S/MIME-signed entity
{ hdr m2; text "plain two heron" | smime_sign | pgpmime escrowed@corp.test; } >"$WORK/mail/m2.eml"
# 3. PGP/MIME encryption around an S/MIME envelope
{ hdr m3; text "plain three lynx" | smime_enc | pgpmime escrowed@corp.test; } >"$WORK/mail/m3.eml"
# 4. an S/MIME envelope around PGP/MIME encryption
{ hdr m4; text "plain four marten" | pgpmime escrowed@corp.test | smime_enc; } >"$WORK/mail/m4.eml"
# 5. an S/MIME envelope around a text holding an OpenPGP block to a key not escrowed
blk=$(printf 'not ours\n' | G -a -e -r outsider@else.test)
{ hdr m5; text "plain five stoat
$blk" | crlf | smime_enc; } >"$WORK/mail/m5.eml"
check "five messages made" [ "$(ls "$WORK/mail" | wc -l)" -eq 5 ]

A=$WORK/a
new_archive "$A"
mvk "$A" keys escrow add "$K/escrowed.asc" </dev/null >/dev/null 2>&1
cat "$K/rcpt.key" "$K/rcpt.pem" >"$K/rcpt.both.pem"
mvk "$A" keys escrow add "$K/rcpt.both.pem" </dev/null >/dev/null 2>&1
check "two keys escrowed" [ "$(mvk "$A" keys escrow list --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 2 ]
mvk "$A" import --quiet "$WORK/mail" >/dev/null 2>"$WORK/import.err"

python3 - "$MV" "$A" >"$WORK/res.txt" <<'PY'
import json, subprocess, sys
mv, a = sys.argv[1:3]
def run(*x):
    return subprocess.run([mv, "--archive", a, "--key-file", a + ".key", *x], capture_output=True)
for m in json.loads(run("list", "--format", "json").stdout):
    s = str(m["serial"])
    d = json.loads(run("show", s, "--format", "json").stdout).get("decryption") or {}
    out = run("show", s, "--decrypted").stdout.decode("utf-8", "replace")
    words = [w for w in ("ocelot", "heron", "lynx", "marten", "stoat") if w in out]
    kinds = sorted({r.split("=")[0] for r in d.get("recipients") or []})
    print(m["message_id"].strip("<>").split("@")[0], "dec=%d" % bool(d.get("decrypted")),
          "words=" + ",".join(words), "sig=%s" % d.get("signature"),
          "outer=%d" % ("outer S/MIME signature" in (d.get("signature_detail") or "")),
          "armor=%d" % ("BEGIN PGP MESSAGE" in out), "pkcs7=%d" % ("pkcs7-mime" in out),
          "rcpt=" + ",".join(kinds), "scheme=%s" % d.get("scheme"))
PY
cat "$WORK/res.txt" | sed 's/^/# /'
has() { grep -q "^$1 .*$2" "$WORK/res.txt"; }

begin_subtest "S/MIME-signed around PGP/MIME: opened, S/MIME signature recorded"
check "decrypted, plaintext in the form" has m1 "dec=1 words=ocelot "
check "its S/MIME signature is the one reported" has m1 "sig=valid-untrusted "
begin_subtest "S/MIME signature inside PGP/MIME: verified after decryption"
check "decrypted" has m2 "dec=1 words=heron "
check "the inner S/MIME signature is reported" has m2 "sig=valid-untrusted "
begin_subtest "S/MIME envelope inside PGP/MIME: both layers opened"
check "plaintext reached" has m3 "dec=1 words=lynx .*pkcs7=0"
check "both recipients recorded" has m3 "rcpt=issuer,pgp "
check "the outer scheme is named" has m3 "scheme=pgp-mime"
begin_subtest "PGP/MIME inside an S/MIME envelope: both layers opened"
check "plaintext reached" has m4 "dec=1 words=marten .*armor=0"
check "both recipients recorded" has m4 "rcpt=issuer,pgp "
check "the outer scheme is named" has m4 "scheme=smime-enveloped"
begin_subtest "an OpenPGP block to a stranger inside an S/MIME envelope stays content"
check "the S/MIME layer is opened all the same" has m5 "dec=1 words=stoat .*armor=1"
check "the stranger's key is not listed as the message's recipient" has m5 "rcpt=issuer "
begin_subtest "a hostile armor header reaches neither the disk nor stderr"
# librnp prints an armor header line it does not know, whole, on stderr;
# in the daemon stderr is a log on disk
CAN=Zqxarmorcanary
mkdir -p "$WORK/hostile"
printf 'From: a@corp.test\r\nSubject: armor\r\nContent-Type: text/plain\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n%s: kept out\r\n\r\nhQEMA1234567890ABAQf/abc=\r\n=abcd\r\n-----END PGP MESSAGE-----\r\n' \
    "$CAN" >"$WORK/hostile/1.eml"
mvk "$A" import "$WORK/hostile" >"$WORK/hostile.out" 2>"$WORK/hostile.err"
check "archived" grep -q "imported 1 new message" "$WORK/hostile.out"
check "the importer's stderr does not quote it" bash -c "! grep -qi '$CAN' '$WORK/hostile.err'"
check "nor does the archive, in any form" python3 "$ROOT/tests/e2e/canary_scan.py" --canary "$CAN" "$A"
finish
