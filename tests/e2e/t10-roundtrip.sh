#!/bin/bash
# SPDX-License-Identifier: MIT
# Round trip: generated mail in every layout in, exact bytes out; duplicates
# become copies; re-import adds nothing; a real corpus when MAILVAULT_CORPUS is set.
. "$(dirname "$0")/lib.sh"

A=$WORK/a
begin_subtest "generate and import a mixed corpus"
$GEN --out "$WORK/mail" --count 600 --seed 10 --layout mixed --manifest "$WORK/manifest" 2>/dev/null
new_archive "$A"
out=$(mvk "$A" import --format json "$WORK/mail")
rc=$?
check "import exits 0" [ $rc -eq 0 ]
check "import reports JSON" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["imported"]>0 and d["failed"]==0, d' "$out"
check "non-mail files are skipped, not imported" python3 -c 'import json,sys; assert json.loads(sys.argv[1])["skipped_files"]>=1' "$out"

begin_subtest "every message back byte-exact; duplicates are copies"
check "roundtrip against the manifest" python3 "$ROOT/tests/e2e/roundtrip.py" --sample 250 "$A" "$A.key" "$WORK/manifest"

begin_subtest "importing the same files again adds nothing"
before=$(mvk "$A" stats --format json)
out=$(mvk "$A" import --format json "$WORK/mail")
after=$(mvk "$A" stats --format json)
check "second import: nothing new" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["imported"]==0 and d["duplicates"]==0 and d["already_imported"]==d["found"], d' "$out"
check "counts unchanged" python3 -c 'import json,sys; a,b=(json.loads(x) for x in sys.argv[1:]); assert (a["messages"],a["copies"])==(b["messages"],b["copies"]),(a,b)' "$before" "$after"

begin_subtest "Apple Mail .emlx files: the counted bytes, without the property list"
E=$WORK/emlx
$GEN --out "$E/eml" --count 30 --seed 11 --layout eml --dup-ratio 0 2>/dev/null
mkdir -p "$E/Messages"
python3 - "$E/eml" "$E/Messages" > "$E/sha" <<'PY'
import hashlib, os, sys
n = 0
for dp, dn, fn in sorted(os.walk(sys.argv[1])):
    for f in sorted(fn):
        d = open(os.path.join(dp, f), "rb").read()
        plist = b'<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>flags</key><integer>1</integer></dict></plist>\n'
        open(os.path.join(sys.argv[2], "%d.emlx" % (100 + n)), "wb").write(b"%d        \n" % len(d) + d + plist)
        print(hashlib.sha256(d).hexdigest())
        n += 1
PY
X=$WORK/x
new_archive "$X"
out=$(mvk "$X" import --format json "$E/Messages")
check "emlx: every file imported" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["imported"]+d["duplicates"]==30 and d["skipped_files"]==0 and d["failed"]==0, d' "$out"
check "emlx: each message is its counted bytes" python3 -c '
import json, subprocess, sys
want = set(open(sys.argv[1]).read().split())
got = {m["sha256"] for m in json.loads(subprocess.run(sys.argv[2:] + ["list", "--format", "json"], capture_output=True, check=True).stdout)}
assert got == want, (len(got), len(want), len(got & want))' "$E/sha" "$MV" --archive "$X" --key-file "$X.key"
check "emlx: show --raw gives the message bytes" bash -c "\"$MV\" --archive \"$X\" --key-file \"$X.key\" show 1 --raw | sha256sum | cut -d' ' -f1 | grep -qxFf \"$E/sha\""
check "emlx: the copy says so" bash -c "\"$MV\" --archive \"$X\" --key-file \"$X.key\" show 1 | grep -q 'kind=emlx'"

begin_subtest "show and stats"
check "show 1 prints a summary" bash -c "mvk() { \"$MV\" --archive \"$A\" --key-file \"$A.key\" \"\$@\"; }; mvk show 1 | grep -q '^sha256:'"
check "show --copy beyond the last copy fails cleanly" bash -c "\"$MV\" --archive \"$A\" --key-file \"$A.key\" show 1 --raw --copy 999 >/dev/null 2>&1; [ \$? -eq 66 ]"
check "show of a missing serial exits 66" bash -c "\"$MV\" --archive \"$A\" --key-file \"$A.key\" show 999999 >/dev/null 2>&1; [ \$? -eq 66 ]"
check "stats json parses" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["messages"]>0 and d["stored_bytes"]>0' "$after"

if [ -n "${MAILVAULT_CORPUS:-}" ] && [ -d "$MAILVAULT_CORPUS/spamassassin" ]; then
    begin_subtest "real corpus ($MAILVAULT_CORPUS)"
    R=$WORK/real
    new_archive "$R"
    mvk "$R" import --quiet "$MAILVAULT_CORPUS/spamassassin" "$MAILVAULT_CORPUS/enron" >/dev/null
    check "real mail imports" [ $? -eq 0 ]
    for d in spamassassin enron; do
        check "real mail round trip: $d" python3 "$ROOT/tests/e2e/roundtrip.py" --sample 100 "$R" "$R.key" --files "$MAILVAULT_CORPUS/$d"
    done
    # The MIME test suites of other parsers: broken and odd mail, and the
    # files beside it (expected outputs, READMEs) that are not mail.
    if [ -d "$MAILVAULT_CORPUS/mime-tests" ]; then
        M=$WORK/mime
        new_archive "$M"
        mvk "$M" import --quiet "$MAILVAULT_CORPUS/mime-tests" >/dev/null
        check "MIME test suites import" [ $? -eq 0 ]
        check "MIME test suites round trip" python3 "$ROOT/tests/e2e/roundtrip.py" --sample 200 "$M" "$M.key" --files "$MAILVAULT_CORPUS/mime-tests"
    fi
fi
finish
