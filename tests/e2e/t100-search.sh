#!/bin/bash
# SPDX-License-Identifier: MIT
# Search end to end against a corpus whose answers are known by
# construction (tests/gen/mvsearch.py): imported mail, custodians added and
# imported, Exchange journal reports through the daemon (Bcc recipients in
# the envelope only).  Every query's count and serials equal the answer;
# paging, sort order, JSON with marked snippets, parse errors (65, with the
# column), an unknown custodian, index lag 0, `reindex` giving the same
# results, the search in the audit trail; and S/MIME mail (an escrowed and
# an unknown key): the decrypted text is searched, is:encrypted/decrypted/
# undecryptable.
# The full query list runs through the daemon (fast: the store stays open)
# and again after `reindex`; a fifth of it also runs in a process of its
# own (the index opened and caught up by the command).
. "$(dirname "$0")/lib.sh"
F=$WORK/corpus
python3 "$ROOT/tests/gen/mvsearch.py" --out "$F" --seed 100 2>"$WORK/gen.err" ||
    { cat "$WORK/gen.err"; fail "generator"; finish; }
echo "# $(cat "$WORK/gen.err")"
A=$WORK/a
new_archive "$A"

# tap: turn the checkers' "OK text" / "FAIL text" lines into ok/fail
# (lastpipe: `... | tap` counts in this shell).
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

begin_subtest "import indexes before it exits"
mvk "$A" import --quiet "$F/mail" >"$WORK/import.out" 2>&1
check "import succeeds" [ $? -eq 0 ]
check "status: index lag: 0" bash -c "'$MV' --archive '$A' --key-file '$A.key' status | grep -qx 'index lag: 0'"
mvk "$A" list --format json >"$WORK/list.json"
check "serials follow the import order (answers.json's indexes)" python3 - "$WORK/list.json" "$F/answers.json" <<'PY'
import json, sys
got = ["<%s>" % m["message_id"] for m in sorted(json.load(open(sys.argv[1])), key=lambda m: m["serial"])]
want = [m["message_id"] for m in json.load(open(sys.argv[2]))["messages"] if m["route"] == "import"]
sys.exit(got != want)
PY

begin_subtest "custodians: add and import"
python3 - "$MV" "$A" "$F/custodians.json" <<'PY' | tap
import json, subprocess, sys
mv, arch, cf = sys.argv[1:4]
for c in json.load(open(cf)):
    a = [c["name"]] + [x for ad in c["addresses"] for x in ("--address", ad)]
    a += [x for al in c["aliases"] for x in ("--alias", al)]
    r = subprocess.run([mv, "--archive", arch, "--key-file", arch + ".key", "custodian", "add", *a],
                       capture_output=True, text=True)
    print(("OK custodian add %s" if r.returncode == 0 else "FAIL custodian add %s: " + r.stderr) % c["name"])
