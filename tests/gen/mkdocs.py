#!/usr/bin/env python3
"""mkdocs -- writes the seed corpus of fuzz_extract (tests/fuzz/corpus/extract),
or messages whose attachments become the child documents of an export.

Small messages that reach every reader of search/extract.c: plain text in
legacy charsets, HTML, alternatives, RFC 2231 names, a nested message, a
.eml attachment, and attachments holding a PDF, a DOCX, an ODT, an XLSX and
a PPTX made here.  No real person's mail; Python 3.11 standard library only.
The output is the same on every run (fixed zip timestamps).

    tests/gen/mkdocs.py [--out tests/fuzz/corpus/extract]
    tests/gen/mkdocs.py --families DIR [--word WORD] [--big N]
        DIR/family-*.eml: messages with several attachments each (a PDF, a
        DOCX, text in quoted-printable, an attached message/rfc822 with an
        attachment of its own, a base64 .eml, a non-ASCII RFC 2231 file
        name, an attachment without a file name, an inline image, a
        signature that is not an attachment), CRLF and LF line ends; WORD
        (default "quokkafamily") is in every one of them.  With --big N,
        DIR/family-big.eml carries an attachment of N bytes.
        DIR/families.json lists, per Message-ID, the attachments in part
        order: name (null when none), media type, and whether it is an
        attached message.
"""

import argparse
import base64
import io
import json
import os
import quopri
import zipfile

FIXED_TIME = (2024, 1, 1, 0, 0, 0)


def zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def pdf_bytes(pages):
    """A minimal PDF, one Helvetica text line per page, xref computed."""
    out = bytearray(b"%PDF-1.4\n")
    n = 3 + 2 * len(pages)
    off = [0] * (n + 1)

    def obj(i, body):
        off[i] = len(out)
        out.extend(b"%d 0 obj\n" % i + body + b"\nendobj\n")

    obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(len(pages)))
    obj(2, b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages))
    obj(3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        content = b"BT /F1 18 Tf 72 700 Td (" + text.encode() + b") Tj ET\n"
        obj(4 + 2 * i, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i))
        obj(5 + 2 * i, b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream")
    xref = len(out)
    out.extend(b"xref\n0 %d\n0000000000 65535 f \n" % (n + 1))
    for i in range(1, n + 1):
        out.extend(b"%010d 00000 n \n" % off[i])
    out.extend(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (n + 1, xref))
    return bytes(out)


def with_binary(ctype, filename, data):
    """The attachment unencoded, so a fuzzer mutates the document itself."""
    return (b"From: s@example.com\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=\"=_bin_=\"\n\n"
            b"--=_bin_=\nContent-Type: " + ctype.encode() + b"\n"
            b"Content-Disposition: attachment; filename=\"" + filename.encode() + b"\"\n"
            b"Content-Transfer-Encoding: binary\n\n" + data + b"\n--=_bin_=--\n")


def with_attachment(ctype, filename, data):
    b64 = base64.encodebytes(data)
    return (b"From: Sender <sender@example.com>\nTo: rcpt@example.org\n"
            b"Subject: attachment\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=\"b1\"\n\n"
            b"--b1\nContent-Type: text/plain\n\nsee attached\n"
            b"--b1\nContent-Type: " + ctype.encode() + b"\n"
            b"Content-Disposition: attachment; filename=\"" + filename.encode() + b"\"\n"
            b"Content-Transfer-Encoding: base64\n\n" + b64 + b"--b1--\n")


DOCX = zip_bytes([
    ("[Content_Types].xml", "<Types/>"),
    ("word/document.xml",
     "<w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>Hello </w:t></w:r><w:r><w:t>wor</w:t>"
     "</w:r><w:r><w:t>ld &amp; more</w:t></w:r></w:p><w:p><w:r><w:t>two</w:t><w:tab/>"
     "<w:t>cells</w:t></w:r></w:p></w:body></w:document>"),
    ("word/footer1.xml", "<w:ftr><w:p><w:r><w:t>footer</w:t></w:r></w:p></w:ftr>"),
])
ODT = zip_bytes([
    ("mimetype", "application/vnd.oasis.opendocument.text"),
    ("content.xml",
     "<office:document-content><office:body><office:text><text:h>Title</text:h>"
     "<text:p>Some <text:span>odt</text:span> text<text:tab/>x<text:s/>y "
     "<![CDATA[raw <data>]]></text:p></office:text></office:body></office:document-content>"),
])
XLSX = zip_bytes([
    ("xl/sharedStrings.xml", "<sst><si><t>alpha</t></si><si><t>beta</t></si></sst>"),
    ("xl/worksheets/sheet1.xml",
     "<worksheet><sheetData><row><c t=\"s\"><v>0</v></c><c><v>42</v></c>"
     "<c t=\"inlineStr\"><is><t>inline</t></is></c></row></sheetData></worksheet>"),
])
PPTX = zip_bytes([
    ("ppt/slides/slide2.xml", "<p:sld><a:p><a:r><a:t>second slide</a:t></a:r></a:p></p:sld>"),
    ("ppt/slides/slide1.xml", "<p:sld><a:p><a:r><a:t>first slide</a:t></a:r></a:p></p:sld>"),
])

SEEDS = {
    "plain.eml":
        b"Message-ID: <seed1@example.com>\nDate: Mon, 1 Jan 2024 10:00:00 +0100\n"
        b"From: Alice Example <Alice@Example.com>\n"
        b"To: Team: bob@example.org, \"Carol C.\" <carol@example.org>;\n"
        b"Cc: =?UTF-8?Q?J=C3=BCrgen?= <j@example.de>\n"
        b"Subject: =?ISO-8859-1?Q?Caf=E9?= plans\nIn-Reply-To: <p@example.com>\n"
        b"References: <r@example.com> <p@example.com>\n\nHello,\r\nplain text.\r\n",
    "koi8.eml":
        b"From: a@example.com\nSubject: =?KOI8-R?B?8NLJ18XU?=\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=koi8-r\n"
        b"Content-Transfer-Encoding: quoted-printable\n\n=F0=D2=C9=D7=C5=D4 =CD=C9=D2\n",
    "sjis.eml":
        b"From: a@example.com\nMIME-Version: 1.0\nContent-Type: text/plain; charset=Shift_JIS\n"
        b"Content-Transfer-Encoding: 8bit\n\n" + "日本語のテキスト".encode("shift_jis") + b"\n",
    "html.eml":
        b"From: a@example.com\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
        b"<html><head><style>p{}</style><script>var x='<p>';</script></head><body>"
        b"<!-- c --><p>Fish &amp; chips &#233;&#xE9;&eacute;&nbsp;x</p><br>"
        b"<div>Im<b>port</b>ant <a href=\"a>b\">link</a></div></body></html>\n",
    "alternative.eml":
        b"From: a@example.com\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/alternative; boundary=\"alt\"\n\n"
        b"--alt\nContent-Type: text/plain\n\nplain\n"
        b"--alt\nContent-Type: multipart/related; boundary=\"rel\"\n\n"
        b"--rel\nContent-Type: text/html\n\n<p>html</p>\n"
        b"--rel\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
        b"--rel--\n--alt--\n",
    "rfc2231.eml":
        b"From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"m\"\n\n"
        b"--m\nContent-Type: text/plain\n\nbody\n"
        b"--m\nContent-Type: text/csv\n"
        b"Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates.csv\n\n"
        b"cur,rate\nEUR,1.08\n"
        b"--m\nContent-Type: application/octet-stream\nContent-Disposition: attachment;\n"
        b" filename*0*=ISO-8859-1''r%E9sum%E9;\n filename*1=\"_x.bin\"\n"
        b"Content-Transfer-Encoding: base64\n\nAAECAwQ=\n--m--\n",
    "nested.eml":
        b"From: outer@example.com\nSubject: Fwd\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=\"o\"\n\n"
        b"--o\nContent-Type: text/plain\n\nsee below\n"
        b"--o\nContent-Type: message/rfc822\n\n"
        b"From: inner@example.org\nSubject: inner\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=\"i\"\n\n"
        b"--i\nContent-Type: text/plain\n\ninner body\n"
        b"--i\nContent-Type: text/plain; name=inner.txt\n\ninner attachment\n--i--\n"
        b"--o--\n",
    "eml-attachment.eml":
        with_attachment("application/octet-stream", "old.eml",
                        b"From: x@example.net\nSubject: old\n\nold text\n"),
    "pdf.eml": with_attachment("application/pdf", "doc.pdf",
                               pdf_bytes(["first page text", "second page"])),
    "docx.eml": with_attachment(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "doc.docx", DOCX),
    "odt.eml": with_attachment("application/vnd.oasis.opendocument.text", "doc.odt", ODT),
    "xlsx.eml": with_attachment("application/octet-stream", "book.xlsx", XLSX),
    "pptx.eml": with_attachment(
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "deck.pptx", PPTX),
    "docx-binary.eml": with_binary("application/octet-stream", "b.docx", DOCX),
    "xlsx-binary.eml": with_binary("application/octet-stream", "b.xlsx", XLSX),
    "pdf-binary.eml": with_binary("application/pdf", "b.pdf", pdf_bytes(["binary pdf"])),
    "garbage.bin": bytes(range(256)) + b"\0\0From: \xff\xfe\n\n--x\n",
    "broken-multipart.eml":
        b"From: a@example.com\nContent-Type: multipart/mixed; boundary=\"zz\"\n\n"
        b"--zz\nContent-Type: text/html\n\n<script>never closed <a href='x\n--zz\n"
        b"Content-Type: application/pdf\n\n%PDF-1.4 broken\n",
}


# ---------------------------------------------------------------- families

def b64_lines(data):
    return base64.encodebytes(data)  # 76 columns, LF


def part(headers, body, eol):
    """A MIME part: headers (list of lines) and body (bytes with LF line
    ends where it is text) with the line ends eol."""
    h = b"".join(x.encode() + eol for x in headers)
    if b"\r\n" not in body:  # a body made with eol already (a message) stays
        body = body.replace(b"\n", eol)
    return h + eol + body


def multipart(boundary, parts, eol, headers=()):
    out = b"".join(x.encode() + eol for x in headers)
    out += ("Content-Type: multipart/mixed; boundary=\"%s\"" % boundary).encode() + eol + eol
    for p in parts:
        out += b"--" + boundary.encode() + eol + p + eol
    return out + b"--" + boundary.encode() + b"--" + eol


def family(i, word, eol):
    """Message i of the families, and its attachments in part order."""
    atts = []
    inner_att = part(["Content-Type: text/csv", "Content-Disposition: attachment; filename=inner-%d.csv" % i],
                     b"n,square\n%d,%d\n" % (i, i * i), eol)
    inner = multipart("in-%d" % i, [part(["Content-Type: text/plain"], b"the forwarded %s text\n" % word.encode(), eol), inner_att],
                      eol, ["From: Forwarded <fwd@example.org>", "To: team@example.com",
                            "Subject: forwarded %d" % i, "Date: Mon, 1 Jan 2024 09:00:00 +0000",
                            "Message-ID: <inner-%d@example.org>" % i, "MIME-Version: 1.0"])
    old_eml = (b"From: old@example.net\nSubject: an old message %d\nMessage-ID: <old-%d@example.net>\n\n"
               b"the %s of old\n" % (i, i, word.encode()))
    pdf = pdf_bytes(["%s report %d" % (word, i), "page two"])
    text = ("Caf\u00e9 minutes %d: the %s agreed = settled.\n" % (i, word)).encode()
    parts = [
        part(["Content-Type: text/plain; charset=utf-8"], b"Dear team, the %s family %d.\n" % (word.encode(), i), eol),
        part(["Content-Type: application/pdf; name=\"report-%d.pdf\"" % i,
              "Content-Disposition: attachment; filename=\"report-%d.pdf\"" % i,
              "Content-Transfer-Encoding: base64"], b64_lines(pdf), eol),
        part(["Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document",
              "Content-Disposition: attachment; filename*=UTF-8''%C3%9Cbersicht%20" + str(i) + "%20%E2%82%AC.docx",
              "Content-Transfer-Encoding: base64"], b64_lines(DOCX), eol),
        part(["Content-Type: text/plain; charset=utf-8", "Content-Disposition: attachment; filename=minutes.txt",
              "Content-Transfer-Encoding: quoted-printable"], quopri.encodestring(text), eol),
        part(["Content-Type: message/rfc822", "Content-Disposition: attachment; filename=\"forwarded.eml\""],
             inner, eol),
        part(["Content-Type: application/octet-stream", "Content-Disposition: attachment; filename=\"old.eml\"",
              "Content-Transfer-Encoding: base64"], b64_lines(old_eml), eol),
        part(["Content-Type: application/pdf", "Content-Disposition: attachment",
              "Content-Transfer-Encoding: base64"], b64_lines(pdf_bytes(["nameless %d" % i])), eol),
        part(["Content-Type: image/png", "Content-Transfer-Encoding: base64"],
             b64_lines(b"\x89PNG\r\n\x1a\n" + bytes(range(i % 7 + 3))), eol),
    ]
    atts = [("report-%d.pdf" % i, "application/pdf", False),
            ("\u00dcbersicht %d \u20ac.docx" % i,
             "application/vnd.openxmlformats-officedocument.wordprocessingml.document", False),
            ("minutes.txt", "text/plain", False),
            ("forwarded.eml", "message/rfc822", True),
            ("inner-%d.csv" % i, "text/csv", False),
            ("old.eml", "application/octet-stream", True),
            (None, "application/pdf", False),
            (None, "image/png", False)]
    body = multipart("fam-%d" % i, parts, eol,
                     ["From: Family Sender <sender@example.com>", "To: Jane Doe <jane@example.com>",
                      "Subject: family %d with attachments" % i,
                      "Date: Tue, %d Mar 2024 10:00:00 +0000" % (i + 1),
                      "Message-ID: <family-%d@example.com>" % i, "MIME-Version: 1.0"])
    return body, atts


def families(out, word, big):
    os.makedirs(out, exist_ok=True)
    listing = {}
    for i in range(1, 5):
        eol = b"\r\n" if i % 2 else b"\n"
        body, atts = family(i, word, eol)
        with open(os.path.join(out, "family-%d.eml" % i), "wb") as f:
            f.write(body)
        listing["family-%d@example.com" % i] = [{"name": n, "type": t, "message": m} for n, t, m in atts]
    # signed: the signature is no attachment; one text attachment is
    eol = b"\r\n"
    signed = (b"From: Signer <signer@example.com>\r\nTo: jane@example.com\r\n"
              b"Subject: signed " + word.encode() + b"\r\nDate: Wed, 6 Mar 2024 10:00:00 +0000\r\n"
              b"Message-ID: <family-signed@example.com>\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/signed; boundary=\"sig\"; protocol=\"application/pkcs7-signature\"\r\n\r\n"
              b"--sig\r\n" + multipart("sig-in", [part(["Content-Type: text/plain"], b"signed words\n", eol),
                                               part(["Content-Type: text/plain", "Content-Disposition: attachment; filename=terms.txt"],
                                                    b"terms and conditions\n", eol)], eol) +
              b"\r\n--sig\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
              b"Content-Disposition: attachment; filename=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n"
              b"AAAA\r\n--sig--\r\n")
    with open(os.path.join(out, "family-signed.eml"), "wb") as f:
        f.write(signed)
    listing["family-signed@example.com"] = [{"name": "terms.txt", "type": "text/plain", "message": False}]
    # a message alone: no attachment, no family
    alone = (b"From: a@example.com\r\nTo: jane@example.com\r\nSubject: alone " + word.encode() +
             b"\r\nDate: Thu, 7 Mar 2024 10:00:00 +0000\r\nMessage-ID: <family-alone@example.com>\r\n\r\n"
             b"no attachments, " + word.encode() + b"\r\n")
    with open(os.path.join(out, "family-alone.eml"), "wb") as f:
        f.write(alone)
    listing["family-alone@example.com"] = []
    if big:
        data = bytes((k * 131 + 7) & 255 for k in range(big))
        body = multipart("big", [part(["Content-Type: text/plain"], b"a big one, " + word.encode() + b"\n", eol),
                                 part(["Content-Type: application/octet-stream",
                                       "Content-Disposition: attachment; filename=big.bin",
                                       "Content-Transfer-Encoding: base64"], b64_lines(data), eol)],
                         eol, ["From: big@example.com", "To: jane@example.com", "Subject: big " + word,
                               "Date: Fri, 8 Mar 2024 10:00:00 +0000", "Message-ID: <family-big@example.com>",
                               "MIME-Version: 1.0"])
        with open(os.path.join(out, "family-big.eml"), "wb") as f:
            f.write(body)
        listing["family-big@example.com"] = [{"name": "big.bin", "type": "application/octet-stream",
                                               "message": False}]
    with open(os.path.join(out, "families.json"), "w") as f:
        json.dump(listing, f, indent=1, ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "fuzz",
                                                  "corpus", "extract"))
    ap.add_argument("--families")
    ap.add_argument("--word", default="quokkafamily")
    ap.add_argument("--big", type=int, default=0)
    args = ap.parse_args()
    if args.families:
        families(args.families, args.word, args.big)
        return
    os.makedirs(args.out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
