#!/bin/bash
# SPDX-License-Identifier: MIT
# No plaintext at rest: canaries planted in subjects, bodies (plain, base64,
# quoted-printable), addresses, attachment names and Message-IDs are nowhere
# in the archive directory or in TMPDIR after import and after reading.
. "$(dirname "$0")/lib.sh"

C1=zqxcanaryalpha
C2=vvkcanarybravo
A=$WORK/a
begin_subtest "import mail carrying canaries"
$GEN --out "$WORK/mail" --count 300 --seed 20 --layout mixed --canary $C1 --canary $C2 \
    --manifest "$WORK/manifest" 2>/dev/null
check "the generator planted them in the mail" grep -rqa $C1 "$WORK/mail"
new_archive "$A"
mvk "$A" import --quiet "$WORK/mail" >/dev/null
check "import succeeds" [ $? -eq 0 ]
check "the archive holds them (show finds the subject)" bash -c "\"$MV\" --archive '$A' --key-file '$A.key' list | grep -q $C1"

begin_subtest "after reading, nothing in the clear on disk"
for s in 1 2 3; do mvk "$A" show $s >/dev/null; mvk "$A" show $s --raw >/dev/null; done
mvk "$A" audit >/dev/null
check "archive directory and TMPDIR hold no canary in any form" \
    python3 "$ROOT/tests/e2e/canary_scan.py" --canary $C1 --canary $C2 "$A" "$TMPDIR"

begin_subtest "a crashed import leaves nothing in the clear either"
B=$WORK/b
new_archive "$B"
"$MV" --archive "$B" --key-file "$B.key" import --quiet "$WORK/mail" >/dev/null 2>&1 &
pid=$!
sleep 0.3
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
check "spool and store after kill -9 hold no canary" \
    python3 "$ROOT/tests/e2e/canary_scan.py" --canary $C1 --canary $C2 "$B" "$TMPDIR"
finish
