#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# t111-export-loadfiles: DAT, CSV and EDRM XML load files read back by
# independent readers (Python csv with the Concordance delimiters,
# xmllint), every native and text file where the load file says with the
# hashes it says, control numbers continuous within an export and across
# the exports of one matter.
. "$(dirname "$0")/lib.sh"

A=$WORK/a
new_archive "$A"
M=$WORK/mail
$GEN --out "$M/gen" --count 40 --seed 11 --layout eml >/dev/null 2>&1
# subjects a load file must carry through: þ, commas, quotes
printf 'From: Þórr Þórsson <thor@example.is>\r\nTo: legal@example.com\r\nSubject: =?UTF-8?Q?=C3=BEing_minutes=2C_draft_=22two=22?=\r\nDate: Tue, 5 Mar 2024 10:00:00 +0000\r\nMessage-ID: <thorn@example.is>\r\n\r\nline one of the narwhal body\r\nline two\r\n' >"$M/thorn.eml"
printf 'From: a@example.com\r\nTo: Jane Doe <jane@example.com>\r\nSubject: narwhal, with commas, and more\r\nDate: Wed, 6 Mar 2024 10:00:00 +0000\r\nMessage-ID: <commas@example.com>\r\n\r\nnarwhal\r\n' >"$M/commas.eml"
mvk "$A" import --quiet "$M" >/dev/null 2>&1
mvk "$A" custodian add "Jane Doe" --address jane@example.com >/dev/null

X=$WORK/x
mkdir -p "$X"
want=$(mvk "$A" search narwhal --count)

begin_subtest "DAT"
mvk "$A" export narwhal --as dat --out "$X/dat" --matter "Doe v. Roe" --prefix DOE >"$WORK/dat.out" 2>&1
check "export --as dat" [ $? -eq 0 ]
check "verify-export" "$MV" verify-export "$X/dat" --fingerprint "$(mvk "$A" keys signing)"
check "records, fields, files and hashes read back" python3 - "$X/dat" "$want" <<'PY'
import csv, hashlib, io, os, sys
d, want = sys.argv[1], int(sys.argv[2])
raw = open(os.path.join(d, "loadfile.dat"), "rb").read()
assert raw.startswith(b"\xef\xbb\xbf"), "no UTF-8 BOM"
assert b"\xc2\xb6" not in raw, "U+00B6 written as the separator"
rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter="\x14", quotechar="\u00fe"))
head, recs = rows[0], rows[1:]
assert len(recs) == want, (len(recs), want)
f = {n: i for i, n in enumerate(head)}
for n in ("BegDoc", "EndDoc", "BegAttach", "EndAttach", "ParentID", "AttachmentCount", "Custodian", "From", "To", "CC", "BCC", "Subject", "DateSent", "MessageID", "MD5Hash", "SHA1Hash", "SHA256Hash", "NativeFile", "TextPath", "Encrypted", "DecryptionStatus", "SignatureStatus", "ArchiveSerial"):
    assert n in f, n
for i, r in enumerate(recs):
    assert len(r) == len(head), (i, len(r))
    assert r[f["BegDoc"]] == "DOE-%07d" % (i + 1), r[f["BegDoc"]]
    nat = open(os.path.join(d, r[f["NativeFile"]]), "rb").read()
    assert hashlib.md5(nat).hexdigest() == r[f["MD5Hash"]]
    assert hashlib.sha1(nat).hexdigest() == r[f["SHA1Hash"]]
    assert hashlib.sha256(nat).hexdigest() == r[f["SHA256Hash"]]
    assert os.path.getsize(os.path.join(d, r[f["NativeFile"]])) == int(r[f["FileSize"]])
    txt = open(os.path.join(d, r[f["TextPath"]]), encoding="utf-8").read()
    assert "narwhal" in txt.lower(), r[f["TextPath"]]
subj = [r[f["Subject"]] for r in recs]
assert "narwhal, with commas, and more" in subj, subj
assert "\ufffding minutes, draft \"two\"" in subj, subj  # þ cannot be quoted in a DAT
jane = [r for r in recs if r[f["MessageID"]] == "commas@example.com"]
assert jane and jane[0][f["Custodian"]] == "Jane Doe", jane
PY

