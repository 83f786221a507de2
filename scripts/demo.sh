#!/bin/bash
# SPDX-License-Identifier: MIT
# demo.sh - `make demo`: a local archive under ./demo with a generated key,
# fed generated sample mail, then a look at what it holds.
set -euo pipefail
cd "$(dirname "$0")/.."
MV="$PWD/${MV_BUILD:-build}/mailvault"
D="$PWD/demo"
rm -rf "$D"
mkdir -p "$D"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "generate sample mail (mbox, Maildir and single files; some duplicates and some broken mail)"
python3 tests/gen/mvgen.py --out "$D/mail" --count 500 --seed 7 --layout mixed --manifest "$D/manifest.jsonl"

say "create an archive with a fresh random key"
run "$MV" init --archive "$D/archive" --new-key-file "$D/archive.key"
export MAILVAULT_ARCHIVE="$D/archive" MAILVAULT_KEY_FILE="$D/archive.key"

say "import it"
run "$MV" import "$D/mail"

say "import it again: nothing is added"
run "$MV" import "$D/mail"

say "what the archive holds"
run "$MV" stats
run "$MV" list --limit 10

serial=$("$MV" list --format json | python3 -c 'import json,sys; ms=json.load(sys.stdin); print(max(ms, key=lambda m: m["copies"])["serial"])')
say "a message that arrived more than once: one message, several copies"
run "$MV" show "$serial"

say "its exact bytes, as received (first lines)"
"$MV" show "$serial" --raw | head -n 12

say "the keys"
run "$MV" keys list

say "the audit trail"
run "$MV" audit --limit 8

say "nothing readable at rest"
printf 'searching %s for the subject of message %s ... ' "$D/archive" "$serial"
subj=$("$MV" show "$serial" --format json | python3 -c 'import json,sys; print((json.load(sys.stdin)["subject"] or "x")[:20])')
if grep -rqF -- "$subj" "$D/archive"; then echo "FOUND (this is a bug)"; exit 1; else echo "not found"; fi
printf '\nThe archive is in %s, its key in %s.\n' "$D/archive" "$D/archive.key"
printf 'Try: MAILVAULT_ARCHIVE=%s MAILVAULT_KEY_FILE=%s %s show 1\n' "$D/archive" "$D/archive.key" "$MV"
