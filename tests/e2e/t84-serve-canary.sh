#!/bin/bash
# SPDX-License-Identifier: MIT
# No plaintext at rest through the daemon: canaries in the mail, in the
# SMTP envelope, in a journal report's envelope lines and in a Postfix
# sub-address are nowhere in the archive directory, the daemon's log or
# TMPDIR - while it runs (spool), after a kill -9, and after a clean stop.
. "$(dirname "$0")/lib.sh"
C1=zqxcanarycharlie
C2=vvkcanarydelta
C3=ppwcanaryecho
A=$WORK/a
new_archive "$A"
LOG=$WORK/serve.log
P=$(free_port)
J=$(free_port)
B=$(free_port)
cat >"$WORK/serve.conf" <<CONF
[listener plain]
listen = 127.0.0.1:$P

[listener journal]
listen = 127.0.0.1:$J
source = exchange-journal

[listener bcc]
listen = 127.0.0.1:$B
source = postfix-bcc
CONF
$GEN --out "$WORK/mail" --count 150 --seed 84 --layout eml --canary $C1 --canary $C2 2>/dev/null

send_all() {
    python3 "$ROOT/scripts/smtpfeed.py" --sessions 3 --from "$C3@corp.test" --to "archive@$C3.test" \
        "127.0.0.1:$P" "$WORK/mail" >/dev/null
    python3 - "$J" "$B" "$C3" <<'PY'
import smtplib, sys
j, b, c = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
inner = (f"From: {c} <{c}@corp.test>\r\nSubject: {c} report\r\nMessage-ID: <{c}@corp.test>\r\n\r\n"
         f"{c} body\r\n").encode()
rep = (b"From: journal@corp.test\r\nX-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       b"--b\r\nContent-Type: text/plain\r\n\r\n" + f"Sender: {c}@corp.test\r\nBcc: {c}-bcc@corp.test\r\n".encode() +
       b"\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--b--\r\n")
with smtplib.SMTP("127.0.0.1", j) as s:
    s.sendmail("journal@corp.test", ["archive@archive.test"], rep)
with smtplib.SMTP("127.0.0.1", b) as s:
    s.sendmail(f"{c}@corp.test", [f"archive+{c}=corp.test@archive.test"],
               f"Subject: {c} bcc\r\nMessage-ID: <{c}-2@corp.test>\r\n\r\nhi\r\n".encode())
PY
}

begin_subtest "mail with canaries over SMTP, journal and sub-address envelopes"
start_serve "$A" "$LOG" --config "$WORK/serve.conf" || { fail "serve"; finish; }
send_all
check "accepted" [ $? -eq 0 ]
check "while serving: nothing in the clear" \
    python3 "$ROOT/tests/e2e/canary_scan.py" --canary $C1 --canary $C2 --canary $C3 "$A" "$LOG" "$TMPDIR"
check "the archive holds them (read through the daemon)" bash -c "'$MV' --archive '$A' list | grep -q $C1"

begin_subtest "after kill -9 with arrivals in the spool"
send_all >/dev/null 2>&1 &
sender=$!
sleep 0.3
kill -9 "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null
wait $sender 2>/dev/null
check "after the kill: nothing in the clear" \
    python3 "$ROOT/tests/e2e/canary_scan.py" --canary $C1 --canary $C2 --canary $C3 "$A" "$LOG" "$TMPDIR"
start_serve "$A" "$LOG" --config "$WORK/serve.conf" || { fail "restart"; finish; }
for _ in $(seq 1 100); do "$MV" --archive "$A" status | grep -qx 'spool: 0' && break; sleep 0.1; done
check "stops cleanly" stop_serve
check "after the stop: nothing in the clear" \
    python3 "$ROOT/tests/e2e/canary_scan.py" --canary $C1 --canary $C2 --canary $C3 "$A" "$LOG" "$TMPDIR"
finish
