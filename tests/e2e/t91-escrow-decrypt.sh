#!/bin/bash
# SPDX-License-Identifier: MIT
# Escrow decryption with the real tools' output: S/MIME made by `openssl
# cms` (RSA PKCS#1 v1.5 and OAEP, EC P-256/P-384, AES-CBC and AES-GCM,
# several recipients, sign-then-encrypt, tampered and unknown signers, a
# corrupted blob, nested in message/rfc822, several S/MIME entities in one
# message) and OpenPGP made by `gpg`
# (PGP/MIME and inline, RSA and Curve25519, hidden and several recipients,
# signatures) is journaled through the daemon: each decrypts to exactly the
# expected form with the expected signature status; mail to a key not yet
# escrowed is archived undecrypted and decrypted by `reprocess` after
# `keys escrow add`; no plaintext reaches the disk.
. "$(dirname "$0")/lib.sh"
require_prereq openssl
require_prereq gpg
SF=$WORK/smime
PF=$WORK/pgp
python3 "$ROOT/tests/gen/mvsmime.py" --out "$SF" >"$WORK/gen.out" 2>&1 || { cat "$WORK/gen.out"; }
python3 "$ROOT/tests/gen/mvpgp.py" --out "$PF" >>"$WORK/gen.out" 2>&1 || { cat "$WORK/gen.out"; }
B=$(dirname "$MV")

begin_subtest "the front ends check the tools' fixtures against their manifests"
check "smime_test with MV_SMIME_FIXTURES" bash -c "MV_SMIME_FIXTURES='$SF' '$B/tests/smime_test' >'$WORK/s.out' 2>&1"
check "pgp_test with MV_PGP_FIXTURES" bash -c "MV_PGP_FIXTURES='$PF' '$B/tests/pgp_test' >'$WORK/p.out' 2>&1"

A=$WORK/a
new_archive "$A"
printf 'escrow\n' >"$WORK/pw"
printf 'old\n' >"$WORK/pw-old"
printf 'escrow-pass\n' >"$WORK/pw-pgp"
add() { mvk "$A" keys escrow add "$@" </dev/null 2>&1 | sed -n 's/^escrow key #\([0-9]*\) added.*/\1/p'; }

begin_subtest "keys escrowed (one S/MIME key held back)"
# archive id <- generator id: S/MIME rsa1=1 ec256=2 rsa3=4, OpenPGP rsa=1 cv=2
declare -A SMAP PMAP
SMAP[1]=$(add "$SF/p12/rsa1.p12" --password-file "$WORK/pw")
SMAP[2]=$(add "$SF/p12/ec256.p12" --password-file "$WORK/pw")
SMAP[4]=$(add "$SF/p12/rsa3-legacy.p12" --password-file "$WORK/pw-old")
PMAP[1]=$(add "$PF/keys/rsa.sec.asc")
PMAP[2]=$(add "$PF/keys/cv.sec.gpg" --password-file "$WORK/pw-pgp")
check "five keys added" [ -n "${SMAP[1]}" ] && [ -n "${SMAP[2]}" ] && [ -n "${SMAP[4]}" ] && [ -n "${PMAP[1]}" ] && [ -n "${PMAP[2]}" ]
check "the OpenPGP signer's public key added for verification" bash -c "'$MV' --archive '$A' --key-file '$A.key' keys escrow add '$PF/keys/signer.pub.asc' --anchors | grep -q 'openpgp-public'"
check "trust anchors added" bash -c "'$MV' --archive '$A' --key-file '$A.key' keys escrow add '$SF/keys/anchors.pem' --anchors | grep -q 'trust anchors'"
out=$(mvk "$A" keys escrow add "$SF/p12/rsa1.p12" --password-file "$WORK/pw-old" </dev/null 2>&1)
check "a wrong PKCS#12 password is refused (77) with a clear message" bash -c "[ \$? -eq 0 ] && grep -qi password <<<'$out'"

