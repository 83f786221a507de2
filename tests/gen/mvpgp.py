#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mvpgp - OpenPGP test mail made by the real gpg, for ingest/pgp.c.

    tests/gen/mvpgp.py --out DIR

Writes into DIR (which must be absent or empty), with fixed file names:

  gnupg/            the private GNUPGHOME the keys were made in
  keys/             escrowed secret keys: rsa.sec.asc / rsa.sec.gpg (no
                    passphrase), cv.sec.asc / cv.sec.gpg (passphrase
                    "escrow-pass"); signer.pub.asc (a known signer's
                    public key).  other/unknown keys are never exported.
  msg/*.eml         the messages (CRLF line ends)
  keys.tsv          id TAB key file TAB passphrase or "-" (id 0 = public key)
  manifest.tsv      file TAB key id or 0 TAB sha256 or "-" TAB sig TAB
                    failure substring or "-"
  manifest.json     the same facts: {"keys": [...], "messages": [...]}

Per message: "key" is the keyring id of the escrowed key that must open it
(0: none); "sha256" is the SHA-256 (lower-case hex) of the exact decrypted
form as docs/decryption.md ("OpenPGP") defines it, computed here from the
parts this script assembled (never from our own decryptor's output), or
null when the message must not be decrypted; "sig" is the mv_sig_status
name expected; "failure" a substring of the expected failure reason.

Keys and ciphertexts are random on every run; file names and the decrypted
forms are not.  Needs python3 and gpg (Debian package gnupg).
"""
import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HDR = (b"From: Alice <alice@example.org>\r\n"
       b"To: Bob <bob@example.org>\r\n"
       b"Subject: quarterly figures\r\n"
       b"Date: Mon, 04 Mar 2024 10:00:00 +0000\r\n"
       b"Message-ID: <pgp-fixture@example.org>\r\n"
       b"MIME-Version: 1.0\r\n")
INNER = (b"Content-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: 8bit\r\n"
         b"\r\n"
         b"The secret figures are 42 and 17.\r\n")
PASS = "escrow-pass"


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class Gpg:
    def __init__(self, home):
        self.home = home
        self.env = dict(os.environ, GNUPGHOME=home, LC_ALL="C")

    def run(self, *args, inp=None, passphrase=""):
        cmd = ["gpg", "--batch", "--yes", "--quiet", "--no-tty", "--pinentry-mode", "loopback",
               "--passphrase", passphrase, "--trust-model", "always"] + list(args)
        p = subprocess.run(cmd, input=inp, env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, check=False)
        if p.returncode != 0:
            sys.exit("gpg %s failed:\n%s" % (" ".join(args), p.stderr.decode(errors="replace")))
        return p.stdout

    def fpr(self, uid):
        out = self.run("--with-colons", "--list-keys", uid).decode()
        for line in out.splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        sys.exit("no key for " + uid)

    def make(self, uid, prim, sub, passphrase=""):
        self.run("--quick-gen-key", uid, prim, "sign", "0", passphrase=passphrase)
        fp = self.fpr(uid)
        if sub:
            self.run("--quick-add-key", fp, sub, "encr", "0", passphrase=passphrase)
        return fp

    def encrypt(self, data, to, signer=None, hidden=False):
        args = ["--armor", "--cipher-algo", "AES256", "--encrypt"]
        for fp in to:
            args += ["--hidden-recipient" if hidden else "--recipient", fp]
        if signer:
            args += ["--sign", "--local-user", signer]
        return self.run(*args, inp=data)


def crc24(data):
    crc = 0xB704CE
    for b in data:
        crc ^= b << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def armor_message(binary):
    b64 = base64.b64encode(binary).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    crc = base64.b64encode(crc24(binary).to_bytes(3, "big")).decode()
    return ("-----BEGIN PGP MESSAGE-----\n\n" + "\n".join(lines) + "\n=" + crc +
            "\n-----END PGP MESSAGE-----\n").encode()


def dearmor(armored):
    text = armored.decode().replace("\r", "")
    body = text.split("\n\n", 1)[1]
    b64 = "".join(l for l in body.splitlines() if l and not l.startswith("=")
                  and not l.startswith("-----"))
    return base64.b64decode(b64)


def pgp_mime(armored):
    return (HDR + b"Content-Type: multipart/encrypted;\r\n"
            b" protocol=\"application/pgp-encrypted\"; boundary=\"=-pgp-b\"\r\n\r\n"
            b"This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n"
            b"--=-pgp-b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n"
            b"--=-pgp-b\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n"
            b"Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n" +
            crlf(armored).rstrip(b"\r\n") + b"\r\n--=-pgp-b--\r\n")


def mime_form():
    """The decrypted form of pgp_mime(): header block minus Content-* fields
    (HDR has none) followed by the decrypted entity."""
    return HDR + INNER


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    if os.path.exists(out) and os.listdir(out):
        sys.exit("%s: not empty" % out)
    for d in ("gnupg", "keys", "msg"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    home = os.path.join(out, "gnupg")
    tmp_home = None
    if len(home) > 80:  # gpg-agent's socket path must fit sun_path (~107 bytes)
        tmp_home = tempfile.mkdtemp(prefix="mvpgp-")
        home = tmp_home
    os.chmod(home, 0o700)
    g = Gpg(home)
    try:
        build(g, out)
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=g.env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if tmp_home:
            shutil.rmtree(tmp_home, ignore_errors=True)


def build(g, out):
    rsa = g.make("Escrow RSA <escrow-rsa@example.org>", "rsa2048", "rsa2048")
    cv = g.make("Escrow CV <escrow-cv@example.org>", "ed25519", "cv25519", passphrase=PASS)
    other = g.make("Not Escrowed <other@example.org>", "ed25519", "cv25519")
    signer = g.make("Known Signer <signer@example.org>", "ed25519", None)
    unknown = g.make("Unknown Signer <unknown@example.org>", "ed25519", None)

    def write(rel, data):
        with open(os.path.join(out, rel), "wb") as f:
            f.write(data)

    write("keys/rsa.sec.asc", g.run("--armor", "--export-secret-keys", rsa))
    write("keys/rsa.sec.gpg", g.run("--export-secret-keys", rsa))
    write("keys/cv.sec.asc", g.run("--armor", "--export-secret-keys", cv, passphrase=PASS))
    write("keys/cv.sec.gpg", g.run("--export-secret-keys", cv, passphrase=PASS))
    write("keys/signer.pub.asc", g.run("--armor", "--export", signer))
    keys = [
        {"id": 1, "file": "keys/rsa.sec.asc", "passphrase": None},
        {"id": 2, "file": "keys/cv.sec.gpg", "passphrase": PASS},
        {"id": 0, "file": "keys/signer.pub.asc", "passphrase": None},
    ]
    msgs = []

    def add(name, data, key, form, sig="none", failure=None):
        rel = "msg/%s.eml" % name
        write(rel, data)
        msgs.append({"file": rel, "key": key,
                     "sha256": hashlib.sha256(form).hexdigest() if form is not None else None,
                     "sig": sig, "failure": failure})

    add("mime-rsa", pgp_mime(g.encrypt(INNER, [rsa])), 1, mime_form())
    add("mime-cv25519", pgp_mime(g.encrypt(INNER, [cv])), 2, mime_form())
    add("mime-two-recipients", pgp_mime(g.encrypt(INNER, [other, cv])), 2, mime_form())
    add("mime-not-escrowed", pgp_mime(g.encrypt(INNER, [other])), 0, None,
        failure="no escrowed key")
    add("mime-hidden", pgp_mime(g.encrypt(INNER, [cv], hidden=True)), 2, mime_form())
    add("mime-signed-encrypted", pgp_mime(g.encrypt(INNER, [rsa], signer=signer)), 1,
        mime_form(), sig="valid")
    add("mime-unknown-signer", pgp_mime(g.encrypt(INNER, [cv], signer=unknown)), 2,
        mime_form(), sig="unknown-signer")

    # multipart/signed: the signature covers the first part without the CRLF
    # before the delimiter (RFC 3156 section 5, RFC 2046 5.1.1)
    part = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nI approve the transfer.\r\n"
    signed = part[:-2]
    sig = g.run("--armor", "--detach-sign", "--digest-algo", "SHA256", "--local-user", signer,
                inp=signed)

    def mime_signed(content):
        return (HDR + b"Content-Type: multipart/signed; micalg=pgp-sha256;\r\n"
                b" protocol=\"application/pgp-signature\"; boundary=\"=-sig\"\r\n\r\n"
                b"--=-sig\r\n" + content + b"\r\n--=-sig\r\n"
                b"Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n" +
                crlf(sig) + b"\r\n--=-sig--\r\n")

    add("mime-signed", mime_signed(signed), 0, None, sig="valid")
    add("mime-signed-tampered", mime_signed(signed.replace(b"approve", b"reject ")), 0, None,
        sig="invalid")

    # inline PGP: the armored block inside a text/plain part, and the decrypted
    # form: part headers without Content-Transfer-Encoding, then
    # "Content-Transfer-Encoding: 8bit", the empty line, and the decoded body
    # with the block (BEGIN line through the END marker) replaced by plaintext
    secret = "Inline secret: caf\u00e9 au lait.\n".encode()
    block = crlf(g.encrypt(secret, [rsa])).rstrip(b"\r\n")
    ctype = b"Content-Type: text/plain; charset=utf-8\r\n"
    body = b"Hello Bob,\r\n\r\n" + block + b"\r\n\r\nRegards, Alice\r\n"
    msg = HDR + ctype + b"Content-Transfer-Encoding: 7bit\r\n\r\n" + body
    form = (HDR + ctype + b"Content-Transfer-Encoding: 8bit\r\n\r\n" +
            body.replace(block, secret))
    add("inline-encrypted", msg, 1, form)
    msg64 = (HDR + ctype + b"Content-Transfer-Encoding: base64\r\n\r\n" +
             b"\r\n".join(base64.encodebytes(body).splitlines()) + b"\r\n")
    add("inline-encrypted-base64", msg64, 1, form)

    clear = crlf(g.run("--clearsign", "--digest-algo", "SHA256", "--local-user", signer,
                       inp=b"I agree to the terms.\n- and this dashed line.\n"))
    add("inline-cleartext-signed", HDR + ctype + b"\r\n" + clear, 0, None, sig="valid")

    # corrupted: one ciphertext byte flipped, re-armored with a correct CRC,
    # so the armor reads and the integrity check (MDC) fails
    binary = bytearray(dearmor(g.encrypt(INNER, [cv])))
    binary[-10] ^= 0x55
    add("mime-corrupted", pgp_mime(armor_message(bytes(binary))), 0, None,
        failure="decryption failed")

    with open(os.path.join(out, "keys.tsv"), "w") as f:
        f.write("# id\tfile\tpassphrase\n")
        for k in keys:
            f.write("%d\t%s\t%s\n" % (k["id"], k["file"], k["passphrase"] or "-"))
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("# file\tkey\tsha256\tsig\tfailure\n")
        for m in msgs:
            f.write("%s\t%d\t%s\t%s\t%s\n" % (m["file"], m["key"], m["sha256"] or "-", m["sig"],
                                              m["failure"] or "-"))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"keys": keys, "messages": msgs}, f, indent=1, sort_keys=True)
        f.write("\n")
    print("mvpgp: %d keys, %d messages in %s" % (len(keys), len(msgs), out), file=sys.stderr)


if __name__ == "__main__":
    main()
