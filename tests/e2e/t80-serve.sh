#!/bin/bash
# SPDX-License-Identifier: MIT
# The journaling daemon against real clients: swaks over SMTP and LMTP,
# STARTTLS, PIPELINING, limits, bare LF, BDAT and smuggling (literal
# client), allow-listed networks, source kinds, status, commands beside
# a running daemon, two daemons, SIGHUP, SIGTERM.
. "$(dirname "$0")/lib.sh"
require_prereq swaks
RAW="python3 $ROOT/tests/e2e/smtpraw.py"
A=$WORK/a
new_archive "$A"
LOG=$WORK/serve.log
P=$(free_port)
L=$(free_port)
J=$(free_port)
T=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 2 \
    -subj /CN=archive.test >/dev/null 2>&1
CONF=$WORK/serve.conf
cat >"$CONF" <<EOF
[tls]
cert = $WORK/cert.pem
key = $WORK/key.pem

[serve]
hostname = archive.test
clients = 127.0.0.0/8 ::1

[limits]
message_size = 64K
recipients = 100

[listener smtp]
listen = 127.0.0.1:$P

[listener lmtp]
protocol = lmtp
listen = 127.0.0.1:$L

[listener journal]
listen = 127.0.0.1:$J
source = exchange-journal

[listener tlsonly]
listen = 127.0.0.1:$T
require_tls = yes
EOF

begin_subtest "serve starts with a config file"
if start_serve "$A" "$LOG" --config "$CONF"; then ok; else fail "see log"; cat "$LOG"; finish; fi

# msg FILE SUBJECT: a small CRLF message
msg() {
    msg_ "$@"; wire "$1"
}
msg_() {
    printf 'From: Alice <alice@corp.test>\r\nTo: Bob <bob@corp.test>\r\nSubject: %s\r\nMessage-ID: <%s@corp.test>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nHello Bob,\r\n..a line that starts with a dot\r\nbye\r\n' "$2" "$2" >"$1"
}
# wire FILE: FILE.wire, the DATA as sent on the wire (swaks --no-data-fixup
# sends bytes as they are, then CRLF): dot-stuffed, ended by CRLF "."
wire() {
    python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); l=d.split(b"\r\n"); w=b"\r\n".join((b"."+x if x.startswith(b".") else x) for x in l); w+=(b"" if w.endswith(b"\r\n") else b"\r\n")+b"."; open(sys.argv[1]+".wire","wb").write(w)' "$1"
}
# raw_of SERIAL: sha256 of show --raw
raw_of() { mvk "$A" show "$1" --raw | sha256sum | cut -d' ' -f1; }
last_serial() { mvk "$A" list --format json | python3 -c 'import json,sys; l=json.load(sys.stdin); print(max([m["serial"] for m in l] or [0]))'; }
wait_archived() { # wait until the spool is empty
    local i
    for i in $(seq 1 100); do
        mvk "$A" status | grep -qx 'spool: 0' && return 0
        sleep 0.1
    done
    return 1
}

begin_subtest "swaks SMTP: 250 after the spool, stored bytes equal the sent bytes"
msg "$WORK/m1" "first"
out=$(swaks --server 127.0.0.1 --port "$P" --from alice@corp.test --to archive@archive.test \
    --data "$WORK/m1.wire" --no-data-fixup 2>&1)
check "250 queued" grep -q '<-  250 2.0.0 Ok: queued as' <<<"$out"
check "archived" wait_archived
s=$(last_serial)
check "show --raw equals the sent bytes (dot-unstuffed)" [ "$(raw_of "$s")" = "$(sha256sum <"$WORK/m1" | cut -d' ' -f1)" ]
check "the copy records the SMTP envelope" bash -c "'$MV' --archive '$A' --key-file '$A.key' show $s | grep -q 'rcpt <archive@archive.test>'"

begin_subtest "commands run through the daemon while it serves"
check "status via daemon says running" bash -c "'$MV' --archive '$A' status | grep -q '^daemon: running'"
check "status has the spool line" bash -c "'$MV' --archive '$A' status | grep -qx 'spool: 0'"
check "status --format json" bash -c "'$MV' --archive '$A' status --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"spool\"]==0 and d[\"accepted\"]>=1'"
check "stats via daemon" bash -c "'$MV' --archive '$A' stats | grep -q '^messages: *1'"
check "import is refused while the daemon runs (75)" bash -c "'$MV' --archive '$A' import '$WORK/m1' >/dev/null 2>&1; [ \$? -eq 75 ]"

