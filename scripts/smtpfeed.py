#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""smtpfeed.py - send message files to an SMTP or LMTP server, as a mail
server journaling to mailvault would (used by `make demo`).

    smtpfeed.py [--lmtp] [--sessions N] [--from ADDR] [--to ADDR]
                HOST:PORT PATH...

PATH: .eml files, Maildir or plain directories (every regular file), or
mbox files (split with python's mailbox module).  Lines are sent with
CRLF ends, as a mail server sends them (files on disk often end lines
with LF alone); smtplib dot-stuffs.  Prints one summary
line; exit 1 if any message was not accepted."""
import argparse
import mailbox
import os
import queue
import re
import smtplib
import sys
import threading


def messages(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    fp = os.path.join(root, f)
                    if f.endswith((".json", ".jsonl")):
                        continue
                    yield from messages([fp])
        else:
            with open(p, "rb") as fh:
                head = fh.read(5)
            if head == b"From ":
                for m in mailbox.mbox(p, create=False):
                    yield m.as_bytes()
            else:
                with open(p, "rb") as fh:
                    yield fh.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("server")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--lmtp", action="store_true")
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--from", dest="sender", default="journal@corp.example")
    ap.add_argument("--to", dest="rcpt", default="archive@archive.example")
    a = ap.parse_args()
    host, port = a.server.rsplit(":", 1)
    q = queue.Queue()
    for m in messages(a.paths):
        q.put(re.sub(rb"(?<!\r)\n", b"\r\n", m))
    total = q.qsize()
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()

    def worker():
        cls = smtplib.LMTP if a.lmtp else smtplib.SMTP
        conn = cls(host, int(port), timeout=60)
        conn.ehlo_or_helo_if_needed() if not a.lmtp else conn.ehlo("smtpfeed")
        while True:
            try:
                m = q.get_nowait()
            except queue.Empty:
                break
            try:
                refused = conn.sendmail(a.sender, [a.rcpt], m)
                ok = not refused
            except smtplib.SMTPException as e:
                print(f"smtpfeed: not accepted: {e}", file=sys.stderr)
                ok = False
                try:
                    conn.rset()
                except smtplib.SMTPException:
                    conn = cls(host, int(port), timeout=60)
            with lock:
                counts["ok" if ok else "failed"] += 1
        try:
            conn.quit()
        except smtplib.SMTPException:
            pass

    threads = [threading.Thread(target=worker) for _ in range(max(1, a.sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"smtpfeed: {counts['ok']} of {total} messages accepted over "
          f"{'LMTP' if a.lmtp else 'SMTP'} by {a.server}")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
