# SPDX-License-Identifier: MIT
# lib.sh - a small TAP harness for the end-to-end scripts.
#   begin_subtest NAME; ok / fail MSG; require_prereq CMD; finish
# Each script gets a private $WORK directory and its own TMPDIR inside it,
# so temporary files can be searched for canaries.
set -u
MV=${MV_BIN:?MV_BIN must point at the mailvault binary}
ROOT=${MV_ROOT:?}
GEN="python3 $ROOT/tests/gen/mvgen.py"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mve2e.XXXXXX")
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
T_PASS=0
T_FAIL=0
T_NUM=0
T_NAME=""

begin_subtest() { T_NAME="$*"; }
ok() {
    T_NUM=$((T_NUM + 1)); T_PASS=$((T_PASS + 1))
    echo "ok $T_NUM - $T_NAME${1:+: $1}"
}
fail() {
    T_NUM=$((T_NUM + 1)); T_FAIL=$((T_FAIL + 1))
    echo "not ok $T_NUM - $T_NAME: $*"
}
check() { # check "description" command...
    local d=$1; shift
    if "$@"; then ok "$d"; else fail "$d"; fi
}
require_prereq() {
    command -v "$1" >/dev/null 2>&1 || { echo "# skip: $1 not installed"; finish; }
}
finish() {
    echo "1..$T_NUM"
    echo "$T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ]
    exit $?
}

# new_archive DIR: an archive with a fresh key file DIR.key
new_archive() {
    "$MV" init --archive "$1" --new-key-file "$1.key" >/dev/null
}
# (mvk is a shell function: to kill a background mailvault, start "$MV"
# itself, or the kill reaches only the subshell.)
mvk() { # mvk DIR args... : run mailvault on archive DIR with its key
    local a=$1; shift
    "$MV" --archive "$a" --key-file "$a.key" "$@"
}

# free_port: a TCP port on 127.0.0.1 nothing listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
# start_serve ARCHIVE LOG ARGS...: start `mailvault serve` in the
# background; waits until it listens (its pid file).  Sets SERVE_PID.
start_serve() {
    local a=$1 logf=$2; shift 2
    rm -f "$a.pid"
    "$MV" serve --archive "$a" --key-file "$a.key" --pid-file "$a.pid" "$@" >>"$logf" 2>&1 &
    SERVE_PID=$!
    local i
    for i in $(seq 1 200); do
        [ -s "$a.pid" ] && return 0
        kill -0 "$SERVE_PID" 2>/dev/null || { echo "# serve exited:"; tail -5 "$logf" | sed 's/^/#   /'; return 1; }
        sleep 0.05
    done
    echo "# serve did not start in 10 s"; return 1
}
# stop_serve: SIGTERM, wait; returns serve's exit code.
stop_serve() {
    kill -TERM "$SERVE_PID" 2>/dev/null
    wait "$SERVE_PID"
}