begin_subtest "a second daemon on the same archive is refused"
Q=$(free_port)
"$MV" serve --archive "$A" --key-file "$A.key" --smtp 127.0.0.1:$Q >"$WORK/second.out" 2>&1
rc=$?
check "exit 75" [ $rc -eq 75 ]
check "clear message" grep -q 'already serves this archive' "$WORK/second.out"

begin_subtest "PIPELINING"
msg "$WORK/m2" "pipelined"
out=$(swaks --server 127.0.0.1 --port "$P" --pipeline --from alice@corp.test --to archive@archive.test \
    --data "$WORK/m2.wire" --no-data-fixup 2>&1)
check "250" grep -q '250 2.0.0 Ok: queued' <<<"$out"
check "EHLO offers the extensions" bash -c "for e in PIPELINING SIZE 8BITMIME ENHANCEDSTATUSCODES SMTPUTF8 CHUNKING; do grep -q \"250.\$e\" <<<'$out' || exit 1; done"

begin_subtest "STARTTLS"
msg "$WORK/m6" "secret"
out=$(swaks --server 127.0.0.1 --port "$P" -tls --from alice@corp.test --to archive@archive.test \
    --data "$WORK/m6.wire" --no-data-fixup 2>&1)
check "TLS started" grep -q 'TLS started' <<<"$out"
check "250 over TLS" grep -q '250 2.0.0 Ok: queued' <<<"$out"
check "STARTTLS not offered again after the handshake" bash -c "[ \$(grep -c '250-STARTTLS' <<<'$out') -eq 1 ]"
wait_archived
s=$(last_serial)
check "the copy records the TLS facts" bash -c "'$MV' --archive '$A' --key-file '$A.key' show $s | grep -q 'tls=TLSv1'"
out=$($RAW 127.0.0.1:$T 'EHLO x\r\n' '@1' 'MAIL FROM:<a@corp.test>\r\n' '@1' 'QUIT\r\n' '@1')
check "require_tls: MAIL before STARTTLS gets 530" grep -q '^530 5.7.0' <<<"$out"
out=$(swaks --server 127.0.0.1 --port "$T" -tls --from alice@corp.test --to archive@archive.test \
    --data "$WORK/m6.wire" --no-data-fixup 2>&1)
check "require_tls: accepted after STARTTLS" grep -q '250 2.0.0 Ok: queued' <<<"$out"

begin_subtest "LMTP: one reply per accepted recipient"
msg "$WORK/m3" "lmtp"
out=$(swaks --server 127.0.0.1 --port "$L" --protocol LMTP --from alice@corp.test \
    --to 'a@archive.test,b@archive.test,c@archive.test' --data "$WORK/m3.wire" --no-data-fixup 2>&1)
n=$(grep -c '<-  250 2.1.5 <.*> Ok' <<<"$out")
check "three per-recipient 250s after the data" [ "$n" -eq 3 ]

begin_subtest "oversize message: 552 5.3.4, nothing archived"
before=$(last_serial)
{ printf 'Subject: big\r\n\r\n'; head -c 100000 /dev/zero | tr '\0' 'x' | fold -w 70 | sed 's/$/\r/'; } >"$WORK/big"
wire "$WORK/big"
out=$(swaks --server 127.0.0.1 --port "$P" --from alice@corp.test --to archive@archive.test \
    --data "$WORK/big.wire" --no-data-fixup 2>&1)
check "552 5.3.4" grep -q '<\*\* 552 5.3.4' <<<"$out"
out=$(swaks --server 127.0.0.1 --port "$P" --from 'alice@corp.test' --to archive@archive.test \
    --data "$WORK/m1.wire" --no-data-fixup --quit-after MAIL --pipeline 2>&1)
wait_archived
check "nothing new archived" [ "$(last_serial)" = "$before" ]
out=$($RAW 127.0.0.1:$P 'EHLO x\r\n' '@1' 'MAIL FROM:<a@corp.test> SIZE=999999999\r\n' '@1' 'QUIT\r\n' '@1')
check "declared SIZE over the limit: 552" grep -q '^552 5.3.4' <<<"$out"

