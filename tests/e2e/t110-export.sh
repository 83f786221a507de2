#!/bin/bash
# SPDX-License-Identifier: MIT
# Export, first part (issue 6): `mailvault export` as eml and mbox into a
# directory, a .zip and a .tar, by query and by --serials, checked against
# the archive by tests/gen/mvexportcheck.py: exactly the messages the same
# search finds, each byte-equal to `show --raw` (or `--decrypted`, with the
# ciphertext beside it as <SERIAL>.original.eml), the mbox read back by its
# mboxrd framing and by Python's mailbox, every .eml parsed by Python's
# email, every manifest hash recomputed, every file listed, custody.json
# and custody.txt stating the facts; the signature checked with plain
# openssl against `keys signing`; unzip -t and bsdtar accept the archives.
# `verify-export` passes on every untouched package and fails (65) on each
# kind of tampering and on a wrong --fingerprint.  Without the role legal
# export is refused (77); every export is in the audit trail.
. "$(dirname "$0")/lib.sh"
CHK="python3 $ROOT/tests/gen/mvexportcheck.py"
ME=$(id -un)
rc_of() { "$@" >/dev/null 2>&1; echo $?; }
shopt -s lastpipe
tap() { # "OK text" / "FAIL text" lines of the checker into ok/fail
    local line
    while IFS= read -r line; do
        case $line in
        "OK "*) ok "${line#OK }" ;;
        "FAIL "*) fail "${line#FAIL }" ;;
        *) echo "# $line" ;;
        esac
    done
}
have() { command -v "$1" >/dev/null 2>&1; }

begin_subtest "the command exists"
"$MV" export --help >"$WORK/help.out" 2>&1
check "export --help" [ $? -eq 0 ]
"$MV" verify-export --help >>"$WORK/help.out" 2>&1
check "verify-export --help" [ $? -eq 0 ]
[ "$T_FAIL" -eq 0 ] || finish

# ---------------------------------------------------------------- corpus
# Generated mail, hand-made messages with "From " lines in their bodies and
# a subject with þ and commas (LF, CRLF, and one without a final line end),
# and S/MIME mail to an escrowed key and to a key nobody holds.  The word
# xyloquetzal is in the hand-made and the sealed messages only.
M=$WORK/mail
$GEN --out "$M/gen" --count 60 --seed 5 --layout eml >/dev/null 2>"$WORK/gen.err" ||
    { cat "$WORK/gen.err"; fail "generator"; finish; }
echo "# $(cat "$WORK/gen.err")"
mkdir -p "$M/hand"
hdr() { # hdr ID SUBJECT EOL
    printf 'From: Desk <desk@hand.test>%sTo: legal@hand.test%sSubject: %s%s' "$3" "$3" "$2" "$3"
    printf 'Message-ID: <%s@hand.test>%sDate: Tue, 5 Mar 2024 09:%02d:00 +0000%s' "$1" "$3" "${#1}" "$3"
    printf 'MIME-Version: 1.0%sContent-Type: text/plain; charset=utf-8%s' "$3" "$3"
    printf 'Content-Transfer-Encoding: 8bit%s%s' "$3" "$3"
}
FROMS='From the desk of the xyloquetzal keeper…\n>From quoted, once\n>>From quoted, twice\nFrom \nFrom\n From indented\nFromage is no separator\n\nFrom sender@example.com Thu Jan  1 00:00:00 2024\nno blank line before this one:\nFrom x\n'
{ hdr hand1 'þ, comma, and xyloquetzal' $'\n'; printf "$FROMS"; printf 'From the end\n'; } >"$M/hand/1.eml"
{ hdr hand22 '=?UTF-8?Q?=C3=BE=2C_comma?= xyloquetzal, crlf' $'\r\n'
  printf "$FROMS" | sed 's/$/\r/'; printf '>From the end\r\n'; } >"$M/hand/2.eml"
{ hdr hand333 'xyloquetzal without a final line end' $'\n'; printf "$FROMS"; printf 'the signature page\nFrom the last line'; } >"$M/hand/3.eml"
HAND_IDS="hand1@hand.test hand22@hand.test hand333@hand.test"
SEALED_IDS=""
if have openssl; then
    E=$WORK/enc
    mkdir -p "$E" "$M/enc"
    for k in escrowed other; do
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$E/$k.key.pem" -out "$E/$k.pem" \
            -subj "/CN=$k" -days 2 >/dev/null 2>&1
    done
    printf 'escrow\n' >"$E/pw"
    openssl pkcs12 -export -inkey "$E/escrowed.key.pem" -in "$E/escrowed.pem" -out "$E/escrowed.p12" \
        -passout file:"$E/pw"
    seal() { # seal NAME CERT: an S/MIME message to CERT, "From " lines inside
        printf 'Content-Type: text/plain\r\n\r\nFrom the sealed desk: %s\r\n>From sealed\r\n' "$1" >"$E/in.txt"
        { printf 'From: Sam Seal <sam@sealed.test>\r\nTo: rcpt@sealed.test\r\nSubject: sealed xyloquetzal\r\n'
          printf 'Message-ID: <%s@sealed.test>\r\nDate: Mon, 4 Mar 2024 10:0%s:00 +0000\r\n' "$1" "${#1}"
          openssl cms -encrypt -aes-256-cbc -in "$E/in.txt" -recip "$2" -outform SMIME | sed 's/\r*$/\r/'
        } >"$M/enc/$1.eml"
    }
    seal sa "$E/escrowed.pem"
    seal sbb "$E/other.pem"
    SEALED_IDS="sa@sealed.test sbb@sealed.test"
