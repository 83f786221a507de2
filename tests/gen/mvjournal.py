#!/usr/bin/env python3
"""mvjournal -- deterministic Exchange / Microsoft 365 journal-report fixtures.

Writes one .eml per journal report into --out, plus manifest.json stating,
per file, what ingest/journal.c must find in it: the SHA-256 of the attached
original's exact bytes, the envelope recipients in their archive text form
(`bcc <bob@x.example> expanded <sales@x.example>`, docs/journal.md), the
sender, the defects.  The originals come from mvgen.py (imported, not
copied), so they are as varied as the rest of the test mail.

Report shapes follow STANDARDS.md section 1.1: the envelope text as
quoted-printable, base64 or 8bit (UTF-8 and ISO-8859-1), the original as
message/rfc822 with 7bit, 8bit and binary transfer encodings (one with bare
LF lines, one with raw 8-bit bytes), several reports of one message, an
Exchange 2003 report, a TNEF report, a report without its original, one
wrapped in a further multipart, one cut short, a huge distribution list.
--fabricated adds forgeries that only a plain source would send.

Python 3.11 standard library only; the same command line always gives the
same bytes.  See tests/gen/README.md.
"""

import argparse
import hashlib
import json
import os
import random
import struct
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvgen  # noqa: E402  (the project's mail generator)

CRLF = b"\r\n"
MAX_RCPT = 100000   # mv_journal_limits.max_rcpt default: lines past it are cut
MAX_DL = 200000     # keeps the report text well under max_body_bytes (16 MiB)
ARCHIVE = "journal@archive.example"
ORG = "corp.example"


def fmt_rcpt(role, addr, expanded=None, forwarded=None):
    """The archive's text form of an envelope recipient (journal.h)."""
    s = "%s <%s>" % (role, addr)
    if expanded:
        s += " expanded <%s>" % expanded
    if forwarded:
        s += " forwarded <%s>" % forwarded
    return s


