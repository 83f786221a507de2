#!/bin/bash
# SPDX-License-Identifier: MIT
# demo.sh - `make demo`: a local archive under ./demo with a generated key,
# fed generated sample mail (Exchange journal reports among it) over SMTP
# through the real daemon, as an organisation's mail servers would; then a
# look at what it holds.
set -euo pipefail
cd "$(dirname "$0")/.."
MV="$PWD/${MV_BUILD:-build}/mailvault"
D="$PWD/demo"
[ -f "$D/archive.pid" ] && kill "$(cat "$D/archive.pid")" 2>/dev/null && sleep 1
rm -rf "$D"
mkdir -p "$D"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

say "generate sample mail (some duplicates, some broken) and Exchange journal reports"
python3 tests/gen/mvgen.py --out "$D/mail" --count 400 --seed 7 --layout eml --manifest "$D/manifest.jsonl"
python3 tests/gen/mvjournal.py --out "$D/journal" --seed 7 --dl-size 40 >/dev/null
echo "$(find "$D/mail" -type f | wc -l) messages, $(find "$D/journal" -name '*.eml' | wc -l) journal reports"

say "create an archive with a fresh random key"
run "$MV" init --archive "$D/archive" --new-key-file "$D/archive.key"
export MAILVAULT_ARCHIVE="$D/archive" MAILVAULT_KEY_FILE="$D/archive.key"

SMTP=$(port)
JOURNAL=$(port)
cat >"$D/serve.conf" <<CONF
# mailvault serve settings for the demo (every key: docs/config.md)
[archive]
dir = $D/archive
key_file = $D/archive.key

[serve]
clients = 127.0.0.0/8 ::1

[listener smtp]
listen = 127.0.0.1:$SMTP
source = plain

[listener journal]
listen = 127.0.0.1:$JOURNAL
source = exchange-journal
CONF
say "start the daemon: plain SMTP on $SMTP, an Exchange journal listener on $JOURNAL"
cat "$D/serve.conf"
"$MV" serve --config "$D/serve.conf" --pid-file "$D/archive.pid" 2>"$D/serve.log" &
for _ in $(seq 1 100); do [ -s "$D/archive.pid" ] && break; sleep 0.1; done
[ -s "$D/archive.pid" ] || { cat "$D/serve.log"; exit 1; }
SERVE=$(cat "$D/archive.pid")
trap 'kill $SERVE 2>/dev/null || true' EXIT

say "mail servers journal to it over SMTP"
run python3 scripts/smtpfeed.py --sessions 4 "127.0.0.1:$SMTP" "$D/mail"
run python3 scripts/smtpfeed.py --sessions 2 --from journal@corp.example "127.0.0.1:$JOURNAL" "$D/journal"

say "while it runs, every command goes through the daemon"
for _ in $(seq 1 100); do "$MV" status | grep -qx 'spool: 0' && break; sleep 0.1; done
run "$MV" status
run "$MV" stats
run "$MV" list --limit 8

# the journal reports went last: of the last messages, the one most often journaled
serial=$("$MV" list --format json | python3 -c '
import json, sys
ms = sorted(json.load(sys.stdin), key=lambda m: m["serial"])[-15:]
print(max(ms, key=lambda m: (m["copies"], -m["serial"]))["serial"])')
say "a message journaled more than once: one message, several copies, each with its envelope"
run "$MV" show "$serial"

say "its exact bytes: the original, unwrapped from the journal report (first lines)"
"$MV" show "$serial" --raw | head -n 10

say "a compliance officer searches (the daemon's indexer made the mail searchable as it came)"
for _ in $(seq 1 100); do "$MV" status | grep -qx 'index lag: 0' && break; sleep 0.1; done
"$MV" status | grep -x 'index lag: [0-9]*'
run "$MV" search --limit 3 '"quarterly report"'
run "$MV" search --count 'invoice AND has:attachment'
run "$MV" search --limit 3 'subject:invoic* -from:example.com date:2015..2024'
# Bcc recipients appear in no header: only the journal reports' envelopes name them
bcc=$(grep -h -m1 '^Bcc: ' "$D"/journal/*.eml | head -n1 | tr -d '\r' | sed 's/^Bcc: //; s/,.*//')
run "$MV" search --limit 3 "bcc:$bcc"

say "stop the daemon (SIGTERM drains sessions)"
kill "$SERVE"
for _ in $(seq 1 100); do kill -0 "$SERVE" 2>/dev/null || break; sleep 0.1; done
tail -n 3 "$D/serve.log"

say "the audit trail"
run "$MV" audit --limit 6

say "legal exports a search as a DAT production, hashed and signed, and anyone can check it"
rm -rf "$D/export.zip"
run "$MV" export 'invoice has:attachment' --as dat --prefix DEMO --matter "Demo v. Example" --out "$D/export.zip"
fpr=$("$MV" keys signing)
run "$MV" verify-export "$D/export.zip" --fingerprint "$fpr"

say "legal places a hold: that mail is kept from any purge, and new mail matching it too"
run "$MV" hold create "Demo v. Example" --query 'invoice' --reason "demo: litigation hold notice"
run "$MV" search --count 'hold:"Demo v. Example"'

say "the auditor keeps a signed tree head outside the archive, and verifies the archive against it"
"$MV" checkpoint | tee "$D/checkpoint.txt"
run "$MV" verify --from-checkpoint "$D/checkpoint.txt"
run "$MV" report holds

say "nothing readable at rest"
printf 'searching %s for the subject of message %s ... ' "$D/archive" "$serial"
subj=$("$MV" show "$serial" --format json | python3 -c 'import json,sys; print((json.load(sys.stdin)["subject"] or "x")[:20])')
if grep -rqF -- "$subj" "$D/archive" "$D/serve.log"; then echo "FOUND (this is a bug)"; exit 1; else echo "not found"; fi
printf '\nThe archive is in %s, its key in %s, the daemon settings in %s.\n' "$D/archive" "$D/archive.key" "$D/serve.conf"
printf 'Try: %s serve --config %s\n     and in another shell: MAILVAULT_ARCHIVE=%s %s status\n' \
    "$MV" "$D/serve.conf" "$D/archive" "$MV"
