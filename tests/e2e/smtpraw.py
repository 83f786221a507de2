#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""smtpraw.py - a literal SMTP/LMTP client for the cases swaks cannot
send: BDAT (CHUNKING), smuggling attempts, exact byte sequences.

    smtpraw.py HOST:PORT STEP...
Each STEP is the body of a Python bytes literal (escapes allowed) to
send, or "@N" to read N replies, or "@?" to read replies until the
server is quiet for 0.5 s.  Replies are printed one per line
(multi-line replies joined with " | "); "(closed)" when the server
closed the connection.  Exit 0 unless the connection fails."""
import ast
import select
import socket
import sys


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""
        self.closed = False

    def _fill(self, timeout):
        r, _, _ = select.select([self.s], [], [], timeout)
        if not r:
            return False
        d = self.s.recv(65536)
        if not d:
            self.closed = True
            return False
        self.buf += d
        return True

    def reply(self, timeout=10.0):
        """One reply, or None on timeout/close."""
        lines = []
        while True:
            while b"\n" not in self.buf:
                if self.closed or not self._fill(timeout):
                    return None
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.decode("utf-8", "replace").rstrip("\r")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return " | ".join(lines)


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    c = Conn(host, port)
    print(c.reply(), flush=True)
    for step in sys.argv[2:]:
        if step == "@?":
            while True:
                r = c.reply(0.5)
                if r is None:
                    break
                print(r, flush=True)
        elif step.startswith("@"):
            for _ in range(int(step[1:])):
                r = c.reply()
                if r is None:
                    print("(closed)" if c.closed else "(timeout)", flush=True)
                    return 0
                print(r, flush=True)
        else:
            try:
                c.s.sendall(ast.literal_eval("b'''" + step.replace("'''", "\\'\\'\\'") + "'''"))
            except OSError:
                print("(closed)", flush=True)
                return 0
    c.s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
