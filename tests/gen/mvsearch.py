#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mvsearch -- a search corpus whose answers are known by construction.

Writes N messages (default 300) as .eml files (or one mbox) under --out/mail,
a few more as Exchange journal reports under --out/journal (their Bcc
recipients are in the report's envelope only), custodians (custodians.json
for `custodian add`, custodians.csv for `custodian import`) and
answers.json: for each query of a fixed list, the exact set of message
indexes that must match.  Indexes map to archive serials through the
Message-ID (answers.json "messages"); the files import in index order.

Every message is built from filler pseudo-words (syllables no query uses)
plus words, names, addresses, dates, sizes and attachments planted at known
messages.  A model of each message (words by place, addresses by role,
date, size) is kept while it is built, and the answers are computed from
that model, so a planted word that lands somewhere unplanned still has a
right answer.  Stemming is not modelled: queries that rely on it name the
variants themselves.

--canaries writes instead a small corpus with one distinct random canary
word in each place mail text can hide (body, subject, display name,
address local part, attachment file name, text and DOCX attachment, nested
message), for the no-plaintext-at-rest test; answers.json lists them.

Python 3 standard library only; the same command line gives the same bytes.
  mvsearch.py --out DIR [--seed S] [--count N] [--layout eml|mbox] [--canaries]
"""

import argparse
import calendar
import datetime
import email.generator
import email.header
import email.utils
import io
import json
import os
import random
import re
import sys
import zipfile
import zlib
from email.mime.application import MIMEApplication
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

JOURNAL_ARCHIVE = "journal@archive.example"
ORG = "corp.example"

# Planted vocabulary: filler never starts with the first four letters of
# any of these (so neither stems nor wildcards can reach filler).
PLANTED = """quokka invoice invoices invoicing invoiced quarterly revenue
forecast walrus narwhal pelican budget budgets kangaroo wombat platypus
quagga echidna bandicoot dingo bilby marmoset gazebo trebuchet catapult
ballista mangonel onager creme zeppelin manifest flumox dora quill egon
brisk felix ornby gilda penrose hector vale kai lund ingrid solberg
marchbanks acme globex initech umbrella uberweisung krftig grusse
boris pasternak fox and the for march""".split()


def epoch(y, mo, d, h=0, mi=0, s=0):
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


def fmt_date(t, zone_min):
    tz = datetime.timezone(datetime.timedelta(minutes=zone_min))
    return email.utils.format_datetime(datetime.datetime.fromtimestamp(t, tz))


def tokens(text):
    """Words as a word-splitting indexer sees them (letters and digits)."""
    return re.findall(r"[^\W_]+", text.lower())


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# ----------------------------------------------------------------- documents

def make_docx(paragraphs):
    """A minimal OOXML word document.  paragraphs: list of lists of runs."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join("<w:p>" + "".join("<w:r><w:t xml:space=\"preserve\">%s</w:t></w:r>" % r
                                     for r in runs) + "</w:p>" for runs in paragraphs)
    files = [
        ("[Content_Types].xml",
         '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
         '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
         '<Default Extension="xml" ContentType="application/xml"/>'
         '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
         'officedocument.wordprocessingml.document.main+xml"/></Types>'),
        ("_rels/.rels",
         '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
         'relationships/officeDocument" Target="word/document.xml"/></Relationships>'),
        ("word/document.xml",
         '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         '<w:document xmlns:w="%s"><w:body>%s</w:body></w:document>' % (w, body)),
    ]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files:
            zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data.encode())
    return out.getvalue()


def make_pdf(lines, flate=False):
    """A one-page PDF showing lines (ASCII) in Helvetica, with a correct
    cross-reference table."""
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for ln in lines:
        esc = ln.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append("(%s) Tj T*" % esc)
    ops.append("ET")
    content = "\n".join(ops).encode()
    if flate:
        content = zlib.compress(content, 9)
        sdict = b"<< /Length %d /Filter /FlateDecode >>" % len(content)
    else:
        sdict = b"<< /Length %d >>" % len(content)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        sdict + b"\nstream\n" + content + b"\nendstream",
    ]
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offs = []
    for k, o in enumerate(objs, 1):
        offs.append(len(out))
        out += b"%d 0 obj\n" % k + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for o in offs:
        out += b"%010d 00000 n \n" % o
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


# --------------------------------------------------------------------- model

class Msg:
    """One message: what it is made of, and the model answers come from."""

    def __init__(self, idx, seed):
        self.idx = idx
        self.msgid = "<mvs.%d.%04d@gen.mvsearch.example>" % (seed, idx)
        self.date = 0
        self.zone = 0
        self.frm = None           # (name, addr)
        self.rcpt = {"to": [], "cc": [], "bcc": []}
        self.reply_to = None
        self.env = []             # journal envelope: (role, addr)
        self.subject = ""
        self.subject_charset = None  # RFC 2047 charset, None: ASCII as is
        self.body = []            # text chunks (plain body)
        self.html = None          # (html source, visible text) for HTML-only mail
        self.atts = []            # dicts: kind, filename, data, text, ctype
        self.nested = None        # (subject, body) of a message/rfc822 part
        self.journal = False
        self.big = 0
        self.size = 0
        self.file = None

    # -- words by place
    def places(self):
        p = {"subject": tokens(self.subject),
             "body": tokens(" ".join(self.body) if self.html is None else self.html[1]),
             "attachment": [], "filename": [],
             "name_from": tokens(self.frm[0]) if self.frm else []}
        for role in ("to", "cc", "bcc"):
            p["name_" + role] = [t for n, _ in self.rcpt[role] for t in tokens(n)]
        for a in self.atts:
            p["attachment"] += tokens(a.get("text", ""))
            p["filename"] += tokens(a["filename"])
        if self.nested:
            p["attachment"] += tokens(self.nested[1])
        return p

    def addrs(self, roles):
        out = []
        for r in roles:
            if r == "from":
                out += [self.frm[1].lower()] if self.frm else []
            elif r == "env":
                out += [a.lower() for _, a in self.env]
            else:
                out += [a.lower() for _, a in self.rcpt[r]]
        return out