else
    echo "# skip: openssl not installed (no encrypted mail, no signature check)"
fi

A=$WORK/a
new_archive "$A"
if [ -n "$SEALED_IDS" ]; then
    mvk "$A" keys escrow add "$E/escrowed.p12" --password-file "$E/pw" >/dev/null 2>&1
    check "escrow key added" [ $? -eq 0 ]
fi
mvk "$A" import --quiet "$M" >"$WORK/import.out" 2>&1
check "import" [ $? -eq 0 ]
# The reference bytes (show --raw / --decrypted of every message) and the
# searches go through the daemon, which keeps the store open: a process per
# show would take most of this test's time.  Export itself runs in its own
# process, with the daemon stopped.
check "serve starts" start_serve "$A" "$WORK/serve.log" --smtp "127.0.0.1:$(free_port)"
R=$WORK/refs
$CHK refs "$A" "$A.key" "$R" >"$WORK/refs.out" 2>&1
check "show --raw (and --decrypted) of every message" [ $? -eq 0 ]
echo "# $(tail -1 "$WORK/refs.out")"
# serials_of MSGID...: their serials, comma-separated, ascending
serials_of() {
    python3 - "$R/list.json" "$@" <<'PY'
import json, sys
s = {m["message_id"]: m["serial"] for m in json.load(open(sys.argv[1]))}
print(",".join(str(x) for x in sorted(s.get(i, -1) for i in sys.argv[2:])))
PY
}
# search_set QUERY: the serials search finds, comma-separated, ascending
search_set() {
    "$MV" search --archive "$A" --key-file "$A.key" --format serials --limit 0 -- "$1" |
        sort -n | paste -sd, -
}
ALL=$(python3 -c 'import json,sys; print(",".join(str(m["serial"]) for m in json.load(open(sys.argv[1]))))' "$R/list.json")
Q1=xyloquetzal
Q1SET=$(serials_of $HAND_IDS $SEALED_IDS)
check "search $Q1 finds exactly the hand-made and sealed messages ($Q1SET)" [ "$(search_set "$Q1")" = "$Q1SET" ]
check "search '*' finds every message" [ "$(search_set '*')" = "$ALL" ]
DEC=$(ls "$R" | sed -n 's/\.dec$//p' | sort -n | paste -sd, -)
if [ -n "$SEALED_IDS" ]; then
    SA=$(serials_of sa@sealed.test)
    SB=$(serials_of sbb@sealed.test)
    check "only the escrowed message has a decrypted form ($SA)" [ "$DEC" = "$SA" ]
    check "search is:decrypted agrees" [ "$(search_set is:decrypted)" = "$SA" ]
