#!/usr/bin/env python3
"""mvgen -- mailvault's deterministic test-mail generator.

Writes realistic (and, on request, deliberately broken) mail under --out as
loose message files, mbox files, a Maildir, or a mix of them, plus an optional
JSON-lines manifest stating where each message lives and the SHA-256 of the
exact bytes an importer must store.  Python 3.11 standard library only; see
tests/gen/README.md for the layouts and the mbox framing rule.

Output depends only on the command line: every random choice comes from
random.Random seeded by --seed (never the clock, uuid or os.urandom).  Message
content is drawn from one generator and file placement from another, so the
same seed yields the same messages whatever the layout.

MIME is written by hand instead of through email.generator: it is several
times faster, and it lets us produce exactly the real-world shapes (and
breakage) the importer has to cope with.
"""

import argparse
import base64
import binascii
import bisect
import hashlib
import itertools
import json
import mailbox
import mmap
import os
import random
import re
import string
import sys
import textwrap
import time
import urllib.parse

# ----------------------------------------------------------------- constants

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FULL_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
             "Saturday", "Sunday")
FULL_MONTHS = ("January", "February", "March", "April", "May", "June", "July",
               "August", "September", "October", "November", "December")

# Messages are dated between 2001-01-01 and 2024-12-31 (UTC), in order of
# generation plus jitter, so a run looks like a mailbox that grew over years.
T_START = 978307200
T_END = 1735603200

# (offset in minutes, zone comment, RFC 5322 obsolete zone name or None)
ZONES = ((0, "UTC", "GMT"), (0, "GMT", "UT"), (60, "CET", None),
         (120, "CEST", None), (-300, "EST", "EST"), (-240, "EDT", "EDT"),
         (-360, "CST", "CST"), (-420, "PDT", "PDT"), (-480, "PST", "PST"),
         (-420, "MST", "MST"), (330, "IST", None), (540, "JST", None),
         (480, "AWST", None), (-180, "BRT", None), (345, "NPT", None),
         (600, "AEST", None), (780, "NZDT", None), (-570, "MART", None),
         (270, "AFT", None), (180, "MSK", None))

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

# Syllables for fictional names.  The first 16 entries of each script table
# are aligned, so a Greek, Cyrillic or Arabic name has an ASCII twin that
# becomes the mailbox local part.
SYL_LAT = ("ka lo mi re do ve as ti xa ni po so ra te li ma "
           "ber dun fal gor jor ke lun nor ren sel tor vin wen zor quin bra "
           "el sor mar val").split()
SYL_GRK = "κα λο μι ρε ντο βε ας τι ξα νι πο σο ρα τε λι μα".split()
SYL_CYR = "ка ло ми ре до ве ас ти кса ни по со ра те ли ма".split()
SYL_ARA = "كا لو مي ري دو في اس تي كسا ني بو سو را تي لي ما".split()
CJK_SURNAMES = (("林", "lin"), ("陈", "chen"), ("高", "gao"), ("谢", "xie"),
                ("宋", "song"), ("郑", "zheng"), ("罗", "luo"), ("梁", "liang"))
CJK_GIVEN = (("明", "ming"), ("华", "hua"), ("静", "jing"), ("远", "yuan"),
             ("山", "shan"), ("雪", "xue"), ("晨", "chen"), ("嘉", "jia"),
             ("宁", "ning"), ("悦", "yue"), ("宇", "yu"), ("云", "yun"))
ACCENTS = {"a": "á", "e": "é", "o": "ö", "u": "ü", "i": "í", "n": "ñ"}

DOCS = ("report", "draft", "proposal", "spreadsheet", "slide deck", "contract",
        "invoice", "budget", "schedule", "summary", "agenda", "minutes",
        "forecast", "checklist", "design document", "release notes",
        "purchase order", "timesheet")
NOUNS = ("migration", "audit", "launch", "workshop", "rollout", "review",
         "renewal", "inventory count", "vendor meeting", "training",
         "maintenance window", "offsite", "kickoff", "quarterly close",
         "survey", "integration test", "backup job", "shipment", "hiring plan",
         "price update")
VERBS = ("finalise", "review", "postpone", "approve", "update", "circulate",
         "double-check", "sign off on", "prepare", "discuss", "reschedule",
         "summarise")
TEAMS = ("finance", "legal", "design", "operations", "sales", "support",
         "infrastructure", "marketing", "procurement", "research")
PLACES = ("the third floor", "the north office", "room 4.12", "the warehouse",
          "the main conference room", "the new building", "the client site")
WHEN = FULL_DAYS[:5] + ("tomorrow", "next week", "the end of the month",
                        "Friday afternoon", "Monday morning")
HOURS = ("9:00", "10:30", "11:15", "13:00", "14:30", "16:00", "noon")

SENTENCES = (
    "Please find attached the {doc} for {project}.",
    "Could you take a look at the {doc} before {when}?",
    "I talked to {first} about the {noun}, and we agreed to {verb} it {when}.",
    "The {noun} is now planned for {when} at {hour} in {place}.",
    "Let me know if anything in the {doc} is unclear.",
    "We still need a sign-off from {team} before we can {verb} the {doc}.",
    "Thanks for the quick turnaround on the {doc}.",
    "As discussed, the {noun} moves to {place}.",
    "{first} thinks the {noun} numbers look better than expected.",
    "I have updated the {doc} with the latest figures from {team}.",
    "The {team} team will {verb} the {noun} by the end of {month}.",
    "Can we {verb} the {doc} during the {noun}?",
    "Attached is the revised {doc}; changes are marked in yellow.",
    "Nothing has changed on our side since {when}.",
    "I will be out of the office until {when}, so please contact {first} "
    "in the meantime.",
    "The numbers for {month} are in, and they are roughly {num} percent "
    "above plan.",
    "If the {noun} slips again we should tell {team} early.",
    "Sorry for the late reply, {when} was busy.",
    "I am not sure the {doc} reflects what we agreed with {team}.",
    "We could {verb} the {doc} and send it to {first} for comments.",
    "The {noun} went smoothly, apart from a short delay in {place}.",
    "Please remember to submit your {doc} by {when}.",
    "Do we have a budget code for the {noun}?",
    "The invoice for the {noun} came to {num},{num3}.50 EUR including tax.",
    "I would suggest we {verb} the {noun} until {team} confirms.",
    "Good catch on the {doc}, I missed that completely.",
    "For the record, the {noun} was approved on {when}.",
    "The room in {place} is booked from {hour}.",
    "I have copied {first} so they can {verb} the {doc} as well.",
    "Shall we {verb} the {noun} over lunch on {when}?",
    "The {noun} failed at step {num} with error code E{num3}.",
    "Logs and screenshots are in the shared folder under {project}.",
    "Our contact at {project} asked whether the {doc} can be shared.",
    "Ticket {project}-{num3} tracks the remaining work on the {noun}.",
)
# Paragraphs that begin a line with "From " -- the line an mbox writer must
# quote and an mbox reader must not mistake for a separator.
FROM_SENTENCES = (
    "From what I understand, the {noun} is ready for {team}.",
    "From {when} on, please send the {doc} to {first} instead.",
    "From the figures in the {doc} it looks like we are on track.",
    "From my side there is nothing else to add to the {doc}.",
)
GREETINGS = ("Hi {first},", "Hello {first},", "Dear {name},", "{first},",
             "Hi all,", "Good morning,", "Team,", "Hi {first}!")
SIGNOFFS = ("Thanks,", "Best regards,", "Cheers,", "Kind regards,",
            "Regards,", "Best,", "Thank you!", "All the best,")
TITLES = ("Project Manager", "Senior Accountant", "Operations Lead",
          "Software Engineer", "Office Manager", "Head of Sales",
          "Legal Counsel", "Research Assistant", "IT Support")
SUBJECTS = ("Quarterly report", "Meeting notes {when}", "Re-scheduling the "
            "{noun}", "Budget for {project}", "Invoice {num3}{num}",
            "Your order {num3}-{num} has shipped", "Lunch on {when}?",
            "Draft contract for {project}", "Server maintenance window",
            "Updated slides for the {noun}", "Question about the {doc}",
            "Weekly status {month}", "Travel plans", "Welcome to the team",
            "Holiday schedule", "Action required: password expiry",
            "Photos from the offsite", "Board minutes {month}",
            "{project} newsletter - {month} edition", "{doc} v{num}",
            "Reminder: {noun} on {when}", "FYI", "Signed copy",
            "Access request for {project}", "Out of office")

# Non-English content: (greetings, sign-offs, sentences, subjects, body
# charsets other than UTF-8, approximate UTF-8 bytes per character).
LANGS = {
    "de": (("Hallo {first},", "Sehr geehrte Damen und Herren,"),
           ("Viele Grüße", "Mit freundlichen Grüßen"),
           ("Anbei der aktuelle Bericht für das Projekt.",
            "Könnten Sie die Unterlagen bis Freitag prüfen?",
            "Die Besprechung wurde auf Donnerstag verschoben.",
            "Vielen Dank für die schnelle Rückmeldung.",
            "Die Zahlen für März liegen leicht über dem Plan.",
            "Bitte geben Sie mir Bescheid, falls Fragen auftauchen.",
            "Wir müssen die Änderungen noch mit der Rechtsabteilung "
            "abstimmen.",
            "Die Lieferung verlässt das Lager morgen früh."),
           ("Bericht für März", "Änderungen am Vertrag", "Terminverschiebung",
            "Rückfrage zur Rechnung"),
           ("iso-8859-1", "windows-1252", "ISO-8859-15"), 1.03),
    "fr": (("Bonjour {first},", "Madame, Monsieur,"),
           ("Cordialement", "Bien à vous"),
           ("Veuillez trouver ci-joint le rapport trimestriel.",
            "Pourriez-vous vérifier le document avant vendredi ?",
            "La réunion est reportée à jeudi prochain.",
            "Merci beaucoup pour votre réponse rapide.",
            "Les chiffres de février sont légèrement supérieurs aux "
            "prévisions.",
            "N'hésitez pas à me contacter si vous avez des questions.",
            "Le dossier a été transmis au service financier.",
            "Je serai absent jusqu'à lundi."),
           ("Réunion de jeudi", "Facture à régler", "Compte rendu",
            "Prévisions de l'année"),
           ("iso-8859-1", "windows-1252"), 1.04),
    "es": (("Hola {first}:", "Estimado {first}:"),
           ("Saludos", "Un saludo cordial"),
           ("Adjunto el informe trimestral revisado.",
            "¿Podría revisar el contrato antes del viernes?",
            "La reunión se ha aplazado al jueves.",
            "Muchas gracias por la rápida respuesta.",
            "Las cifras de marzo están un poco por encima del plan.",
            "Quedo a su disposición para cualquier consulta.",
            "El pedido saldrá del almacén mañana por la mañana.",
            "Le envío la versión corregida del presupuesto."),
           ("Informe trimestral", "Reunión aplazada", "Presupuesto del año",
            "Confirmación del pedido"),
           ("iso-8859-1",), 1.03),
    "el": (("Γεια σας {first},", "Αγαπητέ {first},"),
           ("Με εκτίμηση", "Φιλικά"),
           ("Σας στέλνω συνημμένη την τριμηνιαία αναφορά.",
            "Θα μπορούσατε να ελέγξετε το έγγραφο μέχρι την Παρασκευή;",
            "Η συνάντηση μεταφέρθηκε για την Πέμπτη.",
            "Ευχαριστώ πολύ για τη γρήγορη απάντηση.",
            "Τα στοιχεία του Μαρτίου είναι λίγο πάνω από τον στόχο.",
            "Παρακαλώ ενημερώστε με αν έχετε απορίες.",
            "Το συμβόλαιο στάλθηκε στο λογιστήριο.",
            "Θα λείπω από το γραφείο μέχρι τη Δευτέρα."),
           ("Αναφορά τριμήνου", "Συνάντηση Πέμπτης", "Τιμολόγιο",
            "Αλλαγή προγράμματος"),
           ("iso-8859-7",), 1.85),
    "ru": (("Здравствуйте, {first}!", "Добрый день,"),
           ("С уважением,", "Спасибо,"),
           ("Отправляю вам квартальный отчёт во вложении.",
            "Не могли бы вы проверить документ до пятницы?",
            "Встреча перенесена на четверг.",
            "Большое спасибо за быстрый ответ.",
            "Показатели за март немного выше плана.",
            "Если возникнут вопросы, пожалуйста, напишите мне.",
            "Договор передан в бухгалтерию.",
            "Я буду в отпуске до понедельника."),
           ("Квартальный отчёт", "Перенос встречи", "Счёт на оплату",
            "Вопрос по договору"),
           ("koi8-r", "windows-1251"), 1.85),
    "zh": (("{first}，你好：", "各位同事："),
           ("此致", "谢谢"),
           ("附件是本季度的报告，请查收。", "请在星期五之前审阅这份文件。",
            "会议改到星期四下午。", "非常感谢您的及时回复。",
            "三月份的数据略高于计划。", "如有任何问题，请随时与我联系。",
            "合同已经转交给财务部门。", "我下周一之前不在办公室。"),
           ("季度报告", "会议时间变更", "合同草案", "发票"),
           ("gb2312", "gb18030"), 2.9),
    "ja": (("{first}様", "皆様"),
           ("よろしくお願いいたします。", "以上です。"),
           ("添付の四半期報告書をご確認ください。",
            "金曜日までに資料を確認していただけますか。",
            "会議は木曜日に変更になりました。",
            "迅速なご対応ありがとうございます。",
            "三月の数字は計画を少し上回っています。",
            "ご不明な点がございましたらご連絡ください。",
            "契約書は経理部に送付しました。", "月曜日まで不在にしております。"),
           ("四半期報告書", "会議日程の変更", "見積書の送付", "ご確認のお願い"),
           ("iso-2022-jp", "shift_jis"), 2.9),
    "ar": (("مرحبا {first}،", "السادة الأعزاء،"),
           ("مع التحية", "شكرا"),
           ("مرفق التقرير الفصلي للمراجعة.",
            "هل يمكنك مراجعة المستند قبل يوم الجمعة؟",
            "تم تأجيل الاجتماع إلى يوم الخميس.",
            "شكرا جزيلا على الرد السريع.",
            "أرقام شهر مارس أعلى قليلا من الخطة.",
            "يرجى إعلامي إذا كانت لديك أي أسئلة.",
            "تم إرسال العقد إلى قسم المحاسبة.",
            "سأكون خارج المكتب حتى يوم الاثنين."),
           ("التقرير الفصلي", "تأجيل الاجتماع", "فاتورة", "مسودة العقد"),
           ("windows-1256", "iso-8859-6"), 1.8),
}
LANG_WEIGHTS = (("en", 78), ("de", 4), ("fr", 3), ("es", 3), ("el", 3),
                ("ru", 3), ("zh", 2), ("ja", 2), ("ar", 2))

