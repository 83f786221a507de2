#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# t112-export-families: attachments as child documents, and --split-size
# volumes (issue 6).
#   Families: messages with a PDF, a DOCX under a non-ASCII RFC 2231 name,
#   quoted-printable text, an attached message/rfc822 with an attachment of
#   its own, a base64 .eml, attachments without a file name, a signature
#   (no attachment), generated mail with attachments, one attachment over
#   --attachment-limit; exported as DAT, CSV and EDRM and read back by
#   tests/gen/mvexportcheck.py families: each child where Python's email
#   finds it in `show --raw`, its native equal to what Python decodes, its
#   hashes recomputed, BegAttach/EndAttach/ParentID/AttachmentCount right.
#   Volumes: every volume passes verify-export on its own, together they
#   hold every document once with control numbers running on (and on
#   across the matter), no family is split; eml, mbox, ZIP and tar too.
#   verify-export: a missing path is 66, something that is no package 65.
. "$(dirname "$0")/lib.sh"
CHK="python3 $ROOT/tests/gen/mvexportcheck.py"
shopt -s lastpipe
tap() { # "OK text" / "FAIL text" lines of the checker into ok/fail; DOC lines kept
    local line
    while IFS= read -r line; do
        case $line in
        "OK "*) ok "${line#OK }" ;;
        "FAIL "*) fail "${line#FAIL }" ;;
        "DOC "*) [ -n "${DOCS:-}" ] && echo "${line#DOC }" >>"$DOCS" ;;
        *) echo "# $line" ;;
        esac
    done
}
rc_of() { "$@" >/dev/null 2>&1; echo $?; }
quiet() { "$@" >/dev/null 2>&1; }
have() { command -v "$1" >/dev/null 2>&1; }

M=$WORK/mail
python3 "$ROOT/tests/gen/mkdocs.py" --families "$M/fam" --big 1500000 ||
    { fail "mkdocs.py --families"; finish; }
$GEN --out "$M/gen" --count 40 --seed 17 --layout eml --size-avg 60000 --broken-ratio 0 \
    --dup-ratio 0 >/dev/null 2>&1 || { fail "mvgen"; finish; }
A=$WORK/a
new_archive "$A"
mvk "$A" import --quiet "$M" >"$WORK/import.out" 2>&1
check "import" [ $? -eq 0 ]
mvk "$A" custodian add "Jane Doe" --address jane@example.com >/dev/null
R=$WORK/refs
$CHK refs "$A" "$A.key" "$R" >"$WORK/refs.out" 2>&1
check "show --raw of every message" [ $? -eq 0 ]
Q=quokkafamily
NFAM=$(mvk "$A" search "$Q" --count)
check "the families are found ($NFAM)" [ "$NFAM" -eq 7 ]
NALL=$(mvk "$A" search '*' --count)
X=$WORK/x
mkdir -p "$X"

# ------------------------------------------------------------- families
begin_subtest "DAT families"
mvk "$A" export "$Q" --as dat --out "$X/dat" --attachment-limit 1M --matter "Roe v. Doe" \
    --prefix ROE --format json >"$WORK/dat.json" 2>"$WORK/dat.err"
check "export --as dat" [ $? -eq 0 ]
check "verify-export" quiet "$MV" verify-export "$X/dat" --fingerprint "$(mvk "$A" keys signing)"
$CHK families "$X/dat" --as dat --refs "$R" --expected "$M/fam/families.json" --missing big.bin \
    --prefix ROE | tap
