#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""canary_scan.py --canary WORD [--canary WORD...] PATH...

Searches every file under the paths for each canary in every form it could
leak in: as is, lower- and upper-cased, base64 (all three alignments),
UTF-16 LE and BE.  Prints each hit; exit status 1 if any."""
import argparse
import base64
import os
import sys


def forms(word):
    out = set()
    for w in {word, word.lower(), word.upper()}:
        b = w.encode()
        out.add(b)
        out.add(w.encode("utf-16-le"))
        out.add(w.encode("utf-16-be"))
        for pad in range(3):
            enc = base64.b64encode(b"\0" * pad + b)
            # drop the characters that depend on neighbouring bytes
            start = (pad * 4 + 2) // 3 + (1 if pad else 0)
            core = enc[start:]
            tail = (len(b) + pad) % 3
            if tail:
                core = core[: -(4 - tail) - 1] if len(core) > 5 else core
            if len(core) >= 6:
                out.add(core)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--canary", action="append", required=True)
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    needles = {}
    for c in a.canary:
        for f in forms(c):
            needles[f] = c
    hits = 0
    files = 0
    for root in a.paths:
        for dp, dn, fn in os.walk(root):
            for f in fn:
                p = os.path.join(dp, f)
                try:
                    data = open(p, "rb").read()
                except OSError:
                    continue
                files += 1
                low = data.lower()
                for n, c in needles.items():
                    if n in data or n.lower() in low:
                        print("canary %r found in %s (as %r)" % (c, p, n[:40]))
                        hits += 1
    print("# scanned %d files for %d forms of %d canaries: %d hits" % (files, len(needles), len(a.canary), hits))
    sys.exit(1 if hits else 0)


if __name__ == "__main__":
    main()
