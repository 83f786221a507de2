#!/bin/bash
# SPDX-License-Identifier: MIT
# Users' conventions: --help everywhere, usage errors exit 64, JSON output
# parses, the audit trail records every command.
. "$(dirname "$0")/lib.sh"

begin_subtest "help"
check "mailvault --help" bash -c "\"$MV\" --help | grep -q '^commands:'"
for c in init import list show stats keys audit verify; do
    check "mailvault $c --help" bash -c "\"$MV\" $c --help | grep -q '^usage: mailvault $c'"
done
check "mailvault help import" bash -c "\"$MV\" help import | grep -q '^usage: mailvault import'"
check "--version" bash -c "\"$MV\" --version | grep -q '^mailvault '"

begin_subtest "usage errors exit 64"
for args in "" "nosuchcommand" "show" "show abc" "list --limit x" "import" "keys" "keys frobnicate" "init --retention 0"; do
    "$MV" $args >/dev/null 2>&1
    rc=$?
    check "mailvault $args -> $rc" [ $rc -eq 64 ]
done

begin_subtest "environment variables name the archive and the key file"
A=$WORK/a
new_archive "$A"
check "MAILVAULT_ARCHIVE + MAILVAULT_KEY_FILE" bash -c "MAILVAULT_ARCHIVE='$A' MAILVAULT_KEY_FILE='$A.key' \"$MV\" stats >/dev/null"
check "init refuses an existing archive (73)" bash -c "\"$MV\" init --archive '$A' --key-file '$A.key' >/dev/null 2>&1; [ \$? -eq 73 ]"
check "global options may follow the command" bash -c "\"$MV\" stats --archive '$A' --key-file '$A.key' >/dev/null"

begin_subtest "audit trail"
mvk "$A" show 42 >/dev/null 2>&1
out=$(mvk "$A" audit --format json)
check "audit json parses and has the init" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d[0]["command"]=="init", d' "$out"
check "a failed command is audited with its result" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert any(r["command"]=="show" and r["status"]!=0 for r in d), d' "$out"
check "records name the OS user" python3 -c 'import json,sys,getpass; d=json.loads(sys.argv[1]); assert all(r["user"]==getpass.getuser() for r in d)' "$out"
finish
