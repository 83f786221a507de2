#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mvsmime: S/MIME fixtures made with the real `openssl` CLI.

Writes into --out (absent or empty) fresh keys and certificates, encrypted
and signed messages, PKCS#12 files, and two manifests saying what
ingest/smime.c must make of each file:

  manifest.json  the full description (for people and other tools)
  manifest.txt   the same, tab-separated, read by tests/unit/smime_test.c
                 (MV_SMIME_FIXTURES=DIR build/tests/smime_test); a "rcpt"
                 line after a "msg" line lists every recipient identifier
                 expected, in order, where the manifest fixes them

File names are fixed; keys, boundaries and ciphertexts are new every run,
so the expected SHA-256 of each decrypted form is computed here from the
files written, with the rule of docs/decryption.md.

    tests/gen/mvsmime.py --out DIR
"""
import argparse
import base64
import hashlib
import json
import os
import re
import subprocess
import sys

CRLF = b"\r\n"


def run(*args, stdin=None):
    r = subprocess.run(["openssl", *args], input=stdin, capture_output=True)
    if r.returncode != 0:
        sys.exit("openssl %s failed:\n%s" % (" ".join(args), r.stderr.decode(errors="replace")))
    return r.stdout


# ---- the decrypted form (docs/decryption.md), for the expected hashes ----

def split_header(ent):
    """(header fields bytes, body bytes): the header block ends at the
    first empty line (CRLF or LF)."""
    pos = 0
    while pos < len(ent):
        e = ent.find(b"\n", pos)
        e = len(ent) if e < 0 else e + 1
        line = ent[pos:e].rstrip(b"\n")
        if line.endswith(b"\r"):
            line = line[:-1]
        if line == b"" and e > pos:
            return ent[:pos], ent[e:]
        pos = e
    return ent, b""


def fields(hdr):
    out, cur = [], b""
    for line in hdr.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and cur:
            cur += line
        else:
            if cur:
                out.append(cur)
            cur = line
    if cur:
        out.append(cur)
    return out


def replace_entity(ent, content):
    hdr, _ = split_header(ent)
    kept = b"".join(f for f in fields(hdr) if not f.lower().startswith(b"content-"))
    first = hdr.split(b"\n", 1)[0] + b"\n" if b"\n" in hdr else b""
    eol = b"\n" if first and not first.endswith(b"\r\n") else CRLF
    if kept and not kept.endswith(b"\n"):
        kept += eol
    starts_field = re.match(rb"[!-9;-~]{1,997}:", content) is not None
    starts_blank = content.startswith(b"\n") or content.startswith(b"\r\n")
    if not starts_field and not starts_blank:
        kept += eol
    return kept + content


def first_part(signed_entity):
    """part 1 of a multipart/signed entity, exactly (the CRLF before the
    next delimiter belongs to the delimiter)."""
    hdr, body = split_header(signed_entity)
    m = re.search(rb'boundary="?([^";\r\n]+)"?', hdr, re.I)
    b = b"--" + m.group(1)
    lines = body.split(b"\n")
    start = None
    off = 0
    for line in lines:
        if line.rstrip(b"\r").rstrip(b" \t") == b and start is None:
            start = off + len(line) + 1
        elif start is not None and line.startswith(b):
            end = off
            if body[end - 1:end] == b"\n":
                end -= 1
            if body[end - 1:end] == b"\r":
                end -= 1
            return body[start:end]
        off += len(line) + 1
    sys.exit("no part 1 in a signed entity")


def crlf(b):
    """every bare LF made CRLF"""
    return re.sub(rb"(?<!\r)\n", b"\r\n", b)


def sha(b):
    return hashlib.sha256(b).hexdigest()


# ---- keys and certificates -----------------------------------------------

EXT_CA = "basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
EXT_LEAF = "basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"


def genkey(out, name, alg):
    path = os.path.join(out, "keys", name + ".key.pem")
    if alg == "rsa":
        run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + alg, "-out", path)
    return path


def mkcert(out, name, cn, serial, alg, ca=None):
    key = genkey(out, name, alg)
    crt = os.path.join(out, "keys", name + ".crt.pem")
    ext = os.path.join(out, "keys", name + ".ext")
    with open(ext, "w") as f:
        f.write(EXT_LEAF if ca else EXT_CA)
    subj = "/O=Mailvault Fixtures/CN=" + cn
    if ca is None:
        run("req", "-x509", "-new", "-key", key, "-subj", subj, "-days", "3650", "-set_serial",
            str(serial), "-config", "/dev/null", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash", "-out", crt)
    else:
        csr = run("req", "-new", "-key", key, "-subj", subj, "-config", "/dev/null")
        run("x509", "-req", "-CA", ca[1], "-CAkey", ca[0], "-set_serial", str(serial), "-days",
            "3650", "-extfile", ext, "-out", crt, stdin=csr)
    os.unlink(ext)
    der_key = os.path.join(out, "keys", name + ".key.der")
    der_crt = os.path.join(out, "keys", name + ".crt.der")
    run("pkcs8", "-topk8", "-nocrypt", "-in", key, "-outform", "DER", "-out", der_key)
    run("x509", "-in", crt, "-outform", "DER", "-out", der_crt)
    return key, crt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = a.out
    if os.path.exists(out) and os.listdir(out):
        sys.exit("--out must be absent or empty")
    for d in ("keys", "msg", "p12"):
        os.makedirs(os.path.join(out, d), exist_ok=True)

    ca = mkcert(out, "ca", "Fixture CA", 1, "P-256")
    rsa1 = mkcert(out, "rsa1", "Alice", 0x1001, "rsa", ca)
    rsa2 = mkcert(out, "rsa2", "Bob", 0x1002, "rsa", ca)
    rsa3 = mkcert(out, "rsa3", "Carol", 0x1003, "rsa", ca)
    ec256 = mkcert(out, "ec256", "Dave", 0x1004, "P-256", ca)
    ec384 = mkcert(out, "ec384", "Erin", 0x1005, "P-384", ca)
    signer = mkcert(out, "signer", "Signer", 0x1006, "P-256", ca)
    unknown = mkcert(out, "unknown", "Unknown Signer", 7, "P-256")
    escrowed = {1: "rsa1", 2: "ec256", 3: "ec384", 4: "rsa3"}

    inner = (b"Content-Type: text/plain; charset=utf-8\r\n"
             b"Content-Transfer-Encoding: 8bit\r\n\r\n"
             b"Quarterly figures: 4,711 units.\r\nGr\xc3\xbc\xc3\x9fe\r\n")
    inner_path = os.path.join(out, "keys", "inner.txt")
    with open(inner_path, "wb") as f:
        f.write(inner)

    msgs = []

    def encrypt(name, content, recips, cipher="-aes-256-cbc", oaep=False, keyid=False,
                legacy=False, headers=True):
        src = os.path.join(out, "keys", name + ".content")
        with open(src, "wb") as f:
            f.write(content)
        args = ["cms", "-encrypt", "-binary", "-crlfeol", "-in", src, cipher]
        if headers:  # a whole message; without them an attachment entity
            args += ["-from", "alice@example.com", "-to", "bob@example.com",
                     "-subject", "fixture " + name]
        if keyid:
            args.append("-keyid")
        if legacy:  # OpenSSL 3 keeps RC2 in its legacy provider
            args += ["-provider", "legacy", "-provider", "default"]
        for r in recips:
            args += ["-recip", r[1]]
            if oaep:
                args += ["-keyopt", "rsa_padding_mode:oaep"]
        data = run(*args)
        os.unlink(src)
        return data

    def add(name, data, key, form, sig="none", failure=None, notes="", recipients=None):
        path = "msg/%s.eml" % name
        with open(os.path.join(out, path), "wb") as f:
            f.write(data)
        msgs.append({"file": path, "decrypted": form is not None, "key_id": key,
                     "out_sha256": sha(form) if form is not None else None,
                     "sig": sig, "failure": failure, "notes": notes,
                     "recipients": recipients})

    def rid(serial):
        """the recipient identifier ingest/smime.c reports for a fixture
        certificate named by issuer and serial (docs/decryption.md)"""
        return "issuer=CN=Fixture CA,O=Mailvault Fixtures;serial=%x" % serial

    m = encrypt("01-rsa-pkcs1-aes256cbc", inner, [rsa1])
    add("01-rsa-pkcs1-aes256cbc", m, 1, replace_entity(m, inner))
    m = encrypt("02-rsa-oaep", inner, [rsa1], oaep=True)
    add("02-rsa-oaep", m, 1, replace_entity(m, inner))
    m = encrypt("03-ec-p256", inner, [ec256], cipher="-aes-128-cbc")
    add("03-ec-p256", m, 2, replace_entity(m, inner))
    m = encrypt("04-ec-p384-keyid", inner, [ec384], keyid=True)
    add("04-ec-p384-keyid", m, 3, replace_entity(m, inner))
    m = encrypt("05-aes256gcm", inner, [rsa1], cipher="-aes-256-gcm")
    add("05-aes256gcm", m, 1, replace_entity(m, inner), notes="authEnvelopedData")
    m = encrypt("06-ec-gcm", inner, [ec256], cipher="-aes-128-gcm")
    add("06-ec-gcm", m, 2, replace_entity(m, inner))
    m = encrypt("07-several-one-escrowed", inner, [rsa2, rsa3, ec384])
    # rsa3 (id 4) and ec384 (id 3) are both escrowed: the first matching
    # RecipientInfo in DER order wins, so only "decrypted" is fixed here
    add("07-several-one-escrowed", m, None, replace_entity(m, inner))
    m = encrypt("08-several-only-rsa1", inner, [rsa2, rsa1])
    add("08-several-only-rsa1", m, 1, replace_entity(m, inner))
    m = encrypt("09-not-escrowed", inner, [rsa2])
    add("09-not-escrowed", m, 0, None, failure="no escrowed key for any recipient")

    # sign-then-encrypt: the signed entity (multipart/signed) is the content
    signed = run("cms", "-sign", "-binary", "-crlfeol", "-in", inner_path, "-signer", signer[1],
                 "-inkey", signer[0])
    m = encrypt("10-sign-then-encrypt", signed, [rsa1])
    form = replace_entity(replace_entity(m, signed), first_part(signed))
    add("10-sign-then-encrypt", m, 1, form, sig="valid")

    # opaque signed inside encrypted
    opaque = run("cms", "-sign", "-nodetach", "-binary", "-crlfeol", "-in", inner_path,
                 "-signer", signer[1], "-inkey", signer[0])
    m = encrypt("11-opaque-signed-then-encrypt", opaque, [ec256])
    form = replace_entity(replace_entity(m, opaque), inner)
    add("11-opaque-signed-then-encrypt", m, 2, form, sig="valid")

    # signed only: valid, tampered, unknown signer
    hdr = b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: signed\r\n"
    add("12-signed-valid", hdr + signed, 0, None, sig="valid")
    tampered = signed.replace(b"4,711", b"9,711", 1)
    add("13-signed-tampered", hdr + tampered, 0, None, sig="invalid")
    by_unknown = run("cms", "-sign", "-binary", "-crlfeol", "-in", inner_path, "-signer",
                     unknown[1], "-inkey", unknown[0])
    add("14-signed-unknown-signer", hdr + by_unknown, 0, None, sig="valid-untrusted")

    # corrupted ciphertext (GCM: the tag fails)
    m = encrypt("15-corrupt", inner, [rsa1], cipher="-aes-256-gcm")
    h, body = split_header(m)
    der = bytearray(base64.b64decode(b"".join(body.split())))
    der[len(der) - 16 - 2 - 5] ^= 0x40
    b64 = base64.encodebytes(bytes(der)).replace(b"\n", b"\r\n")
    add("15-corrupt", h + CRLF + b64, 0, None, failure="content decryption")

    # an encrypted message forwarded inside message/rfc822
    m = encrypt("16-inner", inner, [ec384])
    pre = (b"From: journal@example.com\r\nSubject: journal report\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"=_j\"\r\n\r\n--=_j\r\n"
           b"Content-Type: text/plain\r\n\r\nSender: alice@example.com\r\n--=_j\r\n"
           b"Content-Type: message/rfc822\r\n\r\n")
    post = b"\r\n--=_j--\r\n"
    add("16-nested-rfc822", pre + m + post, 3, pre + replace_entity(m, inner) + post)

    # RC2 content, as old Outlook sent it (RFC 4134 5.2 is the same cipher)
    m = encrypt("17-rc2-128", inner, [rsa1], cipher="-rc2-128", legacy=True)
    add("17-rc2-128", m, 1, replace_entity(m, inner), notes="RC2 (legacy provider)")
    m = encrypt("18-rc2-40", inner, [rsa1], cipher="-rc2-40", legacy=True)
    add("18-rc2-40", m, 1, replace_entity(m, inner), notes="RC2-40 (legacy provider)")

    # Several S/MIME entities in one message (docs/decryption.md "Several
    # entities"): each is replaced by its unwrapped form, bytes between
    # them copied; the form exists only when every encrypted one opens.
    inner_a = (b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
               b"First forwarded plaintext: alpha-7731.\r\n")
    inner_b = (b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
               b"Second forwarded plaintext: bravo-9924.\r\n")

    # (a) two encrypted mails forwarded as message/rfc822, RSA and EC
    m1 = crlf(encrypt("19-a", inner_a, [rsa1]))
    m2 = crlf(encrypt("19-b", inner_b, [ec256], cipher="-aes-128-gcm"))
    pre = (b"From: carol@example.com\r\nTo: archive@example.com\r\n"
           b"Subject: two sealed mails\r\nMessage-ID: <two-sealed@fixtures.example>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"=_two\"\r\n\r\n--=_two\r\n"
           b"Content-Type: text/plain\r\n\r\nBoth attached.\r\n--=_two\r\n"
           b"Content-Type: message/rfc822\r\n\r\n")
    mid = b"\r\n--=_two\r\nContent-Type: message/rfc822\r\n\r\n"
    post = b"\r\n--=_two--\r\n"
    add("19-two-encrypted-rfc822", pre + m1 + mid + m2 + post, 1,
        pre + replace_entity(m1, inner_a) + mid + replace_entity(m2, inner_b) + post,
        notes="two encrypted entities: both decrypted, the first one's key reported",
        recipients=[rid(0x1001), rid(0x1004)])

    # (b) multipart/signed whose signed part is a multipart/mixed holding
    # text and an encrypted .p7m attachment
    # canonical CRLF (openssl ends its base64 with a bare LF): the signed
    # part must be what the signature covers, and SMTP would change it
    att = crlf(encrypt("20-att", inner_a, [ec256], headers=False))
    part1_pre = (b"Content-Type: multipart/mixed; boundary=\"=_in\"\r\n\r\n--=_in\r\n"
                 b"Content-Type: text/plain\r\n\r\nThe report is attached.\r\n--=_in\r\n")
    part1_post = b"\r\n--=_in--\r\n"
    part1 = part1_pre + att + part1_post
    p1_path = os.path.join(out, "keys", "20-part1.txt")
    with open(p1_path, "wb") as f:
        f.write(part1)
    signed_mixed = run("cms", "-sign", "-binary", "-crlfeol", "-in", p1_path, "-signer",
                       signer[1], "-inkey", signer[0])
    os.unlink(p1_path)
    if first_part(signed_mixed) != part1:
        sys.exit("openssl changed the signed part of fixture 20")
    hdr20 = (b"From: alice@example.com\r\nTo: bob@example.com\r\n"
             b"Subject: signed, with a sealed attachment\r\n")
    form = hdr20 + replace_entity(signed_mixed,
                                  part1_pre + replace_entity(att, inner_a) + part1_post)
    add("20-signed-mixed-p7m", hdr20 + signed_mixed, 2, form, sig="valid",
        notes="the signed part is walked again: the attachment inside is decrypted",
        recipients=[rid(0x1004)])

    # (c) two encrypted attachments, the second to a key not escrowed:
    # all or nothing, so no form; recipients of both
    att1 = crlf(encrypt("21-a", inner_a, [rsa1], headers=False))
    att2 = crlf(encrypt("21-b", inner_b, [rsa2], headers=False))
    msg21 = (b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: two attachments\r\n"
             b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b21\r\n\r\n"
             b"--b21\r\n" + att1 + b"\r\n--b21\r\n" + att2 + b"\r\n--b21--\r\n")
    add("21-two-one-not-escrowed", msg21, 0, None,
        failure="no escrowed key for any recipient",
        notes="one of two encrypted entities cannot be opened: no form",
        recipients=[rid(0x1001), rid(0x1002)])

    # PKCS#12 of each escrowed key; one legacy (RC2/3DES); one wrong password
    p12s = []
    for name in ("rsa1", "ec256", "ec384"):
        path = "p12/%s.p12" % name
        key, crt = os.path.join(out, "keys", name + ".key.pem"), os.path.join(out, "keys", name + ".crt.pem")
        run("pkcs12", "-export", "-inkey", key, "-in", crt, "-passout", "pass:escrow",
            "-out", os.path.join(out, path))
        fpr = sha(open(os.path.join(out, "keys", name + ".crt.der"), "rb").read())
        p12s.append({"file": path, "password": "escrow", "ok": True, "cert_sha256": fpr})
    p12s.append({"file": "p12/rsa1.p12", "password": "wrong", "ok": False, "cert_sha256": None})
    legacy = "p12/rsa3-legacy.p12"
    r = subprocess.run(["openssl", "pkcs12", "-export", "-legacy", "-inkey",
                        os.path.join(out, "keys", "rsa3.key.pem"), "-in",
                        os.path.join(out, "keys", "rsa3.crt.pem"), "-passout", "pass:old",
                        "-out", os.path.join(out, legacy)], capture_output=True)
    if r.returncode == 0:
        fpr = sha(open(os.path.join(out, "keys", "rsa3.crt.der"), "rb").read())
        p12s.append({"file": legacy, "password": "old", "ok": True, "cert_sha256": fpr})

    keys = [{"id": i, "key": "keys/%s.key.der" % n, "cert": "keys/%s.crt.der" % n}
            for i, n in sorted(escrowed.items())]
    with open(os.path.join(out, "keys", "anchors.pem"), "wb") as f:
        f.write(open(ca[1], "rb").read())
    manifest = {"generator": "mvsmime", "version": 1, "anchors": "keys/anchors.pem",
                "keys": keys, "messages": msgs, "p12": p12s}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("anchors\tkeys/anchors.pem\n")
        for k in keys:
            f.write("key\t%d\t%s\t%s\n" % (k["id"], k["key"], k["cert"]))
        for mm in msgs:
            kid = mm["key_id"]
            f.write("msg\t%s\t%d\t%s\t%s\t%s\t%s\n" % (
                mm["file"], 1 if mm["decrypted"] else 0, "*" if kid is None else kid,
                mm["out_sha256"] or "-", mm["sig"], mm["failure"] or "-"))
            if mm["recipients"] is not None:
                f.write("rcpt\t%s\t%s\n" % (mm["file"], "\t".join(mm["recipients"])))
        for p in p12s:
            f.write("p12\t%s\t%s\t%d\t%s\n" % (p["file"], p["password"] or "-", 1 if p["ok"] else 0,
                                               p["cert_sha256"] or "-"))
    print("mvsmime: %d messages, %d PKCS#12 files, %d escrowed keys in %s"
          % (len(msgs), len(p12s), len(keys), out), file=sys.stderr)


if __name__ == "__main__":
    main()