fi
# a query that is also the name of a custody.json field
SIGSET=$(search_set signature)
echo "# search signature: ${SIGSET:-nothing}"
check "serve stops cleanly" stop_serve
FP=$(mvk "$A" keys list --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["signing_key_sha256"])')
AID=$(mvk "$A" keys list --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["archive_id"])')
# a range and single serials, the sealed ones among them (when there are)
N=${ALL##*,}
SER="${SA:+$SA,}${SB:+$SB,}$((N - 6))-$((N - 4)),$((N - 1))"
SERSET=$(python3 -c '
import sys
out = set()
for p in sys.argv[1].split(","):
    a, _, b = p.partition("-"); out |= set(range(int(a), int(b or a) + 1))
print(",".join(map(str, sorted(out))))' "$SER")

# ------------------------------------------------------------- exports
X=$WORK/x
mkdir -p "$X" "$X/q1-mbox" # q1-mbox: an existing, empty directory
# export_check LABEL AS OUT EXPECT (query Q | serials LIST) [extra check args]
export_check() {
    local label=$1 as=$2 out=$3 exp=$4 kind=$5 sel=$6
    shift 6
    local sel_arg=("$sel")
    [ "$kind" = serials ] && sel_arg=(--serials "$sel")
    begin_subtest "export $label"
    mvk "$A" export "${sel_arg[@]}" --as "$as" --out "$out" >"$WORK/$label.out" 2>&1
    local rc=$?
    check "exit 0" [ $rc -eq 0 ]
    [ $rc -eq 0 ] || { sed 's/^/#   /' "$WORK/$label.out" | head -5; return; }
    $CHK check "$out" --as "$as" --refs "$R" --expect "$exp" --"$kind" "$sel" --archive-id "$AID" \
        --fingerprint "$FP" --user "$ME" --custody-out "$WORK/$label.custody" "$@" | tap
    if have openssl && [ -s "$WORK/$label.custody/sig.bin" ]; then
        local C=$WORK/$label.custody
        openssl pkeyutl -verify -pubin -inkey "$C/signing_key.pem" -rawin -in "$C/digest.bin" \
            -sigfile "$C/sig.bin" >"$C/verify.out" 2>&1
        check "the signature verifies with plain openssl pkeyutl" [ $? -eq 0 ]
    fi
    case $out in
    *.zip)
        if have unzip; then
            check "unzip -t accepts the zip" bash -c "unzip -t '$out' >'$WORK/$label.unzip' 2>&1"
        else echo "# skip: unzip not installed"; fi ;;
    esac
    case $out in
    *.zip | *.tar)
        if have bsdtar; then
            bsdtar -tf "$out" >"$WORK/$label.list" 2>&1
            check "bsdtar -tf lists it" [ $? -eq 0 ]
            python3 - "$WORK/$label.list" "$out" <<'PY' | tap
import sys, tarfile, zipfile
got = {l.rstrip("\n") for l in open(sys.argv[1]) if not l.rstrip("\n").endswith("/")}
p = sys.argv[2]
want = ({i.filename for i in zipfile.ZipFile(p).infolist() if not i.is_dir()} if p.endswith(".zip")
        else {i.name for i in tarfile.open(p).getmembers() if not i.isdir()})
print("OK bsdtar lists the same %d files" % len(got) if got == want else "FAIL bsdtar lists %s, Python %s" % (sorted(got ^ want)[:5], len(want)))
PY
        else echo "# skip: bsdtar not installed"; fi ;;
    esac
    "$MV" verify-export "$out" >"$WORK/$label.ve" 2>&1
    rc=$?
    check "verify-export: exit 0" [ $rc -eq 0 ]
    [ $rc -eq 0 ] || sed 's/^/#   /' "$WORK/$label.ve" | head -4
    check "verify-export prints a line ok" grep -qx ok "$WORK/$label.ve"
    check "verify-export --fingerprint of keys signing: exit 0" \
        [ "$(rc_of "$MV" verify-export "$out" --fingerprint "$FP")" -eq 0 ]
}
export_check eml-dir eml "$X/q1-eml" "$Q1SET" query "$Q1" --subject "þ, comma"
if [ -n "$SEALED_IDS" ]; then
    check "the escrowed message: natives/$SA.eml (decrypted) and natives/$SA.original.eml" \
        test -f "$X/q1-eml/natives/$SA.eml" -a -f "$X/q1-eml/natives/$SA.original.eml"
    check "the undecryptable one: natives/$SB.eml (the original) only" \
        test -f "$X/q1-eml/natives/$SB.eml" -a ! -e "$X/q1-eml/natives/$SB.original.eml"
    check "... and it is the ciphertext" cmp -s "$X/q1-eml/natives/$SB.eml" "$R/$SB.raw"
fi
export_check eml-zip eml "$X/all-eml.zip" "$ALL" query '*'
export_check eml-tar-serials eml "$X/ser-eml.tar" "$SERSET" serials "$SER"
export_check mbox-tar mbox "$X/all-mbox.tar" "$ALL" query '*'
export_check mbox-dir mbox "$X/q1-mbox" "$Q1SET" query "$Q1"
export_check mbox-zip-serials mbox "$X/ser-mbox.zip" "$SERSET" serials "$SER"
export_check eml-dir-fieldname eml "$X/sigword" "$SIGSET" query signature