check "custody.json counts documents, messages, attachments" python3 - "$X/dat/custody.json" "$WORK/dat.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
s = json.load(open(sys.argv[2]))
assert c["messages"] == 7 and c["attachments"] == 34 and c["documents"] == 41, c
assert c["attachments_without_native"] == 1, c
assert c["first_control_number"] == "ROE-0000001" and c["last_control_number"] == "ROE-0000041", c
assert s["documents"] == 41 and len(s["volumes"]) == 1 and s["volumes"][0]["manifest_sha256"] == c["manifest_sha256"], s
PY
check "the parent's text lists its children instead of holding their text" python3 - "$X/dat" <<'PY'
import csv, io, os, sys
d = sys.argv[1]
rows = list(csv.reader(io.StringIO(open(os.path.join(d, "loadfile.dat"), "rb").read().decode("utf-8-sig"), newline=""), delimiter="\x14", quotechar="\u00fe"))
f = {n: i for i, n in enumerate(rows[0])}
fam = [r for r in rows[1:] if r[f["MessageID"]] == "family-1@example.com"][0]
t = open(os.path.join(d, fam[f["TextPath"]]), encoding="utf-8").read()
assert "Dear team" in t and "report-1.pdf" in t and "\u00dcbersicht 1 \u20ac.docx" in t, t
assert "quokkafamily report 1" not in t and "agreed = settled" not in t, t
kids = [r for r in rows[1:] if r[f["ParentID"]] == fam[f["BegDoc"]]]
pdf = [r for r in kids if r[f["FileName"]] == "report-1.pdf"][0]
assert "quokkafamily report 1" in open(os.path.join(d, pdf[f["TextPath"]]), encoding="utf-8").read()
fwd = [r for r in kids if r[f["FileName"]] == "forwarded.eml"][0]
ft = open(os.path.join(d, fwd[f["TextPath"]]), encoding="utf-8").read()
assert "Subject: forwarded 1" in ft, ft
alone = [r for r in rows[1:] if r[f["MessageID"]] == "family-alone@example.com"][0]
assert alone[f["BegAttach"]] == alone[f["EndAttach"]] == "" and alone[f["AttachmentCount"]] == "0", alone
PY

begin_subtest "CSV families (metadata only, in a ZIP)"
mvk "$A" export "$Q" --as csv --out "$X/meta.zip" >/dev/null 2>&1
check "export --as csv" [ $? -eq 0 ]
check "verify-export" quiet "$MV" verify-export "$X/meta.zip"
$CHK families "$X/meta.zip" --as csv --refs "$R" --expected "$M/fam/families.json" | tap

begin_subtest "EDRM families (in a tar)"
mvk "$A" export "$Q" --as edrm --out "$X/edrm.tar" --matter "Roe v. Doe" --prefix ROE >/dev/null 2>&1
check "export --as edrm" [ $? -eq 0 ]
check "verify-export" quiet "$MV" verify-export "$X/edrm.tar"
mkdir -p "$X/edrm"
tar -xf "$X/edrm.tar" -C "$X/edrm"
if have xmllint; then
    check "xmllint accepts it" xmllint --noout "$X/edrm/loadfile.xml"
else
    echo "# skip xmllint: not installed"
fi
$CHK families "$X/edrm.tar" --as edrm --refs "$R" --expected "$M/fam/families.json" --first 42 \
    --prefix ROE | tap

begin_subtest "every message of the archive, with generated attachments"
mvk "$A" export '*' --as dat --out "$X/all.zip" >/dev/null 2>&1
check "export '*' --as dat to a ZIP" [ $? -eq 0 ]
check "verify-export" quiet "$MV" verify-export "$X/all.zip"
$CHK families "$X/all.zip" --as dat --refs "$R" | tap

# --------------------------------------------------------------- volumes
# split_check LABEL AS OUT FIRST: every volume verifies and is checked on
# its own, then all together: documents once each, numbers running on
# from FIRST, the export's id shared, the --format json summary agreeing.
split_check() {
    local label=$1 as=$2 out=$3 first=$4
    local vols
    vols=$(python3 -c 'import json,sys; print(" ".join(v["package"] for v in json.load(open(sys.argv[1]))["volumes"]))' "$WORK/$label.json")
    local nv=0 v f=$first
    DOCS=$WORK/$label.docs
    : >"$DOCS"
    for v in $vols; do
        nv=$((nv + 1))
        check "volume $nv ($(basename "$v")) passes verify-export on its own" quiet "$MV" verify-export "$v"
        echo "{\"volume\": $nv}" >>"$DOCS"
        case $as in
        dat | csv | edrm)
            $CHK families "$v" --as "$as" --refs "$R" --first "$f" --prefix ROE | tap
            f=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["volumes"][int(sys.argv[2])]["last_control_number"].split("-")[1]) + 1)' "$WORK/$label.json" "$((nv - 1))")
            ;;
        esac
    done
    DOCS=
    check "$nv volumes" [ "$nv" -ge 3 ]
    python3 - "$WORK/$label.json" "$WORK/$label.docs" "$as" "$ALLSER" "$first" <<'PY' | tap
