#!/bin/bash
# SPDX-License-Identifier: MIT
# Retention, legal holds and purge, on the test build's injectable clock
# (build/tests/mailvault-testclock, MAILVAULT_TEST_NOW): mail expires on the
# right day, held mail survives and is still readable, a released hold lets
# it go, policy changes never shorten retention, a clock set back stops the
# purge, and verify, the index and the reports agree with what happened.
. "$(dirname "$0")/lib.sh"
TC=$ROOT/${MV_BUILD:-build}/tests/mailvault-testclock
[ -x "$TC" ] || { echo "# skip: $TC not built (make check builds it)"; finish; }

A=$WORK/a
at() { # at TIME args...: the test build, at that time, on archive A
    local t=$1; shift
    MAILVAULT_TEST_NOW=$t "$TC" --archive "$A" --key-file "$A.key" "$@"
}
T0=2027-01-10T12:00:00Z
MAILVAULT_TEST_NOW=$T0 "$TC" init --archive "$A" --new-key-file "$A.key" >/dev/null

# mail from three domains: short (30 days), legal (forever), the rest (default)
python3 - "$WORK/mail" <<'EOF'
import sys, os, email.utils
out = sys.argv[1]; os.makedirs(out)
def msg(i, frm, to, subj, body):
    with open(f"{out}/{i:03d}.eml", "w", newline="\r\n") as f:
        f.write(f"From: {frm}\nTo: {to}\nSubject: {subj}\nMessage-ID: <m{i}@t130.test>\n"
                f"Date: {email.utils.format_datetime(email.utils.localtime())}\n\n{body}\n")
for i in range(12):
    msg(i, f"news{i}@promo.example", "ann@corp.test", f"promo {i}", "weekly offers")
for i in range(12, 20):
    msg(i, "counsel@lawfirm.example", "ann@corp.test", f"privileged {i}", "contract dispute")
for i in range(20, 30):
    msg(i, "bob@corp.test", "ann@corp.test", f"lunch {i}", "see you at noon")
for i in range(30, 34):
    msg(i, f"deals{i}@promo.example", "carol@corp.test", f"merger memo {i}", "project falcon")
EOF

begin_subtest "policy: rules choose each message's bucket"
at $T0 policy set promo --keep 30d --domain promo.example >/dev/null
at $T0 policy set legal --keep forever --domain lawfirm.example >/dev/null
at $T0 policy default --keep 2y >/dev/null
check "three rules and the default" [ "$(at $T0 policy list --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["rules"]))')" = 3 ]
at $T0 import --quiet "$WORK/mail" >/dev/null
j=$(at $T0 report retention --format json)
check "report: 16 promo, 8 legal, 10 default" python3 -c '
import json,sys; d={c["class"]:c for c in json.loads(sys.argv[1])["classes"]}
assert d["promo"]["messages"]==16 and d["legal"]["messages"]==8 and d["default"]["messages"]==10, d
assert d["promo"]["next_expiry"]=="2027-03-01T00:00:00Z", d["promo"]
assert d["legal"]["next_expiry"]=="never", d' "$j"
at $T0 policy set promo --keep 10x --domain promo.example >/dev/null 2>&1
check "a bad --keep is a usage error" [ $? -eq 64 ]

begin_subtest "hold: existing mail found by a query"
out=$(at $T0 hold create FALCON-1 --query 'subject:merger' --reason "litigation notice 2027-01-09")
check "holds the 4 merger memos" grep -q 'holds 4 messages' <<<"$out"
check "is:held finds them" [ "$(at $T0 search 'is:held' --count)" = 4 ]
check "hold:FALCON-1 finds them" [ "$(at $T0 search 'hold:FALCON-1' --count)" = 4 ]
at $T0 hold create FALCON-1 --query x --reason again >/dev/null 2>&1
check "a second active matter of that name is refused" [ $? -ne 0 ]
at $T0 hold create NOREASON --query x >/dev/null 2>&1
check "a hold needs a reason" [ $? -eq 64 ]
held=$(at $T0 search 'hold:FALCON-1' --format serials | head -1)
held_sha=$(at $T0 show "$held" --raw | sha256sum)

begin_subtest "hold: new mail matching it is held as it arrives"
python3 - "$WORK/mail2" <<'EOF'
import sys, os
out = sys.argv[1]; os.makedirs(out)
with open(f"{out}/a.eml", "w", newline="\r\n") as f:
    f.write("From: deals99@promo.example\nTo: dan@corp.test\nSubject: merger follow-up\n"
            "Message-ID: <late1@t130.test>\n\nmore falcon\n")
with open(f"{out}/b.eml", "w", newline="\r\n") as f:
    f.write("From: deals98@promo.example\nTo: dan@corp.test\nSubject: unrelated\n"
            "Message-ID: <late2@t130.test>\n\nnothing\n")
