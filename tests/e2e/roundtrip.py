#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""roundtrip.py [--sample N] ARCHIVE KEYFILE MANIFEST|--files DIR

Checks an archive against what was imported into it:
  * every message's `show --raw` bytes hash to the SHA-256 it recorded (with
    --sample N: N messages spread over the archive, first and last included;
    the recorded hashes of all are still compared with the manifest), and
  * with a generator manifest: the set of message hashes is exactly the set
    of non-duplicate manifest entries, every entry is some message or copy,
    and the copy count equals the number of entries;
  * with --files DIR: every regular file that is mail is archived
    byte-exact (for corpora of one message per file).
Prints one line per problem and a summary; exit status 1 on any problem."""
import hashlib
import json
import os
import random
import re
import subprocess
import sys


# Fields only mail has (docs/import.md): a header block that neither ends
# in a blank line nor holds one of them is a key or settings file.
MAIL_FIELDS = {b"received", b"return-path", b"delivered-to", b"from", b"sender", b"reply-to",
               b"to", b"cc", b"bcc", b"subject", b"date", b"message-id", b"in-reply-to",
               b"references", b"mime-version", b"content-type", b"dkim-signature",
               b"authentication-results", b"x-mailer"}


def has_body_or_mail_field(data):
    for line in data[:4096].splitlines(keepends=True):
        if line in (b"\n", b"\r\n"):
            return True
        line = line.rstrip(b"\r\n")
        name = line.split(b":", 1)[0] if b":" in line else b""
        if line[:1] not in b" \t" and name.strip().lower() in MAIL_FIELDS:
            return True
    return False


def mv(archive, key, *args, binary=False):
    cmd = [os.environ["MV_BIN"], "--archive", archive, "--key-file", key, *args]
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr.decode(errors="replace")))
    return r.stdout if binary else r.stdout.decode()


def main():
    args = sys.argv[1:]
    sample = None
    if args[0] == "--sample":
        sample = int(args[1])
        args = args[2:]
    sys.argv[1:] = args
    archive, key, what = args[0], args[1], args[2]
    problems = 0
    listing = json.loads(mv(archive, key, "list", "--format", "json"))
    check = listing
    if sample is not None and len(listing) > sample:
        rnd = random.Random(len(listing))
        check = [listing[0], listing[-1]] + rnd.sample(listing[1:-1], sample - 2)
    for m in check:
        raw = mv(archive, key, "show", str(m["serial"]), "--raw", binary=True)
        h = hashlib.sha256(raw).hexdigest()
        if h != m["sha256"]:
            print("serial %d: show --raw hashes to %s, recorded %s" % (m["serial"], h, m["sha256"]))
            problems += 1
    msg_sha = {m["sha256"]: m["serial"] for m in listing}
    # Every message and copy read back through the same path as show --raw.
    v = json.loads(mv(archive, key, "verify", "--format", "json"))
    if v["failed"] or v["messages_ok"] != len(listing):
        print("verify: %s" % v)
        problems += 1
    copy_sha = set()
    ncopies = 0
    for m in listing:
        # Single-copy messages carry their own bytes; look at merged ones only.
        if m["copies"] > 1:
            info = json.loads(mv(archive, key, "show", str(m["serial"]), "--format", "json"))
            for c in info["copies"]:
                copy_sha.add(c["sha256"])
                copy_sha.add(c["message_sha256"])
                ncopies += 1
        else:
            ncopies += 1
    if what == "--files":
        # One message per file (SpamAssassin, Enron, MIME test suites).  A
        # file that starts with an mbox separator is an mbox: the separator
        # is not message bytes (the generator's splitter cuts at every
        # "From " line, which holds for mboxes whose body lines are quoted).
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gen"))
        import mvgen
        header = re.compile(rb"^[!-9;-~]+[ \t]*:")
        # mailvault's separator form (docs/import.md), near enough for
        # test collections: "From " with a sender and an asctime date.  A
        # file starting with any other "From " line is one message.
        separator = re.compile(rb"^(?:\xef\xbb\xbf)?From \S+ +(?:[A-Z][a-z]{2} +){2}\d{1,2} +\d{1,2}:\d\d")
        files = missing = 0
        for dp, dn, fn in os.walk(sys.argv[4]):
            for f in fn:
                data = open(os.path.join(dp, f), "rb").read()
                if separator.match(data):
                    msgs = list(mvgen.mbox_messages(data[3:] if data.startswith(b"\xef\xbb\xbf") else data))
                elif header.match(data) and has_body_or_mail_field(data):
                    msgs = [data]
                else:
                    continue
                for m in msgs:
                    files += 1
                    h = hashlib.sha256(m).hexdigest()
                    if h not in msg_sha and h not in copy_sha:
                        missing += 1
                        if missing <= 10:
                            print("%s: its message (sha256 %s) is not archived" % (os.path.join(dp, f), h))
        print("# %d messages of the files, %d not found byte-exact, %d archived" % (files, missing, len(listing)))
        sys.exit(1 if problems or missing else 0)
    entries = []
    for line in open(what):
        e = json.loads(line)
        if not e.get("summary"):
            entries.append(e)
    # A duplicate group (an entry and the entries that are dup_of it) is one
    # message, whose bytes are those of whichever member was imported first.
    def root(i):
        while entries[i].get("dup_of") is not None:
            i = entries[i]["dup_of"]
        return i
    groups = {}
    for i, e in enumerate(entries):
        groups.setdefault(root(i), []).append(e)
    got = set(msg_sha)
    for r, members in groups.items():
        if not any(e["sha256"] in got for e in members):
            print("group of %s (%s #%s) has no archived message" % (entries[r]["sha256"], entries[r]["path"], entries[r].get("ordinal")))
            problems += 1
    member_sha = {e["sha256"] for e in entries}
    for h in sorted(got - member_sha):
        print("archived message %s is in no manifest entry" % h)
        problems += 1
    for e in entries:
        if e["sha256"] not in got and e["sha256"] not in copy_sha:
            print("entry %s (%s #%s) is neither a message nor a copy" % (e["sha256"], e["path"], e.get("ordinal")))
            problems += 1
    if len(listing) != len(groups):
        print("messages: %d archived, %d expected (one per duplicate group)" % (len(listing), len(groups)))
        problems += 1
    if ncopies != len(entries):
        print("copies: %d archived, %d entries imported" % (ncopies, len(entries)))
        problems += 1
    print("# %d messages (%d read back), %d copies checked, %d problems" % (len(listing), len(check), ncopies, problems))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