FREE = ("subject", "body", "attachment", "filename", "name_from", "name_to", "name_cc",
        "name_bcc")
ROLES = {"from": (("from",), ("name_from",)), "to": (("to",), ("name_to",)),
         "cc": (("cc",), ("name_cc",)), "bcc": (("bcc", "env"), ("name_bcc",)),
         "participant": (("from", "to", "cc", "bcc", "env"),
                         ("name_from", "name_to", "name_cc", "name_bcc"))}


def domains_of(addr):
    """The domain and each parent of at least two labels."""
    d = addr.rsplit("@", 1)[1]
    out = [d]
    labels = d.split(".")
    for k in range(1, len(labels) - 1):
        out.append(".".join(labels[k:]))
    return out


def has_seq(toks, seq):
    n = len(seq)
    return any(toks[i:i + n] == seq for i in range(len(toks) - n + 1))


class Model:
    def __init__(self, msgs):
        self.msgs = msgs
        self.p = {m.idx: m.places() for m in msgs}
        self.all = {m.idx for m in msgs}

    def words(self, places, *variants):
        """Messages with any of the words (lower case) in any of places."""
        vs = [tokens(v) for v in variants]
        out = set()
        for m in self.msgs:
            for pl in places:
                if any(has_seq(self.p[m.idx][pl], v) for v in vs):
                    out.add(m.idx)
        return out

    def text(self, *variants):
        return self.words(FREE, *variants)

    def substr(self, place, s):
        out = set()
        for m in self.msgs:
            body = " ".join(m.body) if m.html is None else m.html[1]
            if place == "body" and s in body:
                out.add(m.idx)
        return out

    def addr(self, field, value):
        """field:value for from to cc bcc participant, as docs/search.md
        states it: a whole address; else the local part, the domain or a
        parent domain, or a display-name word (or phrase)."""
        roles, names = ROLES[field]
        v = value.lower()
        out = set()
        for m in self.msgs:
            a = m.addrs(roles)
            if "@" in v:
                hit = v in a
            else:
                hit = any(x.rsplit("@", 1)[0] == v or v in domains_of(x) for x in a)
                hit = hit or any(has_seq(self.p[m.idx][n], tokens(v)) for n in names)
            if hit:
                out.add(m.idx)
        return out

    def domain(self, d):
        d = d.lower()
        return {m.idx for m in self.msgs
                if any(d in domains_of(x) for x in m.addrs(("from", "to", "cc", "bcc", "env")))}

    def anyaddr(self, addrs):
        addrs = {a.lower() for a in addrs}
        return {m.idx for m in self.msgs
                if addrs & set(m.addrs(("from", "to", "cc", "bcc", "env")))}

    def date(self, lo, hi):
        return {m.idx for m in self.msgs if lo <= m.date <= hi}

    def size(self, lo, hi):
        return {m.idx for m in self.msgs if lo <= m.size <= hi}

    def with_attachments(self):
        return {m.idx for m in self.msgs if m.atts or m.nested or m.big}

    def filename(self, whole):
        return {m.idx for m in self.msgs if any(a["filename"].lower() == whole.lower()
                                                 for a in m.atts)}


# ---------------------------------------------------------------- generator

class Gen:
    def __init__(self, seed, count):
        self.seed = seed
        self.r = random.Random(seed)
        self.count = count
        self.filler = self._filler_words(600)
        self.people = []
        doms = ["%s.example" % self._pseudo(3) for _ in range(6)]
        for _ in range(40):
            first, last = self._pseudo(2).capitalize(), self._pseudo(3).capitalize()
            self.people.append(("%s %s" % (first, last),
                                "%s.%s@%s" % (first.lower(), last.lower(), self.r.choice(doms))))

    SYL = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]

    def _pseudo(self, n):
        while True:
            w = "".join(self.r.choice(self.SYL) for _ in range(n))
            if not any(w.startswith(p[:4]) or p.startswith(w[:4]) for p in PLANTED):
                return w

    def _filler_words(self, n):
        s = set()
        while len(s) < n:
            s.add(self._pseudo(self.r.choice((2, 3))))
        return sorted(s)

    def fill(self, n):
        return " ".join(self.r.choice(self.filler) for _ in range(n))

    def person(self):
        return self.r.choice(self.people)