begin_subtest "encrypted mail journaled through the daemon"
P=$(free_port)
start_serve "$A" "$WORK/serve.log" --smtp 127.0.0.1:$P || { fail "serve"; finish; }
python3 "$ROOT/scripts/smtpfeed.py" --sessions 2 "127.0.0.1:$P" "$SF/msg" "$PF/msg" >"$WORK/feed.out" 2>&1
check "every message accepted" grep -q ' 34 of 34 messages accepted' "$WORK/feed.out"
# (two of the generated files carry the same message: 33 messages, 34 copies)
for _ in $(seq 1 100); do "$MV" --archive "$A" status | grep -qx 'spool: 0' && break; sleep 0.1; done

# verify MANIFEST-KIND: compare every message with the generator's manifest
verify() {
    python3 - "$1" "$2" "$MV" "$A" "${SMAP[1]},${SMAP[2]},,${SMAP[4]}" "${PMAP[1]},${PMAP[2]}" "$3" <<'PY'
import hashlib, json, os, re, subprocess, sys
kind, d, mv, arch, smap, pmap, held = sys.argv[1:8]
smap = {i + 1: v for i, v in enumerate(smap.split(","))}
pmap = {i + 1: v for i, v in enumerate(pmap.split(","))}
m = json.load(open(os.path.join(d, "manifest.json")))
def run(*a):
    return subprocess.run([mv, "--archive", arch, "--key-file", arch + ".key", *a], capture_output=True)
lst = json.loads(run("list", "--format", "json").stdout)
by_sha = {}
for x in lst:  # every copy: two files may carry one message (dedup)
    for c in json.loads(run("show", str(x["serial"]), "--format", "json").stdout)["copies"]:
        by_sha[c["sha256"]] = x["serial"]
bad = 0
for e in m["messages"]:
    raw = open(os.path.join(d, e["file"]), "rb").read()
    # as smtpfeed sent it: CRLF line ends
    sent = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
    if not sent.endswith(b"\r\n"):
        sent += b"\r\n"  # SMTP data ends with a line end
    serial = by_sha.get(hashlib.sha256(sent).hexdigest())
    if not serial:
        print("#", e["file"], "not archived"); bad += 1; continue
    j = json.loads(run("show", str(serial), "--format", "json").stdout)
    dec = j.get("decryption") or {}
    if kind == "smime":
        want_dec, key, sha, sig, fail = e["decrypted"], e["key_id"], e["out_sha256"], e["sig"], e["failure"]
        akey = smap.get(key) if key else None
    else:
        want_dec, key, sha, sig, fail = e["sha256"] is not None, e["key"], e["sha256"], e["sig"], e["failure"]
        akey = pmap.get(key) if key else None
    if held and key == int(held):
        want_dec, akey = False, None  # its key is not escrowed yet
    if bool(dec.get("decrypted")) != bool(want_dec):
        print("#", e["file"], "decrypted:", dec.get("decrypted"), "want", want_dec, dec.get("failure")); bad += 1; continue
    if want_dec:
        got = hashlib.sha256(run("show", str(serial), "--decrypted").stdout).hexdigest()
        if sha and got != sha:
            print("#", e["file"], "decrypted form differs"); bad += 1
        if akey and str(dec.get("escrow_key")) != akey:
            print("#", e["file"], "opened by key", dec.get("escrow_key"), "want", akey); bad += 1
    if sig != "none" and dec.get("signature") != sig and not (held and key == int(held)):
        print("#", e["file"], "signature", dec.get("signature"), "want", sig); bad += 1
    if fail and not want_dec and not (held and key == int(held)) and fail.lower() not in (dec.get("failure") or "").lower():
        print("#", e["file"], "failure", dec.get("failure"), "want", fail); bad += 1
print(f"# {kind}: {len(m['messages'])} messages checked, {bad} problems")
sys.exit(1 if bad else 0)
PY
}
check "S/MIME: decrypted forms, keys, signatures, failures (key 3 held back)" verify smime "$SF" 3
# several S/MIME entities in one message: both forwarded mails decrypted
check "S/MIME: show --decrypted of two forwarded encrypted mails holds both plaintexts" bash -c "'$MV' --archive '$A' --key-file '$A.key' list --format json | python3 -c '
import json, subprocess, sys
for m in json.load(sys.stdin):
    if (m[\"message_id\"] or \"\").strip(\"<>\") == \"two-sealed@fixtures.example\":
        out = subprocess.run([\"$MV\", \"--archive\", \"$A\", \"--key-file\", \"$A.key\", \"show\", str(m[\"serial\"]), \"--decrypted\"], capture_output=True).stdout
        sys.exit(0 if b\"alpha-7731\" in out and b\"bravo-9924\" in out else 1)
sys.exit(1)'"
check "OpenPGP: decrypted forms, keys, signatures, failures" verify pgp "$PF" ""
check "stops cleanly" stop_serve

begin_subtest "reprocess after the missing key is escrowed"
SMAP[3]=$(add "$SF/p12/ec384.p12" --password-file "$WORK/pw")
check "key added" [ -n "${SMAP[3]}" ]
out=$(mvk "$A" reprocess --format json)
echo "# $out"
check "two messages decrypted now" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["decrypted_now"]==2, d' "$out"
check "S/MIME: every expected message decrypted now" verify smime "$SF" ""
n=$(mvk "$A" list --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "reprocess created no message" [ "$n" -eq 33 ]
check "the key's use is counted; removing it is refused" bash -c "'$MV' --archive '$A' --key-file '$A.key' keys escrow remove ${SMAP[3]} >/dev/null 2>&1; [ \$? -eq 77 ]"

begin_subtest "no plaintext at rest"
# one S/MIME and one OpenPGP message whose plaintext carries canaries
C1=zqxsmimecanary
C2=vvkpgpcanary
openssl x509 -inform DER -in "$SF/keys/rsa1.crt.der" -out "$WORK/rsa1.pem"
printf 'Content-Type: text/plain\r\n\r\nplan %s\r\n' "$C1" >"$WORK/c1.txt"
mkdir -p "$WORK/canary" "$WORK/gh" && chmod 700 "$WORK/gh"
{ printf 'From: a@corp.test\r\nSubject: sealed\r\nMessage-ID: <canary1@corp.test>\r\n'
  openssl cms -encrypt -aes-256-cbc -in "$WORK/c1.txt" -recip "$WORK/rsa1.pem" -outform SMIME |
      sed 's/\r*$/\r/'; } >"$WORK/canary/1.eml"
gpg --homedir "$WORK/gh" --batch --import "$PF/keys/rsa.sec.asc" >/dev/null 2>&1
fpr=$(gpg --homedir "$WORK/gh" --with-colons --list-keys 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}')
ct=$(printf 'plan %s\n' "$C2" | gpg --homedir "$WORK/gh" --batch --trust-model always -a -e -r "$fpr" 2>/dev/null)
printf 'From: a@corp.test\r\nSubject: sealed too\r\nMessage-ID: <canary2@corp.test>\r\nContent-Type: text/plain\r\n\r\n%s\r\n' \
    "$(sed 's/$/\r/' <<<"$ct")" >"$WORK/canary/2.eml"
mvk "$A" import "$WORK/canary" >/dev/null
check "both archived and decrypted" bash -c "'$MV' --archive '$A' --key-file '$A.key' list --format json | python3 -c '
import json, subprocess, sys
ok = 0
for m in json.load(sys.stdin):
    if (m[\"message_id\"] or \"\").strip(\"<>\") in (\"canary1@corp.test\", \"canary2@corp.test\"):
        out = subprocess.run([\"$MV\", \"--archive\", \"$A\", \"--key-file\", \"$A.key\", \"show\", str(m[\"serial\"]), \"--decrypted\"], capture_output=True).stdout
        ok += b\"$C1\" in out or b\"$C2\" in out
sys.exit(0 if ok == 2 else 1)'"
check "no canary in the archive, the log or TMPDIR" \
    python3 "$ROOT/tests/e2e/canary_scan.py" --canary $C1 --canary $C2 "$A" "$WORK/serve.log" "$TMPDIR"
finish