ATTACH_NAMES = ("report", "invoice", "Q3 figures", "meeting-minutes", "scan",
                "budget", "contract draft", "presentation", "data-export",
                "photo", "notes", "signed copy", "statement", "IMG_{num}")
ATTACH_NAMES_INTL = ("Übersicht März", "résumé", "Bestätigung",
                     "année fiscale", "presupuesto año", "отчёт за квартал",
                     "договор", "报告", "会议纪要", "τιμολόγιο", "تقرير",
                     "見積書")
# kind -> (MIME type, extensions)
ATTACH_KINDS = {
    "txt": ("text/plain", (".txt", ".log")),
    "csv": ("text/csv", (".csv",)),
    "pdf": ("application/pdf", (".pdf",)),
    "png": ("image/png", (".png",)),
    "jpg": ("image/jpeg", (".jpg", ".jpeg")),
    "bin": ("application/octet-stream", (".bin", ".dat")),
    "docx": ("application/vnd.openxmlformats-officedocument."
             "wordprocessingml.document", (".docx",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument."
             "spreadsheetml.sheet", (".xlsx",)),
    "zip": ("application/zip", (".zip",)),
}
ATTACH_WEIGHTS = (("pdf", 22), ("jpg", 14), ("png", 10), ("txt", 12),
                  ("csv", 10), ("docx", 10), ("xlsx", 8), ("bin", 7),
                  ("zip", 7))

# name, weight, agent header, Message-ID style, boundary style, HTML style,
# spelling of the Message-ID header, MIME-Version value.
MAILERS = (
    ("outlook", 16, "X-Mailer: Microsoft Outlook 16.0", "outlook", "nextpart",
     "mso", "Message-ID", "1.0"),
    ("exchange", 10, None, "exchange", "nextpart", "mso", "Message-ID", "1.0"),
    ("gmail", 20, None, "gmail", "gmail", "gmail", "Message-ID", "1.0"),
    ("thunderbird", 11, "User-Agent: Mozilla/5.0 (X11; Linux x86_64; "
     "rv:115.0) Gecko/20100101 Thunderbird/115.6.0", "uuid", "tb", "plain",
     "Message-ID", "1.0"),
    ("apple", 9, "X-Mailer: Apple Mail (2.3731.700.6)", "appleuuid", "apple",
     "apple", "Message-Id", "1.0 (Mac OS X Mail 16.0 \\(3731.700.6\\))"),
    ("mutt", 5, "User-Agent: Mutt/2.2.12 (2023-09-09)", "mutt", "mutt", None,
     "Message-ID", "1.0"),
    ("notes", 6, "X-Mailer: Lotus Notes Release 8.5.3 September 15, 2011",
     "notes", "notes", "plain", "Message-ID", "1.0"),
    ("javamail", 7, "X-Mailer: JavaMail 1.6.2", "javamail", "javapart",
     "plain", "Message-ID", "1.0"),
    ("bulk", 9, "X-Mailer: PHPMailer 6.8.1", "hex32", "phpb1", "newsletter",
     "Message-ID", "1.0"),
)

BROKEN_KINDS = ("missing_end_boundary", "undeclared_boundary", "bad_base64",
                "truncated_headers", "no_from", "no_date", "bad_date",
                "raw_8bit_header", "nul_bytes", "bare_cr", "headerless",
                "no_separator", "header_no_colon", "bad_charset")
BAD_DATES = ("yesterday", "Mon, 32 Foo 2023 25:61:00 +9999",
             "2023-13-45T99:99:99", "Tue, 30 Feb 2021 10:00:00 +0100", "0",
             "Friday the 13th", "Mon, 2 Jan 2023 15:04:05 CETX")

# Share of messages with each content structure (inner, forwarded messages
# use the same table without the HTML-heavy and forwarding-inline shapes).
STRUCTURES = (("plain", 30), ("alternative", 24), ("html", 6),
              ("related", 4), ("mixed", 24), ("fwd_rfc822", 7),
              ("fwd_inline", 5))

# Boilerplate Outlook puts in front of every HTML body.
MSO_HEAD = (
    '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-'
    'microsoft-com:office:office" xmlns:w="urn:schemas-microsoft-com:office:'
    'word" xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" xmlns='
    '"http://www.w3.org/TR/REC-html40">\n<head>\n<meta http-equiv="Content-'
    'Type" content="text/html; charset={cs}">\n<meta name="Generator" '
    'content="Microsoft Word 15 (filtered medium)">\n<style><!--\n'
    '/* Font Definitions */\n@font-face\n\t{{font-family:"Cambria Math";\n'
    '\tpanose-1:2 4 5 3 5 4 6 3 2 4;}}\n@font-face\n\t{{font-family:Calibri;\n'
    '\tpanose-1:2 15 5 2 2 2 4 3 2 4;}}\n/* Style Definitions */\n'
    'p.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{{margin:0cm;\n'
    '\tfont-size:11.0pt;\n\tfont-family:"Calibri",sans-serif;}}\n'
    'a:link, span.MsoHyperlink\n\t{{mso-style-priority:99;\n\tcolor:#0563C1;'
    '\n\ttext-decoration:underline;}}\n.MsoChpDefault\n\t{{mso-style-type:'
    'export-only;}}\n@page WordSection1\n\t{{size:612.0pt 792.0pt;\n'
    '\tmargin:72.0pt 72.0pt 72.0pt 72.0pt;}}\ndiv.WordSection1\n'
    '\t{{page:WordSection1;}}\n--></style>\n</head>\n<body lang="{lang}" '
    'link="#0563C1" vlink="#954F72" style="word-wrap:break-word">\n'
    '<div class="WordSection1">\n')

Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   b"0123456789!*+-/")
# RFC 2047 "Q" octet encoding that is safe even inside an address phrase.
Q_TAB = tuple("_" if b == 32 else chr(b) if b in Q_SAFE else "=%02X" % b
              for b in range(256))


def wtable(pairs):
    """(items, cumulative weights) from (item, weight) pairs, for
    FastRandom.wpick."""
    pairs = tuple(pairs)
    return (tuple(p[0] for p in pairs),
            tuple(itertools.accumulate(p[1] for p in pairs)))


SCRIPT_W = wtable((("latin", 78), ("latin1", 8), ("greek", 3),
                   ("cyrillic", 4), ("cjk", 4), ("arabic", 3)))
DATE_STYLE_W = wtable(zip(range(8), (40, 30, 6, 10, 4, 4, 1, 5)))
N_TO_W = wtable(((1, 70), (2, 15), (3, 10), (5, 5)))
N_ATTACH_W = wtable(((1, 60), (2, 30), (3, 10)))
HOPS_W = wtable(((1, 15), (2, 30), (3, 30), (4, 15), (5, 10)))


class FastRandom(random.Random):
    """random.Random with cheaper draws.  The stock choice() and randint()
    spend most of their time in pure-Python rejection sampling, and every
    message takes about a hundred of them; scaling random() is just as
    deterministic and plenty uniform for test data."""

    def choice(self, seq):
        return seq[int(self.random() * len(seq))]

    def randint(self, a, b):
        return a + int(self.random() * (b - a + 1))

    def wpick(self, table):
        """One item of a wtable(), by weight."""
        items, cum = table
        return items[bisect.bisect(cum, self.random() * cum[-1])]


# ------------------------------------------------------------- MIME encoders

def b64_lines(data):
    """Base64 body with 76-column lines, each ending in LF (RFC 2045 6.8)."""
    enc = base64.b64encode(data)
    return b"\n".join([enc[i:i + 76] for i in range(0, len(enc), 76)]) + b"\n"


def qp_wrap(line):
    """Re-split an over-long quoted-printable line with soft breaks, never
    cutting an =XX escape in two."""
    out = []
    while len(line) > 76:
        cut = 75
        esc = line.rfind(b"=", cut - 2, cut)
        if esc != -1:
            cut = esc
        out.append(line[:cut] + b"=")
        line = line[cut:]
    out.append(line)
    return b"\n".join(out)


def qp_encode(data, hide=()):
    """Quoted-printable body.  Plain ASCII passes through QP literally, so
    each word in `hide` (the canaries) is spelled as =XX escapes; a canary in
    a QP body must not be readable in the file."""
    enc = binascii.b2a_qp(data)
    if not enc.endswith(b"\n"):
        enc += b"=\n"
    for word in hide:
        w = word.encode()
        if w in enc:
            enc = enc.replace(w, b"".join(b"=%02X" % c for c in w))
            enc = b"\n".join(qp_wrap(ln) if len(ln) > 76 else ln
                             for ln in enc.split(b"\n"))
    return enc


def _ew_payload(text, charset, q):
    raw = text.encode(charset)
    if q:
        return "".join([Q_TAB[b] for b in raw])
    return base64.b64encode(raw).decode()


def encoded_words(text, charset="UTF-8", q=False):
    """RFC 2047 encoded words of at most 75 characters each, split on
    character boundaries, separated by spaces (ready for folding)."""
    prefix = "=?%s?%s?" % (charset, "Q" if q else "B")
    room = 75 - len(prefix) - 2
    limit = room if q else room // 4 * 3    # B: 4 characters per 3 octets
    words, cur, used = [], [], 0
    for ch in text:
        raw = ch.encode(charset)
        cost = sum(len(Q_TAB[b]) for b in raw) if q else len(raw)
        if cur and used + cost > limit:
            words.append("".join(cur))
            cur, used = [], 0
        cur.append(ch)
        used += cost
    words.append("".join(cur))
    return " ".join(prefix + _ew_payload(w, charset, q) + "?=" for w in words)


