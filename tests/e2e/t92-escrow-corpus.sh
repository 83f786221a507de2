#!/bin/bash
# SPDX-License-Identifier: MIT
# Optional: real S/MIME mail written by others (Thunderbird's test set in
# $MAILVAULT_CORPUS/crypto/thunderbird): Bob's escrowed PKCS#12 (a legacy
# RC2/3DES file, password "nss") decrypts every message encrypted to Bob,
# and the plaintext is Alice's test sentence.  Skipped without the corpus.
. "$(dirname "$0")/lib.sh"
D=${MAILVAULT_CORPUS:-}/crypto/thunderbird/mailnews/test/data/smime
if [ -z "${MAILVAULT_CORPUS:-}" ] || [ ! -f "$D/Bob.p12" ]; then
    echo "# skip: set MAILVAULT_CORPUS to a corpus with crypto/thunderbird to run this test"
    finish
fi
A=$WORK/a
new_archive "$A"
printf 'nss\n' >"$WORK/pw"

begin_subtest "Bob's PKCS#12 from Thunderbird's test set"
check "escrowed" bash -c "'$MV' --archive '$A' --key-file '$A.key' keys escrow add '$D/Bob.p12' --password-file '$WORK/pw' </dev/null | grep -q 'Bob'"
check "Thunderbird's TestCA as trust anchor" bash -c "'$MV' --archive '$A' --key-file '$A.key' keys escrow add '$D/TestCA.pem' --anchors >/dev/null"

begin_subtest "every message enveloped to Bob decrypts to Alice's sentence"
mkdir -p "$WORK/mail"
n=0
for f in "$D"/alice.env*.eml "$D"/alice.*.env.eml; do
    [ -f "$f" ] || continue
    cp "$f" "$WORK/mail/$(basename "$f")"
    n=$((n + 1))
done
echo "# $n enveloped messages"
mvk "$A" import --quiet "$WORK/mail" >/dev/null
python3 - "$MV" "$A" <<'PY'
import json, subprocess, sys
mv, a = sys.argv[1:3]
def run(*x):
    return subprocess.run([mv, "--archive", a, "--key-file", a + ".key", *x], capture_output=True)
lst = json.loads(run("list", "--format", "json").stdout)
ok = bad = 0
sigs = {}
for m in lst:
    d = json.loads(run("show", str(m["serial"]), "--format", "json").stdout).get("decryption") or {}
    out = run("show", str(m["serial"]), "--decrypted").stdout
    if d.get("decrypted") and b"This is a test message from Alice to Bob." in out:
        ok += 1
    else:
        bad += 1
        print("#", m["serial"], d.get("failure"))
    sigs[d.get("signature")] = sigs.get(d.get("signature"), 0) + 1
print(f"# {ok} decrypted with the sentence, {bad} not; signatures: {sigs}")
sys.exit(1 if bad or not ok else 0)
PY
check "all of them" [ $? -eq 0 ]

R=$MAILVAULT_CORPUS/crypto/rfc4134-bc-csharp/crypto/data
[ -f "$R/5.3.eml" ] || R=$(dirname "$(find "$MAILVAULT_CORPUS/crypto/rfc4134-bc-csharp" -name 5.3.eml 2>/dev/null | head -1)")
if [ -f "$R/5.3.eml" ]; then
    begin_subtest "RFC 4134: Bob's published key opens examples 5.1 (3DES), 5.2 (RC2) and 5.3 (S/MIME)"
    B2=$WORK/rfc
    new_archive "$B2"
    openssl pkey -inform DER -in "$R/BobPrivRSAEncrypt.pri" -out "$WORK/bob.key" 2>/dev/null
    openssl x509 -inform DER -in "$R/BobRSASignByCarl.cer" -out "$WORK/bob.pem" 2>/dev/null
    check "Bob's key escrowed" bash -c "'$MV' --archive '$B2' --key-file '$B2.key' keys escrow add '$WORK/bob.key' --cert '$WORK/bob.pem' | grep -q added"
    mkdir -p "$WORK/rfcmail"
    cp "$R/5.3.eml" "$WORK/rfcmail/"
    for n in 5.1 5.2; do
        { printf 'From: alice@example.com\r\nSubject: RFC 4134 %s\r\nMessage-ID: <%s@rfc4134.example>\r\nMIME-Version: 1.0\r\n' "$n" "$n"
          printf 'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n'
          printf 'Content-Transfer-Encoding: base64\r\n\r\n'
          base64 -w 64 "$R/$n.bin" | sed 's/$/\r/'; } >"$WORK/rfcmail/$n.eml"
    done
    mvk "$B2" import --quiet "$WORK/rfcmail" >/dev/null
    python3 - "$MV" "$B2" "$R/ExContent.bin" <<'PY'
