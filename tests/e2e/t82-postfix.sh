#!/bin/bash
# SPDX-License-Identifier: MIT
# A real Postfix, private to this test (its own configuration and queue
# directories, loopback ports), journals to mailvault with the
# recipient_bcc_maps sub-address recipe (archive+user=domain@...), first
# over LMTP, then over SMTP.  Every message sent through Postfix must be
# archived once, with its envelope recipients decoded.
. "$(dirname "$0")/lib.sh"
if [ ! -x /usr/sbin/postfix ] || [ ! -d /usr/lib/postfix/sbin ]; then
    echo "# skip: Postfix is not installed (Debian package postfix; scripts/deps.sh check installs it as root)"
    finish
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "# skip: a private Postfix instance needs root (it runs its daemons as user postfix)"
    finish
fi
require_prereq swaks
id postfix >/dev/null 2>&1 || { echo "# skip: no user postfix (reinstall the postfix package)"; finish; }
A=$WORK/a
new_archive "$A"
LOG=$WORK/serve.log
L=$(free_port)
S=$(free_port)
PP=$(free_port)
PF=$WORK/pf
# the postfix user must reach its queue under $WORK
chmod 755 "$WORK"
mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
chown postfix "$PF/data"
cat >"$PF/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.corp.test
mydomain = corp.test
myorigin = corp.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = corp.test, archive.test
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
transport_maps = texthash:$PF/etc/transport
recipient_bcc_maps = regexp:$PF/etc/bcc
default_transport = discard
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
local_recipient_maps =
alias_maps =
alias_database =
biff = no
smtputf8_enable = no
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
syslog_name = postfix-mvtest
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
CONF
cat >"$PF/etc/master.cf" <<CONF
127.0.0.1:$PP inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
lmtp      unix - - n - - lmtp
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
CONF
printf 'corp.test discard:\narchive.test lmtp:inet:127.0.0.1:%s\n' "$L" >"$PF/etc/transport"
printf '/^(.*)@(corp\\.test)$/ archive+${1}=${2}@archive.test\n' >"$PF/etc/bcc"
pf() { /usr/sbin/postfix -c "$PF/etc" "$@"; }
cleanup_pf() { pf stop >/dev/null 2>&1; [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup_pf EXIT

begin_subtest "private Postfix and mailvault start"
start_serve "$A" "$LOG" --source postfix-bcc --lmtp 127.0.0.1:$L --smtp 127.0.0.1:$S \
    || { fail "serve"; finish; }
if ! pf start >"$WORK/pf.out" 2>&1; then
    fail "postfix start: $(tail -3 "$WORK/pf.out" "$PF/maillog" 2>/dev/null)"
    finish
fi
ok
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$PP) 2>/dev/null && break; sleep 0.1; done

# send LEG N: N messages into Postfix, each to 1-3 corp.test recipients
send() {
    local leg=$1 n=$2 i
    for i in $(seq 1 "$n"); do
        local to="alice@corp.test"
        [ $((i % 2)) -eq 0 ] && to="$to,bob@corp.test"
        [ $((i % 3)) -eq 0 ] && to="$to,carol+tax@corp.test"
        echo "<$leg-$i@corp.test> $to" >>"$WORK/sent"
        timeout 30 swaks --server 127.0.0.1 --port "$PP" --from sender@corp.test --to "$to" \
            --header "Message-ID: <$leg-$i@corp.test>" --header "Subject: leg $leg message $i" \
            --body "message $i of leg $leg" >"$WORK/swaks.$leg.$i" 2>&1 \
            || echo "# swaks to postfix failed: $(tail -2 "$WORK/swaks.$leg.$i")"
    done
}
drained() {
    local i
    for i in $(seq 1 300); do
        if /usr/sbin/postqueue -c "$PF/etc" -p 2>/dev/null | grep -q 'Mail queue is empty' &&
            "$MV" --archive "$A" status | grep -qx 'spool: 0'; then return 0; fi
        sleep 0.1
    done
    return 1
}

begin_subtest "Postfix relays over LMTP"
send lmtp 12
check "Postfix queue and mailvault spool drain" drained

begin_subtest "Postfix relays over SMTP"
printf 'corp.test discard:\narchive.test smtp:[127.0.0.1]:%s\n' "$S" >"$PF/etc/transport"
pf reload >/dev/null 2>&1
sleep 1
send smtp 12
check "Postfix queue and mailvault spool drain" drained

begin_subtest "each message archived once, with its envelope recipients decoded"
mvk "$A" list --format json >"$WORK/list.json"
python3 - "$WORK/sent" "$WORK/list.json" "$MV" "$A" <<'PY'
import json, subprocess, sys
sent = {}
for line in open(sys.argv[1]):
    mid, to = line.split()
    sent[mid] = sorted(to.split(","))
msgs = json.load(open(sys.argv[2]))
by_mid = {}
for m in msgs:
    by_mid.setdefault((m["message_id"] or "").strip("<>"), []).append(m["serial"])
bad = 0
for mid, want in sent.items():
    serials = by_mid.get(mid.strip("<>"), [])
    if len(serials) != 1:
        print(f"# {mid}: archived {len(serials)} times"); bad += 1; continue
    d = json.loads(subprocess.check_output([sys.argv[3], "--archive", sys.argv[4], "show",
                                            str(serials[0]), "--format", "json"]))
    got = sorted(r.split(" ", 1)[1].strip("<>") for c in d["copies"] for r in c["envelope_to"]
                 if r.startswith("decoded "))
    if got != want:
        print(f"# {mid}: envelope {got}, sent to {want}"); bad += 1
print(f"# {len(sent)} sent through Postfix, {len(msgs)} archived, {bad} wrong")
sys.exit(1 if bad else 0)
PY
check "all archived once with their recipients" [ $? -eq 0 ]
check "LMTP and SMTP both used" bash -c "grep -q 'relay=127.0.0.1\\[127.0.0.1\\]:$L' '$PF/maillog' && grep -q 'relay=127.0.0.1\\[127.0.0.1\\]:$S' '$PF/maillog'"
pf stop >/dev/null 2>&1
check "mailvault stops cleanly" stop_serve
finish