def crlf(data):
    """LF line ends made CRLF (CRLF already there stays)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def qp_text(data):
    """Quoted-printable of CRLF text, lines soft-wrapped at 76."""
    out = []
    for line in data.split(b"\r\n"):
        enc = mvgen.qp_encode(line).rstrip(b"\n")
        if enc.endswith(b"="):
            enc = enc[:-1]
        out.append(enc.replace(b"\n", b"\r\n"))
    return b"\r\n".join(out)


def b64_text(data):
    return mvgen.b64_lines(data).replace(b"\n", b"\r\n")


def tnef_blob(subject):
    """A small, well-formed TNEF stream (winmail.dat): signature, key and
    three message-level attributes, each with its checksum."""
    def attr(level, ident, payload):
        return (struct.pack("<BII", level, ident, len(payload)) + payload +
                struct.pack("<H", sum(payload) & 0xffff))
    data = struct.pack("<IH", 0x223E9F78, 0x0001)
    data += attr(1, 0x00089006, struct.pack("<I", 0x00010000))  # TnefVersion
    data += attr(1, 0x00069007, struct.pack("<I", 1252))         # OemCodepage
    data += attr(1, 0x00078008, b"IPM.Microsoft Mail.Note\0")   # MessageClass
    data += attr(1, 0x00018004, subject.encode("cp1252", "replace") + b"\0")
    return data


class Journal:
    """Builds reports.  All randomness comes from self.r and the mvgen
    generator (seeded from the same --seed)."""

    def __init__(self, seed, size_avg, dl_size):
        self.r = random.Random(seed)
        self.gen = mvgen.Generator(seed, 100, [], size_avg)
        self.dl_size = dl_size
        self.index = 0
        self.serial = 0

    # ---- originals

    def original(self, want=None):
        """(bytes CRLF, subject, message id) of a fresh mvgen message.
        want: '7bit' (ASCII only), '8bit' (raw 8-bit bytes, no NUL) or
        'lf' (kept with bare LF line ends)."""
        for _ in range(400):
            raw, info = self.gen.message(self.index)
            self.index += 1
            if info["message_id"] is None or info["subject"] is None:
                continue
            if b"\0" in raw or b"\r" in raw.replace(b"\r\n", b""):
                continue
            if want == "7bit" and not raw.isascii():
                continue
            if want == "8bit" and raw.isascii():
                continue
            if want == "lf":
                raw = raw.replace(b"\r\n", b"\n")
            else:
                raw = crlf(raw)
            return raw, info["subject"], info["message_id"]
        raise SystemExit("mvjournal: mvgen gave no suitable original")

    def original_8bit(self):
        """An original with raw 8-bit bytes in its body, never NUL: mvgen's
        own 8bit messages when it makes one, else one built here."""
        try:
            return self.original("8bit")
        except SystemExit:
            pass
        person = self.r.choice(self.gen.people)
        mid = "<%s@%s>" % (self._hex(16), ORG)
        subject = "Preisliste f\u00fcr M\u00e4rz"
        raw = ("From: %s\r\nTo: einkauf@%s\r\nSubject: =?ISO-8859-1?Q?Preisliste_"
               "f=FCr_M=E4rz?=\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=iso-8859-1\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n" % (
                   person.addr, ORG, mid)).encode()
        raw += "Gr\u00fc\u00dfe aus K\u00f6ln, \u00e0 bient\u00f4t, 10 \u00a7\r\n".encode(
            "latin-1")
        return raw, subject, mid

    # ---- pieces

    def _hex(self, n):
        return "".join(self.r.choice("0123456789abcdef") for _ in range(n))

    def boundary(self):
        self.serial += 1
        return "_%03d_%s%s_" % (self.serial, self._hex(24).upper(),
                                ORG.replace(".", ""))

    def addr(self, local=None):
        p = self.r.choice(self.gen.people)
        return "%s@%s" % (local or p.local, ORG)

    def envelope(self, n_to=2, n_cc=1, n_bcc=1, dl=True, fwd=True,
                 recipient=0):
        """A varied list of (role, addr, expanded, forwarded)."""
        out = []
        used = set()

        def fresh():
            while True:
                a = self.addr()
                if a not in used:
                    used.add(a)
                    return a
        for _ in range(n_to):
            out.append(("to", fresh(), None, None))
        for _ in range(n_cc):
            out.append(("cc", fresh(), None, None))
        for _ in range(n_bcc):
            out.append(("bcc", fresh(), None, None))
        if dl:
            group = "sales-%s@%s" % (self._hex(4), ORG)
            for _ in range(self.r.randint(2, 4)):
                out.append((self.r.choice(("to", "bcc")), fresh(), group,
                            None))
        if fwd:
            out.append(("cc", fresh(), None, fresh()))
        for _ in range(recipient):
            out.append(("recipient", fresh(), None, None))
        if dl and fwd:
            # both redirections on one line: Exchange writes one, accept two
            out.append(("recipient", fresh(), "all-%s@%s" % (self._hex(4), ORG),
                        fresh()))
        return out

    @staticmethod
    def lines(env, sender, subject, msgid, on_behalf=None):
        """The report text (str) for an envelope, one field per line."""
        out = ["Sender: " + sender]
        if on_behalf:
            out.append("On-Behalf-Of: " + on_behalf)
        out.append("Subject: " + subject)
        out.append("Message-Id: " + (msgid or ""))
        names = {"to": "To", "cc": "Cc", "bcc": "Bcc",
                 "recipient": "Recipient"}
        for role, a, exp, fwd in env:
            line = "%s: %s" % (names[role], a)
            if exp:
                line += ", Expanded: " + exp
            if fwd:
                line += ", Forwarded: " + fwd
            out.append(line)
        return "\r\n".join(out) + "\r\n"

    @staticmethod
    def text_part(text, charset="utf-8", cte="quoted-printable"):
        data = text.encode(charset)
        if cte == "quoted-printable":
            body = qp_text(data)
        elif cte == "base64":
            body = b64_text(data)
        else:
            body = data
        return (('Content-Type: text/plain; charset="%s"\r\n'
                 "Content-Transfer-Encoding: %s\r\n\r\n" % (charset, cte)
                 ).encode() + body)

    @staticmethod
    def original_part(orig, cte="7bit", media="message/rfc822"):
        hdr = "Content-Type: %s\r\n" % media
        if cte:
            hdr += "Content-Transfer-Encoding: %s\r\n" % cte
        hdr += "Content-Disposition: attachment\r\n\r\n"
        body = orig
        if cte == "base64":
            body = b64_text(orig).rstrip(b"\r\n")
        return hdr.encode() + body

    def top(self, subject, boundary, marker="X-MS-Journal-Report:"):
        """The report's own header block (CRLF, with the empty line)."""
        ts = mvgen.T_START + self.r.randint(0, mvgen.T_END - mvgen.T_START)
        frm = "MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@" + ORG
        subj = subject if subject.isascii() else mvgen.encoded_words(subject)
        h = ["Received: from EX01.%s (10.0.0.%d) by EX02.%s (10.0.0.%d) with "
             "Microsoft SMTP Server id 15.1.2507.%d; %s" % (
                 ORG, self.r.randint(2, 254), ORG, self.r.randint(2, 254),
                 self.r.randint(1, 39), mvgen.fmt_date(ts, (0, "UTC", "GMT"),
                                                       1)),
             "From: Microsoft Exchange <%s>" % frm,
             "To: " + ARCHIVE,
             mvgen.fold("Subject: " + subj),
             "Date: " + mvgen.fmt_date(ts, (0, "UTC", "GMT"), 1),
             "Message-ID: <%s@%s>" % (self._hex(32), ORG),
             "Content-Type: multipart/mixed;\n\tboundary=\"%s\"" % boundary,
             "MIME-Version: 1.0"]
        if marker:
            h.append(marker)
        h.append("X-MS-Exchange-Organization-SCL: -1")
        return crlf(("\n".join(h) + "\n\n").encode())

    @staticmethod
    def multipart(boundary, parts, close=True, preamble=b""):
        out = preamble
        for p in parts:
            out += b"\r\n--" + boundary.encode() + CRLF + p
        if close:
            out += b"\r\n--" + boundary.encode() + b"--" + CRLF
        return out