begin_subtest "export options"
out=$(mvk "$A" export "$Q1" --as eml --out "$X/json-out" --format json 2>&1)
check "--format json: exit 0, and the output parses" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("# keys:", sorted(d) if isinstance(d, dict) else type(d))' "$out"
mkdir -p "$X/full"
echo keep >"$X/full/keep.txt"
rc=$(rc_of mvk "$A" export "$Q1" --as eml --out "$X/full")
check "a directory that is not empty is refused (exit $rc)" test "$rc" -ne 0 -a "$rc" -lt 128
check "... and left alone" test "$(ls "$X/full")" = keep.txt -a "$(cat "$X/full/keep.txt")" = keep
rc=$(rc_of mvk "$A" export "$Q1" --as pst --out "$X/pst")
check "--as pst is a usage error (exit $rc)" [ "$rc" -eq 64 ]
rc=$(rc_of mvk "$A" export "$Q1" --as eml)
check "no --out is a usage error (exit $rc)" [ "$rc" -eq 64 ]
rc=$(rc_of mvk "$A" export --serials "1,$((N + 5))" --as eml --out "$X/missing")
check "--serials with a serial not in the archive: refused (exit $rc)" test "$rc" -ne 0 -a "$rc" -lt 128
check "... and nothing is left at --out" [ ! -e "$X/missing" ]
echo precious >"$X/taken.zip"
rc=$(rc_of mvk "$A" export "$Q1" --as eml --out "$X/taken.zip")
check "an existing .zip file is refused (exit $rc)" test "$rc" -ne 0 -a "$rc" -lt 128
check "... and left alone" [ "$(cat "$X/taken.zip")" = precious ]
for s in "x" "3-" "5-2" ""; do
    echo "# --serials '$s': exit $(rc_of mvk "$A" export --serials "$s" --as eml --out "$X/bad-serials")"
done
echo "# a query without matches: exit $(rc_of mvk "$A" export nosuchwordanywhere --as eml --out "$X/none")"

# ------------------------------------------------------------ keys signing
begin_subtest "keys signing"
out=$(mvk "$A" keys signing 2>&1)
check "prints the fingerprint ($FP)" [ "$out" = "$FP" ]
mvk "$A" keys signing --format json >"$WORK/ks.json" 2>&1
check "--format json: sha256 and public_key_pem, the package's key" python3 - "$WORK/ks.json" "$FP" "$X/q1-eml/signing_key.pem" <<'PY'
import base64, hashlib, json, re, sys
d = json.load(open(sys.argv[1]))
pem = d["public_key_pem"]
der = base64.b64decode("".join(re.search(r"-----BEGIN PUBLIC KEY-----(.*?)-----END", pem, re.S).group(1).split()))
assert d["sha256"] == sys.argv[2], d
assert hashlib.sha256(der[12:]).hexdigest() == sys.argv[2], "pem's key has another fingerprint"
assert pem.strip() == open(sys.argv[3]).read().strip(), "not the package's signing_key.pem"
PY

# ------------------------------------------------------------ tampering
begin_subtest "verify-export catches tampering (a directory package)"
P=$X/q1-eml
S1=${Q1SET%%,*}
SD=${SA:-$S1} # a message with an .original.eml when there is one
# tamper NAME DESCRIPTION GREP: copies $P to $X/t-NAME and runs the
# commands that follow in the copy, then expects exit 65 and GREP in the message.
tampered() {
    local name=$1 desc=$2 pat=$3
    "$MV" verify-export "$X/t-$name" "${@:4}" >"$WORK/t-$name.out" 2>&1
    local rc=$?
    check "$desc: exit 65 (got $rc)" [ $rc -eq 65 ]
    check "$desc: the message names $pat" grep -qi -- "$pat" "$WORK/t-$name.out"
    grep -qi -- "$pat" "$WORK/t-$name.out" || sed 's/^/#   /' "$WORK/t-$name.out" | head -3
}
copy() { rm -rf "$X/t-$1"; cp -a "$P" "$X/t-$1"; }
flip_byte() { # flip_byte FILE OFFSET
    python3 -c 'import sys; p, o = sys.argv[1], int(sys.argv[2]); b = bytearray(open(p, "rb").read()); b[o] ^= 1; open(p, "wb").write(b)' "$1" "$2"
}
copy byte && flip_byte "$X/t-byte/natives/$S1.eml" 100
tampered byte "one changed byte in a native" "natives/$S1.eml"
copy gone && rm "$X/t-gone/natives/$SD.eml"
tampered gone "a removed native" "natives/$SD.eml"
if [ -n "$SEALED_IDS" ]; then
    copy gone2 && rm "$X/t-gone2/natives/$SA.original.eml"
    tampered gone2 "a removed original" "natives/$SA.original.eml"