def fold(line, width=78):
    """Fold an unstructured or address header at spaces (RFC 5322 2.2.3)."""
    if len(line) <= width:
        return line
    toks = line.split(" ")
    # The first word stays beside the field name: "Subject:" alone on a line
    # would make the unfolded value start with a space.
    out, cur = [], toks[0] + " " + toks[1]
    for tok in toks[2:]:
        if len(cur) + 1 + len(tok) > width:
            out.append(cur)
            cur = " " + tok
        else:
            cur += " " + tok
    out.append(cur)
    return "\n".join(out)


def html_escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fmt_date(ts, zone, style):
    """An RFC 5322 date-time (style picks one of the valid spellings)."""
    off, comment, obs = zone
    t = time.gmtime(ts + off * 60)
    sign = "-" if off < 0 else "+"
    tz = "%s%02d%02d" % (sign, abs(off) // 60, abs(off) % 60)
    day = DAY_NAMES[t.tm_wday]
    mon = MONTH_NAMES[t.tm_mon - 1]
    hms = "%02d:%02d:%02d" % (t.tm_hour, t.tm_min, t.tm_sec)
    if style == 0:
        return "%s, %02d %s %d %s %s" % (day, t.tm_mday, mon, t.tm_year, hms,
                                         tz)
    if style == 1:
        return "%s, %d %s %d %s %s" % (day, t.tm_mday, mon, t.tm_year, hms, tz)
    if style == 2:                       # day-of-week is optional
        return "%d %s %d %s %s" % (t.tm_mday, mon, t.tm_year, hms, tz)
    if style == 3:                       # trailing comment, as Postfix writes
        return "%s, %d %s %d %s %s (%s)" % (day, t.tm_mday, mon, t.tm_year,
                                            hms, tz, comment)
    if style == 4:                       # seconds are optional
        return "%s, %d %s %d %02d:%02d %s" % (day, t.tm_mday, mon, t.tm_year,
                                              t.tm_hour, t.tm_min, tz)
    if style == 5 and obs:               # obsolete zone names (RFC 5322 4.3)
        return "%s, %d %s %d %s %s" % (day, t.tm_mday, mon, t.tm_year, hms,
                                       obs)
    if style == 6:                       # obsolete two-digit year
        return "%s, %d %s %02d %s %s" % (day, t.tm_mday, mon, t.tm_year % 100,
                                         hms, tz)
    return "%s, %d %s %d %s %s" % (day, t.tm_mday, mon, t.tm_year, hms, tz)


# ------------------------------------------------------------------- people

class Person:
    """A fictional correspondent; `displays` holds the spellings of the
    display name (plain, quoted, RFC 2047 ...) to pick from per message."""
    __slots__ = ("name", "first", "local", "domain", "displays")

    def __init__(self, name, first, local, domain, displays):
        self.name, self.first, self.local = name, first, local
        self.domain, self.displays = domain, displays

    @property
    def addr(self):
        return self.local + "@" + self.domain


class Msg:
    """Everything decided about one message before its bytes are written."""
    __slots__ = ("lang", "mailer", "sender", "to", "cc", "subject", "msgid",
                 "ts", "zone", "irt", "refs", "parent", "structure", "inner",
                 "features", "places", "charset", "depth", "from_para",
                 "long_line", "canary_attach", "big", "quotable",
                 "envelope", "lean")


# ---------------------------------------------------------------- generator

class Generator:
    """Builds message bytes.  All randomness comes from self.r."""

    def __init__(self, seed, count, canaries, size_avg):
        self.r = FastRandom(seed)
        self.count = max(count, 1)
        self.canaries = canaries
        self.size_avg = size_avg
        self.msgids = set()
        self.serial = 0              # makes boundaries/ids unique per run
        self.recent = []             # ring of thread parents for replies
        self.recent_pos = 0
        # running totals that steer ordinary message sizes to --size-avg
        self.ord_n = 0
        self.ord_bytes = 0
        self.lang_w = wtable(LANG_WEIGHTS)
        self.struct_w = wtable(STRUCTURES)
        self.attach_w = wtable(ATTACH_WEIGHTS)
        self.mailer_w = wtable((m, m[1]) for m in MAILERS)
        r = self.r
        self.template_fields = {}
        self.slots = {
            "doc": lambda: r.choice(DOCS), "noun": lambda: r.choice(NOUNS),
            "verb": lambda: r.choice(VERBS), "team": lambda: r.choice(TEAMS),
            "place": lambda: r.choice(PLACES), "when": lambda: r.choice(WHEN),
            "hour": lambda: r.choice(HOURS),
            "month": lambda: r.choice(FULL_MONTHS),
            "project": lambda: r.choice(self.projects),
            "first": lambda: r.choice(self.people).first,
            "num": lambda: r.randint(2, 99),
            "num3": lambda: r.randint(100, 999)}
        self._build_pools()

    # ---- one-off pools (built once: per-message work must stay cheap)

    def _word(self, n):
        r = self.r
        return "".join(r.choice(SYL_LAT) for _ in range(n))

    def _build_pools(self):
        r = self.r
        self.domains = ["example.com", "example.org", "example.net"] * 6
        for _ in range(30):
            shape = r.random()
            base = self._word(r.randint(2, 3))
            if shape < 0.5:
                self.domains.append(base + ".example")
            elif shape < 0.8:
                self.domains.append("mail." + base + ".example")
            else:
                self.domains.append(base + "-" + self._word(2) + ".example")
        self.companies = [self._word(r.randint(2, 3)).capitalize() + suffix
                          for suffix in (" GmbH", " Ltd", " Inc.", " LLP",
                                         " S.A.", " AB", " Group", "")
                          for _ in range(3)]
        self.projects = [self._word(r.randint(2, 3)).capitalize()
                         for _ in range(40)]
        self.people = [self._person() for _ in range(800)]
        self.hops = [self._hop_template() for _ in range(3000)]
        self.pools = {"en": [self._para_en() for _ in range(900)]}
        for lang, spec in LANGS.items():
            self.pools[lang] = [self._para_intl(spec[2], lang)
                                for _ in range(80)]
        self.from_paras = [self._para_en(FROM_SENTENCES) for _ in range(40)]
        self.csv_rows = ["%04d-%02d-%02d,%s,%d.%02d,%s %s\n" % (
            r.randint(2001, 2024), r.randint(1, 12), r.randint(1, 28),
            "ACC-%05d" % r.randint(1, 99999), r.randint(1, 99999),
            r.randint(0, 99), r.choice(TEAMS), r.choice(NOUNS))
            for _ in range(600)]
        self.log_lines = ["2023-%02d-%02d %02d:%02d:%02d %s worker-%d: job %d "
                          "%s in %d.%02ds\n" % (
                              r.randint(1, 12), r.randint(1, 28),
                              r.randint(0, 23), r.randint(0, 59),
                              r.randint(0, 59), r.choice(("INFO", "WARN",
                                                          "DEBUG", "ERROR")),
                              r.randint(1, 9), r.randint(1000, 99999),
                              r.choice(("finished", "retried", "queued",
                                        "failed")),
                              r.randint(0, 9), r.randint(0, 99))
                          for _ in range(400)]

    def _person(self):
        r = self.r
        script = r.wpick(SCRIPT_W)
        if script == "cjk":
            sur, given = r.choice(CJK_SURNAMES), r.sample(CJK_GIVEN, 2)
            first = given[0][0] + given[1][0]
            name = sur[0] + first
            a_first, a_last = given[0][1] + given[1][1], sur[1]
        elif script in ("latin", "latin1"):
            a_first = self._word(r.randint(2, 3))
            a_last = self._word(r.randint(2, 3)) + r.choice(
                ("", "", "son", "sen", "er", "ez", "ini", "ova"))
            first, last = a_first.capitalize(), a_last.capitalize()
            if script == "latin1":
                # accent a letter of the display name; the address stays ASCII
                pos = [i for i, c in enumerate(last) if c in ACCENTS]
                if pos:
                    i = r.choice(pos)
                    last = last[:i] + ACCENTS[last[i]] + last[i + 1:]
            name = first + " " + last
        else:
            table = {"greek": SYL_GRK, "cyrillic": SYL_CYR,
                     "arabic": SYL_ARA}[script]
            fi = [r.randrange(16) for _ in range(r.randint(2, 3))]
            li = [r.randrange(16) for _ in range(r.randint(2, 3))]
            first = "".join(table[i] for i in fi).capitalize()
            name = first + " " + "".join(table[i] for i in li).capitalize()
            a_first = "".join(SYL_LAT[i] for i in fi)
            a_last = "".join(SYL_LAT[i] for i in li)
        style = r.random()
        if style < 0.45:
            local = a_first + "." + a_last
        elif style < 0.65:
            local = a_first[0] + a_last
        elif style < 0.8:
            local = a_first + "_" + a_last
        elif style < 0.9:
            local = a_first + a_last + str(r.randint(1, 99))
        else:
            local = a_last + "." + a_first[0]
        return Person(name, first, local, r.choice(self.domains),
                      self._display_forms(name, script))

    @staticmethod
    def _display_forms(name, script):
        """Display-name phrases, repeated to weight them: plain or quoted
        ASCII, or RFC 2047 in the charsets mailers use for the script."""
        if name.isascii():
            first, _, last = name.partition(" ")
            return (name,) * 5 + ('"%s"' % name,) * 4 + \
                ('"%s, %s"' % (last, first),)
        forms = [encoded_words(name, cs, q) for cs, q in (
            ("UTF-8", False), ("UTF-8", False), ("utf-8", False),
            ("UTF-8", True), ("utf-8", True))]
        if script == "latin1":
            forms += [encoded_words(name, "ISO-8859-1", True)] * 2
        elif script == "cyrillic":
            forms.append(encoded_words(name, "KOI8-R", False))
        return tuple(forms)

    def _fill(self, template):
        """Format a SENTENCES/SUBJECTS template, drawing only the slots it
        uses."""
        fields = self.template_fields.get(template)
        if fields is None:
            # sorted: set order varies with hash randomisation
            fields = self.template_fields[template] = tuple(sorted(
                {f for _, f, _, _ in string.Formatter().parse(template) if f}))
        slots = self.slots
        return template.format(**{f: slots[f]() for f in fields})

    def _para_en(self, first_from=None):
        """(text wrapped at 72, html) paragraph; `first_from` forces the
        paragraph to start with one of those sentences."""
        r = self.r
        sents = [self._fill(r.choice(SENTENCES))
                 for _ in range(r.randint(2, 6))]
        if first_from:
            sents[0] = self._fill(r.choice(first_from))
        text = textwrap.fill(" ".join(sents), 72)
        return text, html_escape(text)

    def _para_intl(self, sentences, lang):
        r = self.r
        sents = [r.choice(sentences) for _ in range(r.randint(2, 4))]
        if lang in ("zh", "ja"):
            flat = "".join(sents)
            text = "\n".join(flat[i:i + 36] for i in range(0, len(flat), 36))
        else:
            text = textwrap.fill(" ".join(sents), 72)
        return text, html_escape(text)

    # ---- small random helpers

    def _hex(self, n, upper=False):
        s = "%0*x" % (n, self.r.getrandbits(4 * n))
        return s.upper() if upper else s

    def _alnum(self, n):
        return "".join(self.r.choices(ALNUM, k=n))

    def _zone(self):
        return self.r.choice(ZONES)

    def _date_style(self):
        return self.r.wpick(DATE_STYLE_W)

    # ---- identifiers

    def _msgid(self, mailer, ts, domain):
        r = self.r
        style = mailer[3]
        while True:
            if style == "outlook":
                local = "%s$%s$%s" % (self._hex(12), self._hex(8),
                                      self._hex(8))
            elif style == "exchange":
                pfx = r.choice(("DB7PR02MB", "AM0PR04MB", "VI1PR08MB",
                                "BY5PR11MB"))
                local = pfx + str(r.randint(1000, 9999)) + self._hex(24, True)
                domain = pfx + "%04d.eurprd0%d.prod.mail.example" % (
                    r.randint(1000, 9999), r.randint(1, 9))
            elif style == "gmail":
                local = "CA" + base64.b64encode(r.randbytes(33)).decode()
                domain = "mail.gmail.example"
            elif style == "uuid":
                h = self._hex(32)
                local = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16],
                                            h[16:20], h[20:])
            elif style == "appleuuid":
                h = self._hex(32, True)
                local = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16],
                                            h[16:20], h[20:])
            elif style == "mutt":
                t = time.gmtime(ts)
                local = "%04d%02d%02d%02d%02d%02d.GA%d" % (
                    t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min,
                    t.tm_sec, r.randint(1000, 99999))
                domain = r.choice(("host", "box", "laptop")) + "." + domain
            elif style == "notes":
                local = "OF%s.%s-ON%s.%s" % (self._hex(8, True),
                                             self._hex(8, True),
                                             self._hex(8, True),
                                             self._hex(8, True))
            elif style == "javamail":
                local = "%d.%d.%d.JavaMail.%s" % (
                    r.randint(1000, 99999999), r.randint(1, 9999),
                    ts * 1000 + r.randint(0, 999),
                    r.choice(("evmsvc", "app", "svc-mail")))
                domain = r.choice(("thyme", "app01", "batch")) + "." + domain
            else:
                local = self._hex(32)
            if self.canaries:
                local = ".".join(self.canaries) + "." + local
            mid = "<%s@%s>" % (local, domain)
            if mid not in self.msgids:
                self.msgids.add(mid)
                return mid

    def _boundary(self, mailer):
        style = mailer[4]
        self.serial += 1
        if style == "nextpart":
            return "----=_NextPart_%03d_%s_%s.%s" % (
                self.serial % 1000, self._hex(4, True), self._hex(8, True),
                self._hex(8, True))
        if style == "gmail":
            return "000000000000" + self._hex(16)
        if style == "tb":
            return "------------" + self._alnum(24)
        if style == "apple":
            h = self._hex(32, True)
            return "Apple-Mail=_%s-%s-%s-%s-%s" % (
                h[:8], h[8:12], h[12:16], h[16:20], h[20:])
        if style == "mutt":
            return self._alnum(16)
        if style == "notes":       # Lotus Notes really puts a space in it
            return "=_alternative %s%sC1257%s_=" % (
                self._hex(4, True), self._hex(4, True), self._hex(3, True))
        if style == "javapart":
            return "----=_Part_%d_%d.%d" % (self.serial, self.r.randint(
                1, 999999999), 1000000000000 + self.r.getrandbits(40))
        return "b1_" + self._hex(32)

    # ---- addresses and headers

    def _address(self, person, local=None, domain=None, broken_raw=False):
        addr = "%s@%s" % (local or person.local, domain or person.domain)
        style = self.r.random()
        if style < 0.06 and not broken_raw:
            return addr
        if style < 0.09 and not broken_raw:
            return "<%s>" % addr
        if style < 0.11 and person.name.isascii() and not broken_raw:
            return "%s (%s)" % (addr, person.name)      # old comment form
        # broken_raw: the name's raw UTF-8 octets, not RFC 2047
        display = '"%s"' % person.name if broken_raw else \
            self.r.choice(person.displays)
        return "%s <%s>" % (display, addr)

    def _hop_template(self):
        """One Received: line with {d} (date), {rcpt} and {dst} (recipient
        domain) left open; a pool of these is built once."""
        r = self.r
        src = r.choice(self.domains)
        ip = "%s.%d" % (r.choice(("192.0.2", "198.51.100", "203.0.113")),
                        r.randint(1, 254))
        kind = r.random()
        if kind < 0.35:
            h = "mail-%s.%s" % (self._alnum(4).lower(), src)
            return ("Received: from %s (%s [%s])\n\tby mx%d.{dst} (Postfix) "
                    "with ESMTPS id %s\n\tfor <{rcpt}>; {d}" % (
                        h, h, ip, r.randint(1, 4), self._hex(10, True)))
        if kind < 0.55:
            return ("Received: from EXCH%02d.corp.%s (10.%d.%d.%d) by\n"
                    " EXCH%02d.corp.%s (10.%d.%d.%d) with Microsoft SMTP "
                    "Server\n (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_"
                    "256_GCM_SHA384) id\n 15.20.%d.%d; {d}" % (
                        r.randint(1, 20), src, r.randint(0, 255),
                        r.randint(0, 255), r.randint(1, 254),
                        r.randint(1, 20), src, r.randint(0, 255),
                        r.randint(0, 255), r.randint(1, 254),
                        r.randint(1000, 7999), r.randint(10, 99)))
        if kind < 0.7:
            return ("Received: by 2002:a05:%s:%s:b0:%s:%s with SMTP id %s;"
                    "\n        {d}" % (self._hex(4), self._hex(3),
                                       self._hex(3), self._hex(4),
                                       self._alnum(18).lower()))
        if kind < 0.82:
            return ("Received: from %s ([%s])\n\tby smtp.{dst} "
                    "(8.15.2/8.15.2) with ESMTP id %s\n\tfor <{rcpt}>; {d}" %
                    (src, ip, self._alnum(14)))
        if kind < 0.9:
            return ("Received: from relay.%s (unknown [2001:db8:%s::%s])\n"
                    "\tby in.{dst} with ESMTPSA id %s; {d}" % (
                        src, self._hex(4), self._hex(3), self._hex(12)))
        return "Received: (qmail %d invoked by uid %d); {d}" % (
            r.randint(1000, 99999), r.randint(100, 2000))

    def _received(self, ts, zone, rcpt, hops):
        """A Received: chain, newest hop on top (documentation IPs only)."""
        r = self.r
        dst = rcpt.rpartition("@")[2]
        out = []
        for _ in range(hops):
            ts += r.randint(0, 90)
            out.append(r.choice(self.hops).format(
                d=fmt_date(ts, zone, r.choice((0, 1, 3, 3))), rcpt=rcpt,
                dst=dst))
        out.reverse()
        return out

    # ---- body text

    def _text_items(self, m, length):
        """Paragraphs [(text, html)] of roughly `length` characters."""
        r = self.r
        lang = m.lang
        rcpt = m.to[0]
        if lang == "en":
            greet = r.choice(GREETINGS).format(first=rcpt.first,
                                               name=rcpt.name)
            signoff = r.choice(SIGNOFFS)
        else:
            spec = LANGS[lang]
            greet = r.choice(spec[0]).format(first=rcpt.first)
            signoff = r.choice(spec[1])
        items = [(greet, html_escape(greet))]
        pool = self.pools[lang]
        factor = 1.0 if lang == "en" else LANGS[lang][5]
        want = length / factor
        got = 0
        while True:
            p = r.choice(pool)
            items.append(p)
            got += len(p[0])
            if got >= want:
                break
        if m.from_para:
            items.insert(r.randint(1, len(items)), r.choice(self.from_paras))
        if m.long_line:
            # A paragraph pasted without line breaks: one line > 998 octets.
            flat = " ".join(r.choice(pool)[0].replace("\n", " ")
                            for _ in range(6))
            while len(flat) <= 1000:     # > 998 octets in any charset
                flat += " " + r.choice(pool)[0].replace("\n", " ")
            items.insert(r.randint(1, len(items)), (flat, html_escape(flat)))
        if self.canaries and m.depth == 0:
            line = r.choice(("Internal reference: {c}",
                             "Please quote {c} in your reply.",
                             "Case {c} (keep this line)",
                             "Tracking words: {c}")).format(
                                 c=" ".join(self.canaries))
            items.insert(r.randint(1, len(items)), (line, html_escape(line)))
            m.places.add("body")
        sender = m.sender
        sig = "%s\n\n-- \n%s\n%s, %s\n+1 555 01%02d" % (
            signoff, sender.name, r.choice(TITLES), r.choice(self.companies),
            r.randint(0, 99))
        items.append((sig, html_escape(sig).replace("\n", "<br>\n")))
        if m.quotable is None:
            m.quotable = "\n\n".join(t for t, _ in items[:3]).split("\n")[:10]
        return items

    def _quote(self, m):
        """Attribution line plus '> '-quoted lines of the parent, if any."""
        p = m.parent
        if not p:
            return "", ""
        pts, pzone, pname, paddr, plines = p[2], p[3], p[4], p[5], p[6]
        head = "On %s, %s <%s> wrote:" % (fmt_date(pts, pzone, 1), pname,
                                          paddr)
        text = head + "\n" + "".join(
            (">" if ln.startswith(">") else "> ") + ln + "\n" if ln else ">\n"
            for ln in plines)
        html = ('<div class="quote">%s<br>\n<blockquote type="cite">%s'
                '</blockquote></div>\n' % (
                    html_escape(head),
                    "<br>\n".join(html_escape(ln) for ln in plines)))
        return text, html

    def _pick_charset(self, m):
        """Charset for the text parts of m, from what its language and its
        sender's name need (a part whose text still does not fit falls back
        to UTF-8 in _text_leaf)."""
        r = self.r
        text = m.sender.name + m.subject
        if m.lang != "en":
            text += LANGS[m.lang][2][0]
        if text.isascii():
            if m.mailer[0] in ("outlook", "notes", "mutt", "javamail"):
                cs = r.choice(("us-ascii", "iso-8859-1", "Windows-1252",
                               "US-ASCII"))
            else:
                cs = r.choice(("UTF-8", "utf-8", "us-ascii"))
        elif m.lang in LANGS and r.random() < 0.45:
            cs = r.choice(LANGS[m.lang][4])
        else:
            cs = r.choice(("UTF-8", "utf-8"))
        try:
            text.encode(cs)
        except UnicodeEncodeError:
            cs = "UTF-8"
        m.charset = cs

    def _cte(self, data, force=None):
        if force:
            return force
        u = self.r.random()
        if data.isascii():
            return "7bit" if u < 0.7 else "quoted-printable" if u < 0.9 \
                else "base64"
        return "8bit" if u < 0.45 else "quoted-printable" if u < 0.8 \
            else "base64"

    def _encode_body(self, m, data, cte):
        if cte == "base64":
            m.features.add("base64")
            return b64_lines(data)
        if cte == "quoted-printable":
            m.features.add("qp")
            return qp_encode(data, self.canaries)
        if cte == "8bit":
            m.features.add("8bit")
        return data

    def _text_leaf(self, m, subtype, text, force_cte=None, cs=None):
        """(header lines, body bytes) of a text/plain or text/html entity."""
        r = self.r
        cs = cs or m.charset
        try:
            data = text.encode(cs)
        except UnicodeEncodeError:      # e.g. a Greek name in a koi8-r body
            cs, data = "UTF-8", text.encode("utf-8")
        if m.long_line and force_cte is None:
            force_cte = "7bit" if data.isascii() else "8bit"
        cte = self._cte(data, force_cte)
        if cs.lower() == "iso-2022-jp" and cte == "8bit":
            cte = "7bit"                 # iso-2022-jp is a 7-bit encoding
        body = self._encode_body(m, data, cte)
        if r.random() < 0.5:
            ctype = 'Content-Type: text/%s; charset="%s"' % (subtype, cs)
        else:
            ctype = "Content-Type: text/%s; charset=%s" % (subtype, cs)
        if subtype == "plain" and m.mailer[0] == "thunderbird":
            ctype += "; format=flowed"
        hdrs = [ctype, "Content-Transfer-Encoding: " + cte]
        if m.mailer[0] == "mutt":
            hdrs.append("Content-Disposition: inline")
        return hdrs, body

    def _plain_text(self, m, length):
        items = self._text_items(m, length)
        qt, _ = self._quote(m)
        text = "\n\n".join(t for t, _ in items) + "\n"
        if qt:
            text += "\n" + qt
        return text, items

    def _html_text(self, m, items, cids, cs):
        """Render paragraphs in the mailer's HTML dialect, declaring cs."""
        r = self.r
        style = m.mailer[5] or "plain"
        rtl = ' dir="rtl"' if m.lang == "ar" else ""
        _, qh = self._quote(m)
        imgs = "".join('<img src="cid:%s" alt="image%d" width="%d">\n' % (
            cid, i, r.choice((320, 480, 640))) for i, cid in enumerate(cids))
        if style == "mso":
            head = MSO_HEAD.format(cs=cs, lang=r.choice(("EN-US", "DE",
                                                         "EN-GB")))
            body = "".join('<p class="MsoNormal"%s>%s<o:p></o:p></p>\n' % (
                rtl, h.replace("\n", " ")) for _, h in items)
            return head + body + imgs + qh + "</div>\n</body>\n</html>\n"
        if style == "gmail":
            body = "".join("<div>%s</div><div><br></div>" % h.replace(
                "\n", "<br>") for _, h in items)
            return '<div dir="%s">%s%s%s</div>\n' % (
                "rtl" if rtl else "ltr", body, imgs, qh.replace("\n", ""))
        if style == "apple":
            body = "".join("<div>%s</div><div><br></div>" % h.replace(
                "\n", " ") for _, h in items)
            return ('<html><head><meta http-equiv="content-type" content="'
                    'text/html; charset=%s"></head><body%s style="overflow-'
                    'wrap: break-word; -webkit-nbsp-mode: space; line-break: '
                    'after-white-space;">%s%s%s</body></html>\n' % (
                        cs, rtl, body, imgs, qh))
        if style == "newsletter":
            dom = m.sender.domain
            rows = "".join('<tr><td style="padding:12px 24px;font-family:'
                           'Arial,sans-serif;font-size:15px;color:#333333">'
                           '%s</td></tr>\n' % h for _, h in items)
            return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset'
                    '="%s">\n<meta name="viewport" content="width=device-'
                    'width">\n<title>%s</title>\n</head>\n<body%s style="'
                    'margin:0;padding:0;background:#f4f4f4">\n<table role='
                    '"presentation" width="100%%" cellpadding="0" cellspacing='
                    '"0" border="0">\n%s<tr><td style="padding:24px"><a '
                    'href="https://news.%s'
                    '/c/%s" style="background:#1a73e8;color:#ffffff;padding:'
                    '10px 18px;text-decoration:none">Read more</a></td></tr>\n'
                    '%s</table>\n<p style="font-size:11px;color:#999999">You '
                    'receive this because you subscribed. <a href="https://'
                    'news.%s/u/%s">Unsubscribe</a></p>\n<img src="https://t.%s'
                    '/o/%s.gif" width="1" height="1" alt="">\n</body>\n'
                    '</html>\n' % (cs, html_escape(m.subject), rtl, rows, dom,
                                   self._hex(16), imgs, dom, self._hex(24),
                                   dom, self._hex(20)))
        body = "".join("<p>%s</p>\n" % h for _, h in items)
        return ('<html>\n<head>\n<meta http-equiv="Content-Type" content="text'
                '/html; charset=%s">\n</head>\n<body%s>\n%s%s%s</body>\n'
                '</html>\n' % (cs, rtl, body, imgs, qh))

    def _html_leaf(self, m, items, cids=()):
        cs = m.charset
        html = self._html_text(m, items, cids, cs)
        try:
            html.encode(cs)
        except UnicodeEncodeError:
            # re-render so that the <meta> charset matches the MIME one
            cs = "UTF-8"
            html = self._html_text(m, items, cids, cs)
        if m.long_line:
            html = html.replace("\n", " ") + "\n"
        return self._text_leaf(m, "html", html, cs=cs)

    # ---- attachments

    def _attach_name(self, kind, canary):
        r = self.r
        if r.random() < 0.25:
            base = r.choice(ATTACH_NAMES_INTL)
        else:
            base = r.choice(ATTACH_NAMES).format(num=r.randint(1000, 9999))
        if canary:
            base = "-".join(self.canaries) + "-" + base
        return base + r.choice(ATTACH_KINDS[kind][1])

    def _name_params(self, m, name):
        """(Content-Type name parameter, Content-Disposition filename
        parameter) in one of the spellings real mailers use."""
        r = self.r
        if name.isascii():
            if r.random() < 0.15 and re.fullmatch(r"[\w.-]+", name):
                return "name=" + name, "filename=" + name
            return 'name="%s"' % name, 'filename="%s"' % name
        m.features.add("rfc2231")
        u = r.random()
        quoted = urllib.parse.quote(name.encode("utf-8"), safe="")
        if u < 0.5:
            return ("name*=UTF-8''" + quoted, "filename*=UTF-8''" + quoted)
        if u < 0.62 and len(name) > 1:
            # RFC 2231 continuations, split between characters
            chars = [urllib.parse.quote(c.encode("utf-8"), safe="")
                     for c in name]
            half = len(chars) // 2
            return ("name*=UTF-8''" + quoted,
                    "filename*0*=UTF-8''%s;\n\tfilename*1*=%s" % (
                        "".join(chars[:half]), "".join(chars[half:])))
        if u < 0.72:
            try:
                lat = urllib.parse.quote(name.encode("iso-8859-1"), safe="")
                return ("name*=iso-8859-1''" + lat,
                        "filename*=iso-8859-1''" + lat)
            except UnicodeEncodeError:
                pass
        # Outlook/Gmail style: RFC 2047 inside a quoted string
        m.features.add("rfc2047")
        ew = encoded_words(name, "UTF-8", q=False)
        return 'name="%s"' % ew, 'filename="%s"' % ew

    def _attach_payload(self, kind, size):
        r = self.r
        if kind == "txt":
            lines = self.log_lines if r.random() < 0.5 else None
            out, n = [], 0
            while n < size:
                s = r.choice(lines) if lines else r.choice(
                    self.pools["en"])[0] + "\n\n"
                out.append(s)
                n += len(s)
            return "".join(out).encode("utf-8")
        if kind == "csv":
            out, n = ["date,account,amount,description\n"], 0
            while n < size:
                s = r.choice(self.csv_rows)
                out.append(s)
                n += len(s)
            return "".join(out).encode()
        noise = r.randbytes(max(size, 16))
        if kind == "pdf":
            return (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog "
                    b"/Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Length " +
                    str(len(noise)).encode() + b" /Filter /FlateDecode >>\n"
                    b"stream\n" + noise + b"\nendstream\nendobj\ntrailer\n"
                    b"<< /Root 1 0 R >>\n%%EOF\n")
        if kind == "png":
            return (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x02\x80"
                    b"\x00\x00\x01\xe0\x08\x02\x00\x00\x00" + noise +
                    b"\x00\x00\x00\x00IEND\xaeB`\x82")
        if kind == "jpg":
            return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + noise + \
                b"\xff\xd9"
        if kind in ("docx", "xlsx", "zip"):
            return b"PK\x03\x04\x14\x00\x06\x00\x08\x00" + noise
        return noise

    def _attachment(self, m, kind, size, canary=False, inline_cid=None):
        r = self.r
        ctype = ATTACH_KINDS[kind][0]
        name = self._attach_name(kind, canary)
        if canary:
            m.places.add("attachment")
        data = self._attach_payload(kind, size)
        nparam, fparam = self._name_params(m, name)
        if kind in ("txt", "csv"):
            cte = self._cte(data)
            ctype += "; charset=" + ("us-ascii" if data.isascii() else "utf-8")
        else:
            cte = "base64"
        hdrs = ["Content-Type: %s;\n\t%s" % (ctype, nparam)]
        if inline_cid:
            hdrs.append("Content-ID: <%s>" % inline_cid)
            hdrs.append("Content-Disposition: inline;\n\t" + fparam)
        elif r.random() < 0.95:
            hdrs.append("Content-Disposition: %s;\n\t%s" % (
                "inline" if kind in ("png", "jpg") and r.random() < 0.3
                else "attachment", fparam))
        hdrs.append("Content-Transfer-Encoding: " + (
            "Base64" if cte == "base64" and r.random() < 0.05 else cte))
        m.features.add("attachment")
        return hdrs, self._encode_body(m, data, cte)

    # ---- structure

    def _multipart(self, m, subtype, parts, extra=""):
        """(header lines, body bytes) of a multipart entity."""
        r = self.r
        b = self._boundary(m.mailer)
        bb = b.encode()
        chunks = []
        if r.random() < 0.4:
            chunks.append(b"This is a multi-part message in MIME format.\n\n")
        for hdrs, body in parts:
            chunks.append(b"--" + bb + b"\n" + "\n".join(hdrs).encode() +
                          b"\n\n" + body)
            if not body.endswith(b"\n"):
                chunks.append(b"\n")
            if r.random() < 0.3:
                chunks.append(b"\n")
        chunks.append(b"--" + bb + b"--\n")
        if r.random() < 0.1:
            chunks.append(b"\n")
        if r.random() < 0.2 and b.isalnum():
            param = "boundary=" + b      # a bare token is legal here
        else:
            param = 'boundary="%s"' % b
        return (["Content-Type: multipart/%s;%s\n\t%s" % (subtype, extra,
                                                          param)],
                b"".join(chunks))

    def _content(self, m, budget):
        """The body entity of m: (header lines, body bytes)."""
        r = self.r
        s = m.structure
        if s == "plain":
            text, _ = self._plain_text(m, budget)
            return self._text_leaf(m, "plain", text)
        if s == "html":
            m.features.add("html_only")
            return self._html_leaf(m, self._text_items(m, budget * 0.6))
        if s == "alternative":
            m.features.add("alternative")
            text, items = self._plain_text(m, budget * 0.4)
            return self._multipart(m, "alternative", [
                self._text_leaf(m, "plain", text), self._html_leaf(m, items)])
        if s == "related":
            m.features.add("alternative")
            m.features.add("related")
            text, items = self._plain_text(m, budget * 0.25)
            imgs = []
            for i in range(r.randint(1, 2)):
                cid = r.choice(("image%03d.png@01D%s.%s" % (
                    i + 1, self._hex(5, True), self._hex(8, True)),
                    "ii_%s" % self._hex(16), "part%d.%s@%s" % (
                        i + 1, self._hex(8), m.sender.domain)))
                imgs.append((cid, self._attachment(
                    m, "png", int(budget * 0.25), inline_cid=cid)))
            related = self._multipart(
                m, "related",
                [self._html_leaf(m, items, [c for c, _ in imgs])] +
                [p for _, p in imgs], extra=' type="text/html";')
            return self._multipart(m, "alternative", [
                self._text_leaf(m, "plain", text), related])
        if s == "fwd_inline":
            inner = m.inner
            head = r.choice((
                "---------- Forwarded message ---------\nFrom: {f}\n"
                "Date: {d}\nSubject: {s}\nTo: {t}\n",
                "-----Original Message-----\nFrom: {f}\nSent: {d}\n"
                "To: {t}\nSubject: {s}\n")).format(
                    f="%s <%s>" % (inner.sender.name, inner.sender.addr),
                    d=fmt_date(inner.ts, inner.zone, 1), s=inner.subject,
                    t=inner.to[0].addr)
            own, _ = self._plain_text(m, budget * 0.3)
            fwd, _ = self._plain_text(inner, budget * 0.6)
            return self._text_leaf(m, "plain", own + "\n" + head + "\n" + fwd)
        # mixed, or a forward carrying the original as message/rfc822
        main_len = min(budget * 0.3, r.randint(250, 1500))
        if s == "fwd_rfc822" or r.random() < 0.7:
            text, _ = self._plain_text(m, main_len)
            main = self._text_leaf(m, "plain", text)
        else:
            m.features.add("alternative")
            text, items = self._plain_text(m, main_len * 0.5)
            main = self._multipart(m, "alternative", [
                self._text_leaf(m, "plain", text), self._html_leaf(m, items)])
        parts = [main]
        rest = max(budget - main_len, 300)
        if s == "fwd_rfc822":
            m.features.add("rfc822")
            raw = self._assemble(m.inner, rest * 0.9)
            hdrs = ["Content-Type: message/rfc822"]
            if r.random() < 0.4:
                hdrs[0] += '; name="%s.eml"' % ("Fwd" if m.inner.subject.
                                                isascii() else "message")
                hdrs.append('Content-Disposition: attachment; filename="'
                            'forwarded.eml"')
            if not raw.isascii():
                hdrs.append("Content-Transfer-Encoding: 8bit")
            parts.append((hdrs, raw))
        else:
            n = r.wpick(N_ATTACH_W)
            share = rest / n
            for k in range(n):
                kind = r.wpick(self.attach_w)
                factor = 1.0 if kind in ("txt", "csv") else 0.72
                parts.append(self._attachment(
                    m, kind, int(share * r.uniform(0.5, 1.5) * factor),
                    canary=bool(self.canaries) and m.depth == 0 and k == 0))
        if m.big:
            kind = r.choice(("pdf", "zip", "jpg", "bin"))
            parts.append(self._attachment(m, kind,
                                          r.randint(1 << 20, 5 << 20)))
        return self._multipart(m, "mixed", parts)

    # ---- whole messages

    def _new_msg(self, depth, ts, features=None, lean=False):
        """Decide sender, recipients, language, structure and subject.
        Nested (forwarded) messages share their container's feature set;
        `lean` asks for a short plain message with few trace headers."""
        r = self.r
        m = Msg()
        m.depth = depth
        m.lean = lean
        m.features = set() if features is None else features
        m.places = set()
        m.mailer = r.wpick(self.mailer_w)
        m.lang = r.wpick(self.lang_w)
        m.sender = r.choice(self.people)
        m.to = [r.choice(self.people) for _ in range(r.wpick(N_TO_W))]
        m.cc = [r.choice(self.people)
                for _ in range(r.choice((0, 0, 0, 1, 2)))]
        m.ts, m.zone = ts, self._zone()
        m.msgid = m.irt = m.refs = m.parent = m.inner = None
        m.charset = m.quotable = m.envelope = None
        m.from_para = r.random() < 0.04
        m.long_line = depth == 0 and r.random() < 0.02
        m.big = m.canary_attach = False
        m.structure = "plain" if lean else r.wpick(self.struct_w)
        if m.mailer[0] == "bulk" and m.structure in ("plain", "fwd_inline",
                                                     "fwd_rfc822"):
            m.structure = r.choice(("html", "alternative"))
        if m.mailer[5] is None and m.structure in ("html", "alternative",
                                                   "related"):
            m.structure = "plain"        # mutt users send plain text
        if depth > 0 and m.structure in ("fwd_inline", "related"):
            m.structure = "plain"
        # a forwarded message is itself a forward a quarter of the time, down
        # to 3 levels of message/rfc822
        if depth > 0 and not lean:
            fwd = depth < 3 and r.random() < 0.25
            if fwd or m.structure == "fwd_rfc822":
                m.structure = "fwd_rfc822" if fwd else "mixed"
        if m.lang == "en":
            m.subject = self._fill(r.choice(SUBJECTS))
        else:
            m.subject = r.choice(LANGS[m.lang][3])
        if m.structure in ("fwd_rfc822", "fwd_inline"):
            # only the text of an inline-forwarded message is used: keep it
            # plain
            m.inner = self._new_msg(
                depth + 1, ts - r.randint(3600, 86400 * 30), m.features,
                m.structure == "fwd_inline")
            m.subject = r.choice(("Fwd: ", "FW: ", "Fw: ", "WG: ", "TR: ")) + \
                m.inner.subject
        elif depth == 0 and self.recent and r.random() < 0.25:
            self._make_reply(m)
        return m

    def _make_reply(self, m):
        """Turn m into a reply to a recent message (threading headers,
        'Re:' subject, quoted text)."""
        r = self.r
        p = r.choice(self.recent)
        m.parent = p
        m.irt = p[0]
        m.refs = (p[1] + [p[0]])[-12:]
        m.to[0] = p[7]
        m.lang = p[8]
        m.ts = max(m.ts, p[2] + r.randint(60, 86400 * 3))
        subj = p[9]
        if not re.match(r"(?i)(re|aw|sv|fwd?|wg|tr)\s*:", subj):
            subj = r.choice(("Re: ", "RE: ", "AW: ", "Sv: ", "Re: ")) + subj
        m.subject = subj
        m.features.add("reply")

    def _subject_header(self, m, broken_raw=False):
        r = self.r
        subj = m.subject
        if broken_raw or (subj.isascii() and r.random() < 0.9):
            return fold("Subject: " + subj)
        m.features.add("rfc2047")
        u = r.random()
        if m.lang in ("de", "fr", "es") and u < 0.3:
            try:
                return fold("Subject: " + encoded_words(subj, "ISO-8859-1",
                                                        q=True))
            except UnicodeEncodeError:
                pass
        if m.lang == "ja" and u < 0.3:
            try:
                # ISO-2022-JP is stateful: encode the whole subject at once
                raw = subj.encode("iso-2022-jp")
                return "Subject: =?ISO-2022-JP?B?%s?=" % base64.b64encode(
                    raw).decode()
            except UnicodeEncodeError:
                pass
        return fold("Subject: " + encoded_words(subj, "UTF-8", q=u > 0.6))

    def _headers(self, m, trace, broken_raw=False):
        """Header lines of m except the Content-* ones; `trace` adds the
        Return-Path/Received/DKIM block a delivered message carries."""
        r = self.r
        mailer = m.mailer
        top = m.depth == 0
        canary_local = None
        if self.canaries and top:
            canary_local = r.choice(self.canaries)
            m.places.update(("from", "to", "message_id", "subject"))
        h = []
        to_addrs = [self._address(p, broken_raw=broken_raw) for p in m.to]
        if canary_local:
            to_addrs += [self._address(r.choice(self.people), local=c,
                                       domain="example.org")
                         for c in self.canaries]
        rcpt = m.to[0].addr
        if trace:
            env = canary_local + "@example.com" if canary_local \
                else m.sender.addr
            h.append("Return-Path: <%s>" % env)
            m.envelope = env
            if canary_local:
                m.places.add("return_path")
            if r.random() < 0.3:
                h.append("Delivered-To: " + rcpt)
            h += self._received(m.ts, self._zone(), rcpt,
                                1 if m.lean else r.wpick(HOPS_W))
            if not m.lean and r.random() < 0.35:
                dom = m.sender.domain
                b = base64.b64encode(r.randbytes(128)).decode()
                h.append("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/"
                         "relaxed; d=%s;\n\ts=sel%d; t=%d;\n\th=from:to:"
                         "subject:date:message-id:mime-version;\n\tbh=%s;"
                         "\n\tb=%s" % (
                             dom, r.randint(1, 9), m.ts,
                             base64.b64encode(r.randbytes(32)).decode(),
                             "\n\t ".join(b[i:i + 64] for i in
                                          range(0, len(b), 64))))
                h.append("Authentication-Results: mx.%s;\n\tdkim=pass "
                         "header.d=%s;\n\tspf=pass smtp.mailfrom=%s" % (
                             rcpt.rpartition("@")[2], dom, dom))
            if not m.lean and r.random() < 0.2:
                h.append("X-Spam-Status: No, score=-%d.%d required=5.0 "
                         "tests=BAYES_00,DKIM_SIGNED autolearn=ham" % (
                             r.randint(0, 4), r.randint(0, 9)))
        frm = "From: " + self._address(m.sender, local=canary_local,
                                       domain="example.com" if canary_local
                                       else None, broken_raw=broken_raw)
        to = fold("To: " + ", ".join(to_addrs))
        date = "Date: " + fmt_date(m.ts, m.zone, self._date_style())
        subject = self._subject_header(m, broken_raw)
        msgid = "%s: %s" % (mailer[6], m.msgid)
        block = [frm, to]
        if m.cc:
            block.append(fold("Cc: " + ", ".join(
                self._address(p) for p in m.cc)))
        if r.random() < 0.5:
            block += [subject, date, msgid]
        else:
            block = [date, frm, subject] + block[1:] + [msgid]
        if m.irt:
            block.append("In-Reply-To: " + m.irt)
            sep = "\n\t" if len(m.refs) > 2 or r.random() < 0.5 else " "
            block.append("References: " + sep.join(m.refs))
        if top and r.random() < 0.05:
            block.append("Reply-To: " + self._address(r.choice(self.people)))
        block.append("MIME-Version: " + mailer[7])
        if mailer[2]:
            block.append(mailer[2])
        if mailer[0] in ("outlook", "exchange"):
            block.append("Thread-Index: " + base64.b64encode(
                r.randbytes(22)).decode())
            block.append("Content-Language: " + r.choice(("en-us", "de-de",
                                                          "en-gb")))
        if mailer[0] == "bulk":
            dom = m.sender.domain
            block.append("List-Id: %s news <news.%s>" % (
                dom.split(".")[0].capitalize(), dom))
            block.append("List-Unsubscribe: <https://news.%s/u/%s>,\n "
                         "<mailto:unsubscribe@%s>" % (dom, self._hex(24), dom))
            block.append("Precedence: bulk")
        if r.random() < 0.1:
            block.append("X-Priority: " + r.choice(
                ("3 (Normal)", "1 (Highest)", "5")))
        if r.random() < 0.1:
            block.append("Organization: " + r.choice(self.companies))
        return h + block

    def _assemble(self, m, budget):
        """A nested (forwarded) message: header lines + entity as bytes."""
        m.msgid = self._msgid(m.mailer, m.ts, m.sender.domain)
        hdrs = self._headers(m, self.r.random() < 0.5)
        self._pick_charset(m)
        hlen = sum(len(x) + 1 for x in hdrs)
        ehdrs, body = self._content(m, max(budget - hlen - 120, 150))
        return ("\n".join(hdrs + ehdrs) + "\n\n").encode() + body

    def _size_target(self):
        """Message size to aim for: log-normal around --size-avg, nudged by
        how far the ordinary messages so far are from that average."""
        r = self.r
        avg = self.size_avg
        debt = avg * self.ord_n - self.ord_bytes
        mean = min(max(avg + 0.5 * debt, avg * 0.3), avg * 3)
        # exp(0.75**2 / 2) ~= 1.325 is the mean of lognormvariate(0, 0.75)
        return min(max(r.lognormvariate(0, 0.75) * mean / 1.325, 400),
                   avg * 12)

    def _remember(self, m):
        """Keep m as a possible thread parent for later replies."""
        lines = m.quotable or \
            self.r.choice(self.pools[m.lang])[0].split("\n")[:8]
        entry = (m.msgid, m.refs or [], m.ts, m.zone, m.sender.name,
                 m.sender.addr, lines, m.sender, m.lang, m.subject)
        if len(self.recent) < 200:
            self.recent.append(entry)
        else:
            self.recent[self.recent_pos] = entry
            self.recent_pos = (self.recent_pos + 1) % 200

    def message(self, index, big=False, broken=None, same_msgid_as=None):
        """Generate one top-level message.

        Returns (bytes, info) where info has message_id and subject (None
        when the message does not carry them intact), features and
        canary_places."""
        r = self.r
        ts = T_START + (T_END - T_START) * index // self.count + \
            r.randint(-86400 * 3, 86400 * 3)
        budget = self.size_avg if big else self._size_target()
        # below ~1.5 KB only a plain message with a short trace fits
        m = self._new_msg(0, ts, lean=budget < 1500 and not big)
        m.big = big
        if big:
            m.features.add("big")
            if m.structure not in ("mixed", "fwd_rfc822"):
                m.structure = "mixed"
        if same_msgid_as:
            m.msgid, m.subject = same_msgid_as
        if self.canaries and not all(c in m.subject for c in self.canaries):
            m.subject += r.choice((" [%s]", " - %s", " %s")) % " ".join(
                self.canaries)
        if broken in ("missing_end_boundary", "undeclared_boundary") and \
                m.structure not in ("mixed", "alternative"):
            m.structure = "mixed"
        elif broken in ("bad_base64", "no_separator", "bad_charset",
                        "headerless"):
            m.structure = "plain"
            m.long_line = False
        if broken == "bad_charset":
            m.lang = r.choice(("de", "fr", "es"))
        # Half of the messages without attachments get a small one anyway,
        # so that the canaries also appear in attachment file names.
        m.canary_attach = bool(self.canaries) and broken is None and \
            m.structure not in ("mixed", "fwd_rfc822") and r.random() < 0.5
        if broken == "headerless":
            raw = self._headerless(m, budget)
        else:
            raw = self._assemble_top(m, budget, broken)
        if broken != "bare_cr" and r.random() < 0.25:
            raw = raw.replace(b"\n", b"\r\n")
            m.features.add("crlf")
        if broken in ("nul_bytes", "bare_cr"):
            raw = self._corrupt_body(raw, broken)
        if m.lang != "en":
            m.features.add("lang_" + m.lang)
        if b"\nFrom " in raw:
            m.features.add("from_line")
        if m.long_line:
            m.features.add("long_line")
        if not big and broken is None and same_msgid_as is None:
            self.ord_n += 1
            self.ord_bytes += len(raw)
            self._remember(m)
        return raw, {"message_id": m.msgid, "subject": m.subject,
                     "features": sorted(m.features),
                     "canary_places": sorted(m.places),
                     "envelope": m.envelope or "MAILER-DAEMON", "ts": m.ts}

    def _assemble_top(self, m, budget, broken):
        """Top-level message bytes (LF), with header-level breakage."""
        r = self.r
        m.msgid = m.msgid or self._msgid(m.mailer, m.ts, m.sender.domain)
        hdrs = self._headers(m, True, broken == "raw_8bit_header")
        self._pick_charset(m)
        if broken == "bad_charset":
            m.charset = "iso-8859-1"
        hlen = sum(len(x) + 1 for x in hdrs)
        ehdrs, body = self._content(m, max(budget - hlen - 120, 150))
        if m.canary_attach:
            att = self._attachment(m, "txt", r.randint(200, 800), canary=True)
            ehdrs, body = self._multipart(m, "mixed", [(ehdrs, body), att])
        if broken:
            hdrs, ehdrs, body = self._break(m, broken, hdrs, ehdrs, body)
        if broken == "truncated_headers":
            head = "\n".join(hdrs + ehdrs)
            kept = head[:r.randint(len(head) // 3, len(head) - 1)]
            # only what survives intact still counts
            intact = [h for h in hdrs if h + "\n" in kept]
            names = {"From: ": "from", "To: ": "to", "Subject: ": "subject",
                     m.mailer[6] + ": ": "message_id",
                     "Return-Path: ": "return_path"}
            m.places = {names[n] for h in intact for n in names
                        if h.startswith(n)} & m.places
            if not any(h.startswith(m.mailer[6] + ": ") for h in intact):
                m.msgid = None
            if not any(h.startswith("Subject: ") for h in intact):
                m.subject = None
            m.features.clear()           # the body and its features are gone
            m.long_line = False
            return kept.encode("utf-8", "surrogateescape")
        sep = "\n" if broken == "no_separator" else "\n\n"
        head = "\n".join(hdrs + ehdrs) + sep
        return head.encode("utf-8", "surrogateescape") + body

    # ---- deliberate breakage

    def _break(self, m, kind, hdrs, ehdrs, body):
        r = self.r
        if kind == "no_from":
            hdrs = [h for h in hdrs if not h.startswith("From: ")]
            m.places.discard("from")
        elif kind == "no_date":
            hdrs = [h for h in hdrs if not h.startswith("Date: ")]
        elif kind == "bad_date":
            hdrs = ["Date: " + r.choice(BAD_DATES) if h.startswith("Date: ")
                    else h for h in hdrs]
        elif kind == "raw_8bit_header":
            # Header bytes that are neither ASCII nor RFC 2047: UTF-8 or
            # Latin-1 (carried through str as surrogate escapes).
            subj = m.subject + " " + r.choice(("— résumé", "Grüße",
                                               "отчёт", "报告"))
            raw = subj
            if r.random() < 0.4:
                subj = subj.encode("latin-1", "replace").decode("latin-1")
                raw = subj.encode("latin-1").decode("ascii", "surrogateescape")
            m.subject = subj
            hdrs = ["Subject: " + raw if h.startswith("Subject: ")
                    else h for h in hdrs]
        elif kind == "header_no_colon":
            # not among the first two lines: those still have to show that
            # the file is mail at all
            i = r.randint(2, len(hdrs) - 1)
            hdrs = hdrs[:i] + [r.choice(("This line is not a header",
                                         "X-Broken header without colon",
                                         "====="))] + hdrs[i:]
        elif kind == "missing_end_boundary":
            end = body.rfind(b"\n--")
            body = body[:end + 1]
            if r.random() < 0.5:         # also cut into the last part
                body = body[:max(len(body) - r.randint(1, 200),
                                 len(body) // 2)]
        elif kind == "undeclared_boundary":
            ct = ehdrs[0]
            if r.random() < 0.5:
                ehdrs = [ct.split(";")[0]] + ehdrs[1:]
            else:
                ehdrs = [re.sub(r'boundary=("?)[^"\n]*', r'boundary=\1'
                                r"declared-but-unused-" + self._hex(8), ct,
                                count=1)] + ehdrs[1:]
        elif kind == "bad_base64":
            text = "\n\n".join(t for t, _ in self._text_items(m, 600)) + "\n"
            data = b64_lines(text.encode(m.charset, "replace"))
            pos = r.randint(0, len(data) - 10)
            data = r.choice((data[:pos] + b"!!%%$$" + data[pos:],
                             data[:-4] + b"\n",          # lost padding
                             data[:pos] + b"====" + data[pos:]))
            ehdrs = ['Content-Type: text/plain; charset="%s"' % m.charset,
                     "Content-Transfer-Encoding: base64"]
            body = data
        elif kind == "no_separator":
            body = body.lstrip(b"\n")
        elif kind == "bad_charset":
            # declares UTF-8 but the octets are Latin-1
            ehdrs = ['Content-Type: text/plain; charset="utf-8"',
                     "Content-Transfer-Encoding: 8bit"]
            text = "\n\n".join(t for t, _ in self._text_items(m, 800)) + "\n"
            body = text.encode("iso-8859-1", "replace")
        return hdrs, ehdrs, body

    def _headerless(self, m, budget):
        """Only a body, but its first line looks like a header field.  The
        blank line after it is what tells it from a prose file that merely
        starts "Word: text" (the importer's sniffing relies on that too)."""
        r = self.r
        text, _ = self._plain_text(m, min(budget, 3000))
        first = r.choice(("Re: budget figures", "Notes: Tuesday meeting",
                          "Approval: travel policy (draft)",
                          "Note: pasted from the old system"))
        m.msgid = None
        m.subject = None
        return (first + "\n\n" + text).encode("utf-8")

    def _corrupt_body(self, raw, kind):
        """Insert NULs or bare CRs (CR not followed by LF) into the body."""
        r = self.r
        start = raw.find(b"\n\n")
        if start < 0:
            start = raw.find(b"\r\n\r\n")
        start = len(raw) // 2 if start < 0 else start + 2
        out = bytearray(raw)
        for _ in range(r.randint(1, 5)):
            pos = r.randint(start, max(start, len(out) - 2))
            if kind == "nul_bytes":
                out[pos:pos] = b"\x00" * r.randint(1, 4)
            else:
                while pos < len(out) and out[pos] in b"\r\n":
                    pos += 1
                out[pos:pos] = b"\r"
        return bytes(out)

    # ---- duplicates

    def journal_copy(self, raw, ts):
        """raw with one more Received header on top, as a second journal or
        a re-delivery would add; keeps raw's line ending style."""
        r = self.r
        lf = raw.find(b"\n")
        nl = b"\r\n" if lf > 0 and raw[lf - 1] == 13 else b"\n"
        line = ("Received: from journal%d.example.net (journal%d.example.net "
                "[198.51.100.%d])\n\tby archive.example.com with LMTP id %s;"
                " %s\n" % (r.randint(1, 3), r.randint(1, 3),
                           r.randint(1, 254), self._hex(12),
                           fmt_date(ts + r.randint(60, 86400), self._zone(),
                                    1)))
        return line.encode().replace(b"\n", nl) + raw


# ---------------------------------------------------------------- mbox rule

MBOXRD_QUOTE = re.compile(rb">>+From ")
UNQUOTE_MBOXO = re.compile(rb"^>(From )", re.M)
UNQUOTE_MBOXRD = re.compile(rb"^>(>*From )", re.M)


def line_starts(data, prefix):
    """Offsets of the lines of data that begin with prefix.  (bytes.find is
    far faster than a ^-anchored multi-line regex on a large mbox.)"""
    found = [0] if data[:len(prefix)] == prefix else []
    pat = b"\n" + prefix
    i = data.find(pat)
    while i != -1:
        found.append(i + 1)
        i = data.find(pat, i + 1)
    return found


def mbox_messages(data):
    """Yield the stored bytes of each message in an mbox (bytes or mmap),
    following the rule in tests/gen/README.md: a message is what lies
    between its "From " separator line and the next one, minus one final
    line ending when that ends the blank line before the next separator
    (or the end of the file), with one ">" removed from ">From " lines
    (mboxo) -- or from every ">+From " line if the file has a ">>From "
    line anywhere (mboxrd)."""
    mboxrd = any(MBOXRD_QUOTE.match(data, i) for i in line_starts(data, b">>"))
    unquote = UNQUOTE_MBOXRD if mboxrd else UNQUOTE_MBOXO
    starts = line_starts(data, b"From ")
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(data)
        eol = data.find(b"\n", start, end)
        chunk = data[eol + 1:end] if eol != -1 else b""
        if chunk.endswith(b"\n"):
            rest = chunk[:-2] if chunk.endswith(b"\r\n") else chunk[:-1]
            if not rest or rest.endswith(b"\n"):
                chunk = rest
        yield unquote.sub(rb"\1", chunk) if b">From " in chunk else chunk


# ------------------------------------------------------------------ layouts

class EmlTree:
    """One message per file in nested folders, named as real corpora name
    them: Enron's "1.", SpamAssassin's "00042.<md5>", MH's bare "17" and
    exported "msg-7.eml"."""

    ENRON = ("inbox", "sent_items", "deleted_items", "discussion_threads",
             "all_documents", "notes_inbox", "inbox/projects", "_sent_mail")
    SA = ("easy_ham", "easy_ham_2", "hard_ham", "spam_2")
    MH = ("inbox", "outbox", "lists/dev", "archive/2019", "archive/2020")

    def __init__(self, out, root, rng, count, deep):
        self.out, self.rng = out, rng
        self.made = set()
        self.folders = []            # [relative path, naming style, counter]
        seen = set()
        for _ in range(max(4, min(200, count // 100))):
            style = rng.choice(("enron", "enron", "sa", "mh", "export",
                                "export"))
            user = "".join(rng.choice(SYL_LAT) for _ in range(3))
            if style == "enron":
                path = "maildir/%s-%s/%s" % (user, rng.choice("abcdefgkmst"),
                                             rng.choice(self.ENRON))
            elif style == "sa":
                path = "corpus/" + rng.choice(self.SA)
            elif style == "mh":
                path = "Mail/" + rng.choice(self.MH)
            elif rng.random() < 0.5:
                path = "export/%d/%02d" % (rng.randint(2001, 2024),
                                           rng.randint(1, 12))
            else:
                path = "Exported Items/%s %s" % (user.capitalize(),
                                                 rng.choice(("Inbox", "Notes",
                                                             "Projects")))
            if deep:
                path = "/".join(rng.choice(("old", "backup", "2019", "disk2",
                                            "home", user, "Documents"))
                                for _ in range(rng.randint(2, 4))) + "/" + path
            if root:
                path = root + "/" + path
            if path not in seen:
                seen.add(path)
                self.folders.append([path, style, 0])
        self.pick = wtable((f, rng.uniform(0.2, 3.0)) for f in self.folders)

    def put(self, data):
        folder = self.rng.wpick(self.pick)
        folder[2] += 1
        path, style, n = folder
        if style == "enron":
            name = "%d." % n
        elif style == "sa":
            name = "%05d.%s" % (n, hashlib.md5(data).hexdigest())
        elif style == "mh":
            name = str(n)
        else:
            name = "msg-%d.eml" % n
        if path not in self.made:
            os.makedirs(os.path.join(self.out, path), exist_ok=True)
            self.made.add(path)
        rel = path + "/" + name
        with open(os.path.join(self.out, rel), "wb") as f:
            f.write(data)
        return rel


class MboxSet:
    """Several mbox files, written by mailbox.mbox (mboxo "From " quoting,
    LF separator lines, a blank line after every message)."""

    NAMES = ("Inbox", "Sent", "Archive/2019.mbox", "Archive/2020.mbox",
             "Lists/dev-announce.mbox",
             "Takeout/Mail/All mail Including Spam and Trash.mbox",
             "Saved Messages.mbox", "Projects/notes.mbox", "Drafts",
             "Archive/2021.mbox")

    def __init__(self, out, root, rng, count):
        self.out, self.rng = out, rng
        names = list(self.NAMES)
        rng.shuffle(names)
        names = names[:max(2, min(len(names), count // 400 + 2))]
        self.paths = [root + "/" + n if root else n for n in names]
        self.pick = wtable((p, rng.uniform(0.3, 3.0)) for p in self.paths)
        self.boxes = {}              # relative path -> [mailbox.mbox, count]

    def put(self, data, envelope, ts):
        rel = self.rng.wpick(self.pick)
        box = self.boxes.get(rel)
        if box is None:
            full = os.path.join(self.out, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            box = self.boxes[rel] = [mailbox.mbox(full, create=True), 0]
        # bytes starting with "From " give mailbox.mbox our own separator
        # line instead of one stamped with the current time
        sep = "From %s %s\n" % (envelope, time.asctime(time.gmtime(ts)))
        box[0].add(sep.encode() + data)
        box[1] += 1
        return rel, box[1]

    def close(self):
        """Close every file; return {(path, ordinal): (sha256, size)} read
        back from disk with mbox_messages()."""
        digests = {}
        for rel, (box, n) in self.boxes.items():
            box.close()
            with open(os.path.join(self.out, rel), "rb") as f, \
                    mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                k = 0
                for k, msg in enumerate(mbox_messages(mm), 1):
                    digests[rel, k] = (hashlib.sha256(msg).hexdigest(),
                                       len(msg))
            if k != n:
                raise RuntimeError("%s: wrote %d messages, split %d" %
                                   (rel, n, k))
        return digests


class MaildirSet:
    """A Maildir (cur/ new/ tmp/) with Maildir++ sub-folders, created with
    mailbox.Maildir.  Messages are written directly rather than through
    Maildir.add(), which fsyncs every file and names it from the clock."""

    FOLDERS = (("", 60), ("Sent", 15), ("Archive", 10), ("Archive.2022", 10),
               ("Lists.dev", 5))
    FLAGS = ("S", "S", "S", "S", "RS", "FS", "", "ST", "PS")

    def __init__(self, out, root, rng):
        self.out, self.rng, self.root = out, rng, root
        full = os.path.join(out, root) if root else out
        if os.path.isdir(full) and not os.listdir(full):
            os.rmdir(full)           # Maildir() only lays out a new path
        os.makedirs(os.path.dirname(full) or ".", exist_ok=True)
        md = mailbox.Maildir(full, create=True)
        self.non_mail = []
        for name, _ in self.FOLDERS[1:]:
            md.add_folder(name)
            self.non_mail.append(self._rel("." + name, "maildirfolder"))
        self.pick = wtable(self.FOLDERS)
        self.q = 0

    def _rel(self, *parts):
        return "/".join(p for p in (self.root,) + parts if p)

    def put(self, data, ts):
        rng = self.rng
        folder = rng.wpick(self.pick)
        self.q += 1
        name = "%d.M%dP%dQ%d.mx1.example.net" % (
            ts, rng.randint(0, 999999), rng.randint(100, 32767), self.q)
        if rng.random() < 0.6:
            rel = self._rel("." + folder if folder else "", "cur",
                            name + ":2," + rng.choice(self.FLAGS))
        else:
            rel = self._rel("." + folder if folder else "", "new", name)
        with open(os.path.join(self.out, rel), "wb") as f:
            f.write(data)
        return rel


class Layout:
    """Routes each message to the eml tree, an mbox or the Maildir."""

    DEEP = {"eml": "archive/2019/old-laptop/home/user/mail/eml-export",
            "mbox": "archive/2021/takeout/Takeout/Mail",
            "maildir": "srv/mail/vhosts/example.com/user/Maildir"}

    def __init__(self, out, kind, count, seed, text_pool):
        rng = self.rng = FastRandom("mvgen-layout-%d" % seed)
        self.out = out
        self.eml = self.mbox = self.maildir = None
        self.non_mail = []
        if kind in ("mixed", "mixed-deep"):
            deep = kind == "mixed-deep"
            roots = self.DEEP if deep else {"eml": "eml", "mbox": "mbox",
                                            "maildir": "Maildir"}
            self.eml = EmlTree(out, roots["eml"], rng, count // 3, deep)
            self.mbox = MboxSet(out, roots["mbox"], rng, count // 3)
            self.maildir = MaildirSet(out, roots["maildir"], rng)
            self.pick = wtable((("eml", 4), ("mbox", 3), ("maildir", 3)))
            self._non_mail_files(text_pool, roots["eml"], deep)
        elif kind == "eml":
            self.eml = EmlTree(out, "", rng, count, False)
            self.pick = wtable((("eml", 1),))
        elif kind == "mbox":
            self.mbox = MboxSet(out, "", rng, count)
            self.pick = wtable((("mbox", 1),))
        else:
            self.maildir = MaildirSet(out, "", rng)
            self.pick = wtable((("maildir", 1),))
        if self.maildir:
            self.non_mail += self.maildir.non_mail

    def _non_mail_files(self, text_pool, eml_root, deep):
        """Files an importer must skip: prose and a small binary blob."""
        rng = self.rng
        prose = ("This folder is a mail export made for testing the archive "
                 "importer.\n\n" +
                 "\n\n".join(rng.choice(text_pool)[0] for _ in range(6)) +
                 "\n")
        binary = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(24) + \
            rng.randbytes(rng.randint(2000, 6000))
        bin_dir = eml_root + ("/misc/scans" if deep else "")
        for rel, data in (("README.txt", prose.encode()),
                          (bin_dir + "/Thumbs.db", binary)):
            full = os.path.join(self.out, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(data)
            self.non_mail.append(rel)

    def put(self, data, envelope, ts):
        """Store one message; returns (kind, relative path, ordinal)."""
        kind = self.rng.wpick(self.pick)
        if kind == "eml":
            return kind, self.eml.put(data), 1
        if kind == "maildir":
            return kind, self.maildir.put(data, ts), 1
        path, ordinal = self.mbox.put(data, envelope, ts)
        return kind, path, ordinal

    def close(self):
        return self.mbox.close() if self.mbox else {}


# --------------------------------------------------------------------- main

def ratio(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="mvgen.py",
        description="Generate deterministic, realistic test mail for "
                    "mailvault (see tests/gen/README.md).")
    ap.add_argument("--out", required=True, metavar="DIR",
                    help="output directory; must be absent or empty")
    ap.add_argument("--count", type=int, default=1000, metavar="N",
                    help="number of messages (default 1000)")
    ap.add_argument("--seed", type=int, default=1, metavar="S",
                    help="random seed; same seed, same output (default 1)")
    ap.add_argument("--layout", default="eml",
                    choices=("eml", "mbox", "maildir", "mixed", "mixed-deep"),
                    help="eml: one file per message in nested folders; mbox: "
                         "several mbox files; maildir: DIR is a Maildir; "
                         "mixed/mixed-deep: all three plus non-mail files "
                         "(default eml)")
    ap.add_argument("--canary", action="append", default=[], metavar="WORD",
                    help="plant WORD (lowercase ASCII letters/digits) in "
                         "subject, body, addresses, attachment name and "
                         "Message-ID of every message; repeatable")
    ap.add_argument("--broken-ratio", type=ratio, default=0.02, metavar="F",
                    help="fraction of deliberately broken mail "
                         "(default 0.02)")
    ap.add_argument("--big-ratio", type=ratio, default=0.0, metavar="F",
                    help="fraction with a 1-5 MB attachment (default 0)")
    ap.add_argument("--size-avg", type=int, default=5000, metavar="BYTES",
                    help="average size of ordinary messages (default 5000)")
    ap.add_argument("--dup-ratio", type=ratio, default=0.05, metavar="F",
                    help="fraction of duplicates of earlier messages "
                         "(default 0.05)")
    ap.add_argument("--manifest", metavar="FILE",
                    help="write one JSON line per message plus a summary")
    args = ap.parse_args(argv)
    for word in args.canary:
        if not re.fullmatch(r"[a-z0-9]+", word):
            ap.error("--canary %r: use lowercase ASCII letters and digits"
                     % word)
    if args.count < 0:
        ap.error("--count must not be negative")
    if args.size_avg < 500:
        ap.error("--size-avg must be at least 500")
    if args.dup_ratio + args.broken_ratio > 1:
        ap.error("--dup-ratio plus --broken-ratio exceeds 1")
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or
                                     os.listdir(args.out)):
        ap.error("--out %s exists and is not an empty directory" % args.out)
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    canaries = list(dict.fromkeys(args.canary))
    os.makedirs(args.out, exist_ok=True)
    gen = Generator(args.seed, args.count, canaries, args.size_avg)
    r = gen.r
    layout = Layout(args.out, args.layout, args.count, args.seed,
                    gen.pools["en"])
    # Big attachments go to ordinary messages only; scale so that the
    # fraction holds over all messages.
    ordinary = 1.0 - args.dup_ratio - args.broken_ratio
    p_big = min(1.0, args.big_ratio / ordinary) if ordinary > 0 else 0.0
    originals = []       # recent ordinary messages: dup / same-id sources
    entries = []
    for i in range(args.count):
        u = r.random()
        entry = {"index": i, "dup_of": None, "dup_variant": None,
                 "broken": False, "broken_kind": None,
                 "same_msgid_different_text": False, "same_msgid_as": None}
        if u < args.dup_ratio and originals:
            # the same message again: byte for byte, or as a second journal
            # copy with one more Received header on top
            src, raw, info, ts, env = r.choice(originals)
            if r.random() < 0.55:
                entry["dup_variant"] = "identical"
            else:
                entry["dup_variant"] = "journal"
                raw = gen.journal_copy(raw, ts)
            entry["dup_of"] = src
        elif u < args.dup_ratio + args.broken_ratio:
            kind = r.choice(BROKEN_KINDS)
            raw, info = gen.message(i, broken=kind)
            entry["broken"], entry["broken_kind"] = True, kind
        else:
            big = r.random() < p_big
            same = None
            if not big and originals and r.random() < 0.002:
                # a different message re-using an earlier Message-ID: the
                # archive must keep both
                src, _, sinfo, _, _ = r.choice(originals)
                same = (sinfo["message_id"], sinfo["subject"])
                entry["same_msgid_different_text"] = True
                entry["same_msgid_as"] = src
            raw, info = gen.message(i, big=big, same_msgid_as=same)
            if not big and not same:
                item = (i, raw, info, info["ts"], info["envelope"])
                if len(originals) < 256:
                    originals.append(item)
                else:
                    originals[r.randrange(256)] = item
        kind, path, ordinal = layout.put(raw, info["envelope"], info["ts"])
        entry.update(path=path, kind=kind, ordinal=ordinal,
                     sha256=hashlib.sha256(raw).hexdigest()
                     if kind != "mbox" else None, size=len(raw),
                     message_id=info["message_id"], subject=info["subject"],
                     features=info["features"],
                     canaries=canaries if info["canary_places"] else [],
                     canary_places=info["canary_places"])
        entries.append(entry)
    digests = layout.close()
    for entry in entries:
        if entry["kind"] == "mbox":
            entry["sha256"], entry["size"] = digests[entry["path"],
                                                     entry["ordinal"]]
    files = {e["path"] for e in entries}
    summary = {
        "summary": True, "messages": len(entries),
        "unique": sum(e["dup_of"] is None for e in entries),
        "dups": sum(e["dup_of"] is not None for e in entries),
        "broken": sum(e["broken"] for e in entries),
        "big": sum("big" in e["features"] for e in entries),
        "same_msgid_different_text": sum(e["same_msgid_different_text"]
                                         for e in entries),
        "mail_files": len(files),
        "bytes": sum(e["size"] for e in entries),
        "ordinary_avg_size": round(gen.ord_bytes / max(gen.ord_n, 1)),
        "non_mail_files": layout.non_mail,
        "layout": args.layout, "seed": args.seed, "canaries": canaries,
    }
    if args.manifest:
        with open(args.manifest, "w", encoding="utf-8") as f:
            for entry in entries:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
            f.write(json.dumps(summary) + "\n")
    secs = time.monotonic() - started
    print("mvgen: %d messages (%d unique, %d dups, %d broken, %d big) in %d "
          "files, %.1f MB, layout %s, seed %d -> %s [%.1fs, %.0f msg/s]" % (
              summary["messages"], summary["unique"], summary["dups"],
              summary["broken"], summary["big"], summary["mail_files"],
              summary["bytes"] / 1e6, args.layout, args.seed, args.out, secs,
              summary["messages"] / max(secs, 1e-9)), file=sys.stderr)


if __name__ == "__main__":
    main()
