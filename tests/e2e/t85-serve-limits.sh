#!/bin/bash
# SPDX-License-Identifier: MIT
# The daemon's session limits and trust settings: sessions at once, errors
# per session, the command timeout, client networks, LMTP on a UNIX
# socket, and client certificates from a configured CA that declare a
# source kind (swaks with and without a certificate).
. "$(dirname "$0")/lib.sh"
require_prereq swaks
RAW="python3 $ROOT/tests/e2e/smtpraw.py"
A=$WORK/a
new_archive "$A"
LOG=$WORK/serve.log
P=$(free_port)
N=$(free_port)
G=$(free_port)
SOCK=$WORK/lmtp.sock

# a CA, the server's certificate, and a client certificate it signed
cd "$WORK" || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca >/dev/null 2>&1
openssl req -x509 -newkey rsa:2048 -nodes -keyout srv.key -out srv.pem -days 2 -subj /CN=archive.test >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -keyout cli.key -out cli.csr -subj /CN=exchange.corp.test >/dev/null 2>&1
openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem -days 2 >/dev/null 2>&1
openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -days 2 -subj /CN=exchange.corp.test >/dev/null 2>&1
cd - >/dev/null || exit 1

cat >"$WORK/serve.conf" <<CONF
[serve]
clients = 127.0.0.1
report_senders = journal@corp.test

[limits]
sessions = 3
errors = 3
command_timeout = 2s

[tls]
cert = $WORK/srv.pem
key = $WORK/srv.key
client_ca = $WORK/ca.pem
client_names = exchange.corp.test=exchange-journal

[listener smtp]
listen = 127.0.0.1:$P

[listener v6only]
listen = [::1]:$N

[listener lmtp]
protocol = lmtp
listen = unix:$SOCK

[listener google]
listen = 127.0.0.1:$G
source = google-routing
CONF

begin_subtest "serve starts"
start_serve "$A" "$LOG" --config "$WORK/serve.conf" || { fail "serve"; finish; }
ok

begin_subtest "past the error limit (3 allowed): 421 and the session closes"
out=$($RAW 127.0.0.1:$P 'EHLO x\r\n' '@1' 'BOGUS\r\n' '@1' 'NOPE\r\n' '@1' 'WHAT\r\n' '@1' 'MORE\r\n' '@2')
check "500 then 421" grep -q '^421 4.7.0' <<<"$out"
check "closed" grep -q '(closed)' <<<"$out"

begin_subtest "idle past command_timeout: 421 4.4.2"
out=$($RAW 127.0.0.1:$P 'EHLO x\r\n' '@1' '@1')
check "timeout answered" grep -q '^421 4.4.2' <<<"$out"

begin_subtest "sessions at once: the one over the limit gets 421 4.7.0"
exec 5<>/dev/tcp/127.0.0.1/$P 6<>/dev/tcp/127.0.0.1/$P 7<>/dev/tcp/127.0.0.1/$P
sleep 0.3
out=$($RAW 127.0.0.1:$P '@1')
exec 5<&- 6<&- 7<&-
check "421 4.7.0 too many sessions" grep -q '^421 4.7.0' <<<"$out"
sleep 0.5

begin_subtest "client networks: ::1 is not allowed"
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.connect(("::1", '"$N"'))' 2>/dev/null; then
    out=$($RAW "::1:$N" '@1' 2>&1)
    check "554 5.7.1" grep -q '^554 5.7.1' <<<"$out"
else
    echo "# skip: no IPv6 loopback here"
fi

begin_subtest "LMTP on a UNIX socket"
printf 'Subject: over unix\r\nMessage-ID: <unix@corp.test>\r\n\r\nhi\r\n' >"$WORK/m1"
out=$(swaks --socket "$SOCK" --protocol LMTP --from a@corp.test --to 'x@archive.test,y@archive.test' \
    --data "$WORK/m1" 2>&1)
check "one 250 per recipient" [ "$(grep -c '<-  250 2.1.5 <.*> Ok' <<<"$out")" -eq 2 ]

begin_subtest "a client certificate from the CA declares exchange-journal"
python3 - "$WORK/report.eml" <<'PY'
import sys
inner = b"From: a@corp.test\r\nSubject: certified\r\nMessage-ID: <cert@corp.test>\r\n\r\nbody\r\n"
open(sys.argv[1] + ".inner", "wb").write(inner)
open(sys.argv[1], "wb").write(
    b"From: journal@corp.test\r\nX-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\nSender: a@corp.test\r\nBcc: hidden@corp.test\r\n"
    b"\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--b--\r\n")
PY
want=$(sha256sum <"$WORK/report.eml.inner" | cut -d' ' -f1)
out=$(swaks --server 127.0.0.1 --port "$P" -tls --tls-cert "$WORK/cli.pem" --tls-key "$WORK/cli.key" \
    --from journal@corp.test --to archive@archive.test --data "$WORK/report.eml" 2>&1)