fi
copy added && echo "From: x" >"$X/t-added/natives/zzz.eml"
tampered added "an added file" "natives/zzz.eml"
copy added2 && echo "extra" >"$X/t-added2/notes.txt"
tampered added2 "an added file at the top" "notes.txt"
copy man && python3 -c '
import sys; p = sys.argv[1]; l = open(p, "rb").read().split(b"\n")
l[1] = l[1][:-3] + (b"0" if l[1][-3:-2] != b"0" else b"1") + l[1][-2:]
open(p, "wb").write(b"\n".join(l))' "$X/t-man/manifest.csv"
tampered man "a changed hash in manifest.csv" "manifest"
# custody.json is not signed: the same values written with JSON's optional
# whitespace are the same custody record
copy pretty && python3 -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); json.dump(c, open(p, "w"), indent=2)' "$X/t-pretty/custody.json"
"$MV" verify-export "$X/t-pretty" >"$WORK/t-pretty.out" 2>&1
rc=$?
check "custody.json re-indented (same values, JSON whitespace): still verifies" [ $rc -eq 0 ]
[ $rc -eq 0 ] || sed 's/^/#   /' "$WORK/t-pretty.out" | head -4
copy mangone && rm "$X/t-mangone/manifest.csv"
tampered mangone "no manifest.csv" "manifest"
copy rehash && flip_byte "$X/t-rehash/natives/$S1.eml" 100 && $CHK rehash "$X/t-rehash" "natives/$S1.eml"
tampered rehash "a changed native with its manifest row recomputed" "manifest"
copy rehash2 && flip_byte "$X/t-rehash2/natives/$S1.eml" 100 && $CHK rehash "$X/t-rehash2" "natives/$S1.eml" &&
    $CHK custody-set "$X/t-rehash2" manifest_sha256 "$(sha256sum "$X/t-rehash2/manifest.csv" | cut -d' ' -f1)"
tampered rehash2 "... and custody.json's manifest_sha256 too" "signature"
copy sig && python3 - "$X/t-sig/custody.json" <<'PY'
import sys
p = sys.argv[1]
t = open(p).read()
i = t.index('"signature"')
j = t.index('"', t.index(":", i) + 1) + 5  # a hex digit inside the value
t = t[:j] + ("0" if t[j] != "0" else "1") + t[j + 1:]
open(p, "w").write(t)
PY
tampered sig "a changed signature in custody.json" "signature"
rm -rf "$X/t-fp"; cp -a "$P" "$X/t-fp"
tampered fp "a wrong --fingerprint" "fingerprint" --fingerprint "$(printf '%064d' 0)"
if have openssl; then
    # A package re-signed with another key: its integrity/ tree head is
    # still signed by the archive's key, so it fails on its own ...
    copy resign0 && flip_byte "$X/t-resign0/natives/$S1.eml" 100 && $CHK rehash "$X/t-resign0" "natives/$S1.eml"
    openssl genpkey -algorithm ed25519 -out "$WORK/other.key" 2>/dev/null
    openssl pkey -in "$WORK/other.key" -pubout -out "$X/t-resign0/signing_key.pem" 2>/dev/null
    openssl dgst -sha256 -binary "$X/t-resign0/manifest.csv" >"$WORK/resign0.digest"
    openssl pkeyutl -sign -inkey "$WORK/other.key" -rawin -in "$WORK/resign0.digest" -out "$WORK/resign0.sig"
    $CHK custody-set "$X/t-resign0" manifest_sha256 "$(sha256sum "$X/t-resign0/manifest.csv" | cut -d' ' -f1)"
    $CHK custody-set "$X/t-resign0" signature "$(od -An -tx1 -v "$WORK/resign0.sig" | tr -d ' \n')"
    cp "$WORK/resign0.sig" "$X/t-resign0/custody.sig"
    $CHK custody-set "$X/t-resign0" signing_key_sha256 "$(openssl pkey -pubin -in "$X/t-resign0/signing_key.pem" -outform DER | tail -c 32 | sha256sum | cut -d' ' -f1)"
    tampered resign0 "re-signed with another key, the archive's tree head kept" "integrity/proofs.txt"
    # ... and with integrity/ dropped too it is consistent in itself: it
    # passes without --fingerprint and fails with the archive's.
    copy resign && flip_byte "$X/t-resign/natives/$S1.eml" 100 && $CHK rehash "$X/t-resign" "natives/$S1.eml"
    $CHK drop "$X/t-resign" integrity/proofs.txt && $CHK drop "$X/t-resign" integrity/tree_head.txt
    openssl pkey -in "$WORK/other.key" -pubout -out "$X/t-resign/signing_key.pem" 2>/dev/null
    openssl dgst -sha256 -binary "$X/t-resign/manifest.csv" >"$WORK/resign.digest"
    openssl pkeyutl -sign -inkey "$WORK/other.key" -rawin -in "$WORK/resign.digest" -out "$WORK/resign.sig"
    $CHK custody-set "$X/t-resign" manifest_sha256 "$(sha256sum "$X/t-resign/manifest.csv" | cut -d' ' -f1)"
    $CHK custody-set "$X/t-resign" signature "$(od -An -tx1 -v "$WORK/resign.sig" | tr -d ' \n')"
    cp "$WORK/resign.sig" "$X/t-resign/custody.sig"
    $CHK custody-set "$X/t-resign" signing_key_sha256 "$(openssl pkey -pubin -in "$X/t-resign/signing_key.pem" -outform DER | tail -c 32 | sha256sum | cut -d' ' -f1)"
    check "re-signed with another key: passes without --fingerprint" [ "$(rc_of "$MV" verify-export "$X/t-resign")" -eq 0 ]
    tampered resign "re-signed with another key, --fingerprint of the archive's" "fingerprint" --fingerprint "$FP"
