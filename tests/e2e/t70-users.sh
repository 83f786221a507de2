#!/bin/bash
# SPDX-License-Identifier: MIT
# Users and roles (docs/roles.md): the creator holds every role, users
# are added, changed and removed, the last admin stays, refusals exit 77
# and are audited; then the same commands through a running daemon's
# control socket (docs/protocol.md), as root and as another uid.
. "$(dirname "$0")/lib.sh"

A=$WORK/a
new_archive "$A"
$GEN --out "$WORK/mail" --count 12 --seed 70 >/dev/null 2>&1
mvk "$A" import --quiet "$WORK/mail" >/dev/null
ME=$(id -un)
rc_of() { "$@" >/dev/null 2>&1; echo $?; }

begin_subtest "the creator holds every role"
out=$(mvk "$A" users list --format json)
check "users list names the creator, with all four roles" python3 -c '
import json,sys; d=json.loads(sys.argv[1])
assert len(d)==1 and d[0]["name"]==sys.argv[2] and d[0]["by"]=="init", d
assert d[0]["roles"]==["admin","officer","legal","auditor"], d' "$out" "$ME"
for c in "list" "show 1" "stats" "audit" "verify" "keys list" "users list"; do
    check "$c" [ "$(rc_of mvk "$A" $c)" -eq 0 ]
done

begin_subtest "add, set, remove"
check "add nobody as officer" [ "$(rc_of mvk "$A" users add nobody --role officer)" -eq 0 ]
check "add again: exists (73)" [ "$(rc_of mvk "$A" users add nobody --role officer)" -eq 73 ]
check "a bad name (64)" [ "$(rc_of mvk "$A" users add 'Not-A-Login' --role officer)" -eq 64 ]
check "an unknown role (64)" [ "$(rc_of mvk "$A" users add x --role wizard)" -eq 64 ]
check "add without --role (64)" [ "$(rc_of mvk "$A" users add x)" -eq 64 ]
check "set an unknown user (66)" [ "$(rc_of mvk "$A" users set ghost --role legal)" -eq 66 ]
check "set nobody to auditor" [ "$(rc_of mvk "$A" users set nobody --role auditor)" -eq 0 ]
check "uid:N names a uid without a login" [ "$(rc_of mvk "$A" users add uid:4000000 --role legal)" -eq 0 ]
check "remove it" [ "$(rc_of mvk "$A" users remove uid:4000000)" -eq 0 ]
out=$(mvk "$A" users list --format json)
check "list json: two users, nobody is an auditor" python3 -c '
import json,sys; d=json.loads(sys.argv[1]); n={u["name"]:u for u in d}
assert len(d)==2 and n["nobody"]["roles"]==["auditor"] and n["nobody"]["by"]==sys.argv[2], d' "$out" "$ME"
check "text list" grep -q '^nobody  *auditor ' <<<"$(mvk "$A" users list)"

begin_subtest "the last admin stays"
err=$(mvk "$A" users remove "$ME" 2>&1)
check "remove the only admin: 77" [ $? -eq 77 ]
check "... with a clear message" grep -q "last admin" <<<"$err"
check "demote the only admin: 77" [ "$(rc_of mvk "$A" users set "$ME" --role officer)" -eq 77 ]
check "a second admin" [ "$(rc_of mvk "$A" users add bin --role admin)" -eq 0 ]
check "now one may go" [ "$(rc_of mvk "$A" users remove bin)" -eq 0 ]
check "and the last one still stays" [ "$(rc_of mvk "$A" users remove "$ME")" -eq 77 ]

begin_subtest "refusals as another uid (in-process)"
RUNAS=""
if [ "$(id -u)" -ne 0 ]; then
    echo "# skip: not root, cannot act as another uid (runuser)"
elif ! command -v runuser >/dev/null; then
    echo "# skip: runuser not installed"
else
    RUNAS="runuser -u nobody --"
    # nobody must reach the archive and hold a key file of its own
    chmod o+x "$WORK"
    cp "$A.key" "$WORK/nobody.key"
    chown nobody "$WORK/nobody.key"
    chown -R nobody "$A"
    asnobody() { $RUNAS "$MV" --archive "$A" --key-file "$WORK/nobody.key" "$@"; }
    err=$(asnobody list 2>&1)
    check "list without officer: 77" [ $? -eq 77 ]
    check "... says which role is missing" grep -q "mailvault list: user 'nobody' lacks the role officer" <<<"$err"
    check "show: 77" [ "$(rc_of asnobody show 1)" -eq 77 ]
    check "users add without admin: 77" [ "$(rc_of asnobody users add x --role officer)" -eq 77 ]
    check "keys list without admin: 77" [ "$(rc_of asnobody keys list)" -eq 77 ]
    check "an auditor reads the audit trail" [ "$(rc_of asnobody audit)" -eq 0 ]
    check "an auditor verifies" [ "$(rc_of asnobody verify)" -eq 0 ]
    check "an auditor lists the users" [ "$(rc_of asnobody users list)" -eq 0 ]
    check "any role: stats" [ "$(rc_of asnobody stats)" -eq 0 ]
    out=$(mvk "$A" audit --format json)
    check "refusals are audited under the caller's name" python3 -c '
import json,sys; d=json.loads(sys.argv[1])
r=[x for x in d if x["user"]=="nobody" and x["result"].startswith("refused")]
assert {x["command"] for x in r}>={"list","show","users","keys"}, r
assert all(x["status"]!=0 for x in r)
assert any(x["user"]=="nobody" and x["command"]=="audit" and x["result"]=="ok" for x in d)' "$out"
fi