def build(seed, count):
    g = Gen(seed, count)
    r = g.r
    msgs = [Msg(i, seed) for i in range(count)]
    # base: filler everywhere, distinct dates 2019-01-01 .. 2024-12-31
    t0, t1 = epoch(2019, 1, 1), epoch(2024, 12, 31, 23, 59, 59)
    used_dates = set()
    for m in msgs:
        while True:
            t = r.randint(t0, t1)
            if t not in used_dates:
                break
        used_dates.add(t)
        m.date = t
        m.zone = r.choice((0, 0, 60, 120, -300, -240, 330, 540, -480))
        m.frm = g.person()
        m.rcpt["to"] = [g.person() for _ in range(r.randint(1, 2))]
        if r.random() < 0.3:
            m.rcpt["cc"] = [g.person()]
        m.subject = g.fill(r.randint(2, 5)).capitalize()
        m.body = [g.fill(r.randint(20, 60)) + "."]

    order = list(range(count))
    r.shuffle(order)
    # the last messages go through the daemon as journal reports
    journal = order[:8]
    for i in journal:
        msgs[i].journal = True
    struct_pool = [i for i in order[8:]]   # one structural feature each
    pos = [0]

    def take(k):
        out = struct_pool[pos[0]:pos[0] + k]
        pos[0] += k
        assert len(out) == k, "corpus too small for its features (--count)"
        return out

    def sample(k, pool=None):
        pool = [i for i in (pool or range(count)) if msgs[i].html is None]
        return r.sample(pool, k)

    def say(i, text):
        msgs[i].body.insert(r.randint(0, len(msgs[i].body)), text)

    # ---- HTML-only mail: text matches, tags, script, style, comments and
    # attribute values do not; an entity is decoded
    html_msgs = take(5)
    for k, i in enumerate(html_msgs):
        f1, f2 = g.fill(6), g.fill(6)
        src = ("<html><head><style>.mangonel { color: red }</style>"
               "<script type=\"text/javascript\">var trebuchet = 1;</script></head>"
               "<body><div class=\"catapult\"><p>%s <b>gazebo</b> %s</p>"
               "<!-- onager -->"
               "<p><a href=\"https://files.example/ballista\">%s</a> cr&egrave;me</p>"
               "</div></body></html>" % (f1, f2, g.fill(2)))
        visible = "%s gazebo %s %s crème" % (f1, f2, src.split("ballista\">")[1].split("<")[0])
        msgs[i].html = (src, visible)
        msgs[i].body = []

    # ---- free text and case
    quokka = sample(12)
    for k, i in enumerate(quokka):
        say(i, "%s %s." % (("quokka", "Quokka", "QUOKKA")[k % 3], g.fill(3)))
    # ---- stemming
    stem = sample(16)
    for k, i in enumerate(stem):
        say(i, "%s %s." % (("invoice", "invoices", "invoicing", "invoiced")[k % 4], g.fill(2)))
    # ---- phrases and the reversed phrase
    ph = sample(10)
    for i in ph[:6]:
        say(i, "the quarterly revenue forecast %s." % g.fill(2))
    for i in ph[6:]:
        say(i, "forecast revenue quarterly %s." % g.fill(2))
    # ---- boolean
    W = sample(30)
    N = r.sample(W, 12) + r.sample([i for i in range(count) if i not in W and msgs[i].html is None], 12)
    X = r.sample(W, 8) + r.sample(N, 6) + sample(12)
    for i in W:
        say(i, "walrus %s." % g.fill(2))
    for i in N:
        say(i, "narwhal %s." % g.fill(2))
    for i in set(X):
        say(i, "pelican %s." % g.fill(2))
    both = [i for i in W if i in N]
    for i in both[:4]:
        say(i, "walrus and narwhal.")
    # ---- subject vs body
    SB = sample(8)
    for k, i in enumerate(SB):
        msgs[i].subject = "%s %s %s" % (g.fill(1).capitalize(), ("Budget", "budgets")[k % 2],
                                         g.fill(2))
    BB = sample(8)
    for i in BB:
        say(i, "budget %s." % g.fill(2))
    # ---- RFC 2047 subjects
    for i in take(3):
        msgs[i].subject = "Überweisung für März %s" % g.fill(1)
        msgs[i].subject_charset = "utf-8"
    for i in take(3):
        msgs[i].subject = "Kräftig Grüße %s" % g.fill(1)
        msgs[i].subject_charset = "iso-8859-1"
    # ---- other scripts
    for i in sample(4):
        say(i, "Отчёт: бухгалтерия закрыта %s." % g.fill(1))
    for i in sample(4):
        say(i, "Ο λογαριασμός εστάλη %s." % g.fill(1))
    cjk = sample(4)
    for i in cjk:
        say(i, "我们明天讨论会议纪要。")

    # ---- people
    dora = ("Dora Marchbanks", "dora.quill@acme-corp.test")
    dora_case = ("Dora Marchbanks", "Dora.Quill@ACME-Corp.Test")
    dora_home = ("D. Marchbanks", "d.marchbanks@acme-home.test")
    egon = ("Egon Brisk", "egon.brisk@sales.emea.acme-corp.test")
    felix = ("Felix Ornby", "felix.ornby@globex.test")
    felix2 = ("F. Ornby", "felix@ornby.test")
    kai = ("Kai Lund", "kai.lund@eu.globex.test")
    gilda = ("Gilda Penrose", "gilda.penrose@initech.test")
    hector = ("Hector Vale", "hector.vale@umbrella.test")
    boris = ("Борис Пастернак", "boris.p@%s" % g.people[0][1].split("@")[1])
    ingrid = "ingrid.solberg@corp.example"
    for k, i in enumerate(sample(10)):
        msgs[i].frm = dora_case if k == 0 else dora
    for i in sample(4):
        msgs[i].rcpt["to"].append(dora)
    for i in sample(3):
        msgs[i].rcpt["cc"].append(dora_home)
    for i in sample(3):
        msgs[i].reply_to = dora[1]   # Reply-To is not From
    for i in sample(6):
        msgs[i].frm = egon
    for i in sample(8):
        msgs[i].rcpt["to"].append(felix)
    for i in sample(3):
        msgs[i].rcpt["cc"].append(felix2)
    for i in sample(5):
        msgs[i].rcpt["to"].append(kai)
    for i in sample(7):
        msgs[i].rcpt["cc"].append(gilda)
    for i in sample(4, [j for j in range(count) if not msgs[j].journal]):
        msgs[i].rcpt["bcc"].append(hector)    # a Bcc header (a sent copy)
    for i in sample(3):
        msgs[i].frm = boris
    for i in sample(3):
        msgs[i].rcpt["to"].append(("", "xenia.troll@initech.test"))  # no display name

    # ---- attachments
    def att(i, kind, filename, data, text, ctype):
        msgs[i].atts.append({"kind": kind, "filename": filename, "data": data, "text": text,
                             "ctype": ctype})

    for i in take(4):
        t = "%s kangaroo %s" % (g.fill(8), g.fill(8))
        att(i, "txt", "%s-%s.txt" % (g.fill(1), g.fill(1)), t.encode(), t, "text/plain")
    for i in take(4):
        t = "id,%s,%s\n1,wombat,%s\n2,%s,%s\n" % (g.fill(1), g.fill(1), g.fill(1), g.fill(1),
                                                   g.fill(1))
        att(i, "csv", "%s.csv" % g.fill(1), t.encode(), t.replace(",", " "), "text/csv")
    for i in take(4):
        f = g.fill(5)
        src = ("<html><body><script>var quagga = 2;</script><p>%s platypus</p></body></html>" % f)
        att(i, "html", "%s.html" % g.fill(1), src.encode(), "%s platypus" % f, "text/html")
    docx = take(5)
    for k, i in enumerate(docx):
        f = g.fill(4)
        paras = [[f + " echidna"], [g.fill(3)]]
        text = "%s echidna" % f
        if k < 2:   # Word splits a word across runs (revision marks, spelling)
            paras.append(["band", "icoot"])
            text += " bandicoot"
        att(i, "docx", "Zeppelin-Manifest-%d.docx" % (2020 + k), make_docx(paras), text,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    for i in take(4):
        f = g.fill(4)
        att(i, "pdf", "Zeppelin-Manifest-2024.pdf", make_pdf([f, "dingo " + g.fill(2)]),
            f + " dingo", "application/pdf")
    for i in take(3):
        f = g.fill(3)
        att(i, "pdf", "%s.pdf" % g.fill(1), make_pdf(["bilby " + f], flate=True), "bilby " + f,
            "application/pdf")
    for i in take(4):
        msgs[i].nested = (g.fill(3).capitalize(), "%s marmoset %s" % (g.fill(6), g.fill(6)))
    # a broad vocabulary: more words with one prefix than a wildcard takes
    i = take(1)[0]
    vocab = ["flumox" + a + b + c for a in "abcdefghijklmnopqrst" for b in "iklmnoprstu"
             for c in "aeiou"]
    assert len(vocab) == 1100
    t = " ".join(vocab)
    att(i, "txt", "%s.txt" % g.fill(1), t.encode(), t, "text/plain")
    broad = i
    # ---- large messages
    for k, i in enumerate(take(4)):
        msgs[i].big = (150 + 120 * k) * 1024

    # ---- dates (all UTC unless a zone is given); edges of a day, a month,
    # a leap day and a year
    D = epoch(2023, 7, 14)
    plan = [(D, 0), (D + 43200, 0), (D + 86399, 0), (D - 1, 0), (D + 86400, 0),
            (D - 1800, 120),      # 01:30 +0200 on the 14th = 23:30 UTC the 13th
            (D + 1800, -240),     # 20:30 -0400 on the 13th = 00:30 UTC the 14th
            (epoch(2024, 2, 29, 23, 59, 59), 0), (epoch(2024, 3, 1), 0),
            (epoch(2022, 12, 31, 23, 59, 59), 0), (epoch(2023, 1, 1), 60)]
    for (t, z), i in zip(plan, take(len(plan))):
        assert t not in used_dates
        used_dates.add(t)
        msgs[i].date, msgs[i].zone = t, z
    special = {"msgid": take(1)[0]}
    msgs[special["msgid"]].msgid = "<Special.ID-4711+x@Acme-Corp.test>"

    # ---- journal envelopes: header recipients, plus Bcc-only ones
    for k, i in enumerate(journal):
        m = msgs[i]
        m.rcpt["bcc"] = []
        m.env = [("to", a) for _, a in m.rcpt["to"]] + [("cc", a) for _, a in m.rcpt["cc"]]
        if k < 4:
            m.env.append(("bcc", ingrid))
        if k == 4:
            m.env.append(("bcc", felix[1]))
        if k == 5:
            m.env.append(("bcc", "audit.team@" + "ledger.corp.example"))
    return g, msgs, {"broad": broad, "journal": journal, "special": special,
                     "people": {"dora": dora, "dora_home": dora_home, "felix": felix,
                                "felix2": felix2, "gilda": gilda, "hector": hector,
                                "ingrid": ingrid}}


# ----------------------------------------------------------------- rendering

def hdr_addr(name, addr):
    if name.isascii():
        return email.utils.formataddr((name, addr))
    return email.utils.formataddr((name, addr), charset="utf-8")


def render(m, g):
    """The message's bytes (CRLF)."""
    r = random.Random("%d/%d" % (g.seed, m.idx))
    if m.html is not None:
        root = MIMEText(m.html[0], "html", "us-ascii" if m.html[0].isascii() else "utf-8")
    else:
        body = "\n\n".join(m.body) + "\n"
        cs = "us-ascii" if body.isascii() else "utf-8"
        root = MIMEText(body, "plain", cs)
    if m.atts or m.nested or m.big:
        mp = MIMEMultipart("mixed")
        mp.attach(root)
        for a in m.atts:
            maj, sub = a["ctype"].split("/")
            if maj == "text":
                p = MIMEText(a["data"].decode(), sub, "utf-8")
            else:
                p = MIMEApplication(a["data"], sub)
            p.add_header("Content-Disposition", "attachment", filename=a["filename"])
            mp.attach(p)
        if m.nested:
            inner = MIMEText(m.nested[1] + "\n", "plain", "us-ascii")
            inner["From"] = hdr_addr(*g.person())
            inner["To"] = hdr_addr(*g.person())
            inner["Subject"] = m.nested[0]
            inner["Date"] = fmt_date(m.date - 86400, 0)
            inner["Message-ID"] = "<nested.%d@gen.mvsearch.example>" % m.idx
            p = MIMEMessage(inner)
            p.add_header("Content-Disposition", "attachment", filename="forwarded.eml")
            mp.attach(p)
        if m.big:
            p = MIMEApplication(r.randbytes(m.big), "octet-stream")
            p.add_header("Content-Disposition", "attachment", filename="scan-%d.bin" % m.idx)
            mp.attach(p)
        root = mp
    root["From"] = hdr_addr(*m.frm)
    for role in ("to", "cc", "bcc"):
        if m.rcpt[role]:
            root[role.capitalize()] = ", ".join(hdr_addr(*p) for p in m.rcpt[role])
    if m.reply_to:
        root["Reply-To"] = m.reply_to
    if m.subject_charset:
        root["Subject"] = email.header.Header(m.subject, m.subject_charset)
    else:
        root["Subject"] = m.subject
    root["Date"] = fmt_date(m.date, m.zone)
    root["Message-ID"] = m.msgid
    # the MIME fields after the others, as mail clients write them
    for h in ("MIME-Version", "Content-Type", "Content-Transfer-Encoding"):
        v = root[h]
        if v is not None:
            del root[h]
            root[h] = v
    out = io.BytesIO()
    email.generator.BytesGenerator(out, mangle_from_=False, maxheaderlen=78).flatten(root)
    data = crlf(out.getvalue())
    if not data.endswith(b"\r\n"):
        data += b"\r\n"   # an mbox needs its blank line after a line end
    assert b"\nFrom " not in data
    return data


def journal_report(m, inner, r, n):
    """An Exchange journal report carrying inner, its envelope in m.env."""
    bnd = "_%03d_JRNL%08X_" % (n, r.getrandbits(32))
    lines = ["Sender: " + m.frm[1], "Subject: " + "(see original)",
             "Message-Id: " + m.msgid]
    for role, a in m.env:
        lines.append("%s: %s" % (role.capitalize(), a))
    text = ("\r\n".join(lines) + "\r\n").encode()
    h = ("From: Microsoft Exchange <MicrosoftExchange329e71ec88ae@%s>\r\n"
         "To: %s\r\nSubject: journal report %d\r\nDate: %s\r\n"
         "Message-ID: <jr.%d.%08x@%s>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"%s\"\r\n"
         "X-MS-Journal-Report:\r\n\r\n" % (ORG, JOURNAL_ARCHIVE, n, fmt_date(m.date + 5, 0), n,
                                           r.getrandbits(32), ORG, bnd))
    out = h.encode()
    out += b"--" + bnd.encode() + b"\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n"
    out += b"Content-Transfer-Encoding: 7bit\r\n\r\n" + text
    out += b"\r\n--" + bnd.encode() + b"\r\nContent-Type: message/rfc822\r\n"
    out += b"Content-Disposition: attachment\r\n\r\n" + inner
    out += b"\r\n--" + bnd.encode() + b"--\r\n"
    return out


# ------------------------------------------------------------------ queries

def queries(md, msgs, info):
    """[(query, expected index set)]"""
    T = md.text
    W, N, X = T("walrus"), T("narwhal"), T("pelican")
    AND = T("and")
    P = md.words(FREE, "quarterly revenue forecast")
    PR = md.words(FREE, "forecast revenue quarterly")
    inv = T("invoice", "invoices", "invoicing", "invoiced")
    pp = info["people"]
    D = epoch(2023, 7, 14)
    day = 86400
    big = sorted((m.size, m.idx) for m in msgs if m.big)
    sizes = sorted(m.size for m in msgs)
    att = md.with_attachments()
    special = msgs[info["special"]["msgid"]]
    q = [
        # free text, case, stemming, wildcards
        ("quokka", T("quokka")),
        ("QUOKKA", T("quokka")),
        ("Quokka", T("quokka")),
        ("invoice", inv),
        ("invoices", inv),
        ("INVOICING", inv),
        ("invoic*", inv),
        ("quok*", T("quokka")),
        ("subject:budg*", md.words(["subject"], "budget", "budgets")),
        ("from:marchb*", md.addr("from", "marchbanks")),
        # phrases
        ('"quarterly revenue forecast"', P),
        ('"forecast revenue quarterly"', PR),
        ("quarterly revenue forecast", P | PR),
        ('"quarterly revenues forecast"', P),
        ('"revenue quarterly"', PR),
        # operators
        ("walrus narwhal", W & N),
        ("walrus AND narwhal", W & N),
        ("walrus OR narwhal", W | N),
        ("walrus NOT narwhal", W - N),
        ("walrus -narwhal", W - N),
        ("walrus AND NOT narwhal", W - N),
        ("(walrus OR narwhal) pelican", (W | N) & X),
        ("walrus OR narwhal pelican", W | (N & X)),
        ("walrus OR (narwhal pelican)", W | (N & X)),
        ("NOT walrus", md.all - W),
        ("-walrus -narwhal", md.all - W - N),
        ("walrus and narwhal", W & N & AND),
        ("walrus or narwhal", W & N & T("or")),
        ("NOT (walrus OR narwhal OR pelican)", md.all - W - N - X),
        ("*", md.all),
        # fields: from
        ("from:dora.quill@acme-corp.test", md.addr("from", "dora.quill@acme-corp.test")),
        ("from:DORA.QUILL@ACME-CORP.TEST", md.addr("from", "dora.quill@acme-corp.test")),
        ("from:dora.quill", md.addr("from", "dora.quill")),
        ("from:acme-corp.test", md.addr("from", "acme-corp.test")),
        ("from:emea.acme-corp.test", md.addr("from", "emea.acme-corp.test")),
        ("from:sales.emea.acme-corp.test", md.addr("from", "sales.emea.acme-corp.test")),
        ("from:marchbanks", md.addr("from", "marchbanks")),
        ('from:"dora marchbanks"', md.addr("from", "dora marchbanks")),
        ('from:"marchbanks dora"', md.addr("from", "marchbanks dora")),
        ("from:пастернак", md.addr("from", "пастернак")),
        ("from:brisk", md.addr("from", "brisk")),
        # free text finds addresses too (docs/search.md): whole, local part, domain
        ("dora.quill@acme-corp.test", md.anyaddr(["dora.quill@acme-corp.test"])),
        ("dora.quill", md.addr("participant", "dora.quill")),
        ("acme-corp.test", md.addr("participant", "acme-corp.test")),
        # to cc bcc participant
        ("to:felix.ornby@globex.test", md.addr("to", "felix.ornby@globex.test")),
        ("to:felix.ornby", md.addr("to", "felix.ornby")),
        ("to:globex.test", md.addr("to", "globex.test")),
        ("to:eu.globex.test", md.addr("to", "eu.globex.test")),
        ("to:ornby", md.addr("to", "ornby")),
        ("to:xenia.troll", md.addr("to", "xenia.troll")),
        ("to:xenia.tro*", md.addr("to", "xenia.troll")),
        ("to:ornb*", md.addr("to", "ornby")),
        ("to:dora.quill@acme-corp.test", md.addr("to", "dora.quill@acme-corp.test")),
        ("cc:gilda.penrose@initech.test", md.addr("cc", "gilda.penrose@initech.test")),
        ("cc:penrose", md.addr("cc", "penrose")),
        ("cc:initech.test", md.addr("cc", "initech.test")),
        ("to:gilda.penrose@initech.test", md.addr("to", "gilda.penrose@initech.test")),
        ("bcc:hector.vale@umbrella.test", md.addr("bcc", "hector.vale@umbrella.test")),
        ("bcc:vale", md.addr("bcc", "vale")),
        ("to:hector.vale@umbrella.test", md.addr("to", "hector.vale@umbrella.test")),
        ("bcc:" + pp["ingrid"], md.addr("bcc", pp["ingrid"])),
        ("bcc:ingrid.solberg", md.addr("bcc", "ingrid.solberg")),
        ("bcc:felix.ornby@globex.test", md.addr("bcc", "felix.ornby@globex.test")),
        ("bcc:corp.example", md.addr("bcc", "corp.example")),
        ("participant:" + pp["ingrid"], md.addr("participant", pp["ingrid"])),
        ("participant:dora.quill@acme-corp.test",
         md.addr("participant", "dora.quill@acme-corp.test")),
        ("participant:marchbanks", md.addr("participant", "marchbanks")),
        ("participant:acme-corp.test", md.addr("participant", "acme-corp.test")),
        # subject body attachment filename msgid domain
        ("subject:budget", md.words(["subject"], "budget", "budgets")),
        ("body:budget", md.words(["body"], "budget", "budgets")),
        ("budget", T("budget", "budgets")),
        ("subject:(budget OR quokka)", md.words(["subject"], "budget", "budgets", "quokka")),
        ("subject:überweisung", md.words(["subject"], "überweisung")),
        ("Überweisung", T("überweisung")),
        ("subject:kräftig", md.words(["subject"], "kräftig")),
        ('subject:"kräftig grüße"', md.words(["subject"], "kräftig grüße")),
        ("бухгалтерия", T("бухгалтерия")),
        ("БУХГАЛТЕРИЯ", T("бухгалтерия")),
        ("λογαριασμός", T("λογαριασμός")),
        ("会议纪要", md.substr("body", "会议纪要")),
        ("会议", md.substr("body", "会议")),
        ("gazebo", T("gazebo")),
        ("crème", T("crème")),
        ("trebuchet", set()),
        ("catapult", set()),
        ("ballista", set()),
        ("mangonel", set()),
        ("onager", set()),
        ("attachment:kangaroo", md.words(["attachment"], "kangaroo")),
        ("kangaroo", T("kangaroo")),
        ("body:kangaroo", md.words(["body"], "kangaroo")),
        ("attachment:wombat", md.words(["attachment"], "wombat")),
        ("attachment:platypus", md.words(["attachment"], "platypus")),
        ("quagga", set()),
        ("attachment:echidna", md.words(["attachment"], "echidna")),
        ("bandicoot", T("bandicoot")),
        ("attachment:dingo", md.words(["attachment"], "dingo")),
        ("attachment:bilby", md.words(["attachment"], "bilby")),
        ("attachment:flumoxtua", md.words(["attachment"], "flumoxtua")),
        ("marmoset", T("marmoset")),
        ("attachment:marmoset", md.words(["attachment"], "marmoset")),
        ("body:marmoset", md.words(["body"], "marmoset")),
        ("filename:zeppelin", md.words(["filename"], "zeppelin")),
        ("filename:ZEPPELIN", md.words(["filename"], "zeppelin")),
        ("filename:Zeppelin-Manifest-2024.pdf", md.filename("Zeppelin-Manifest-2024.pdf")),
        ("filename:zeppelin-manifest-2021.docx", md.filename("Zeppelin-Manifest-2021.docx")),
        ("zeppelin", T("zeppelin")),
        ("filename:forwarded.eml", md.filename("forwarded.eml")
         | {m.idx for m in msgs if m.nested}),
        ("msgid:" + special.msgid, {special.idx}),
        ("msgid:" + special.msgid.strip("<>"), {special.idx}),
        ("msgid:" + msgs[5].msgid, {5}),
        ("domain:globex.test", md.domain("globex.test")),
        ("domain:eu.globex.test", md.domain("eu.globex.test")),
        ("domain:acme-corp.test", md.domain("acme-corp.test")),
        ("domain:corp.example", md.domain("corp.example")),
        ("domain:ledger.corp.example", md.domain("ledger.corp.example")),
        # custodians (custodians.json and custodians.csv)
        ('custodian:"Dora Marchbanks"', md.anyaddr([pp["dora"][1], pp["dora_home"][1]])),
        ('custodian:"dora marchbanks"', md.anyaddr([pp["dora"][1], pp["dora_home"][1]])),
        ('custodian:"D. Marchbanks"', md.anyaddr([pp["dora"][1], pp["dora_home"][1]])),
        ('custodian:"Felix Ornby"', md.anyaddr([pp["felix"][1], pp["felix2"][1]])),
        ("custodian:Fox", md.anyaddr([pp["felix"][1], pp["felix2"][1]])),
        ('custodian:"Vale, Hector"', md.anyaddr([pp["hector"][1]])),
        ('custodian:"Ingrid Solberg"', md.anyaddr([pp["ingrid"]])),
        ('custodian:"Gilda Penrose" walrus', md.anyaddr([pp["gilda"][1]]) & W),
        # dates
        ("date:2023-07-14", md.date(D, D + day - 1)),
        ("date:2023-07", md.date(epoch(2023, 7, 1), epoch(2023, 8, 1) - 1)),
        ("date:2023", md.date(epoch(2023, 1, 1), epoch(2024, 1, 1) - 1)),
        ("date:2022-12-31", md.date(epoch(2022, 12, 31), epoch(2023, 1, 1) - 1)),
        ("date:2024-02", md.date(epoch(2024, 2, 1), epoch(2024, 3, 1) - 1)),
        ("date:2024-02-29", md.date(epoch(2024, 2, 29), epoch(2024, 3, 1) - 1)),
        ("date:2023-07-01..2023-07-14", md.date(epoch(2023, 7, 1), D + day - 1)),
        ("date:2023-07-14..2023-07-15", md.date(D, D + 2 * day - 1)),
        ("date:2023-07-14..2023-07", md.date(D, epoch(2023, 8, 1) - 1)),
        ("date:2022..2023-01-01", md.date(epoch(2022, 1, 1), epoch(2023, 1, 2) - 1)),
        ("date:2024-06..", md.date(epoch(2024, 6, 1), 2 ** 62)),
        ("date:..2019-06-30", md.date(-2 ** 62, epoch(2019, 7, 1) - 1)),
        ("date:>2023-07-14", md.date(D + day, 2 ** 62)),
        ("date:>=2023-07-14", md.date(D, 2 ** 62)),
        ("date:<2023-07-14", md.date(-2 ** 62, D - 1)),
        ("date:<=2023-07-14", md.date(-2 ** 62, D + day - 1)),
        ("date:>2023", md.date(epoch(2024, 1, 1), 2 ** 62)),
        ("walrus date:2021..2022", W & md.date(epoch(2021, 1, 1), epoch(2023, 1, 1) - 1)),
        # sizes
        ("size:>100K", md.size(100 * 1024 + 1, 2 ** 63)),
        ("size:>=%d" % big[1][0], md.size(big[1][0], 2 ** 63)),
        ("size:>%d" % big[1][0], md.size(big[1][0] + 1, 2 ** 63)),
        ("size:%d" % big[2][0], md.size(big[2][0], big[2][0])),
        ("size:<%d" % sizes[20], md.size(0, sizes[20] - 1)),
        ("size:<=%d" % sizes[20], md.size(0, sizes[20])),
        ("size:200K..1M", md.size(200 * 1024, 1024 * 1024)),
        ("size:>0.2MB", md.size(int(0.2 * 1024 * 1024) + 1, 2 ** 63)),
        # has:
        ("has:attachment", att),
        ("NOT has:attachment", md.all - att),
        ("has:attachment walrus", att & W),
    ]
    return q


ERRORS = [
    # (query, exit status, fragment of the message on stderr)
    ('walrus "unterminated', 65, "column 8"),
    ("walrus AND (narwhal", 65, "column"),
    ("frm:dora", 65, "column 1"),
    ("date:2023-02-30", 65, "column"),
    ("qu*", 65, "column"),
    ("flumox*", 65, "more letters"),
    ("custodian:nobody-such", 66, "nobody-such"),
]


# --------------------------------------------------------------------- main

def write_corpus(a):
    g, msgs, info = build(a.seed, a.count)
    os.makedirs(os.path.join(a.out, "mail"))
    os.makedirs(os.path.join(a.out, "journal"))
    r = random.Random(a.seed * 7919 + 1)
    mbox = []
    n_j = 0
    for m in msgs:
        data = render(m, g)
        m.size = len(data)
        if m.journal:
            n_j += 1
            m.file = "journal/%02d.eml" % n_j
            rep = journal_report(m, data, r, n_j)
            open(os.path.join(a.out, m.file), "wb").write(rep)
        elif a.layout == "mbox":
            m.file = "mail/all.mbox"
            mbox.append(b"From %s %s\n" % (
                m.frm[1].encode(), datetime.datetime.fromtimestamp(
                    m.date, datetime.timezone.utc).strftime("%a %b %d %H:%M:%S %Y").encode())
                + data + b"\n")
        else:
            m.file = "mail/m%04d.eml" % m.idx
            open(os.path.join(a.out, m.file), "wb").write(data)
    if mbox:
        open(os.path.join(a.out, "mail/all.mbox"), "wb").write(b"".join(mbox))
    md = Model(msgs)
    pp = info["people"]
    custodians = [{"name": "Dora Marchbanks", "addresses": [pp["dora"][1], pp["dora_home"][1]],
                   "aliases": ["D. Marchbanks"]}]
    with open(os.path.join(a.out, "custodians.json"), "w") as f:
        json.dump(custodians, f, indent=1)
    with open(os.path.join(a.out, "custodians.csv"), "w", newline="") as f:
        f.write("name,addresses,aliases,department\r\n")
        f.write("Felix Ornby,%s;%s,Fox,Legal\r\n" % (pp["felix"][1], pp["felix2"][1].upper()))
        f.write("\"Vale, Hector\",%s,,\"Risk \"\"&\"\" Audit\"\r\n" % pp["hector"][1])
        f.write("Ingrid Solberg,%s,,\r\n" % pp["ingrid"])
        f.write("Gilda Penrose,%s,,Finance\r\n" % pp["gilda"][1])
    qs = queries(md, msgs, info)
    out = {
        "generator": "mvsearch", "version": 1, "seed": a.seed, "count": a.count,
        "layout": a.layout,
        "messages": [{"index": m.idx, "message_id": m.msgid, "date": m.date, "size": m.size,
                      "route": "journal" if m.journal else "import", "file": m.file}
                     for m in msgs],
        "queries": [{"q": qq, "expect": sorted(s)} for qq, s in qs],
        "errors": [{"q": qq, "exit": e, "stderr": s} for qq, e, s in ERRORS],
        "snippet": {"q": "quokka", "mark": "[quokka]"},
    }
    with open(os.path.join(a.out, "answers.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
    empty = sum(1 for _, s in qs if not s)
    print("mvsearch: %d messages (%d journal), %d queries (%d expect none), %d error cases" % (
        len(msgs), n_j, len(qs), empty, len(ERRORS)), file=sys.stderr)


def write_canaries(a):
    """One distinct canary per place, in a handful of ordinary messages."""
    r = random.Random(a.seed)
    g = Gen(a.seed, 8)

    def canary():
        return "zqxcanary" + "".join(r.choice("abcdefghjkmnpqrstuvwxyz23456789")
                                     for _ in range(12))
    places = ["body", "subject", "display_name", "local_part", "filename", "attachment_txt",
              "attachment_docx", "nested"]
    c = {p: canary() for p in places}
    msgs = [Msg(i, a.seed) for i in range(8)]
    for k, m in enumerate(msgs):
        m.date = epoch(2024, 3, 1 + k, 9, 30)
        m.frm = g.person()
        m.rcpt["to"] = [g.person()]
        m.subject = g.fill(3).capitalize()
        m.body = [g.fill(30) + "."]
    m = msgs
    m[0].body.append("Please keep %s confidential." % c["body"])
    m[1].subject = "Re: %s %s" % (g.fill(1), c["subject"])
    m[2].frm = ("%s Smith" % c["display_name"].capitalize(), m[2].frm[1])
    m[3].rcpt["to"].append(("", "%s@example.com" % c["local_part"]))
    t = "%s\n" % g.fill(5)
    m[4].atts.append({"kind": "txt", "filename": "%s-plan.txt" % c["filename"],
                      "data": t.encode(), "text": t, "ctype": "text/plain"})
    t = "%s %s %s\n" % (g.fill(5), c["attachment_txt"], g.fill(5))
    m[5].atts.append({"kind": "txt", "filename": "minutes.txt", "data": t.encode(), "text": t,
                      "ctype": "text/plain"})
    m[6].atts.append({"kind": "docx", "filename": "memo.docx",
                      "data": make_docx([[g.fill(4)], ["%s %s" % (c["attachment_docx"],
                                                                  g.fill(2))]]),
                      "text": c["attachment_docx"],
                      "ctype": "application/vnd.openxmlformats-officedocument."
                               "wordprocessingml.document"})
    m[7].nested = (g.fill(2), "%s %s %s" % (g.fill(4), c["nested"], g.fill(4)))
    os.makedirs(os.path.join(a.out, "mail"))
    for x in msgs:
        data = render(x, g)
        x.file = "mail/c%02d.eml" % x.idx
        open(os.path.join(a.out, x.file), "wb").write(data)
    queries = {"body": c["body"], "subject": "subject:" + c["subject"],
               "display_name": "from:" + c["display_name"],
               "local_part": "to:" + c["local_part"],
               "filename": "filename:" + c["filename"],
               "attachment_txt": "attachment:" + c["attachment_txt"],
               "attachment_docx": "attachment:" + c["attachment_docx"],
               "nested": c["nested"]}
    out = {"generator": "mvsearch", "version": 1, "seed": a.seed, "canaries": [
        {"place": p, "word": c[p], "query": queries[p], "index": places.index(p),
         "message_id": msgs[places.index(p)].msgid} for p in places]}
    with open(os.path.join(a.out, "answers.json"), "w") as f:
        json.dump(out, f, indent=1)
    print("mvsearch: %d canary messages" % len(msgs), file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory (absent or empty)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--layout", choices=("eml", "mbox"), default="eml")
    ap.add_argument("--canaries", action="store_true")
    a = ap.parse_args(argv)
    if os.path.exists(a.out) and os.listdir(a.out):
        ap.error("--out must be absent or empty")
    if a.count < 150 and not a.canaries:
        ap.error("--count: at least 150 (every feature needs its messages)")
    os.makedirs(a.out, exist_ok=True)
    (write_canaries if a.canaries else write_corpus)(a)


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    main()