EOF
at 2027-01-11T09:00:00Z import --quiet "$WORK/mail2" >/dev/null
check "the new merger mail is held, the other not" [ "$(at 2027-01-11T09:00:01Z search 'hold:FALCON-1' --count)" = 5 ]

begin_subtest "the clock: set back, or jumped ahead, stops the purge"
at 2027-01-09T00:00:00Z purge >"$WORK/p.out" 2>&1
check "a clock behind the archive: refused (75)" bash -c "[ $? -eq 75 ] && grep -q 'behind' '$WORK/p.out'"
at 2027-03-01T00:00:05Z purge >"$WORK/p.out" 2>&1
check "a clock 7 weeks ahead: refused until confirmed (75)" bash -c "[ $? -eq 75 ] && grep -q 'confirm-clock' '$WORK/p.out'"
check "nothing was purged" [ "$(at 2027-03-01T00:00:06Z list | wc -l)" = 36 ]

begin_subtest "purge: on the right day"
out=$(at 2027-02-28T23:59:00Z purge --dry-run --confirm-clock)
check "the day before: nothing has expired" grep -q 'no bucket has expired' <<<"$out"
out=$(at 2027-03-01T00:00:10Z purge --dry-run)
# the promo bucket of February: 16 + the 2 late ones; 5 of them held
check "dry run: 13 promo would go, 5 held" grep -q '13 messages would be purged, 5 kept under legal hold' <<<"$out"
check "a dry run purges nothing" [ "$(at 2027-03-01T00:00:11Z list | wc -l)" = 36 ]
out=$(at 2027-03-01T00:00:20Z purge --format json)
check "purged 13, kept 5 held" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["purged"]==13 and d["held"]==5, d' "$out"
check "list shows the 36 - 13 left" [ "$(at 2027-03-01T00:01:00Z list | wc -l)" = 23 ]
first_promo=1
out=$(at 2027-03-01T00:01:00Z show $first_promo 2>&1)
check "show of a purged serial says when and why" grep -q 'was purged on 2027-03-01' <<<"$out"
check "the held message still reads, byte for byte" [ "$(at 2027-03-01T00:01:00Z show "$held" --raw | sha256sum)" = "$held_sha" ]
check "search no longer finds purged mail" [ "$(at 2027-03-01T00:01:00Z search 'from:promo.example' --count)" = 5 ]
out=$(at 2027-03-01T00:02:00Z verify)
check "verify: clean, with the tombstones" bash -c "grep -q '^result: OK' <<<\"\$1\" && grep -q 'purged: 13 messages' <<<\"\$1\"" _ "$out"
n=$(at 2027-03-01T00:02:00Z verify --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["purged"])')
check "json counts 13 purged" [ "$n" = 13 ]
check "no plaintext of the purged mail remains in the store" bash -c "! grep -rqa 'weekly offers' '$A'"

begin_subtest "policy changes never shorten retention"
mkdir -p "$WORK/mail3"
printf 'From: news77@promo.example\r\nTo: dan@corp.test\r\nSubject: spring sale\r\nMessage-ID: <late3@t130.test>\r\n\r\nspring\r\n' >"$WORK/mail3/c.eml"
at 2027-03-01T12:00:00Z import --quiet "$WORK/mail3" >/dev/null
at 2027-03-02T00:00:00Z policy default --keep 30d >/dev/null
out=$(at 2027-03-02T00:00:10Z purge)
check "default mail archived under 2y is still kept" [ "$(at 2027-03-02T00:01:00Z search 'subject:lunch' --count)" = 10 ]
at 2027-03-02T00:02:00Z policy default --keep 2y >/dev/null
out=$(at 2027-03-02T00:02:01Z policy set promo --keep 3y --domain promo.example)
check "lengthening promo extends its bucket of archived mail" grep -q '1 bucket of archived mail now kept longer' <<<"$out"
out=$(at 2028-03-05T00:00:00Z purge --confirm-clock)
check "the spring promo mail (30 days, then 3y) survives a year on" [ "$(at 2028-03-05T00:01:00Z search 'subject:spring' --count)" = 1 ]

