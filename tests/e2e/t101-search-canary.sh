#!/bin/bash
# SPDX-License-Identifier: MIT
# The search index keeps no plaintext: distinct canary words planted in a
# body, a subject, a display name, an address's local part, an attachment's
# file name, a text and a DOCX attachment and a nested message are each
# found by `search`, and after import, searches (snippets decrypt text),
# wildcards (the vocabulary), reindex and a killed reindex none of them is
# anywhere under the archive directory or TMPDIR: not as typed, not lower-
# case, not in base64 (the word and the lines around it, every alignment),
# not in UTF-16.
. "$(dirname "$0")/lib.sh"
F=$WORK/corpus
python3 "$ROOT/tests/gen/mvsearch.py" --canaries --out "$F" --seed 101 2>"$WORK/gen.err" ||
    { cat "$WORK/gen.err"; fail "generator"; finish; }
A=$WORK/a
new_archive "$A"
mapfile -t CANARIES < <(python3 -c 'import json,sys; [print(c["word"]) for c in json.load(open(sys.argv[1]))["canaries"]]' "$F/answers.json")
shopt -s lastpipe
tap() {
    local line
    while IFS= read -r line; do
        case $line in
        "OK "*) ok "${line#OK }" ;;
        "FAIL "*) fail "${line#FAIL }" ;;
        *) echo "# $line" ;;
        esac
    done
}

begin_subtest "import mail carrying ${#CANARIES[@]} canaries"
check "the generator wrote them (the body canary is readable in its file)" \
    grep -rqa "${CANARIES[0]}" "$F/mail"
mvk "$A" import --quiet "$F/mail" >"$WORK/import.out" 2>&1
check "import succeeds and indexes" [ $? -eq 0 ]

begin_subtest "search finds each canary where it was planted"
python3 - "$MV" "$A" "$F/answers.json" <<'PY' | tap
import json, subprocess, sys
mv, arch, answers = sys.argv[1:4]
def run(cmd, *a):
    return subprocess.run([mv, cmd, "--archive", arch, "--key-file", arch + ".key", *a],
                          capture_output=True, text=True)
serial_of = {"<%s>" % m["message_id"]: m["serial"]
             for m in json.loads(run("list", "--format", "json").stdout)}
for c in json.load(open(answers))["canaries"]:
    want = [serial_of.get(c["message_id"])]
    for q in (c["query"], c["word"], c["word"].upper()):
        r = run("search", "--format", "serials", "--limit", "0", "--", q)
        got = [int(x) for x in r.stdout.split()] if r.returncode == 0 else r.stderr.strip()
        if got == want:
            print("OK %s: %s finds serial %s" % (c["place"], q, want[0]))
        else:
            print("FAIL %s: %s finds %s, want %s" % (c["place"], q, got, want))
    # wildcards read the vocabulary (kept sealed); a bare address is no
    # vocabulary word (t100 checks to:local* on its own)
    if c["place"] == "local_part":
        continue
    r = run("search", "--count", "--", c["word"][:14] + "*")
    print("OK %s: its wildcard" % c["place"] if r.stdout.strip() == "1" else
          "FAIL %s: wildcard %s* counts %r %s" % (c["place"], c["word"][:14], r.stdout.strip(), r.stderr.strip()))
PY
# the rows' snippets and the table decrypt text: nothing may stay behind
for w in "${CANARIES[@]}"; do
    mvk "$A" search "$w" --format json >/dev/null 2>&1
    mvk "$A" search "$w" >/dev/null 2>&1
done
mvk "$A" search '*' --format json --limit 0 >/dev/null 2>&1

# The needles: each canary as typed, lower-case and capitalised, and the
# base64 characters that depend on the word alone at each of the three
# alignments (so the base64 of any line holding it contains one of them).
python3 - "$WORK/pat" "${CANARIES[@]}" <<'PY'
import base64, sys
out, words = sys.argv[1], sys.argv[2:]
pats = set()
for w in words:
    for v in (w, w.lower(), w.capitalize()):
        b = v.encode()
        pats.add(b)
        for pad in range(3):
            enc = base64.b64encode(b"\0" * pad + b + b"\0\0")
            core = enc[-(-8 * pad // 6):8 * (pad + len(b)) // 6]
            if len(core) >= 8:
                pats.add(core)
open(out, "wb").write(b"\n".join(sorted(pats)) + b"\n")
PY
# hits PATH...: the files holding a needle, or UTF-16LE of a canary.
hits() {
    local w u16
    LC_ALL=C grep -r -a -i -l -F -f "$WORK/pat" "$@" 2>/dev/null
    for w in "${CANARIES[@]}"; do
        u16=$(python3 -c 'import sys; print("".join(c + "\\x00" for c in sys.argv[1]))' "$w")
        LC_ALL=C grep -r -a -i -l -P "$u16" "$@" 2>/dev/null
    done
}
scan() {
    hits "$A" "$TMPDIR" | sort -u >"$WORK/hits"
    sed 's/^/# canary in: /' "$WORK/hits" | head -20
    check "$1: grep -r -a -i finds no canary (plain, base64, UTF-16LE)" [ ! -s "$WORK/hits" ]
    local args=() w
    for w in "${CANARIES[@]}"; do args+=(--canary "$w"); done
    check "$1: canary_scan.py agrees" python3 "$ROOT/tests/e2e/canary_scan.py" "${args[@]}" "$A" "$TMPDIR"
}

begin_subtest "no canary at rest"
# the scan would see them: the mail files hold them as text, base64 (the
# DOCX, the UTF-16 copy made here)
python3 -c 'import sys; open(sys.argv[1], "wb").write(sys.argv[2].encode("utf-16-le"))' \
    "$WORK/u16.probe" "${CANARIES[3]}"
n=$(hits "$F/mail" "$WORK/u16.probe" | sort -u | wc -l)
check "the scan finds them in the mail files ($n files)" [ "$n" -ge 5 ]
rm -f "$WORK/u16.probe"
scan "after import and searches"

begin_subtest "reindex, and a reindex killed mid-way"
mvk "$A" reindex >/dev/null 2>&1
check "reindex succeeds" [ $? -eq 0 ]
"$MV" reindex --archive "$A" --key-file "$A.key" >/dev/null 2>&1 &
pid=$!
sleep 0.2
kill -9 $pid 2>/dev/null && echo "# reindex killed while it ran"
wait $pid 2>/dev/null
ls -d "$A"/index* | sed 's/^/# left: /'
n=$(mvk "$A" search --count "${CANARIES[0]}")
check "search after the killed reindex still finds the body canary" [ "$n" = 1 ]
scan "after reindex and kill -9"
finish