import io, json, os, sys, tarfile, zipfile
summ, docs, as_, allser, first = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
want = sorted(int(x) for x in allser.split(","))
def files(p):
    if os.path.isdir(p):
        return {os.path.relpath(os.path.join(d, n), p): os.path.join(d, n) for d, _, ns in os.walk(p) for n in ns}
    return {}
def read(p, name):
    if os.path.isdir(p):
        return open(os.path.join(p, name), "rb").read()
    if p.endswith(".zip"):
        return zipfile.ZipFile(p).read(name)
    return tarfile.open(p).extractfile(name).read()
def names(p):
    if os.path.isdir(p):
        return list(files(p))
    if p.endswith(".zip"):
        return zipfile.ZipFile(p).namelist()
    return tarfile.open(p).getnames()
ids, nums, ok = set(), [], True
serials = []
for i, v in enumerate(summ["volumes"]):
    c = json.loads(read(v["package"], "custody.json"))
    ids.add(c["export_id"])
    if c.get("volume") != i + 1 or v["volume"] != i + 1:
        print("FAIL volume %d: custody says volume %r" % (i + 1, c.get("volume"))); ok = False
    if c["manifest_sha256"] != v["manifest_sha256"] or c["messages"] != v["messages"]:
        print("FAIL volume %d: the summary and custody.json differ" % (i + 1)); ok = False
    if as_ in ("dat", "csv", "edrm"):
        nums.append((c["first_control_number"], c["last_control_number"], c["documents"]))
    if as_ == "eml":
        serials += [int(n.split("/")[1].split(".")[0]) for n in names(v["package"]) if n.startswith("natives/") and not n.endswith(".original.eml")]
    if as_ == "mbox":
        serials += [int(l.split(b"-")[2].split(b" ")[0]) for l in read(v["package"], "messages.mbox").split(b"\n") if l.startswith(b"From mailvault-serial-")]
print(("OK" if len(ids) == 1 else "FAIL") + " every volume names the same export_id (%d seen)" % len(ids))
if as_ in ("dat", "csv", "edrm"):
    d, vol, where, split = [], 0, {}, []
    for l in open(docs):
        x = json.loads(l)
        if "volume" in x:
            vol = x["volume"]
            continue
        x["vol"] = vol
        where[x["ctrl"]] = vol
        d.append(x)
    split = [x["ctrl"] for x in d if x["parent"] and where.get(x["parent"]) != x["vol"]]
    print(("OK" if not split else "FAIL") + " no family spans two volumes %s" % split[:4])
    ctrl = [int(x["ctrl"].split("-")[1]) for x in d]
    print(("OK" if ctrl == list(range(first, first + len(ctrl))) else "FAIL") +
          " %d documents across the volumes, each once, numbers on from %d without a gap" % (len(ctrl), first))
    run = first
    good = True
    for lo, hi, n in nums:
        good &= int(lo.split("-")[1]) == run and int(hi.split("-")[1]) == run + n - 1
        run += n
    print(("OK" if good else "FAIL") + " each volume's custody range continues the last one's: %s" % nums)
    serials = sorted(x["serial"] for x in d if x["parent"] is None)
    total = sum(v["documents"] for v in summ["volumes"])
    print(("OK" if total == len(ctrl) == summ["documents"] else "FAIL") + " the summary counts them (%d)" % summ["documents"])
print(("OK" if sorted(serials) == want else "FAIL") + " every message exactly once across the volumes (%d of %d)" % (len(serials), len(want)))
PY
}
ALLSER=$(python3 -c 'import json,sys; print(",".join(str(m["serial"]) for m in json.load(open(sys.argv[1]))))' "$R/list.json")
# the matter's numbers so far: the DAT (41) and EDRM (41) productions above
begin_subtest "split DAT into a directory"
mvk "$A" export '*' --as dat --out "$X/split" --split-size 1M --matter "Roe v. Doe" --prefix ROE \
    --format json >"$WORK/split-dat.json" 2>"$WORK/split-dat.err"