# ------------------------------------------------------------------ variants

def build(j, fabricated):
    """[(file name, bytes, manifest entry)] for every variant."""
    r = j.r
    out = []

    def entry(variant, inner, env, sender, subject, msgid, defects=(),
              generation=2007, on_behalf=None, group=None, journal=True,
              forged=False):
        return {
            "variant": variant,
            "journal": journal,
            "source_kind": "plain" if forged else "exchange-journal",
            "forged": forged,
            "generation": generation,
            "inner_sha256": hashlib.sha256(inner).hexdigest()
            if inner is not None else None,
            "inner_size": len(inner) if inner is not None else None,
            "rcpt": [fmt_rcpt(*e) for e in env],
            "sender": sender,
            "on_behalf_of": on_behalf,
            "message_id": msgid,
            "subject": subject.strip() if subject else None,
            "defects": list(defects),
            "group": group,
        }

    def add(name, data, e):
        e["file"] = name
        out.append((name, data, e))

    def report(variant, orig, subject, msgid, text_cs="utf-8",
               text_cte="quoted-printable", orig_cte="7bit", env=None,
               media="message/rfc822", on_behalf=None, group=None):
        env = env if env is not None else j.envelope()
        sender = j.addr()
        b = j.boundary()
        text = j.lines(env, sender, subject, msgid, on_behalf)
        data = j.top(subject, b) + j.multipart(b, [
            j.text_part(text, text_cs, text_cte),
            j.original_part(orig, orig_cte, media)],
            preamble=b"This is a multi-part message in MIME format.")
        return data, entry(variant, orig, env, sender, subject, msgid,
                           on_behalf=on_behalf, group=group)

    # 1. QP UTF-8 text, 7bit original
    orig, subj, mid = j.original("7bit")
    data, e = report("qp-utf8-7bit", orig, subj, mid)
    add("01-qp-7bit.eml", data, e)

    # 2. base64 UTF-8 text with a UTF-8 subject, 8bit original
    orig, _, mid = j.original_8bit()
    subj = "Angebot \u00fcber 5\u202f000 \u20ac \u2013 \u65e5\u672c"
    data, e = report("base64-utf8-8bit", orig, subj, mid, text_cte="base64",
                     orig_cte="8bit")
    add("02-base64-8bit.eml", data, e)

    # 3. raw 8bit UTF-8 text, binary original with bare LF lines
    orig, subj, mid = j.original("lf")
    subj = "R\u00e9sum\u00e9 \u0444\u0430\u0439\u043b " + subj
    data, e = report("8bit-utf8-binary-lf", orig, subj, mid, text_cte="8bit",
                     orig_cte="binary")
    add("03-8bit-binary-lf.eml", data, e)

    # 4. binary original with raw 8-bit bytes and no final line end
    orig, subj, mid = j.original_8bit()
    orig = orig.rstrip(b"\r\n")
    data, e = report("binary-8bit-bytes", orig, subj, mid, orig_cte="binary")
    add("04-binary-8bit.eml", data, e)

    # 5-7. one message, three reports (bifurcation / DL expansion): the
    # same original bytes, disjoint recipient lines
    orig, subj, mid = j.original()
    env = j.envelope(n_to=3, n_cc=2, n_bcc=2, recipient=2)
    thirds = [env[0::3], env[1::3], env[2::3]]
    for k, part in enumerate(thirds):
        data, e = report("split-%d" % (k + 1), orig, subj, mid, env=part,
                         text_cte=("quoted-printable", "base64", "8bit")[k],
                         orig_cte=("7bit", "binary", None)[k],
                         group="split-1")
        add("%02d-split-%d.eml" % (5 + k, k + 1), data, e)

    # 8-9. Exchange 2003: Content-Identifier (and the misspelt form),
    # "Recipients:" comma list, no Subject line
    for k, marker in enumerate(("Content-Identifier: ExJournalReport",
                                "Content-Identifer: ExJournalReport")):
        orig, subj, mid = j.original("7bit")
        sender = j.addr()
        rc = [j.addr() for _ in range(r.randint(3, 6))]
        rc = list(dict.fromkeys(rc))
        text = "Sender: %s\r\nMessage-ID: %s\r\nRecipients: " % (sender, mid)
        text += ", ".join(rc[:2])
        if len(rc) > 2:
            text += ",\r\n\t" + ", ".join(rc[2:])  # folded, as 2003 did
        text += "\r\n"
        b = j.boundary()
        data = j.top(subj, b, marker) + j.multipart(b, [
            j.text_part(text, "us-ascii", "7bit"),
            j.original_part(orig, "7bit")])
        add("%02d-exchange2003%s.eml" % (8 + k, "-misspelt" if k else ""),
            data, entry("exchange2003" + ("-misspelt" if k else ""), orig,
                        [("recipient", a, None, None) for a in rc], sender,
                        None, mid, generation=2003))

    # 10. TNEF instead of message/rfc822
    orig, subj, mid = j.original()
    env = j.envelope(dl=False, fwd=False)
    sender = j.addr()
    b = j.boundary()
    tnef = ("Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment; filename=\"winmail.dat\"\r\n\r\n"
            ).encode() + b64_text(tnef_blob(subj))
    data = j.top(subj, b) + j.multipart(b, [
        j.text_part(j.lines(env, sender, subj, mid)), tnef])
    add("10-tnef.eml", data,
        entry("tnef", None, env, sender, subj, mid,
              ("journal-no-original", "journal-tnef")))

    # 11. the original is missing
    orig, subj, mid = j.original()
    env = j.envelope(dl=False)
    sender = j.addr()
    b = j.boundary()
    data = j.top(subj, b) + j.multipart(b, [
        j.text_part(j.lines(env, sender, subj, mid), cte="7bit")])
    add("11-no-original.eml", data,
        entry("no-original", None, env, sender, subj, mid,
              ("journal-no-original",)))

    # 12. wrapped once more by a gateway that added a banner part first
    orig, subj, mid = j.original()
    env = j.envelope()
    sender = j.addr()
    inner_b, outer_b = j.boundary(), j.boundary()
    report_entity = ("Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
                     % inner_b).encode() + j.multipart(inner_b, [
                         j.text_part(j.lines(env, sender, subj, mid)),
                         j.original_part(orig, "8bit")])
    banner = (b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
              b"This message was scanned by MailGate 9 and found clean.\r\n")
    data = j.top(subj, outer_b) + j.multipart(outer_b, [banner,
                                                         report_entity])
    add("12-wrapped.eml", data,
        entry("wrapped", orig, env, sender, subj, mid))

    # 13. ISO-8859-1 report text, quoted-printable
    orig, _, mid = j.original("7bit")
    subj = "Gr\u00fc\u00dfe aus K\u00f6ln, Q3-Bericht f\u00fcr \u00c5sa"
    data, e = report("qp-latin1", orig, subj, mid, text_cs="iso-8859-1")
    add("13-qp-latin1.eml", data, e)

    # 14. a gateway base64-encoded the original
    orig, subj, mid = j.original()
    data, e = report("base64-original", orig, subj, mid, orig_cte="base64")
    add("14-base64-original.eml", data, e)

    # 15. the whole report with LF line ends (stored by a Unix MTA)
    orig, subj, mid = j.original("lf")
    data, e = report("lf-report", orig, subj, mid, text_cte="8bit")
    data = data.replace(b"\r\n", b"\n")
    add("15-lf-report.eml", data, e)

    # 16. cut short in the middle of the original: no closing boundary
    orig, subj, mid = j.original()
    env = j.envelope(dl=False)
    sender = j.addr()
    b = j.boundary()
    cut = orig[:max(40, len(orig) * 3 // 5)]
    data = j.top(subj, b) + j.multipart(b, [
        j.text_part(j.lines(env, sender, subj, mid)),
        j.original_part(cut, "7bit")], close=False)
    add("16-truncated.eml", data,
        entry("truncated", cut, env, sender, subj, mid,
              ("journal-no-end-boundary",)))

    # 17. message/global original with UTF-8 headers and addresses
    mid = "<%s@%s>" % (j._hex(20), ORG)
    uaddr = "\u0434\u0438\u0440\u0435\u043a\u0442\u043e\u0440@\u043f\u043e\u0447\u0442\u0430.example"
    subj = "\u041e\u0442\u0447\u0451\u0442 \u0437\u0430 \u043c\u0430\u0440\u0442"
    orig = ("From: %s\r\nTo: bob@%s\r\nSubject: %s\r\nMessage-ID: %s\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n\u0421\u043f\u0430\u0441"
            "\u0438\u0431\u043e!\r\n" % (uaddr, ORG, subj, mid)).encode()
    env = [("to", "bob@" + ORG, None, None),
           ("bcc", "\u00fcber@b\u00fccher.example", None, None)]
    data, e = report("message-global", orig, subj, mid, text_cte="base64",
                     orig_cte="8bit", env=env, media="message/global")
    add("17-message-global.eml", data, e)

    # 18. delegated sending and a huge distribution list
    orig, subj, mid = j.original()
    group = "everyone@" + ORG
    env = [("to", group.replace("everyone", "board"), None, None)]
    env += [("bcc", "member%05d@%s" % (k, ORG), group, None)
            for k in range(j.dl_size)]
    data, e = report("huge-dl", orig, subj, mid, env=env,
                     on_behalf="ceo@" + ORG)
    if len(env) > MAX_RCPT:
        e["rcpt"] = e["rcpt"][:MAX_RCPT]
        e["defects"] = ["journal-truncated"]
    add("18-huge-dl.eml", data, e)

    # 19. lines wrapped by a gateway (continuation lines) and an empty
    # Message-Id (the original had none)
    orig, subj, _ = j.original()
    env = j.envelope()
    sender = j.addr()
    text = j.lines(env, sender, subj, None)
    wrapped = text.replace(", Expanded:", ",\r\n    Expanded:").replace(
        ", Forwarded:", ",\r\n\tForwarded:")
    b = j.boundary()
    data = j.top(subj, b) + j.multipart(b, [
        j.text_part(wrapped, cte="8bit"), j.original_part(orig, "7bit")])
    add("19-folded.eml", data,
        entry("folded", orig, env, sender, subj, None))

    if fabricated:
        # 20. a plain message dressed up as a report: the marker header and
        # Bcc lines in its text.  Parsed, it yields the lines and no
        # original; the daemon must not believe it from a plain source.
        person = r.choice(j.gen.people)
        env = [("bcc", "spy@" + ORG, None, None),
               ("bcc", "cfo@" + ORG, "board@" + ORG, None)]
        mid = "<%s@forger.example>" % j._hex(16)
        subj = "Invoice"
        text = j.lines(env, "ceo@" + ORG, subj, mid)
        data = crlf(("From: %s\nTo: %s\nSubject: %s\nMessage-ID: %s\n"
                     "X-MS-Journal-Report:\nMIME-Version: 1.0\n"
                     "Content-Type: text/plain; charset=us-ascii\n\n" % (
                         person.addr, ARCHIVE, subj, mid)).encode()) + \
            text.encode()
        add("20-forged-plain.eml", data,
            entry("forged-plain", None, env, "ceo@" + ORG, subj, mid,
                  ("journal-no-original",), forged=True))

        # 21. a well-formed report sent by someone who may not send one
        orig, subj, mid = j.original()
        env = [("bcc", "auditor@" + ORG, None, None)]
        data, e = report("forged-report", orig, subj, mid, env=env)
        e["source_kind"], e["forged"] = "plain", True
        add("21-forged-report.eml", data, e)
    return out


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="mvjournal.py",
        description="Write deterministic Exchange journal-report fixtures "
                    "and manifest.json (see tests/gen/README.md).")
    ap.add_argument("--out", required=True, metavar="DIR",
                    help="output directory; must be absent or empty")
    ap.add_argument("--seed", type=int, default=1, metavar="S",
                    help="random seed; same seed, same output (default 1)")
    ap.add_argument("--size-avg", type=int, default=3000, metavar="BYTES",
                    help="average size of the originals (default 3000)")
    ap.add_argument("--dl-size", type=int, default=2000, metavar="N",
                    help="members of the huge distribution list, at most "
                         "%d (default 2000); over %d recipients the "
                         "manifest expects the cut at max_rcpt" % (
                             MAX_DL, MAX_RCPT))
    ap.add_argument("--fabricated", action="store_true",
                    help="also write forgeries: a plain message carrying "
                         "X-MS-Journal-Report and Bcc lines, and a "
                         "well-formed report meant for a plain source")
    args = ap.parse_args(argv)
    if args.size_avg < 500:
        ap.error("--size-avg must be at least 500")
    if not 1 <= args.dl_size <= MAX_DL:
        ap.error("--dl-size must be between 1 and %d" % MAX_DL)
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or
                                     os.listdir(args.out)):
        ap.error("--out %s exists and is not an empty directory" % args.out)
    return args


def main(argv=None):
    args = parse_args(argv)
    j = Journal(args.seed, args.size_avg, args.dl_size)
    reports = build(j, args.fabricated)
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for name, data, _ in reports:
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
        total += len(data)
    manifest = {"generator": "mvjournal", "version": 1, "seed": args.seed,
                "fabricated": args.fabricated,
                "reports": [e for _, _, e in reports]}
    with open(os.path.join(args.out, "manifest.json"), "w",
              encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("mvjournal: %d reports, %.1f KB, seed %d -> %s" % (
        len(reports), total / 1024, args.seed, args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