begin_subtest "too many recipients: 452 4.5.3 for the extra ones, the message keeps the first 100"
rcpts=$(for i in $(seq 1 101); do printf 'r%d@archive.test,' "$i"; done)
msg "$WORK/m4" "many"
out=$(swaks --server 127.0.0.1 --port "$P" --from alice@corp.test --to "${rcpts%,}" \
    --data "$WORK/m4.wire" --no-data-fixup 2>&1)
check "452 4.5.3 for the 101st" grep -q '452 4.5.3' <<<"$out"
check "the message is accepted" grep -q '250 2.0.0 Ok: queued' <<<"$out"
wait_archived
s=$(last_serial)
n=$(mvk "$A" show "$s" --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["copies"][0]["envelope_to"]))')
check "100 envelope recipients recorded" [ "$n" = 100 ]

begin_subtest "bare LF: kept as it came, a defect recorded, never refused"
printf 'Subject: bare\r\nMessage-ID: <bare@corp.test>\r\n\r\nline one\nline two\r\nend\r\n' >"$WORK/m5"
wire "$WORK/m5"
out=$(swaks --server 127.0.0.1 --port "$P" --from alice@corp.test --to archive@archive.test \
    --data "$WORK/m5.wire" --no-data-fixup 2>&1)
check "250" grep -q '250 2.0.0 Ok: queued' <<<"$out"
wait_archived
s=$(last_serial)
check "bytes kept exactly" [ "$(raw_of "$s")" = "$(sha256sum <"$WORK/m5" | cut -d' ' -f1)" ]
check "defect noted on the copy" bash -c "'$MV' --archive '$A' --key-file '$A.key' show $s | grep -q 'bare LF'"

begin_subtest "SMTP smuggling: only CRLF.CRLF ends the data"
before=$(last_serial)
out=$($RAW 127.0.0.1:$P 'EHLO x\r\n' '@1' 'MAIL FROM:<a@corp.test>\r\nRCPT TO:<archive@archive.test>\r\nDATA\r\n' '@3' \
    'Subject: smuggle\r\nMessage-ID: <smuggle@corp.test>\r\n\r\nbody\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<archive@archive.test>\r\nDATA\r\nSubject: fake\r\n\r\nx\r\n.\r\n' '@?' 'QUIT\r\n' '@1')
check "exactly one 250 for the data" [ "$(grep -c '^250 2.0.0 Ok: queued' <<<"$out")" -eq 1 ]
wait_archived
check "one message archived" [ "$(last_serial)" -eq $((before + 1)) ]
check "the smuggled command is inside the message" bash -c "'$MV' --archive '$A' --key-file '$A.key' show $((before + 1)) --raw | grep -q 'MAIL FROM:<evil@x.test>'"

begin_subtest "BDAT (CHUNKING), including binary bytes"
before=$(last_serial)
out=$($RAW 127.0.0.1:$P 'EHLO x\r\n' '@1' 'MAIL FROM:<a@corp.test> BODY=BINARYMIME\r\nRCPT TO:<archive@archive.test>\r\n' '@2' \
    'BDAT 29\r\nSubject: chunked\r\n\r\nfirst\x00\xff\r\n' '@1' 'BDAT 13 LAST\r\n.not stuffed\n' '@1' 'QUIT\r\n' '@1')
check "chunk acknowledged" grep -q '^250 2.0.0 29 octets received' <<<"$out"
check "LAST answered 250 queued" grep -q '^250 2.0.0 Ok: queued' <<<"$out"
wait_archived
s=$(last_serial)
want=$(printf 'Subject: chunked\r\n\r\nfirst\x00\xff\r\n.not stuffed\n' | sha256sum | cut -d' ' -f1)
check "bytes exact, no unstuffing" [ "$(raw_of "$s")" = "$want" ]
out=$($RAW 127.0.0.1:$P 'EHLO x\r\n' '@1' 'BDAT 5\r\nhello' '@1' 'NOOP\r\n' '@1' 'QUIT\r\n' '@1')
check "BDAT without a transaction: 503, and the session stays in sync" bash -c "grep -q '^503' <<<'$out' && grep -q '^250' <<<\"\$(sed -n 4p <<<'$out')\""

