#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mvexportcheck: checks a `mailvault export` package against the archive.

    mvexportcheck.py refs ARCHIVE KEYFILE OUTDIR
        writes OUTDIR/SERIAL.raw (`show --raw`) for every message and
        OUTDIR/SERIAL.dec (`show --decrypted`) where there is a decrypted
        form, and OUTDIR/list.json (`list --format json`).
    mvexportcheck.py check PACKAGE --as eml|mbox --refs DIR --expect LIST
        (--query Q | --serials LIST) --archive-id HEX --fingerprint HEX
        --user NAME [--subject TEXT] [--custody-out DIR]
        PACKAGE is a directory, a .zip or a .tar.  Checks the manifest (every
        hash recomputed, every file listed), the contents (exactly the
        expected messages, byte-equal to the archive), custody.json and the
        signing key; --custody-out writes signing_key.pem, digest.bin (the
        raw SHA-256 of manifest.csv) and sig.bin for `openssl pkeyutl`.
    mvexportcheck.py families PACKAGE --as dat|csv|edrm --refs DIR [--expected FILE]
        [--missing NAME] [--first N] [--prefix P] [--volume]
        Reads the load file back (Python csv with the Concordance delimiters,
        csv, or ElementTree) and checks the families: each message (the
        record without ParentID) followed by its attachments as child
        documents, found again independently by Python's email in `show
        --raw` (refs DIR): the same count, names, media types, order; each
        child's native equal to the attachment as Python decodes it (an
        attached message/rfc822: its bytes verbatim in the parent, parsed
        by email again); every MD5/SHA-1/SHA-256/FileSize recomputed;
        BegAttach/EndAttach/ParentID/AttachmentCount; a child's Custodian,
        DateSent and ArchiveSerial the family's; text files where TextPath
        says, the parent's listing its children's names instead of their
        text; EDRM: one Relationship per child.  Control numbers run on
        from --first (default 1).  --expected (mkdocs.py's families.json)
        checks names and types against what the generator made; --missing
        NAME: that attachment's native is absent, the reason in
        ExceptionReason.  Prints the documents as JSON lines "DOC {...}"
        (control number, parent, serial) for the split checks.
    mvexportcheck.py rehash DIR PATH
        rewrites PATH's row of DIR/manifest.csv from the file (tampering).
    mvexportcheck.py custody-set DIR FIELD VALUE
        sets a string field of DIR/custody.json (tampering).

`check` prints "OK text" / "FAIL text" lines (and other lines as notes); exit status 1
when anything failed.  MV_BIN names the mailvault binary.  Python 3.11
standard library only.
"""
import argparse
import base64
import csv
import datetime
import email
import email.header
import email.policy
import hashlib
import io
import json
import mailbox
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile

# Not in the manifest (the contract of issue 6).
CUSTODY = {"manifest.csv", "custody.json", "custody.txt", "custody.sig",
           "signing_key.pem"}
# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw
# 32-byte key follows.
ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")
HEX = re.compile(r"[0-9a-f]+\Z")
QUOTED_FROM = re.compile(rb">+From ")
FAILED = 0


def ok(msg):
    print("OK " + msg)


def fail(msg):
    global FAILED
    FAILED += 1
    print("FAIL " + msg)


def expect(cond, msg, why=""):
    if cond:
        ok(msg)
    else:
        fail(msg + (": " + why if why else ""))
    return cond


def note(msg):
    print(msg)  # t110's tap shows it as a "# " comment


def expand(lst):
    """'1-3,7' -> [1, 2, 3, 7]."""
    out = []
    for part in lst.split(","):
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


# ------------------------------------------------------------------ refs

def cmd_refs(a):
    mv = os.environ["MV_BIN"]

    def run(*args):
        return subprocess.run([mv, "--archive", a.archive, "--key-file", a.key, *args],
                              capture_output=True)
    os.makedirs(a.out, exist_ok=True)
    r = run("list", "--format", "json")
    if r.returncode:
        sys.exit("list: exit %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
    lst = json.loads(r.stdout)
    open(os.path.join(a.out, "list.json"), "wb").write(r.stdout)
    bad = 0
    ndec = 0
    for m in lst:
        s = m["serial"]
        r = run("show", str(s), "--raw")
        if r.returncode or hashlib.sha256(r.stdout).hexdigest() != m["sha256"]:
            print("show %d --raw: exit %d, or not its recorded sha256" % (s, r.returncode))
            bad += 1
            continue
        open(os.path.join(a.out, "%d.raw" % s), "wb").write(r.stdout)
        r = run("show", str(s), "--decrypted")
        if r.returncode == 0:
            open(os.path.join(a.out, "%d.dec" % s), "wb").write(r.stdout)
            ndec += 1
    print("%d messages, %d with a decrypted form, %d problems" % (len(lst), ndec, bad))
    sys.exit(1 if bad else 0)


# --------------------------------------------------------------- package

def read_package(path):
    """{relative path: bytes} of the regular files of a dir/zip/tar."""
    files = {}
    if os.path.isdir(path):
        for d, dirs, names in os.walk(path):
            for n in names + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
                p = os.path.join(d, n)
                rel = os.path.relpath(p, path).replace(os.sep, "/")
                if os.path.islink(p) or not os.path.isfile(p):
                    fail("package entry %s is not a regular file" % rel)
                    continue
                files[rel] = open(p, "rb").read()
        return files
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            expect(bad is None, "zipfile: every member's CRC-32 is right", "bad member %s" % bad)
            for i in z.infolist():
                if i.is_dir():
                    continue
                if i.filename in files:
                    fail("zip: %s appears twice" % i.filename)
                files[i.filename] = z.read(i)
        return files
    if path.endswith(".tar"):
        with tarfile.open(path, "r:") as t:
            for i in t.getmembers():
                if i.isdir():
                    continue
                if not i.isfile():
                    fail("tar: %s is not a regular file" % i.name)
                    continue
                if i.name in files:
                    fail("tar: %s appears twice" % i.name)
                files[i.name] = t.extractfile(i).read()
        return files
    raise SystemExit("%s: not a directory, .zip or .tar" % path)


def check_paths(files):
    bad = [p for p in files if p.startswith("/") or ".." in p.split("/") or p.startswith("./")
           or "\\" in p or not p]
    expect(not bad, "every path is relative and plain", "%s" % bad[:5])


def check_manifest(files):
    raw = files.get("manifest.csv")
    if raw is None:
        fail("manifest.csv present")
        return []
    lines = raw.split(b"\n")
    expect(lines[0].rstrip(b"\r") == b"path,size,md5,sha1,sha256",
           "manifest.csv header is path,size,md5,sha1,sha256", repr(lines[0][:80]))
    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as e:
        fail("manifest.csv parses as UTF-8 CSV: %s" % e)
        return []
    rows = rows[1:]
    bad = []
    seen = set()
    for r in rows:
        if len(r) != 5:
            bad.append("row with %d fields: %r" % (len(r), r[:6]))
            continue
        p, size, md5, sha1, sha256 = r
        if p in seen:
            bad.append("%s listed twice" % p)
        seen.add(p)
        data = files.get(p)
        if data is None:
            bad.append("%s listed but not in the package" % p)
            continue
        want = (str(len(data)), hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(),
                hashlib.sha256(data).hexdigest())
        for name, got, w in zip(("size", "md5", "sha1", "sha256"), (size, md5, sha1, sha256), want):
            if got != w:
                bad.append("%s: %s %s, recomputed %s" % (p, name, got, w))
    expect(not bad, "every manifest row matches its file (%d rows; size, md5, sha1, sha256 "
           "recomputed, lower-case hex)" % len(rows), "; ".join(bad[:6]))
    unlisted = sorted(set(files) - CUSTODY - seen)
    expect(not unlisted, "every file but the custody files is in the manifest", "unlisted: %s" % unlisted[:6])
    listed_custody = sorted(seen & CUSTODY)
    expect(not listed_custody, "the custody files are not in the manifest", "%s" % listed_custody)
    return rows


def pubkey_raw(pem):
    m = re.search(rb"-----BEGIN PUBLIC KEY-----\r?\n(.*?)-----END PUBLIC KEY-----", pem, re.S)
    if not m:
        return None
    der = base64.b64decode(b"".join(m.group(1).split()))
    if len(der) != 44 or not der.startswith(ED25519_SPKI):
        return None
    return der[12:]


def unquote_mboxrd(b):
    return b"".join(l[1:] if QUOTED_FROM.match(l) else l for l in b.splitlines(keepends=True))


def same_message(got, native):
    """got (a message read back from the mbox) equals the native; a native
    without a final line end gets one in an mbox, so that one is allowed."""
    if got == native:
        return True
    return not native.endswith(b"\n") and got in (native + b"\n", native + b"\r\n")


def norm(b):
    return b.replace(b"\r\n", b"\n").rstrip(b"\n")


def split_mboxrd(data):
    """Our own strict reading: returns (messages, problems).  Every line that
    begins "From " is a separator (mboxrd quotes the rest); the line before
    a separator, and the file's last line, must be empty (LF or CRLF)."""
    problems = []
    lines = data.splitlines(keepends=True)
    if not lines or not lines[0].startswith(b"From "):
        return [], ["does not begin with a From_ line"]
    msgs = []
    cur = None
    for l in lines:
        if l.startswith(b"From "):
            if cur is not None:
                msgs.append(cur)
            if not l.endswith(b"\n"):
                problems.append("From_ line without a line end: %r" % l[:60])
            cur = []
            continue
        cur.append(l)
    msgs.append(cur)
    out = []
    for i, m in enumerate(msgs):
        if not m or m[-1] not in (b"\n", b"\r\n"):
            problems.append("message %d is not followed by an empty line" % (i + 1))
        else:
            m = m[:-1]
        out.append(unquote_mboxrd(b"".join(m)))
    return out, problems


def match_messages(got, natives, label, exact_only):
    """got: list of byte strings; natives: {serial: bytes}.  Every one must be
    a different expected native.  Returns the number that matched only
    after normalising line ends (when exact_only is false)."""
    by_bytes = {}
    for s, b in natives.items():
        by_bytes.setdefault(b, []).append(s)
    found = []
    unmatched = []
    loose = 0
    for i, g in enumerate(got):
        hit = None
        for b, ss in by_bytes.items():
            if ss and same_message(g, b):
                hit = b
                break
        if hit is None and not exact_only:
            for b, ss in by_bytes.items():
                if ss and norm(g) == norm(b):
                    hit = b
                    loose += 1
                    break
        if hit is None:
            unmatched.append(i + 1)
            continue
        found.append(by_bytes[hit].pop(0))
    missing = sorted(s for ss in by_bytes.values() for s in ss)
    expect(not unmatched and not missing and len(got) == len(natives),
           "%s: %d messages, each equal to its archived native" % (label, len(got)),
           "%d read back, %d expected; unmatched message numbers %s; serials missing %s"
           % (len(got), len(natives), unmatched[:8], missing[:8]))
    return loose


def check_contents(files, a, expect_serials):
    refs = a.refs
    natives = {}
    originals = {}
    for s in expect_serials:
        raw = open(os.path.join(refs, "%d.raw" % s), "rb").read()
        dec = os.path.join(refs, "%d.dec" % s)
        if os.path.exists(dec):
            natives[s] = open(dec, "rb").read()
            originals[s] = raw
        else:
            natives[s] = raw
    # The integrity log's signed tree head and one inclusion proof per
    # message: listed in the manifest, not payload.
    INTEGRITY = {"integrity/tree_head.txt", "integrity/proofs.txt"}
    expect(INTEGRITY <= set(files), "integrity/: the tree head and the inclusion proofs are there")
    if "integrity/proofs.txt" in files:
        nproofs = files["integrity/proofs.txt"].count(b"mailvault inclusion proof v1\n")
        expect(nproofs == len(natives), "integrity/proofs.txt: one proof per message (%d for %d)"
               % (nproofs, len(natives)))
    payload = set(files) - CUSTODY - INTEGRITY
    if a.as_ == "eml":
        want = {"natives/%d.eml" % s for s in natives} | {"natives/%d.original.eml" % s for s in originals}
        expect(payload == want, "eml: exactly natives/<SERIAL>.eml for the %d expected messages, "
               "plus %d .original.eml" % (len(natives), len(originals)),
               "unexpected %s; missing %s" % (sorted(payload - want)[:6], sorted(want - payload)[:6]))
        bad = [s for s in natives if files.get("natives/%d.eml" % s, natives[s]) != natives[s]]
        expect(not bad, "every natives/<SERIAL>.eml equals show --raw (--decrypted where there is one)",
               "differ: %s" % bad[:8])
        bad = [s for s in originals if files.get("natives/%d.original.eml" % s, originals[s]) != originals[s]]
        if originals:
            expect(not bad, "every natives/<SERIAL>.original.eml (%d) equals show --raw" % len(originals),
                   "differ: %s" % bad[:8])
        bad = []
        subjects = []
        for p in sorted(payload):
            if not p.endswith(".eml"):
                continue
            try:
                m = email.message_from_bytes(files[p], policy=email.policy.default)
                subjects.append(str(m.get("subject", "")))
                for part in m.walk():
                    part.get_payload(decode=True)
                    for k, v in part.items():
                        str(v)
            except Exception as e:  # any exception is the finding
                bad.append("%s: %s: %s" % (p, type(e).__name__, e))
        expect(not bad, "Python's email parses every .eml (%d)" % sum(p.endswith(".eml") for p in payload),
               "; ".join(bad[:4]))
        if a.subject:
            expect(any(a.subject in s for s in subjects),
                   "a subject decodes to contain %r" % a.subject, "subjects: %s" % subjects[:6])
        return
    expect(payload == {"messages.mbox"}, "mbox: messages.mbox is the only file besides the custody files",
           "%s" % sorted(payload)[:8])
    data = files.get("messages.mbox")
    if data is None:
        return
    got, problems = split_mboxrd(data)
    expect(not problems, "mboxrd framing: a From_ line before and an empty line after each message",
           "; ".join(problems[:4]))
    match_messages(got, natives, "mboxrd read strictly, quoting undone", True)
    # Python's mailbox.mbox on Linux ends a message at the line before a
    # "From " line when that line is b"\n"; an empty CRLF line stays part of
    # the message, and get_bytes() does no line-end conversion (os.linesep
    # is "\n").  So a CRLF message separated by an empty CRLF line comes
    # back with one "\r\n" too many: such messages are compared after
    # normalising CRLF to LF and trailing line ends, and counted in a note.
    with tempfile.NamedTemporaryFile(suffix=".mbox", delete=False) as t:
        t.write(data)
    try:
        mb = mailbox.mbox(t.name, create=False)
        got = []
        for k in mb.iterkeys():
            got.append(unquote_mboxrd(mb.get_bytes(k)))
            mb.get_message(k)
        mb.close()
    finally:
        os.unlink(t.name)
    loose = match_messages(got, natives, "Python mailbox.mbox reads it back, quoting undone", False)
    if loose:
        note("%d of them equal only after normalising CRLF/trailing line ends (see the comment)" % loose)


def check_custody(files, rows, a, expect_serials):
    raw = files.get("custody.json")
    if raw is None:
        fail("custody.json present")
        return
    try:
        c = json.loads(raw)
    except ValueError as e:
        fail("custody.json parses: %s" % e)
        return
    note("custody.json keys: %s" % ", ".join(sorted(c)))
    expect(c.get("format") == "mailvault-custody/1", "custody format mailvault-custody/1", repr(c.get("format")))
    expect(c.get("exported_by") == a.user, "exported_by is %s" % a.user, repr(c.get("exported_by")))
    at = c.get("exported_at")
    good = isinstance(at, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", at)
    if good:
        t = datetime.datetime.strptime(at[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
        good = abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) < 600
    expect(good, "exported_at is UTC ISO 8601 with Z, within minutes of now", repr(at))
    expect(c.get("archive_id") == a.archive_id, "archive_id is the archive's", repr(c.get("archive_id")))
    if a.query is not None:
        expect(c.get("query") == a.query and c.get("serials") is None,
               "query %r, serials null" % a.query, "query %r serials %r" % (c.get("query"), c.get("serials")))
    else:
        s = c.get("serials")
        same = s == a.serials or (isinstance(s, list) and sorted(int(x) for x in s) == sorted(expand(a.serials)))
        expect(c.get("query") is None and same, "query null, serials %r" % a.serials,
               "query %r serials %r" % (c.get("query"), s))
    expect(c.get("messages") == len(expect_serials), "messages %d" % len(expect_serials), repr(c.get("messages")))
    expect(c.get("files") == len(rows), "files %d (the manifest's rows)" % len(rows), repr(c.get("files")))
    total = sum(int(r[1]) for r in rows if len(r) == 5 and r[1].isdigit())
    expect(c.get("bytes") == total, "bytes %d (the manifest's sizes added up)" % total, repr(c.get("bytes")))
    man = hashlib.sha256(files.get("manifest.csv", b"")).hexdigest()
    expect(c.get("manifest_sha256") == man, "manifest_sha256 is manifest.csv's SHA-256",
           repr(c.get("manifest_sha256")))
    key = pubkey_raw(files.get("signing_key.pem", b""))
    if not expect(key is not None, "signing_key.pem holds an Ed25519 SubjectPublicKeyInfo"):
        return
    fp = hashlib.sha256(key).hexdigest()
    expect(fp == a.fingerprint, "signing_key.pem is the archive's key (keys signing)", fp)
    expect(c.get("signing_key_sha256") == fp, "signing_key_sha256 is the raw key's SHA-256",
           repr(c.get("signing_key_sha256")))
    sig = c.get("signature")
    if not expect(isinstance(sig, str) and len(sig) == 128 and HEX.match(sig),
                  "signature is 64 bytes of lower-case hex", repr(sig)):
        return
    if "custody.sig" in files:
        expect(files["custody.sig"] == bytes.fromhex(sig), "custody.sig holds the same 64 signature bytes",
               "%d bytes" % len(files["custody.sig"]))
    txt = files.get("custody.txt", b"").decode("utf-8", "replace")
    miss = [n for n, v in (("manifest_sha256", man), ("signing_key_sha256", fp),
                           ("archive_id", a.archive_id)) if v not in txt]
    if not re.search(r"\b%d\b" % len(expect_serials), txt):
        miss.append("the message count")
    expect(txt and not miss, "custody.txt states the manifest hash, key fingerprint, archive and count",
           "missing %s" % miss)
    if a.custody_out:
        os.makedirs(a.custody_out, exist_ok=True)
        open(os.path.join(a.custody_out, "signing_key.pem"), "wb").write(files["signing_key.pem"])
        open(os.path.join(a.custody_out, "digest.bin"), "wb").write(bytes.fromhex(man))
        open(os.path.join(a.custody_out, "sig.bin"), "wb").write(bytes.fromhex(sig))


def cmd_check(a):
    try:
        files = read_package(a.package)
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as e:
        fail("the package reads: %s" % e)
        sys.exit(1)
    note("%d files: %s" % (len(files), ", ".join(sorted(files)[:8])))
    check_paths(files)
    for f in ("manifest.csv", "custody.json", "custody.txt", "signing_key.pem"):
        expect(f in files, "%s present" % f)
    serials = [int(x) for x in a.expect.split(",") if x]
    rows = check_manifest(files)
    check_contents(files, a, serials)
    check_custody(files, rows, a, serials)
    sys.exit(1 if FAILED else 0)


# -------------------------------------------------------------- families

CRYPTO_SUBTYPES = {"pgp-signature", "pkcs7-signature", "x-pkcs7-signature", "pgp-encrypted",
                   "pkcs7-mime", "x-pkcs7-mime"}


def py_attachments(msg):
    """The attachments of msg (email.message.Message) in document order, by
    the rule export documents: a leaf with a file name, with
    Content-Disposition: attachment or with content that is not text, and
    every attached message (whose own attachments follow it); signatures
    and encrypted containers are not.  Returns [(part, is_message)]."""
    out = []

    def walk(p, depth):
        ct = p.get_content_type()
        if p.get_content_maintype() == "multipart":
            if isinstance(p.get_payload(), list):
                for sub in p.get_payload():
                    walk(sub, depth)
            return
        if ct in ("message/rfc822", "message/global") and p.is_multipart():
            out.append((p, True))
            if depth < 8:
                walk(p.get_payload()[0], depth + 1)
            return
        if p.get_content_maintype() == "application" and p.get_content_subtype() in CRYPTO_SUBTYPES:
            return
        fn = p.get_filename()
        disp = p.get_content_disposition()
        if fn or disp == "attachment" or p.get_content_maintype() != "text":
            eml = ct in ("message/rfc822", "message/global") or (
                p.get_content_maintype() == "application" and (fn or "").lower().endswith(".eml"))
            out.append((p, eml))
            if eml and depth + 1 < 8:
                # a message in a leaf (a .eml file, an encoded message/rfc822):
                # its own attachments follow it
                inner = email.message_from_bytes(p.get_payload(decode=True) or b"")
                if len(inner.keys()):
                    walk(inner, depth + 1)
    walk(msg, 0)
    return out


def read_loadfile(files, as_):
    """[(fields dict)] in record order, and the EDRM relationships."""
    rels = []
    if as_ == "edrm":
        import xml.etree.ElementTree as ET
        root = ET.fromstring(files["loadfile.xml"])
        docs = []
        for d in root.findall("./Batch/Documents/Document"):
            f = {t.get("TagName").lstrip("#"): t.get("TagValue") for t in d.findall("./Tags/Tag")}
            f["BegDoc"] = f["EndDoc"] = d.get("DocID")
            f["_doctype"] = d.get("DocType")
            f["_mimetype"] = d.get("MimeType")
            nat = d.find("./Files/File[@FileType='Native']/ExternalFile")
            if nat is not None:
                f["NativeFile"] = nat.get("FilePath") + "/" + nat.get("FileName")
                f["_native_md5"] = nat.get("Hash")
                f["_native_size"] = nat.get("FileSize")
            txt = d.find("./Files/File[@FileType='Text']/ExternalFile")
            if txt is not None:
                f["TextPath"] = txt.get("FilePath") + "/" + txt.get("FileName")
            cu = d.find("./Custodian")
            f["Custodian"] = cu.text if cu is not None else ""
            docs.append(f)
        for r in root.findall("./Batch/Relationships/Relationship"):
            rels.append((r.get("Type"), r.get("ParentDocId"), r.get("ChildDocId")))
        return docs, rels
    if as_ == "dat":
        raw = files["loadfile.dat"].decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(raw, newline=""), delimiter="\x14", quotechar="\u00fe"))
    else:
        raw = files["metadata.csv"].decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(raw, newline="")))
    head = rows[0]
    return [dict(zip(head, r)) for r in rows[1:]], rels


def cmd_families(a):
    try:
        files = read_package(a.package)
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as e:
        fail("the package reads: %s" % e)
        sys.exit(1)
    expected = json.load(open(a.expected)) if a.expected else None
    docs, rels = read_loadfile(files, a.as_)
    natives = a.as_ != "csv"
    g = lambda d, k: d.get(k) or ""
    # control numbers run on
    nums = []
    bad = []
    for d in docs:
        m = re.fullmatch(re.escape(a.prefix) + r"-(\d{7,})", g(d, "BegDoc"))
        if not m or d.get("EndDoc", d["BegDoc"]) != d["BegDoc"]:
            bad.append(g(d, "BegDoc"))
        else:
            nums.append(int(m.group(1)))
    expect(not bad and nums == list(range(a.first, a.first + len(nums))),
           "%d documents, control numbers %s-%07d on without a gap" % (len(docs), a.prefix, a.first),
           "bad %s; numbers %s" % (bad[:4], nums[:12]))
    # families: a parent and the records after it whose ParentID it is
    fams = []
    for d in docs:
        if not g(d, "ParentID"):
            fams.append([d, []])
        elif fams:
            fams[-1][1].append(d)
        else:
            fail("%s: a child before any message" % d["BegDoc"])
    problems = []
    checked = 0
    missing_seen = 0
    for parent, kids in fams:
        pc = parent["BegDoc"]
        serial = int(g(parent, "ArchiveSerial"))
        print("DOC " + json.dumps({"ctrl": pc, "parent": None, "serial": serial}))
        for k in kids:
            print("DOC " + json.dumps({"ctrl": k["BegDoc"], "parent": pc, "serial": serial}))
        ref = os.path.join(a.refs, "%d.dec" % serial)
        if not os.path.exists(ref):
            ref = os.path.join(a.refs, "%d.raw" % serial)
        raw = open(ref, "rb").read()
        msg = email.message_from_bytes(raw)
        want = py_attachments(msg)
        p = lambda s: problems.append("%s: %s" % (pc, s))
        if g(parent, "AttachmentCount") != str(len(want)):
            p("AttachmentCount %r, Python finds %d" % (g(parent, "AttachmentCount"), len(want)))
        if len(kids) != len(want):
            p("%d child records, Python finds %d attachments" % (len(kids), len(want)))
            continue
        last = kids[-1]["BegDoc"] if kids else ""
        if (g(parent, "BegAttach"), g(parent, "EndAttach")) != ((pc, last) if kids else ("", "")):
            p("BegAttach/EndAttach %r/%r" % (g(parent, "BegAttach"), g(parent, "EndAttach")))
        names = [k.get("FileName") for k in kids]
        if a.as_ != "edrm" and g(parent, "AttachmentNames") != ";".join(names):
            p("AttachmentNames %r, children %r" % (g(parent, "AttachmentNames"), names))
        mid = (g(parent, "MessageID") or "")
        exp = expected.get(mid) if expected is not None else None
        if expected is not None and exp is None:
            p("message %s is not one the generator made" % mid)
        for i, (k, (part, is_msg)) in enumerate(zip(kids, want)):
            kc = k["BegDoc"]
            q = lambda s: problems.append("%s (child %d of %s): %s" % (kc, i + 1, pc, s))
            if (g(k, "ParentID"), g(k, "BegAttach"), g(k, "EndAttach")) != (pc, pc, last):
                q("ParentID/BegAttach/EndAttach %r %r %r" % (g(k, "ParentID"), g(k, "BegAttach"), g(k, "EndAttach")))
            for f in ("Custodian", "DateSent", "ArchiveSerial"):
                if g(k, f) != g(parent, f):
                    q("%s %r, the parent's %r" % (f, g(k, f), g(parent, f)))
            pyname = part.get_filename()
            if pyname is not None and "=?" in pyname:
                # an RFC 2047 word inside a quoted parameter: not the
                # standard's way, but what mail clients write and GMime reads
                pyname = str(email.header.make_header(email.header.decode_header(pyname)))
            if pyname is not None and g(k, "FileName") != pyname:
                q("FileName %r, Python %r" % (g(k, "FileName"), pyname))
            if pyname is None and not re.fullmatch(r"attachment-%d\.[a-z0-9]+" % (i + 1), g(k, "FileName")):
                q("FileName %r for an attachment without a name" % g(k, "FileName"))
            if exp is not None:
                if i >= len(exp):
                    q("more attachments than the generator made")
                else:
                    e = exp[i]
                    if e["name"] is not None and e["name"] != g(k, "FileName"):
                        q("FileName %r, the generator made %r" % (g(k, "FileName"), e["name"]))
                    if a.as_ == "edrm" and k.get("_mimetype") != e["type"]:
                        q("MimeType %r, the generator made %r" % (k.get("_mimetype"), e["type"]))
            if is_msg and part.is_multipart():
                body = None  # compared verbatim below
            else:
                body = part.get_payload(decode=True) or b""
            nat = None
            if natives and g(k, "NativeFile"):
                nat = files.get(g(k, "NativeFile"))
                if nat is None:
                    q("NativeFile %s not in the package" % g(k, "NativeFile"))
                    continue
            reason = g(k, "ExceptionReason")
            if a.missing and g(k, "FileName") == a.missing:
                missing_seen += 1
                if g(k, "NativeFile") or not reason or g(k, "MD5Hash"):
                    q("over the limit: NativeFile %r, ExceptionReason %r, MD5Hash %r" %
                      (g(k, "NativeFile"), reason, g(k, "MD5Hash")))
                if body is not None and g(k, "FileSize") != str(len(body)):
                    q("FileSize %r, Python decodes %d bytes" % (g(k, "FileSize"), len(body)))
                continue
            if reason:
                q("ExceptionReason %r" % reason)
            data = nat if natives else body
            if natives and data is None:
                q("no NativeFile")
                continue
            if body is None:
                # an attached message: its bytes verbatim in the parent, a message again
                inner = part.get_payload()[0]
                if natives:
                    if data not in raw:
                        q("the attached message's native is not verbatim in its parent")
                    again = email.message_from_bytes(data)
                    if again.get("Message-ID") != inner.get("Message-ID") or again.get("Subject") != inner.get("Subject"):
                        q("the attached message's native parses to another message")
            elif data != body:
                q("native (%d bytes) differs from what Python decodes (%d bytes)" % (len(data), len(body)))
            if data is not None:
                for f, h in (("MD5Hash", hashlib.md5), ("SHA1Hash", hashlib.sha1), ("SHA256Hash", hashlib.sha256)):
                    if g(k, f) != h(data).hexdigest():
                        q("%s %r, recomputed %s" % (f, g(k, f), h(data).hexdigest()))
                if g(k, "FileSize") != str(len(data)):
                    q("FileSize %r, %d bytes" % (g(k, "FileSize"), len(data)))
                if a.as_ == "edrm" and natives and k.get("_native_md5") != hashlib.md5(data).hexdigest():
                    q("ExternalFile Hash differs")
            if natives:
                t = files.get(g(k, "TextPath"))
                if t is None:
                    q("TextPath %r not in the package" % g(k, "TextPath"))
                elif part.get_content_maintype() == "text" and body is not None and b"settled" in body and b"settled" not in t:
                    q("its text file lacks its text")
            checked += 1
        if natives:
            t = files.get(g(parent, "TextPath"))
            if t is None:
                p("TextPath %r not in the package" % g(parent, "TextPath"))
            else:
                txt = t.decode("utf-8", "replace")
                for k in kids:
                    if k["BegDoc"] not in txt or k.get("FileName", "") not in txt:
                        p("the text file does not list %s %s" % (k["BegDoc"], k.get("FileName")))
                if "agreed = settled" in txt:
                    p("the text file still holds an attachment's text")
        if a.as_ == "edrm":
            want_rels = {("Attachment", pc, k["BegDoc"]) for k in kids}
            got = {r for r in rels if r[1] == pc}
            if want_rels != got:
                p("Relationships %s, want %s" % (sorted(got)[:3], sorted(want_rels)[:3]))
    kids_total = sum(len(k) for _, k in fams)
    expect(not problems, "%d families, %d children: each child where Python's email finds it, "
           "fields, natives and hashes right (%d checked)" % (len(fams), kids_total, checked),
           "; ".join(problems[:6]) + (" ... %d problems" % len(problems) if len(problems) > 6 else ""))
    if a.as_ == "edrm":
        expect(len(rels) == kids_total, "one Relationship per child (%d)" % len(rels), "%d" % len(rels))
    if a.missing:
        expect(missing_seen > 0, "%s: its native over the limit is missing, with the reason" % a.missing,
               "not seen")
    sys.exit(1 if FAILED else 0)


# ------------------------------------------------------------- tampering

def cmd_rehash(a):
    mpath = os.path.join(a.dir, "manifest.csv")
    rows = list(csv.reader(open(mpath, newline="")))
    data = open(os.path.join(a.dir, a.path), "rb").read()
    n = 0
    for r in rows[1:]:
        if r[0] == a.path:
            r[1:] = [str(len(data)), hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(),
                     hashlib.sha256(data).hexdigest()]
            n += 1
    # keep the manifest's own line ends
    nl = "\r\n" if open(mpath, "rb").read().split(b"\n")[0].endswith(b"\r") else "\n"
    out = io.StringIO()
    csv.writer(out, lineterminator=nl).writerows(rows)
    open(mpath, "w", newline="").write(out.getvalue())
    sys.exit(0 if n == 1 else 1)


def cmd_drop(a):
    """remove a file and its manifest row (a forger's move)"""
    mpath = os.path.join(a.dir, "manifest.csv")
    rows = list(csv.reader(open(mpath, newline="")))
    nl = "\r\n" if open(mpath, "rb").read().split(b"\n")[0].endswith(b"\r") else "\n"
    keep = [r for r in rows if r[0] != a.path]
    os.remove(os.path.join(a.dir, a.path))
    out = io.StringIO()
    csv.writer(out, lineterminator=nl).writerows(keep)
    open(mpath, "w", newline="").write(out.getvalue())
    sys.exit(0 if len(keep) == len(rows) - 1 else 1)


def cmd_custody_set(a):
    p = os.path.join(a.dir, "custody.json")
    c = json.load(open(p))
    c[a.field] = a.value
    # written as compactly as mailvault writes it (verify-export reads the
    # fields of its own format; see t110's re-indentation check)
    json.dump(c, open(p, "w"), separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser(prog="mvexportcheck.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("refs")
    p.add_argument("archive")
    p.add_argument("key")
    p.add_argument("out")
    p = sub.add_parser("check")
    p.add_argument("package")
    p.add_argument("--as", dest="as_", choices=("eml", "mbox"), required=True)
    p.add_argument("--refs", required=True)
    p.add_argument("--expect", required=True, help="comma-separated serials")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--query")
    g.add_argument("--serials")
    p.add_argument("--archive-id", required=True)
    p.add_argument("--fingerprint", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--subject")
    p.add_argument("--custody-out")
    p = sub.add_parser("families")
    p.add_argument("package")
    p.add_argument("--as", dest="as_", choices=("dat", "csv", "edrm"), required=True)
    p.add_argument("--refs", required=True)
    p.add_argument("--expected")
    p.add_argument("--missing")
    p.add_argument("--first", type=int, default=1)
    p.add_argument("--prefix", default="MV")
    p = sub.add_parser("rehash")
    p.add_argument("dir")
    p.add_argument("path")
    p = sub.add_parser("custody-set")
    p.add_argument("dir")
    p.add_argument("field")
    p.add_argument("value")
    p = sub.add_parser("drop")
    p.add_argument("dir")
    p.add_argument("path")
    a = ap.parse_args()
    {"refs": cmd_refs, "check": cmd_check, "families": cmd_families, "rehash": cmd_rehash,
     "drop": cmd_drop,
     "custody-set": cmd_custody_set}[a.cmd](a)


if __name__ == "__main__":
    main()