begin_subtest "audit records"
out=$(mvk "$A" audit --format json)
check "every record carries a user" python3 -c '
import json,sys; d=json.loads(sys.argv[1]); assert all(x["user"] for x in d)' "$out"

begin_subtest "through the daemon"
if ! "$MV" serve --help >/dev/null 2>&1; then
    echo "# skip: mailvault serve does not run in this build"
    finish
fi
# What the commands print in-process, to compare with the daemon's answers.
LIST=$(mvk "$A" list)
RAW1=$(mvk "$A" show 1 --raw | sha256sum)
LOG=$WORK/serve.log
P=$(free_port)
if start_serve "$A" "$LOG" --smtp "127.0.0.1:$P" --control-mode 0666; then ok "serve started"; else
    fail "serve did not start"; cat "$LOG"; finish; fi
for i in $(seq 1 100); do [ -S "$A/mailvault.sock" ] && break; sleep 0.05; done
check "the control socket is ARCHIVE/mailvault.sock" [ -S "$A/mailvault.sock" ]
chmod o+x "$A" # other users reach the socket through the archive directory
check "list needs no key: the daemon runs it" [ "$("$MV" --archive "$A" list)" = "$LIST" ]
check "a key option is not sent (and not needed)" [ "$("$MV" --archive "$A" --key-file /nonexistent list)" = "$LIST" ]
check "show --raw is byte-exact" [ "$("$MV" --archive "$A" show 1 --raw | sha256sum)" = "$RAW1" ]
check "exit codes come back (66 for a missing serial)" [ "$(rc_of "$MV" --archive "$A" show 999)" -eq 66 ]
check "usage errors come back (64)" [ "$(rc_of "$MV" --archive "$A" list --limit x)" -eq 64 ]
err=$("$MV" --archive "$A" import "$WORK/mail" 2>&1)
check "import is refused beside the daemon: 75" [ $? -eq 75 ]
check "... saying why" grep -q "served by a running daemon; stop it first" <<<"$err"
check "keys is refused beside the daemon: 75" [ "$(rc_of "$MV" --archive "$A" keys list)" -eq 75 ]
check "--help is answered locally" bash -c "\"$MV\" --archive '$A' users --help | grep -q '^usage: mailvault users'"
check "MAILVAULT_SOCKET finds the daemon" bash -c "MAILVAULT_SOCKET='$A/mailvault.sock' \"$MV\" --archive /nonexistent stats >/dev/null"
check "--socket finds the daemon" [ "$(rc_of "$MV" --archive /nonexistent --socket "$A/mailvault.sock" stats)" -eq 0 ]
check "users add through the daemon" [ "$(rc_of "$MV" --archive "$A" users add daemon --role legal)" -eq 0 ]
check "... and remove" [ "$(rc_of "$MV" --archive "$A" users remove daemon)" -eq 0 ]
pids=()
for i in 1 2 3 4 5 6 7 8; do
    ("$MV" --archive "$A" list >"$WORK/par.$i" 2>&1; echo $? >"$WORK/par.$i.rc") &
    pids+=($!)
done
wait "${pids[@]}"
okpar=1
for i in 1 2 3 4 5 6 7 8; do
    [ "$(cat "$WORK/par.$i.rc")" = 0 ] && [ "$(cat "$WORK/par.$i")" = "$LIST" ] || okpar=0
done
check "8 requests at once, each with its own output" [ $okpar -eq 1 ]
reply=$(python3 - "$A/mailvault.sock" <<'EOF'
import socket, sys, struct
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
# the last frame is X with the exit code
assert data[-9:-4] == b"X\x00\x00\x00\x04", data
print(struct.unpack(">I", data[-4:])[0])
EOF
)
check "a malformed request gets 64, and the daemon lives on" [ "$reply" = 64 ]
check "... still serving" [ "$("$MV" --archive "$A" list)" = "$LIST" ]
if [ -n "$RUNAS" ]; then
    asclient() { $RUNAS "$MV" --archive "$A" "$@"; }
    err=$(asclient list 2>&1)
    check "another uid without officer: 77" [ $? -eq 77 ]
    check "... named by the kernel (SO_PEERCRED)" grep -q "user 'nobody' lacks the role officer" <<<"$err"
    check "an auditor reads the audit trail through the daemon" [ "$(rc_of asclient audit)" -eq 0 ]
    check "--archive=DIR is not sent either" [ "$(rc_of asclient --archive="$A" stats)" -eq 0 ]
    "$MV" --archive "$A" users set nobody --role officer,auditor >/dev/null
    check "given officer, it lists" [ "$(asclient list)" = "$LIST" ]
    out=$("$MV" --archive "$A" audit --format json)
    check "the daemon audits the refusal under the client's name" python3 -c '
import json,sys; d=json.loads(sys.argv[1])
assert any(x["user"]=="nobody" and x["command"]=="list" and x["result"].startswith("refused") for x in d[-20:]), d[-20:]' "$out"
fi
stop_serve
check "after the daemon stops, commands open the archive themselves" [ "$(mvk "$A" list)" = "$LIST" ]
if start_serve "$A" "$LOG" --smtp "127.0.0.1:$P" --control-mode 0666; then
    for i in $(seq 1 100); do [ -S "$A/mailvault.sock" ] && break; sleep 0.05; done
    kill -9 "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null
    check "a stale socket after kill -9: commands run in-process" [ "$(mvk "$A" list)" = "$LIST" ]
else
    fail "serve did not start again"
fi
finish