begin_subtest "journal reports are believed only from an exchange-journal source"
python3 - "$WORK/report.eml" <<'PY'
import sys
inner = (b"From: CFO <cfo@corp.test>\r\nTo: board@corp.test\r\nSubject: Q3 numbers\r\n"
         b"Message-ID: <q3@corp.test>\r\nDate: Fri, 27 Nov 2026 09:00:00 +0000\r\n\r\nDraft numbers attached.\r\n")
open(sys.argv[1] + ".inner", "wb").write(inner)
rep = (b"From: Microsoft Exchange <journal@corp.test>\r\nTo: archive@archive.test\r\n"
       b"Subject: Q3 numbers\r\nX-MS-Journal-Report:\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"jr1\"\r\n\r\n--jr1\r\n"
       b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
       b"Sender: cfo@corp.test\r\nSubject: Q3 numbers\r\nMessage-Id: <q3@corp.test>\r\n"
       b"To: board@corp.test\r\nBcc: auditor@corp.test\r\nTo: ann@corp.test, Expanded: board@corp.test\r\n"
       b"\r\n--jr1\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--jr1--\r\n")
open(sys.argv[1], "wb").write(rep)
PY
wire "$WORK/report.eml"
out=$(swaks --server 127.0.0.1 --port "$J" --from journal@corp.test --to archive@archive.test \
    --data "$WORK/report.eml.wire" --no-data-fixup 2>&1)
check "250 from the journal listener" grep -q '250 2.0.0 Ok: queued' <<<"$out"
wait_archived
s=$(last_serial)
check "show --raw prints the original" [ "$(raw_of "$s")" = "$(sha256sum <"$WORK/report.eml.inner" | cut -d' ' -f1)" ]
check "the copy keeps the whole report" [ "$(mvk "$A" show "$s" --copy 1 --raw | sha256sum | cut -d' ' -f1)" = "$(sha256sum <"$WORK/report.eml" | cut -d' ' -f1)" ]
env=$(mvk "$A" show "$s" --format json)
check "Bcc recipient believed with its role" grep -q 'bcc <auditor@corp.test>' <<<"$env"
check "Expanded kept" grep -q 'to <ann@corp.test> expanded <board@corp.test>' <<<"$env"
out=$(swaks --server 127.0.0.1 --port "$P" --from journal@corp.test --to archive@archive.test \
    --data "$WORK/report.eml.wire" --no-data-fixup 2>&1)
check "250 from the plain listener" grep -q '250 2.0.0 Ok: queued' <<<"$out"
wait_archived
s=$(last_serial)
env=$(mvk "$A" show "$s" --format json)
check "archived as the whole report (plain mail)" [ "$(raw_of "$s")" = "$(sha256sum <"$WORK/report.eml" | cut -d' ' -f1)" ]
check "its fabricated Bcc is not believed" bash -c "! grep -q 'bcc <auditor@corp.test>' <<<'$env'"
check "a note says why" grep -q 'not configured as exchange-journal' <<<"$env"

begin_subtest "SIGHUP reloads limits"
sed -i 's/^message_size = 64K/message_size = 200K/' "$CONF"
kill -HUP "$SERVE_PID"
sleep 0.5
out=$(swaks --server 127.0.0.1 --port "$P" --from alice@corp.test --to archive@archive.test \
    --data "$WORK/big.wire" --no-data-fixup 2>&1)
check "the 100 KB message now fits" grep -q '250 2.0.0 Ok: queued' <<<"$out"
check "reload logged" grep -q 'settings reloaded' "$LOG"

begin_subtest "SIGTERM: an idle session gets 421, the daemon stops cleanly"
exec 7<>/dev/tcp/127.0.0.1/$P
read -r -t 5 greet <&7
stop_serve
rc=$?
read -r -t 5 bye <&7
exec 7<&-
check "exit 0" [ $rc -eq 0 ]
check "421 to the idle session" grep -q '^421 4.3.2' <<<"$bye"
check "status without the daemon still prints the spool" bash -c "'$MV' --archive '$A' --key-file '$A.key' status | grep -qx 'spool: 0'"
check "the log names no address" bash -c "! grep -E '@corp.test|@archive.test' '$LOG'"

finish