check "250 over TLS with the certificate" grep -q '250 2.0.0 Ok: queued' <<<"$out"
for _ in $(seq 1 50); do "$MV" --archive "$A" status | grep -qx 'spool: 0' && break; sleep 0.1; done
mvk "$A" list --format json >"$WORK/l.json"
s=$(python3 -c 'import json,sys; print([m["serial"] for m in json.load(open(sys.argv[1])) if m["sha256"]==sys.argv[2]][0])' "$WORK/l.json" "$want" 2>/dev/null)
check "unwrapped: the message is the original" [ -n "$s" ]
check "the hidden Bcc believed" bash -c "'$MV' --archive '$A' show '$s' --format json | grep -q 'bcc <hidden@corp.test>'"
check "the certificate is recorded" bash -c "'$MV' --archive '$A' show '$s' | grep -q 'client-cert=exchange.corp.test'"
out=$(swaks --server 127.0.0.1 --port "$P" -tls --tls-cert "$WORK/rogue.pem" --tls-key "$WORK/rogue.key" \
    --from journal@corp.test --to archive@archive.test --data "$WORK/report.eml" 2>&1)
check "a self-signed certificate with the same name is not believed" \
    bash -c "'$MV' --archive '$A' list --format json | python3 -c 'import json,sys; sys.exit(0 if sum(1 for m in json.load(sys.stdin) if m[\"sha256\"]==\"$want\")==1 else 1)'"

begin_subtest "report_senders: a report from another MAIL FROM is not believed"
sed 's/Sender: a@corp.test/Sender: b@corp.test/; s/Bcc: hidden@corp.test/Bcc: other@corp.test/' "$WORK/report.eml" >"$WORK/report2.eml"
out=$(swaks --server 127.0.0.1 --port "$P" -tls --tls-cert "$WORK/cli.pem" --tls-key "$WORK/cli.key" \
    --from intruder@corp.test --to archive@archive.test --data "$WORK/report2.eml" 2>&1)
check "accepted (evidence is never refused)" grep -q '250 2.0.0 Ok: queued' <<<"$out"
for _ in $(seq 1 50); do "$MV" --archive "$A" status | grep -qx 'spool: 0' && break; sleep 0.1; done
s=$(mvk "$A" list --format json | python3 -c 'import json,sys; print(max(m["serial"] for m in json.load(sys.stdin)))')
j=$(mvk "$A" show "$s" --format json)
check "its Bcc is not believed" bash -c "! grep -q 'bcc <other@corp.test>' <<<'$j'"
check "a note says why" grep -q 'not listed in report_senders' <<<"$j"

begin_subtest "google-routing: X-Gm-Original-To is believed only from that source"
printf 'X-Gm-Original-To: ceo@corp.test\r\nX-Gm-Original-To: cfo@corp.test\r\nSubject: routed\r\nMessage-ID: <gm@corp.test>\r\n\r\nhi\r\n' >"$WORK/gm"
printf 'X-Gm-Original-To: fake@corp.test\r\nSubject: not routed\r\nMessage-ID: <gm2@corp.test>\r\n\r\nhi\r\n' >"$WORK/gm2"
swaks --server 127.0.0.1 --port "$G" --from g@corp.test --to archive@archive.test --data "$WORK/gm" >/dev/null 2>&1
swaks --server 127.0.0.1 --port "$P" --from g@corp.test --to archive@archive.test --data "$WORK/gm2" >/dev/null 2>&1
for _ in $(seq 1 50); do "$MV" --archive "$A" status | grep -qx 'spool: 0' && break; sleep 0.1; done
mvk "$A" list --format json >"$WORK/l2.json"
sg=$(python3 -c 'import json,sys; print([m["serial"] for m in json.load(open(sys.argv[1])) if (m["message_id"] or "").strip("<>")==sys.argv[2]][0])' "$WORK/l2.json" gm@corp.test)
sg2=$(python3 -c 'import json,sys; print([m["serial"] for m in json.load(open(sys.argv[1])) if (m["message_id"] or "").strip("<>")==sys.argv[2]][0])' "$WORK/l2.json" gm2@corp.test)
j=$(mvk "$A" show "$sg" --format json)
check "both original recipients recorded" bash -c "grep -q 'original-to <ceo@corp.test>' <<<'$j' && grep -q 'original-to <cfo@corp.test>' <<<'$j'"
j=$(mvk "$A" show "$sg2" --format json)
check "from a plain listener the header is not believed" bash -c "! grep -q 'original-to' <<<'$j'"

begin_subtest "require_client_cert: no certificate, no mail"
stop_serve
sed -i 's/^\[tls\]$/[tls]\nrequire_client_cert = yes/' "$WORK/serve.conf"
start_serve "$A" "$LOG" --config "$WORK/serve.conf" || { fail "serve"; finish; }
out=$(swaks --server 127.0.0.1 --port "$P" -tls --from a@corp.test --to archive@archive.test --data "$WORK/m1" 2>&1)
check "without a certificate: refused" bash -c "! grep -q '250 2.0.0 Ok: queued' <<<'$out'"
out=$($RAW 127.0.0.1:$P 'EHLO x\r\n' '@1' 'MAIL FROM:<a@corp.test>\r\n' '@1')
check "MAIL before STARTTLS: 530" grep -q '^530 5.7.0' <<<"$out"
out=$(swaks --server 127.0.0.1 --port "$P" -tls --tls-cert "$WORK/cli.pem" --tls-key "$WORK/cli.key" \
    --from a@corp.test --to archive@archive.test --data "$WORK/m1" 2>&1)
check "with the CA's certificate: 250" grep -q '250 2.0.0 Ok: queued' <<<"$out"
check "stops cleanly" stop_serve
finish
