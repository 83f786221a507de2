#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""roundtrip.py ARCHIVE KEYFILE MANIFEST|--files DIR

Checks an archive against what was imported into it:
  * every message's `show --raw` bytes hash to the SHA-256 it recorded, and
  * with a generator manifest: the set of message hashes is exactly the set
    of non-duplicate manifest entries, every entry is some message or copy,
    and the copy count equals the number of entries;
  * with --files DIR: every regular file that is mail is archived
    byte-exact (for corpora of one message per file).
Prints one line per problem and a summary; exit status 1 on any problem."""
import hashlib
import json
import os
import subprocess
import sys


def mv(archive, key, *args, binary=False):
    cmd = [os.environ["MV_BIN"], "--archive", archive, "--key-file", key, *args]
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr.decode(errors="replace")))
    return r.stdout if binary else r.stdout.decode()


def main():
    archive, key, what = sys.argv[1], sys.argv[2], sys.argv[3]
    problems = 0
    listing = json.loads(mv(archive, key, "list", "--format", "json"))
    msg_sha = {}
    for m in listing:
        raw = mv(archive, key, "show", str(m["serial"]), "--raw", binary=True)
        h = hashlib.sha256(raw).hexdigest()
        if h != m["sha256"]:
            print("serial %d: show --raw hashes to %s, recorded %s" % (m["serial"], h, m["sha256"]))
            problems += 1
        msg_sha[h] = m["serial"]
    copy_sha = set()
    ncopies = 0
    for m in listing:
        if m["copies"] > 1:
            info = json.loads(mv(archive, key, "show", str(m["serial"]), "--format", "json"))
            for c in info["copies"]:
                copy_sha.add(c["sha256"])
                ncopies += 1
        else:
            ncopies += 1
    if what == "--files":
        root = sys.argv[4]
        files = 0
        for dp, dn, fn in os.walk(root):
            for f in fn:
                data = open(os.path.join(dp, f), "rb").read()
                h = hashlib.sha256(data).hexdigest()
                if h in msg_sha or h in copy_sha:
                    files += 1
        print("# %d files found byte-exact among %d messages" % (files, len(listing)))
        sys.exit(1 if problems else 0)
    entries = []
    for line in open(what):
        e = json.loads(line)
        if not e.get("summary"):
            entries.append(e)
    want = {e["sha256"] for e in entries if e.get("dup_of") is None}
    got = set(msg_sha)
    for h in sorted(want - got):
        print("manifest message %s is not archived as a message" % h)
        problems += 1
    for h in sorted(got - want):
        # a duplicate entry may have become the message when it came first
        if not any(e["sha256"] == h for e in entries):
            print("archived message %s is in no manifest entry" % h)
            problems += 1
    for e in entries:
        if e["sha256"] not in got and e["sha256"] not in copy_sha:
            print("entry %s (%s #%s) is neither a message nor a copy" % (e["sha256"], e["path"], e.get("ordinal")))
            problems += 1
    if len(listing) != len(want):
        print("messages: %d archived, %d expected" % (len(listing), len(want)))
        problems += 1
    if ncopies != len(entries):
        print("copies: %d archived, %d entries imported" % (ncopies, len(entries)))
        problems += 1
    print("# %d messages, %d copies checked, %d problems" % (len(listing), ncopies, problems))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