begin_subtest "CSV (metadata only)"
mvk "$A" export narwhal --as csv --out "$X/meta.zip" >/dev/null 2>&1
check "export --as csv to a ZIP" [ $? -eq 0 ]
check "unzip -t" unzip -tq "$X/meta.zip"
check "verify-export" "$MV" verify-export "$X/meta.zip"
check "every record, þ kept, no natives" python3 - "$X/meta.zip" "$want" <<'PY'
import csv, io, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
assert not any(n.startswith("natives/") for n in names), names
rows = list(csv.reader(io.StringIO(z.read("metadata.csv").decode("utf-8-sig"), newline="")))
assert len(rows) - 1 == int(sys.argv[2])
f = {n: i for i, n in enumerate(rows[0])}
assert "\u00feing minutes, draft \"two\"" in [r[f["Subject"]] for r in rows[1:]]
PY

begin_subtest "EDRM XML 1.2"
mvk "$A" export narwhal --as edrm --out "$X/edrm.tar" >/dev/null 2>&1
check "export --as edrm to a tar" [ $? -eq 0 ]
check "verify-export" "$MV" verify-export "$X/edrm.tar"
mkdir -p "$X/edrm"
tar -xf "$X/edrm.tar" -C "$X/edrm"
if command -v xmllint >/dev/null 2>&1; then
    check "xmllint accepts it" xmllint --noout "$X/edrm/loadfile.xml"
else
    echo "# skip xmllint: not installed"
fi
check "one Document per message, natives where it says" python3 - "$X/edrm" "$want" <<'PY'
import hashlib, os, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
root = ET.parse(os.path.join(d, "loadfile.xml")).getroot()
assert root.get("MajorVersion") == "1" and root.get("MinorVersion") == "2"
docs = root.findall("./Batch/Documents/Document")
assert len(docs) == int(sys.argv[2]), len(docs)
for doc in docs:
    ef = doc.find("./Files/File[@FileType='Native']/ExternalFile")
    p = os.path.join(d, ef.get("FilePath"), ef.get("FileName"))
    assert hashlib.md5(open(p, "rb").read()).hexdigest() == ef.get("Hash"), p
    tags = {t.get("TagName"): t.get("TagValue") for t in doc.findall("./Tags/Tag")}
    assert "#Subject" in tags and "SHA256Hash" in tags, tags
PY

begin_subtest "encrypted ZIP (WinZip AES-256)"
printf 'correct horse battery\n' >"$WORK/pw"
printf 'wrong\n' >"$WORK/bad"
mvk "$A" export narwhal --as dat --out "$X/enc.zip" --encrypt --password-file "$WORK/pw" >/dev/null 2>&1
check "export --encrypt" [ $? -eq 0 ]
mvk "$A" export narwhal --as dat --out "$X/enc.tar" --encrypt --password-file "$WORK/pw" >/dev/null 2>&1
check "a tar cannot be encrypted: 64" [ $? -eq 64 ]
check "--encrypt without a password file: 64" [ "$(mvk "$A" export narwhal --as dat --out "$X/e2.zip" --encrypt >/dev/null 2>&1; echo $?)" -eq 64 ]
check "verify-export with the password" "$MV" verify-export "$X/enc.zip" --password-file "$WORK/pw"
"$MV" verify-export "$X/enc.zip" --password-file "$WORK/bad" >/dev/null 2>&1
check "verify-export with a wrong password: 65" [ $? -eq 65 ]
if command -v 7z >/dev/null 2>&1; then
    check "7z t with the password" bash -c "7z t -p'correct horse battery' '$X/enc.zip' >/dev/null"
    check "7z t refuses a wrong password" bash -c "! 7z t -pwrong '$X/enc.zip' >/dev/null 2>&1"
    check "every entry is AES-256, none ZipCrypto" bash -c "7z l -slt -p'correct horse battery' '$X/enc.zip' | grep '^Method' | grep -vq 'AES-256' && exit 1 || exit 0"
else
    echo "# skip 7z: not installed (Debian p7zip-full)"
fi
check "no natives readable without the password" bash -c "! unzip -p -P '' '$X/enc.zip' loadfile.dat 2>/dev/null | grep -qa narwhal"

begin_subtest "control numbers continue across a matter"
mvk "$A" export narwhal --as dat --out "$X/dat2" --matter "Doe v. Roe" --prefix DOE >/dev/null 2>&1
check "second production" [ $? -eq 0 ]
first=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["first_control_number"])' "$X/dat2/custody.json")
check "starts after the first one ($first)" [ "$first" = "$(printf 'DOE-%07d' $((want + 1)))" ]
mvk "$A" export narwhal --as dat --out "$X/dat3" --prefix DOE >/dev/null 2>&1
first=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["first_control_number"])' "$X/dat3/custody.json")
check "an export outside the matter starts at 1" [ "$first" = "DOE-0000001" ]
check "matter names are not stored in the clear" bash -c "! grep -rqa 'Doe v. Roe' '$A'"

finish