import json, subprocess, sys
mv, a, ex = sys.argv[1:4]
want = open(ex, "rb").read().strip()
def run(*x):
    return subprocess.run([mv, "--archive", a, "--key-file", a + ".key", *x], capture_output=True)
ok = 0
for m in json.loads(run("list", "--format", "json").stdout):
    d = json.loads(run("show", str(m["serial"]), "--format", "json").stdout).get("decryption") or {}
    out = run("show", str(m["serial"]), "--decrypted").stdout
    print("#", m["subject"], d.get("content_alg"), d.get("decrypted"), d.get("failure") or "")
    ok += bool(d.get("decrypted")) and want in out
sys.exit(0 if ok >= 3 else 1)
PY
    check "the published content comes out of all three (RC2 through the legacy provider)" [ $? -eq 0 ]
fi
# Thunderbird's OpenPGP test mail: Alice's and Bob's escrowed secret keys
# open every message encrypted to them (PGP/MIME and inline, hidden
# recipient, signed and encrypted, S/MIME-signed around PGP/MIME, an S/MIME
# signature inside); what stays shut is mail to Carol (not escrowed), the
# armor pasted into HTML by Exchange (not an OpenPGP form we read) and
# the spoofing test.
O=$MAILVAULT_CORPUS/crypto/thunderbird/mail/test/browser/openpgp/data
if [ -d "$O/eml" ] && [ -f "$O/keys/alice@openpgp.example-0xf231550c4f47e38e-secret.asc" ]; then
    begin_subtest "Thunderbird's OpenPGP mail, with Alice's and Bob's keys escrowed"
    B3=$WORK/tbpgp
    new_archive "$B3"
    for k in alice@openpgp.example-0xf231550c4f47e38e bob@openpgp.example-0xfbfcc82a015e7330; do
        mvk "$B3" keys escrow add "$O/keys/$k-secret.asc" </dev/null >/dev/null 2>&1
    done
    mkdir -p "$WORK/tbmail"
    cp "$O"/eml/*.eml "$WORK/tbmail/"
    mvk "$B3" import --quiet "$WORK/tbmail" >/dev/null 2>"$WORK/tb.err"
    python3 - "$MV" "$B3" <<'PY'
import json, os, re, subprocess, sys
mv, a = sys.argv[1:3]
def run(*x):
    return subprocess.run([mv, "--archive", a, "--key-file", a + ".key", *x], capture_output=True)
bad = n = 0
for m in json.loads(run("list", "--format", "json").stdout):
    j = json.loads(run("show", str(m["serial"]), "--format", "json").stdout)
    d = j.get("decryption") or {}
    for c in j["copies"]:
        name = os.path.basename(c["origin"])
        expect = bool(re.search(r"(?<!un)encrypt|-enc", name)) and not re.search(r"carol|html|sigspoof", name)
        got = bool(d.get("decrypted"))
        n += expect
        if expect != got:
            bad += 1
            print("#", name, "decrypted" if got else "not decrypted", d.get("failure") or "")
        elif got:
            out = run("show", str(m["serial"]), "--decrypted").stdout
            if b"-----BEGIN PGP MESSAGE-----" in out and "inline" not in name and "partial" not in name:
                bad += 1
                print("#", name, "still holds an armored block")
print(f"# {n} expected to decrypt, {bad} differ")
sys.exit(1 if bad or n < 15 else 0)
PY
    check "every message encrypted to Alice or Bob decrypts, no other" [ $? -eq 0 ]
fi
finish