fi

begin_subtest "verify-export catches tampering (zip and tar)"
python3 - "$X/all-eml.zip" "$X/t-zip.zip" "natives/$S1.eml" <<'PY'
import sys, zipfile
src, dst, victim = sys.argv[1:4]
with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as o:
    for i in z.infolist():
        b = z.read(i)
        if i.filename == victim:
            b = b[:100] + bytes([b[100] ^ 1]) + b[101:]
        o.writestr(i, b)
PY
"$MV" verify-export "$X/t-zip.zip" >"$WORK/t-zip.out" 2>&1
check "a zip with one changed byte: exit 65" [ $? -eq 65 ]
check "... naming natives/$S1.eml" grep -q "natives/$S1.eml" "$WORK/t-zip.out"
python3 - "$X/all-mbox.tar" "$X/t-tar.tar" <<'PY'
import io, sys, tarfile
src, dst = sys.argv[1:3]
with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as o:
    for i in t.getmembers():
        f = t.extractfile(i) if i.isfile() else None
        if i.name == "manifest.csv":
            continue
        o.addfile(i, f)
PY
"$MV" verify-export "$X/t-tar.tar" >"$WORK/t-tar.out" 2>&1
check "a tar without manifest.csv: exit 65" [ $? -eq 65 ]

# ------------------------------------------------------------ roles, audit
begin_subtest "roles and the audit trail"
check "drop our own role legal" [ "$(rc_of mvk "$A" users set "$ME" --role admin,officer,auditor)" -eq 0 ]
err=$(mvk "$A" export "$Q1" --as eml --out "$X/refused" 2>&1)
check "export without legal: 77" [ $? -eq 77 ]
check "... saying the role legal is missing" grep -q "lacks the role legal" <<<"$err"
check "... and writing nothing" [ ! -e "$X/refused" ]
check "take it back" [ "$(rc_of mvk "$A" users set "$ME" --role admin,officer,legal,auditor)" -eq 0 ]
check "export with legal again" [ "$(rc_of mvk "$A" export "$Q1" --as mbox --out "$X/again.zip")" -eq 0 ]
mvk "$A" audit --format json >"$WORK/audit.json" 2>&1
check "the audit trail has every export, the refusal, and the query" python3 - "$WORK/audit.json" "$ME" "$Q1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = [x for x in d if x["command"] == "export"]
ok = [x for x in e if x["result"] == "ok"]
ref = [x for x in e if x["result"].startswith("refused")]
print("# %d export records; e.g. %s" % (len(e), e[0]["detail"] if e else None))
assert len(ok) >= 8, "%d ok export records" % len(ok)
assert len(ref) >= 1 and all(x["status"] != 0 for x in ref), ref
assert all(x["user"] == sys.argv[2] for x in e), e
assert any(sys.argv[3] in x["detail"] for x in ok), "no record names the query"
PY
finish