begin_subtest "release lets held mail go"
out=$(at 2028-03-05T00:02:00Z hold release FALCON-1 --reason "case settled")
check "release counts 5" grep -q 'released 5 messages' <<<"$out"
check "hold list shows it released, with the reason" bash -c "MAILVAULT_TEST_NOW=2028-03-05T00:02:30Z \"$TC\" --archive '$A' --key-file '$A.key' hold list | grep -q 'case settled'"
out=$(MAILVAULT_TEST_NOW=2028-03-05T00:03:00Z "$TC" --archive "$A" --key-file "$A.key" purge --format json)
check "the 5 held past their retention go now" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["purged"]==5 and d["held"]==0, d' "$out"
check "the held message is gone" bash -c "! MAILVAULT_TEST_NOW=2028-03-05T00:03:30Z \"$TC\" --archive '$A' --key-file '$A.key' show $held >/dev/null 2>&1"
check "no merger memo is left" [ "$(at 2028-03-05T00:04:00Z search 'subject:merger' --count)" = 0 ]
check "the spring promo is still there" [ "$(at 2028-03-05T00:04:00Z search 'subject:spring' --count)" = 1 ]
out=$(at 2028-03-05T00:05:00Z verify)
check "verify still clean" grep -q '^result: OK' <<<"$out"

begin_subtest "a query rule, evaluated on the message as it arrives"
at 2028-03-05T00:05:10Z policy set memo --keep 20y --query 'subject:"board memo"' --before promo >/dev/null
check "the rule is set right before promo" [ "$(at 2028-03-05T00:05:11Z policy list --format json | python3 -c 'import json,sys; n=[r["name"] for r in json.load(sys.stdin)["rules"]]; print(n[n.index("promo")-1])')" = memo ]
mkdir -p "$WORK/mail4"
printf 'From: x1@promo.example\r\nTo: dan@corp.test\r\nSubject: Board memos for March\r\nMessage-ID: <late4@t130.test>\r\n\r\nagenda\r\n' >"$WORK/mail4/d.eml"
at 2028-03-05T00:05:20Z import --quiet "$WORK/mail4" >/dev/null
j=$(at 2028-03-05T00:05:30Z report retention --format json)
check "the board memo (stemmed match) is in class memo, kept 20 years" python3 -c '
import json,sys; d={c["class"]:c for c in json.loads(sys.argv[1])["classes"]}
assert d["memo"]["messages"]==1 and d["memo"]["next_expiry"].startswith("2048-"), d["memo"]' "$j"
at 2028-03-05T00:05:40Z policy set bad --keep 1y --query 'from:(' >"$WORK/q.out" 2>&1
check "a query that does not parse is refused (65), saying where" bash -c "[ $? -eq 65 ] && grep -q 'column' '$WORK/q.out'"

at 2028-03-05T00:05:50Z export 'subject:spring' --as eml --out "$WORK/exp" >/dev/null
check "legal exports what is left" [ -f "$WORK/exp/manifest.csv" ]

begin_subtest "reports"
j=$(at 2028-03-05T00:06:00Z report holds --format json)
check "report holds: the released matter, who and why" python3 -c '
import json,sys; d=json.loads(sys.argv[1]); h=d[0]
assert h["matter"]=="FALCON-1" and h["state"]=="released" and h["release_reason"]=="case settled", h' "$j"
j=$(at 2028-03-05T00:07:00Z report audit --since 2027-01-01 --format json)
check "report audit lists the searches, shows, purges and holds of this test" python3 -c '
import json,sys; d=json.loads(sys.argv[1]); c={r["command"] for r in d}
for want in ("search","show","export","purge","hold","policy","import","verify"):
    assert want in c, (want, c)' "$j"
j=$(at 2028-03-05T00:08:00Z report audit --since 2028-03-05 --format json)
check "--since leaves out what came before" python3 -c '
import json,sys; d=json.loads(sys.argv[1]); assert d and all(r["time"]>="2028-03-05" for r in d)' "$j"

begin_subtest "a tombstone is evidence: tampering with one is found"
T=$WORK/t; cp -a "$A" "$T"; cp "$A.key" "$T.key"
k=$(ldb --db="$T/store" --column_family=log --hex scan --max_keys=1 --from=0x74 2>/dev/null | cut -d' ' -f1)
if [ -n "$k" ] && command -v ldb >/dev/null; then
    ldb --db="$T/store" --column_family=log --hex delete "$k" >/dev/null
    MAILVAULT_TEST_NOW=2028-03-05T00:09:00Z "$TC" --archive "$T" --key-file "$T.key" verify >"$WORK/v.out" 2>&1
    check "verify: 65, the tombstone is missing" bash -c "[ $? -eq 65 ] && grep -q 'tombstone of message' '$WORK/v.out'"
else
    ok "# skip: ldb not installed"
fi

begin_subtest "purge runs only in its own process"
P=$(free_port)
if start_serve "$A" "$WORK/serve.log" --smtp 127.0.0.1:$P; then
    mvk "$A" purge >"$WORK/p.out" 2>&1; rc=$?
    check "refused while the daemon serves (75), saying why" bash -c "[ $rc -eq 75 ] && grep -qi 'daemon' '$WORK/p.out'"
    stop_serve
else
    fail "serve did not start"
fi

finish
