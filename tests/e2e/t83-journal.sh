#!/bin/bash
# SPDX-License-Identifier: MIT
# Exchange journal reports from the project's generator (tests/gen/
# mvjournal.py: To/Cc/Bcc/Recipient/Expanded/Forwarded, QP and base64
# report text, binary message/rfc822, several reports of one message,
# Exchange 2003, TNEF, broken reports, forgeries) sent through the real
# daemon: each unwraps to the right message and envelope, reports of one
# message merge, and a forgery from a plain source is not believed.
. "$(dirname "$0")/lib.sh"
F=$WORK/fixtures
python3 "$ROOT/tests/gen/mvjournal.py" --out "$F" --seed 83 --dl-size 300 --fabricated >/dev/null

begin_subtest "the parser checks every fixture against its manifest"
UT=$(dirname "$MV")/tests/journal_test
if [ -x "$UT" ]; then
    MV_JOURNAL_FIXTURES=$F "$UT" >"$WORK/ut.out" 2>&1
    check "journal_test with MV_JOURNAL_FIXTURES" [ $? -eq 0 ]
else
    fail "$UT not built"
fi

A=$WORK/a
new_archive "$A"
LOG=$WORK/serve.log
P=$(free_port)
J=$(free_port)
cat >"$WORK/serve.conf" <<CONF
[listener plain]
listen = 127.0.0.1:$P

[listener journal]
listen = 127.0.0.1:$J
source = exchange-journal
CONF

begin_subtest "reports sent through the daemon (DATA and BDAT)"
start_serve "$A" "$LOG" --config "$WORK/serve.conf" || { fail "serve"; finish; }
python3 - "$F" "$P" "$J" <<'PY'
import json, os, socket, sys
F, plain, journal = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("connection closed")
        if line[3:4] != b"-":
            return line

def send(port, data, bdat):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO journal.corp.test\r\n"); reply(f)
    s.sendall(b"MAIL FROM:<journal@corp.test>" + (b" BODY=BINARYMIME" if bdat else b"") + b"\r\n"); reply(f)
    s.sendall(b"RCPT TO:<archive@archive.test>\r\n"); reply(f)
    if bdat:
        s.sendall(b"BDAT %d LAST\r\n" % len(data) + data)
    else:
        # dot-stuff lines (a line begins after CRLF only), as an MTA does
        lines = data.split(b"\r\n")
        w = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)
        if not w.endswith(b"\r\n"):
            w += b"\r\n"
        s.sendall(b"DATA\r\n"); reply(f)
        s.sendall(w + b".\r\n")
    r = reply(f)
    s.sendall(b"QUIT\r\n")
    s.close()
    return r

m = json.load(open(os.path.join(F, "manifest.json")))
bad = 0
for i, r in enumerate(m["reports"]):
    data = open(os.path.join(F, r["file"]), "rb").read()
    port = journal if r["source_kind"] == "exchange-journal" else plain
    # DATA cannot carry a message whose last line has no CRLF: BDAT can
    rep = send(port, data, bdat=(i % 2 == 1 or not data.endswith(b"\r\n")))
    if not rep.startswith(b"250 "):
        print("#", r["file"], rep); bad += 1
print(f"# {len(m['reports'])} reports sent, {bad} not accepted")
sys.exit(1 if bad else 0)
PY
check "every report accepted" [ $? -eq 0 ]
for _ in $(seq 1 100); do "$MV" --archive "$A" status | grep -qx 'spool: 0' && break; sleep 0.1; done
check "archived" bash -c "'$MV' --archive '$A' status | grep -qx 'spool: 0'"

begin_subtest "each report unwrapped to its original and its envelope"
mvk "$A" list --format json >"$WORK/list.json"
python3 - "$F" "$WORK/list.json" "$MV" "$A" <<'PY'
import hashlib, json, os, subprocess, sys
F, listf, mv, arch = sys.argv[1:5]
m = json.load(open(os.path.join(F, "manifest.json")))
by_sha = {x["sha256"]: x["serial"] for x in json.load(open(listf))}
def show(serial):
    return json.loads(subprocess.check_output([mv, "--archive", arch, "show", str(serial), "--format", "json"]))
bad = 0
groups = {}
for r in m["reports"]:
    whole = hashlib.sha256(open(os.path.join(F, r["file"]), "rb").read()).hexdigest()
    want_sha = r["inner_sha256"] if (r["inner_sha256"] and not r["forged"]) else whole
    serial = by_sha.get(want_sha)
    if serial is None:
        print("#", r["file"], "no message with the expected SHA-256"); bad += 1; continue
    d = show(serial)
    copy = [c for c in d["copies"] if c["sha256"] == whole]
    if len(copy) != 1:
        print("#", r["file"], "the copy does not keep the report's bytes"); bad += 1; continue
    c = copy[0]
    if r["forged"]:
        if c["envelope_to"] != ["rcpt <archive@archive.test>"] or "not configured as exchange-journal" not in (c["note"] or ""):
            print("#", r["file"], "forgery believed:", c["envelope_to"], c["note"]); bad += 1
        continue
    if c["envelope_to"] != r["rcpt"]:
        print("#", r["file"], "envelope", c["envelope_to"][:3], "want", r["rcpt"][:3]); bad += 1
    if c["envelope_from"] != r["sender"]:
        print("#", r["file"], "sender", c["envelope_from"], "want", r["sender"]); bad += 1
    for dname in r["defects"]:
        if dname not in (c["note"] or ""):
            print("#", r["file"], "defect", dname, "not recorded:", c["note"]); bad += 1
    if r["group"]:
        groups.setdefault(r["group"], set()).add(serial)
for g, serials in groups.items():
    if len(serials) != 1:
        print("#", g, "reports of one message became", len(serials), "messages"); bad += 1
    else:
        n = len(show(next(iter(serials)))["copies"])
        want = sum(1 for r in m["reports"] if r["group"] == g)
        if n != want:
            print("#", g, n, "copies, want", want); bad += 1
print(f"# {len(m['reports'])} reports checked, {bad} problems")
sys.exit(1 if bad else 0)
PY
check "originals, envelopes, defects, merged reports, forgeries" [ $? -eq 0 ]
check "stops cleanly" stop_serve
finish