PY
mvk "$A" custodian import "$F/custodians.csv" >"$WORK/cimport.out" 2>&1
check "custodian import" [ $? -eq 0 ]
n=$(mvk "$A" custodian list --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "custodian list shows 5" [ "$n" = 5 ]

begin_subtest "journal reports through the daemon (Bcc only in the envelope)"
LOG=$WORK/serve.log
J=$(free_port)
cat >"$WORK/serve.conf" <<CONF
[listener journal]
listen = 127.0.0.1:$J
source = exchange-journal
CONF
start_serve "$A" "$LOG" --config "$WORK/serve.conf" || { fail "serve"; finish; }
python3 - "$F" "$J" <<'PY'
import glob, os, socket, sys
F, port = sys.argv[1], int(sys.argv[2])

def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("connection closed")
        if line[3:4] != b"-":
            return line

bad = 0
files = sorted(glob.glob(os.path.join(F, "journal", "*.eml")))
for p in files:
    data = open(p, "rb").read()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")
    reply(f)
    for cmd in (b"EHLO journal.corp.test", b"MAIL FROM:<journal@corp.example>",
                b"RCPT TO:<journal@archive.example>", b"DATA"):
        s.sendall(cmd + b"\r\n")
        reply(f)
    w = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in data.split(b"\r\n"))
    s.sendall(w + (b"" if w.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    r = reply(f)
    if not r.startswith(b"250 "):
        print(p, r)
        bad += 1
    s.sendall(b"QUIT\r\n")
    s.close()
print("%d reports sent, %d refused" % (len(files), bad))
sys.exit(1 if bad or not files else 0)
PY
check "every report accepted" [ $? -eq 0 ]
for _ in $(seq 1 100); do "$MV" --archive "$A" status | grep -qx 'spool: 0' && break; sleep 0.1; done
check "archived" bash -c "'$MV' --archive '$A' status | grep -qx 'spool: 0'"
for _ in $(seq 1 100); do "$MV" --archive "$A" status | grep -qx 'index lag: 0' && break; sleep 0.1; done
check "the daemon's status: index lag: 0" bash -c "'$MV' --archive '$A' status | grep -qx 'index lag: 0'"

# Every query of answers.json: --count and the sorted serials equal the
# answer, and the default order is newest first.  Writes the serials found
# to $2 (one line per query) for the comparison after reindex.
# run_queries LABEL OUT STRIDE count|nocount: every STRIDE-th query.
run_queries() {
    python3 - "$MV" "$A" "$F/answers.json" "$1" "$2" "$3" "$4" <<'PY'
import json, subprocess, sys
mv, arch, answers, label, out = sys.argv[1:6]
stride, count = int(sys.argv[6]), sys.argv[7] == "count"
a = json.load(open(answers))
def run(cmd, *args):
    # the archive options after the command name: main.c appends options
    # given before it after the command's own, so behind a "--" they would
    # be read as query words
    return subprocess.run([mv, cmd, "--archive", arch, "--key-file", arch + ".key", *args],
                          capture_output=True, text=True)
lst = json.loads(run("list", "--format", "json").stdout)
serial_of = {"<%s>" % m["message_id"]: m["serial"] for m in lst}
msgs = a["messages"]
ser = {}
missing = [m["message_id"] for m in msgs if m["message_id"] not in serial_of]
if missing:
    print("FAIL %s: messages not archived: %s" % (label, missing[:5]))
for m in msgs:
    ser[m["index"]] = serial_of.get(m["message_id"], -1)
date_of = {ser[m["index"]]: m["date"] for m in msgs}
got_all = []
for q in a["queries"][::stride]:
    want = sorted(ser[i] for i in q["expect"])
    s = run("search", "--format", "serials", "--limit", "0", "--", q["q"])
    # --count on the first pass only (the serials are compared on every pass)
    c = run("search", "--count", "--", q["q"]) if count else s
    problems = []
    if c.returncode or s.returncode:
        problems.append("exit %d/%d: %s" % (c.returncode, s.returncode,
                                            (c.stderr or s.stderr).strip()[:200]))
        got = None
    else:
        got = [int(x) for x in s.stdout.split()]
        if count and c.stdout.strip() != str(len(want)):
            problems.append("--count %s, want %d" % (c.stdout.strip(), len(want)))
        if sorted(got) != want:
            extra = sorted(set(got) - set(want))
            lost = sorted(set(want) - set(got))
            problems.append("%d serials, want %d; unexpected %s; missing %s" % (
                len(got), len(want), extra[:8], lost[:8]))
        elif [date_of[x] for x in got] != sorted((date_of[x] for x in got), reverse=True):
            problems.append("not newest first: %s" % got[:10])
    got_all.append(got)
    if problems:
        print("FAIL %s %s: %s" % (label, q["q"], "; ".join(problems)))
    else:
        print("OK %s %s (%d)" % (label, q["q"], len(want)))
json.dump(got_all, open(out, "w"))
PY
}

begin_subtest "every query matches exactly its answer (through the daemon)"
run_queries "query" "$WORK/first.json" 1 count | tap

begin_subtest "paging and sorting"
python3 - "$MV" "$A" "$F/answers.json" <<'PY' | tap
import json, subprocess, sys
mv, arch, answers = sys.argv[1:4]
a = json.load(open(answers))
def run(*args):
    r = subprocess.run([mv, "--archive", arch, "--key-file", arch + ".key", *args],
                       capture_output=True, text=True)
    return [int(x) for x in r.stdout.split()] if r.returncode == 0 else ("exit", r.returncode, r.stderr)
serial_of = {"<%s>" % m["message_id"]: m["serial"]
             for m in json.loads(subprocess.run([mv, "--archive", arch, "--key-file", arch + ".key",
                                                 "list", "--format", "json"], capture_output=True).stdout)}
by_date = [serial_of.get(m["message_id"]) for m in sorted(a["messages"], key=lambda m: m["date"])]
exp = {q["q"]: q["expect"] for q in a["queries"]}
idx_date = {m["index"]: m["date"] for m in a["messages"]}
def check(desc, got, want):
    print(("OK %s" if got == want else "FAIL %s: got %s, want %s") % (desc, got, want))
check("--sort date: every message oldest first", run("search", "*", "--sort", "date", "--format", "serials", "--limit", "0"), by_date)
check("--sort -date: newest first", run("search", "*", "--sort", "-date", "--format", "serials", "--limit", "0"), by_date[::-1])
check("default limit is 20, newest first", run("search", "*", "--format", "serials"), by_date[::-1][:20])
check("--limit 10 --offset 20 --sort date", run("search", "*", "--sort", "date", "--format", "serials", "--limit", "10", "--offset", "20"), by_date[20:30])
check("--limit 7 --offset 0 (-date)", run("search", "*", "--format", "serials", "--limit", "7", "--offset", "0"), by_date[::-1][:7])
check("--offset past the end: nothing", run("search", "*", "--format", "serials", "--limit", "5", "--offset", str(len(by_date) + 3)), [])
check("last page is short", run("search", "*", "--sort", "date", "--format", "serials", "--limit", "10", "--offset", str(len(by_date) - 4)), by_date[-4:])
q = "walrus OR narwhal"
w = [serial_of[a["messages"][i]["message_id"]] for i in sorted(exp[q], key=lambda i: idx_date[i])]
pages = []
for off in range(0, len(w) + 5, 5):
    got = run("search", q, "--sort", "date", "--format", "serials", "--limit", "5", "--offset", str(off))
    pages += got if isinstance(got, list) else [got]
check("pages of 5 of '%s' put together" % q, pages, w)
check("--count ignores --limit", run("search", q, "--count", "--limit", "3"), [len(w)])
rel = run("search", q, "--sort", "relevance", "--format", "serials", "--limit", "0")
check("--sort relevance: the same messages", sorted(rel) if isinstance(rel, list) else rel, sorted(w))
PY

begin_subtest "json output"
mvk "$A" search quokka --format json --limit 5 >"$WORK/s.json" 2>"$WORK/s.err"
check "exit 0" [ $? -eq 0 ]
check "parses (python3 -m json.tool)" python3 -m json.tool "$WORK/s.json" /dev/null
python3 - "$WORK/s.json" "$F/answers.json" <<'PY' | tap
import json, re, sys
d = json.load(open(sys.argv[1]))
a = json.load(open(sys.argv[2]))
want = next(len(q["expect"]) for q in a["queries"] if q["q"] == "quokka")
print(("OK total is %d" if d.get("total") == want else "FAIL total %s, want %%d" % d.get("total")) % want)
rows = d.get("results") or []
print("OK 5 rows" if len(rows) == 5 else "FAIL %d rows, want 5" % len(rows))
keys = {"serial", "date", "from", "to", "subject", "snippet"}
print("OK rows have %s" % sorted(keys) if rows and all(keys <= set(r) for r in rows) else "FAIL row keys: %s" % [sorted(r) for r in rows[:1]])
bad = [r.get("serial") for r in rows if not re.search(r"\[quokka\]", r.get("snippet") or "", re.I)]
print("OK every snippet marks the hit: [quokka]" if not bad else "FAIL snippets without [quokka]: %s: %s" % (bad, [r.get("snippet") for r in rows[:2]]))
PY
out=$(mvk "$A" search quokka --count --format json)
check "--count --format json is {\"total\": N}" python3 -c 'import json,sys; assert json.loads(sys.argv[1])["total"] == 12' "$out"
out=$(mvk "$A" search quokka --limit 3)
check "table output marks hits too" grep -qi '\[quokka\]' <<<"$out"

begin_subtest "errors"
python3 - "$MV" "$A" "$F/answers.json" <<'PY' | tap
import json, subprocess, sys
mv, arch, answers = sys.argv[1:4]
for e in json.load(open(answers))["errors"]:
    r = subprocess.run([mv, "search", "--archive", arch, "--key-file", arch + ".key", "--", e["q"]],
                       capture_output=True, text=True)
    msg = r.stderr.strip().replace("\n", " | ")
    if r.returncode != e["exit"]:
        print("FAIL %s: exit %d, want %d (%s)" % (e["q"], r.returncode, e["exit"], msg[:200]))
    elif e["stderr"].lower() not in r.stderr.lower():
        print("FAIL %s: message lacks '%s': %s" % (e["q"], e["stderr"], msg[:200]))
    else:
        print("OK %s: exit %d, %s" % (e["q"], r.returncode, msg[:120]))
PY
mvk "$A" search --sort sideways quokka >/dev/null 2>&1
check "a bad --sort is a usage error (64)" [ $? -eq 64 ]
mvk "$A" search >/dev/null 2>&1
check "no query is a usage error (64)" [ $? -eq 64 ]

begin_subtest "the audit trail records searches with their query"
mvk "$A" search 'subject:budget OR walrus' --count >/dev/null
mvk "$A" audit >"$WORK/audit.out" 2>&1
check "audit readable" [ $? -eq 0 ]
check "a search record with its query" grep -q 'search.*subject:budget OR walrus' "$WORK/audit.out"

begin_subtest "without the daemon"
check "serve stops cleanly" stop_serve
check "status: index lag: 0" bash -c "'$MV' --archive '$A' --key-file '$A.key' status | grep -qx 'index lag: 0'"
run_queries "offline" "$WORK/offline.json" 5 count | tap

begin_subtest "reindex gives the same results"
mvk "$A" reindex >"$WORK/reindex.out" 2>&1
check "reindex succeeds" [ $? -eq 0 ]
echo "# $(tail -1 "$WORK/reindex.out")"
check "status: index lag: 0" bash -c "'$MV' --archive '$A' --key-file '$A.key' status | grep -qx 'index lag: 0'"
start_serve "$A" "$LOG" --config "$WORK/serve.conf" || { fail "serve"; finish; }
run_queries "after reindex" "$WORK/second.json" 1 nocount >"$WORK/second.tap"
check "every query answers right after reindex" bash -c "! grep -q '^FAIL' '$WORK/second.tap'"
grep '^FAIL' "$WORK/second.tap" | head -10 | sed 's/^/# /'
check "identical to before reindex, query by query" cmp -s "$WORK/first.json" "$WORK/second.json"
check "serve stops cleanly" stop_serve

begin_subtest "encrypted mail: the decrypted text is searched, is:encrypted|decrypted|undecryptable"
if command -v openssl >/dev/null 2>&1; then
    E=$WORK/enc
    mkdir -p "$E/mail"
    for k in escrowed other; do
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$E/$k.key.pem" -out "$E/$k.pem" \
            -subj "/CN=$k" -days 2 >/dev/null 2>&1
    done
    printf 'escrow\n' >"$E/pw"
    openssl pkcs12 -export -inkey "$E/escrowed.key.pem" -in "$E/escrowed.pem" -out "$E/escrowed.p12" \
        -passout file:"$E/pw"
    # seal NAME CERT TEXT: an S/MIME message to CERT whose text is TEXT
    seal() {
        printf 'Content-Type: text/plain\r\n\r\n%s\r\n' "$3" >"$E/in.txt"
        { printf 'From: Sam Seal <sam@sealed.test>\r\nTo: rcpt@sealed.test\r\nSubject: sealed\r\n'
          printf 'Message-ID: <%s@sealed.test>\r\nDate: Mon, 4 Mar 2024 10:0%s:00 +0000\r\n' "$1" "${#1}"
          openssl cms -encrypt -aes-256-cbc -in "$E/in.txt" -recip "$2" -outform SMIME | sed 's/\r*$/\r/'
        } >"$E/mail/$1.eml"
    }
    seal a "$E/escrowed.pem" "wallaby quota for the escrowed key"
    seal bb "$E/other.pem" "wallaby quota nobody here can read"
    printf 'From: c@sealed.test\r\nTo: rcpt@sealed.test\r\nSubject: clear\r\nMessage-ID: <ccc@sealed.test>\r\nDate: Mon, 4 Mar 2024 11:00:00 +0000\r\n\r\nwallaby in the clear\r\n' >"$E/mail/ccc.eml"
    # signed in the clear (S/MIME multipart/signed): is:signed, and its
    # smime.p7s is no attachment
    printf 'Content-Type: text/plain\r\n\r\nplatypus signed in the clear\r\n' >"$E/s.txt"
    { printf 'From: s@sealed.test\r\nTo: rcpt@sealed.test\r\nSubject: signed\r\n'
      printf 'Message-ID: <sig@sealed.test>\r\nDate: Mon, 4 Mar 2024 12:00:00 +0000\r\n'
      openssl cms -sign -in "$E/s.txt" -signer "$E/escrowed.pem" -inkey "$E/escrowed.key.pem" \
          -outform SMIME | sed 's/\r*$/\r/'
    } >"$E/mail/sig.eml"
    new_archive "$E/a"
    mvk "$E/a" keys escrow add "$E/escrowed.p12" --password-file "$E/pw" >/dev/null 2>&1
    check "escrow key added" [ $? -eq 0 ]
    mvk "$E/a" import --quiet "$E/mail" >/dev/null
    check "import" [ $? -eq 0 ]
    for qa in "is:encrypted=2" "is:decrypted=1" "is:undecryptable=1" "wallaby=2" \
        "wallaby is:decrypted=1" "escrowed=1" "nobody=0" "-is:encrypted=2" "is:signed=1" \
        "platypus is:signed=1" "has:attachment=0"; do
        n=$("$MV" search --archive "$E/a" --key-file "$E/a.key" --count -- "${qa%=*}" 2>&1)
        check "${qa%=*}: ${qa#*=}" [ "$n" = "${qa#*=}" ]
    done
    out=$(mvk "$E/a" search escrowed --format json)
    check "the decrypted message's snippet marks the hit" grep -qi '\[escrowed\]' <<<"$out"
else
    echo "# skip: openssl not installed"
fi
finish