check "export --split-size 1M" [ $? -eq 0 ]
sed 's/^/#   /' "$WORK/split-dat.err" | head -3
split_check split-dat dat "$X/split" 83
check "the directory itself is no package: verify-export says so (65)" [ "$(rc_of "$MV" verify-export "$X/split")" -eq 65 ]

begin_subtest "split EDRM into ZIPs"
mvk "$A" export '*' --as edrm --out "$X/split.zip" --split-size 1M --matter "Roe v. Doe" \
    --prefix ROE --format json >"$WORK/split-edrm.json" 2>/dev/null
check "export --split-size into x.VOL0001.zip ..." [ $? -eq 0 ]
check "no x.zip itself" [ ! -e "$X/split.zip" ]
NEXT=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["volumes"][-1]["last_control_number"].split("-")[1]) + 1)' "$WORK/split-dat.json")
split_check split-edrm edrm "$X/split.zip" "$NEXT"
if have xmllint; then
    for v in "$X"/split.VOL*.zip; do
        unzip -p "$v" loadfile.xml >"$WORK/vol.xml"
        check "xmllint accepts $(basename "$v")'s loadfile.xml" xmllint --noout "$WORK/vol.xml"
    done
fi

begin_subtest "split CSV and eml into tars, mbox into a directory"
mvk "$A" export '*' --as csv --out "$X/csv.tar" --split-size 1M --prefix ROE --format json >"$WORK/split-csv.json" 2>/dev/null
check "export --as csv --split-size" [ $? -eq 0 ]
# metadata only: a volume fills with load-file bytes alone, so fewer volumes
nv=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["volumes"]))' "$WORK/split-csv.json")
echo "# csv: $nv volume(s)"
mvk "$A" export '*' --as eml --out "$X/eml.tar" --split-size 1M --format json >"$WORK/split-eml.json" 2>/dev/null
check "export --as eml --split-size" [ $? -eq 0 ]
split_check split-eml eml "$X/eml.tar" 1
mvk "$A" export '*' --as mbox --out "$X/mbox" --split-size 1M --format json >"$WORK/split-mbox.json" 2>/dev/null
check "export --as mbox --split-size" [ $? -eq 0 ]
split_check split-mbox mbox "$X/mbox" 1

begin_subtest "split options"
check "--split-size below 1M is refused (64)" [ "$(rc_of mvk "$A" export '*' --as dat --out "$X/small" --split-size 512K)" -eq 64 ]
check "--split-size that is no size is refused (64)" [ "$(rc_of mvk "$A" export '*' --as dat --out "$X/small" --split-size 1Q)" -eq 64 ]
check "... and nothing is written" [ ! -e "$X/small" ]
mkdir -p "$X/taken" && echo keep >"$X/taken/x"
check "a directory that is not empty is refused" [ "$(rc_of mvk "$A" export '*' --as dat --out "$X/taken" --split-size 1M)" -ne 0 ]
check "... and left alone" [ "$(ls "$X/taken")" = x ]
echo precious >"$X/clash.VOL0002.zip"
rc=$(rc_of mvk "$A" export '*' --as dat --out "$X/clash.zip" --split-size 1M)
check "a volume that would overwrite a file fails the export (exit $rc)" [ "$rc" -ne 0 ]
check "... leaving no volume behind" [ ! -e "$X/clash.VOL0001.zip" ]
check "... and the file alone" [ "$(cat "$X/clash.VOL0002.zip")" = precious ]

begin_subtest "verify-export exit codes"
check "a path that does not exist: 66" [ "$(rc_of "$MV" verify-export "$X/nothing-here")" -eq 66 ]
check "a missing ZIP: 66" [ "$(rc_of "$MV" verify-export "$X/nothing.zip")" -eq 66 ]
echo "not a zip" >"$X/junk.zip"
check "a file that is no package: 65" [ "$(rc_of "$MV" verify-export "$X/junk.zip")" -eq 65 ]
head -c 2000 "$X/all.zip" >"$X/cut.zip"
check "a ZIP cut short: 65" [ "$(rc_of "$MV" verify-export "$X/cut.zip")" -eq 65 ]

finish
