/* SPDX-License-Identifier: MIT */
/* xap.cc - the Xapian index behind search/xap.h: documents of hashed
 * terms, query trees translated to Xapian queries, highlighting.
 *
 * No exception leaves this file: every entry point runs its body through
 * guarded(), which turns Xapian::Error into MV_EINDEX (type and message),
 * a lock held by another writer into MV_ETEMP, other std::exception into
 * MV_EINTERNAL, and aborts on std::bad_alloc as mv_xmalloc does.
 *
 * INDEX FORMAT 2 (metadata "mv:format" = "2"; another value is refused)
 *
 *   H(tag, v) = 8 bytes: the first 8 bytes of PRF(tag byte || v), each
 *   with its top bit set (56 bits in all).  Bytes >= 0x80, so the hash
 *   never reads as part of a Xapian (upper-case ASCII) prefix; 8 bytes
 *   rather than 13 base32 characters: a sixth less index (measured).  A
 *   collision (about 1 in 10^5 for a vocabulary of a million words) can
 *   only add matches, never lose one.
 *
 *   Free text: Xapian::TermGenerator, FLAG_CJK_NGRAM, STEM_ALL, positions
 *   kept, with a StemImplementation that maps the lower-cased word w to
 *   H('w', stem(w)) (Snowball stemmer of the language, "none" = identity).
 *   Sections, each followed by a termpos gap of 100 (no phrase spans two):
 *     body ""   subject "S"   attachment text "A"   file name words "XFW"
 *     display names by role: From "XNF" To "XNT" Cc "XNC" Bcc "XNB"
 *     names and addresses without a role (headers of attached messages)
 *     are attachment text "A".
 *   Boolean terms (wdf 0) prefix + H('v', value):
 *     whole address by role     XAF XAT XAC XAB, envelope recipients XAE
 *     local part (before the last '@')  XLF XLT XLC XLB XLE
 *     domain and each parent of >= 2 labels XDF XDT XDC XDB XDE
 *       (a.b.example.com: a.b.example.com, b.example.com, example.com)
 *     Message-ID as written "XM", each In-Reply-To/References id "XR",
 *     attachment media type "XT", whole file name lower-cased "XFN",
 *     flags "K": encrypted decrypted undecryptable signed attachment held,
 *     holds "XH" (matter lower-cased).
 *   Values: slot 0 sortable_serialise(date), slot 1 sortable_serialise(size).
 *   docid = serial (< 2^32); document data = serial, 8 bytes big-endian.
 *   Metadata: "mv:format" "2", "mv:language" the stemmer it was built
 *   with, "mv:last_change" decimal (set in the same commit as the changes).
 *
 * Query text is tokenised by the same TermGenerator and stemmer on a
 * scratch document and read back in position order, so the query hashes
 * exactly as the index did (once, without prefix: the hash does not depend
 * on the prefix, which is prepended per field).
 *
 * Threads: make_doc keeps a per-thread cache of word -> hashed stem for one
 * handle (WORD_CACHE_MAX entries), which is most of its speed.
 *
 * LIMITS (constants below): vocabulary words of at most 64 bytes and no
 * numbers of more than 16 digits; 127 parent domains per address; 1024
 * words per wildcard; query trees 256 deep.  Text size is bounded by the
 * extractor's limits (search/extract.h).
 *
 * Writes sit in an unflushed Xapian transaction from one mv_xap_commit to
 * the next: Xapian's own automatic flush is suppressed (the caller's
 * commit is the only one, so index and last_change always agree on disk),
 * and mv_xap_close can drop what was not committed. */
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <unistd.h>

#include <xapian.h>

/* The C headers carry no linkage block of their own. */
extern "C" {
#include "../lib/buf.h"
#include "../lib/err.h"
}
#include "xap.h"

namespace
{

const char INDEX_FORMAT[] = "2"; /* 1: 13-character base32 hashes (never released) */
constexpr size_t HASH_CHARS = 8;
/* Termpos gap between sections: a phrase's window is its token count, so
 * no phrase can match across the gap. */
constexpr Xapian::termcount SECTION_GAP = 100;
/* Vocabulary (for wildcards) skips words longer than this... */
constexpr size_t VOCAB_MAX_WORD_BYTES = 64;
/* ...and numbers of more digits (ids, card numbers: noise, and sensitive). */
constexpr size_t VOCAB_MAX_DIGITS = 16;
/* Parent domains indexed per address: DNS allows 127 labels. */
constexpr size_t MAX_DOMAIN_PARENTS = 127;
/* Words one wildcard may expand to (the message names it). */
constexpr size_t WILDCARD_MAX_WORDS = 1024;
/* Nesting of a query tree we translate (the parser allows 64). */
constexpr unsigned MAX_QUERY_DEPTH = 256;
/* Runs of a reader's search overtaken by the writer's commits. */
constexpr int SEARCH_ATTEMPTS = 3;
/* Characters of user text quoted back in an error message. */
constexpr size_t MSG_QUOTE_MAX = 64;

constexpr Xapian::valueno SLOT_DATE = 0;
constexpr Xapian::valueno SLOT_SIZE = 1;

/* match_all - every document, as a query made anew each time.  It is what
 * Xapian::Query::MatchAll is (the empty term), but that is one object
 * shared by the whole process whose reference count is not atomic: the
 * translations mv_xap_match runs on several threads at once would corrupt
 * it by copying it. */
Xapian::Query match_all()
{
    return Xapian::Query(std::string());
}

/* An error raised inside this file, turned into mv_err by guarded(). */
struct fail {
    mv_status code;
    std::string msg;
};

[[noreturn]] void out_of_memory()
{
    /* fd 2 itself: stdio's stderr is /dev/null in mailvault (lib/log.h) */
    static const char msg[] = "mailvault: out of memory (search index)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    abort();
}

/* quote - user text for an error message: bounded, control bytes as '?'. */
std::string quote(const char *p, size_t n)
{
    size_t cut = n < MSG_QUOTE_MAX ? n : MSG_QUOTE_MAX;
    while (cut < n && cut > 0 && ((unsigned char)p[cut] & 0xc0) == 0x80)
        cut--; /* never half a character */
    std::string r;
    for (size_t i = 0; i < cut; i++)
        r.push_back((unsigned char)p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i]);
    if (cut < n)
        r += "...";
    return r;
}

std::string quote(const std::string &s)
{
    return quote(s.data(), s.size());
}

template <typename F> mv_status guarded(mv_err *err, const char *what, F &&body)
{
    try {
        return body();
    } catch (const fail &f) {
        return mv_err_set(err, f.code, "%s", f.msg.c_str());
    } catch (const Xapian::DatabaseLockError &e) {
        return mv_err_set(err, MV_ETEMP, "%s: the index is locked by another writer (%s)", what,
                          e.get_msg().c_str());
    } catch (const Xapian::DatabaseNotFoundError &e) {
        return mv_err_set(err, MV_ENOTFOUND, "%s: no index there (%s)", what, e.get_msg().c_str());
    } catch (const Xapian::Error &e) {
        return mv_err_set(err, MV_EINDEX, "%s: %s: %s", what, e.get_type(), e.get_msg().c_str());
    } catch (const std::bad_alloc &) {
        out_of_memory();
    } catch (const std::exception &e) {
        return mv_err_set(err, MV_EINTERNAL, "%s: %s", what, e.what());
    } catch (...) {
        return mv_err_set(err, MV_EINTERNAL, "%s: unknown exception", what);
    }
}

/* ---- hashing ---------------------------------------------------------- */

/* hash_into - H(tag, p[0..n)) as HASH_CHARS characters at out. */
void hash_into(const mv_xap_hooks &h, char tag, const char *p, size_t n, char *out)
{
    uint8_t md[32];
    char small[256];
    if (n < sizeof small) {
        small[0] = tag;
        if (n)
            memcpy(small + 1, p, n);
        h.prf(h.prf_ctx, small, n + 1, md);
    } else {
        std::string big;
        big.reserve(n + 1);
        big.push_back(tag);
        big.append(p, n);
        h.prf(h.prf_ctx, big.data(), big.size(), md);
    }
    for (int i = 0; i < 8; i++)
        out[i] = (char)(0x80 | (md[i] & 0x7f));
}

std::string hashed(const mv_xap_hooks &h, char tag, const std::string &v)
{
    std::string r(HASH_CHARS, '\0');
    hash_into(h, tag, v.data(), v.size(), &r[0]);
    return r;
}

/* value_term - prefix + H('v', value). */
std::string value_term(const mv_xap_hooks &h, const std::string &prefix, const std::string &v)
{
    std::string t;
    t.reserve(prefix.size() + HASH_CHARS);
    t += prefix;
    t.resize(prefix.size() + HASH_CHARS);
    hash_into(h, 'v', v.data(), v.size(), &t[prefix.size()]);
    return t;
}

/* lower - Unicode lower case, as the TermGenerator folds words. */
std::string lower(const char *p, size_t n)
{
    std::string r;
    r.reserve(n);
    bool ascii = true;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            ascii = false;
    if (ascii) {
        for (size_t i = 0; i < n; i++)
            r.push_back(p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] + 32) : p[i]);
        return r;
    }
    for (Xapian::Utf8Iterator it(p, n); it != Xapian::Utf8Iterator(); ++it)
        Xapian::Unicode::append_utf8(r, Xapian::Unicode::tolower(*it));
    return r;
}

std::string lower(const std::string &s)
{
    return lower(s.data(), s.size());
}

/* vocabulary_word - whether w goes to the caller's wildcard vocabulary. */
bool vocabulary_word(const std::string &w)
{
    if (w.empty() || w.size() > VOCAB_MAX_WORD_BYTES)
        return false;
    size_t digits = 0;
    for (char c : w) {
        if (c >= '0' && c <= '9')
            digits++;
        else if (c != '.' && c != ',' && c != ';')
            return true;
    }
    return digits <= VOCAB_MAX_DIGITS;
}

/* Hashed stems of words seen lately on this thread, for one mv_xap (its
 * key and language): most words of a message were in the ones before, and
 * stemming plus the PRF are most of what a document costs us beyond
 * Xapian.  The stamp says which document last reported the word to the
 * vocabulary callback, so that needs no per-document set.  The words are
 * memory the indexer holds anyway (they are in the messages it reads). */
constexpr size_t WORD_CACHE_MAX = 65536; /* entries per thread, then start over */

struct cached_word {
    std::string hash;
    uint64_t stamp;
};

struct word_cache {
    uint64_t owner = 0;
    uint64_t stamp = 0;
    std::unordered_map<std::string, cached_word> map;

    /* use - start a document or query for owner; never cleared inside one */
    uint64_t use(uint64_t who)
    {
        if (owner != who || map.size() >= WORD_CACHE_MAX) {
            map.clear();
            owner = who;
        }
        return ++stamp;
    }
};
thread_local word_cache tl_words;
std::atomic<uint64_t> next_owner{1};

/* The stemmer the TermGenerator calls for every word occurrence: it returns
 * the hashed stem, so no plaintext term is ever produced.  One per document
 * (or per query), used on the thread that made it.  In indexing mode it
 * also reports each distinct word of the document to the vocabulary
 * callback, once. */
class hash_stemmer : public Xapian::StemImplementation
{
  public:
    hash_stemmer(const mv_xap_hooks &h, const std::string &lang, uint64_t owner, bool vocabulary)
        : hooks_(h), owner_(owner), stamp_(tl_words.use(owner)), vocabulary_(vocabulary && h.word),
          stem_(lang != "none")
    {
        if (stem_)
            real_ = Xapian::Stem(lang);
    }

    std::string operator()(const std::string &word) override
    {
        word_cache &c = tl_words;
        if (c.owner != owner_) /* another handle's document on this thread */
            stamp_ = c.use(owner_);
        auto it = c.map.find(word);
        if (it == c.map.end()) {
            std::string h = hashed(hooks_, 'w', stem_ ? real_(word) : word);
            it = c.map.emplace(word, cached_word{std::move(h), 0}).first;
        }
        if (vocabulary_ && it->second.stamp != stamp_) {
            it->second.stamp = stamp_;
            if (vocabulary_word(word))
                hooks_.word(hooks_.word_ctx, word.data(), word.size());
        }
        return it->second.hash;
    }

    std::string get_description() const override
    {
        return "mv-hashed-stem";
    }

  private:
    mv_xap_hooks hooks_;
    uint64_t owner_, stamp_;
    bool vocabulary_, stem_;
    Xapian::Stem real_;
};

/* A TermGenerator set up as the index uses it.  The Stem owns impl. */
class generator
{
  public:
    generator(const mv_xap_hooks &h, const std::string &lang, uint64_t owner, bool vocabulary)
        : impl_(new hash_stemmer(h, lang, owner, vocabulary)), stem_(impl_)
    {
        tg_.set_flags(Xapian::TermGenerator::FLAG_CJK_NGRAM);
        tg_.set_stemming_strategy(Xapian::TermGenerator::STEM_ALL);
        tg_.set_stemmer(stem_);
    }
    generator(const generator &) = delete;
    generator &operator=(const generator &) = delete;
    Xapian::TermGenerator &tg()
    {
        return tg_;
    }
    std::string word_hash(const std::string &lowered)
    {
        return (*impl_)(lowered);
    }

    /* tokens - hashed terms of text in position order (the query side). */
    std::vector<std::string> tokens(const std::string &text)
    {
        Xapian::Document scratch;
        tg_.set_document(scratch);
        tg_.set_termpos(0);
        tg_.index_text(text);
        std::vector<std::pair<Xapian::termpos, std::string>> v;
        for (auto t = scratch.termlist_begin(); t != scratch.termlist_end(); ++t) {
            bool any = false;
            for (auto p = t.positionlist_begin(); p != t.positionlist_end(); ++p) {
                v.emplace_back(*p, *t);
                any = true;
            }
            if (!any) /* not expected with positions on; keep the term */
                v.emplace_back(Xapian::termpos(-1), *t);
        }
        std::sort(v.begin(), v.end());
        std::vector<std::string> r;
        r.reserve(v.size());
        for (auto &e : v)
            r.push_back(std::move(e.second));
        return r;
    }

  private:
    hash_stemmer *impl_;
    Xapian::Stem stem_;
    Xapian::TermGenerator tg_;
};

char role_letter(uint8_t role)
{
    switch (role) {
    case MV_XR_FROM:
        return 'F';
    case MV_XR_TO:
        return 'T';
    case MV_XR_CC:
        return 'C';
    case MV_XR_BCC:
        return 'B';
    default:
        return 0;
    }
}

/* domains - the domain and each parent of at least two labels, to f. */
template <typename F> void for_domains(std::string dom, F &&f)
{
    while (!dom.empty() && dom.back() == '.')
        dom.pop_back();
    if (dom.empty())
        return;
    f(dom);
    size_t parents = 0;
    for (size_t dot = dom.find('.'); dot != std::string::npos && parents < MAX_DOMAIN_PARENTS;
         dot = dom.find('.', dot + 1)) {
        std::string up = dom.substr(dot + 1);
        if (up.empty() || up[0] == '.' || up.find('.') == std::string::npos)
            continue;
        f(up);
        parents++;
    }
}

void add_address(Xapian::Document &doc, const mv_xap_hooks &h, char role, const std::string &addr)
{
    if (addr.empty())
        return;
    std::string pre = "XA";
    pre += role;
    doc.add_boolean_term(value_term(h, pre, addr));
    size_t at = addr.rfind('@');
    if (at == std::string::npos)
        return;
    pre[1] = 'L';
    if (at > 0)
        doc.add_boolean_term(value_term(h, pre, addr.substr(0, at)));
    pre[1] = 'D';
    for_domains(addr.substr(at + 1),
                [&](const std::string &d) { doc.add_boolean_term(value_term(h, pre, d)); });
}

} // namespace

/* ---- handles ------------------------------------------------------------ */

struct mv_xap {
    std::string dir, lang;
    mv_xap_hooks hooks{};
    bool writable = false;
    bool in_txn = false;
    uint64_t last_change = 0;
    uint64_t id = next_owner++; /* never reused: names this handle's word caches */
    Xapian::WritableDatabase wdb;
    Xapian::Database rdb;

    Xapian::Database &db()
    {
        return writable ? static_cast<Xapian::Database &>(wdb) : rdb;
    }
};

struct mv_xap_doc {
    uint64_t serial = 0;
    Xapian::Document doc;
};

namespace
{

uint64_t parse_u64(const std::string &s)
{
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(c - '0');
    }
    return v;
}

/* check_format - refuse an index of another format or stemmer. */
void check_format(Xapian::Database &db, const std::string &dir, const std::string &lang)
{
    std::string fmt = db.get_metadata("mv:format");
    if (fmt.empty() && db.get_doccount() == 0)
        return; /* fresh: the writer marks it */
    if (fmt.empty())
        throw fail{MV_EINDEX, "index " + quote(dir) + ": not a mailvault index (no format mark)"};
    if (fmt != INDEX_FORMAT)
        throw fail{MV_EINDEX, "index " + quote(dir) + ": format '" + quote(fmt) +
                                  "' is not supported (this version reads format " + INDEX_FORMAT +
                                  "): rebuild it with mailvault reindex"};
    std::string built = db.get_metadata("mv:language");
    if (!built.empty() && built != lang)
        throw fail{MV_EUSAGE, "index " + quote(dir) + " was built with stemming language '" +
                                  quote(built) + "', not '" + quote(lang) + "'"};
}

/* mark_format - stamp a fresh writable index (a commit of its own). */
void mark_format(Xapian::WritableDatabase &db, const std::string &lang)
{
    if (!db.get_metadata("mv:format").empty())
        return;
    db.set_metadata("mv:format", INDEX_FORMAT);
    db.set_metadata("mv:language", lang);
    db.commit();
}

void ensure_txn(mv_xap *x)
{
    if (!x->in_txn) {
        x->wdb.begin_transaction(false);
        x->in_txn = true;
    }
}

} // namespace

mv_status mv_xap_open(const char *dir, const mv_xap_opts *o, const mv_xap_hooks *h, mv_xap **out,
                      mv_err *err)
{
    if (out)
        *out = nullptr;
    if (!dir || !o || !h || !h->prf || !out)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_open: missing argument");
    std::unique_ptr<mv_xap> x;
    mv_status st = guarded(err, "opening the index", [&]() -> mv_status {
        x.reset(new mv_xap);
        x->dir = dir;
        x->lang = h->language ? h->language : "english";
        x->hooks = *h;
        x->hooks.language = nullptr; /* x->lang is the copy */
        x->writable = o->writable != 0;
        if (x->lang != "none") {
            try {
                Xapian::Stem probe(x->lang);
            } catch (const Xapian::InvalidArgumentError &) {
                throw fail{MV_EUSAGE, "unknown stemming language '" + quote(x->lang) + "'"};
            }
        }
        if (x->writable) {
            x->wdb = Xapian::WritableDatabase(dir, o->create ? Xapian::DB_CREATE_OR_OPEN
                                                             : Xapian::DB_OPEN);
            check_format(x->wdb, x->dir, x->lang);
            mark_format(x->wdb, x->lang);
            ensure_txn(x.get());
        } else {
            if (o->create) {
                try {
                    Xapian::Database probe(dir);
                } catch (const Xapian::DatabaseOpeningError &) {
                    Xapian::WritableDatabase w(dir, Xapian::DB_CREATE_OR_OPEN);
                    check_format(w, x->dir, x->lang);
                    mark_format(w, x->lang);
                    w.close();
                }
            }
            x->rdb = Xapian::Database(dir);
            check_format(x->rdb, x->dir, x->lang);
        }
        x->last_change = parse_u64(x->db().get_metadata("mv:last_change"));
        return MV_OK;
    });
    if (st == MV_OK)
        *out = x.release();
    return st;
}

void mv_xap_close(mv_xap *x)
{
    if (!x)
        return;
    mv_status st = guarded(nullptr, "closing the index", [&]() -> mv_status {
        if (x->writable) {
            if (x->in_txn)
                x->wdb.cancel_transaction();
            x->in_txn = false;
            x->wdb.close();
        } else {
            x->rdb.close();
        }
        return MV_OK;
    });
    (void)st;                    /* nothing to report: uncommitted changes are dropped anyway */
    if (tl_words.owner == x->id) /* this thread's words of the handle go too */
        tl_words.map.clear();
    delete x;
}

mv_status mv_xap_make_doc(mv_xap *x, const mv_xdoc *d, mv_xap_doc **out, mv_err *err)
{
    if (out)
        *out = nullptr;
    if (!x || !d || !out)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_make_doc: missing argument");
    if (d->serial == 0)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_make_doc: serial 0 is not a document");
    if (d->serial > UINT32_MAX)
        return mv_err_set(err, MV_ELIMIT,
                          "serial %llu: the index holds serials below 2^32 (Xapian docids)",
                          (unsigned long long)d->serial);
    return guarded(err, "indexing a message", [&]() -> mv_status {
        std::unique_ptr<mv_xap_doc> doc(new mv_xap_doc);
        doc->serial = d->serial;
        Xapian::Document &xd = doc->doc;
        const mv_xap_hooks &h = x->hooks;
        generator gen(h, x->lang, x->id, true);
        Xapian::TermGenerator &tg = gen.tg();
        tg.set_document(xd);

        if (d->x) {
            for (size_t i = 0; i < d->x->n; i++) {
                const mv_xsection &s = d->x->s[i];
                if (!s.text)
                    continue;
                char role = role_letter(s.role);
                const char *prefix = nullptr;
                switch (s.kind) {
                case MV_XS_BODY:
                    prefix = "";
                    break;
                case MV_XS_SUBJECT:
                    prefix = "S";
                    break;
                case MV_XS_ATTACH_TEXT:
                    prefix = "A";
                    break;
                case MV_XS_FILENAME:
                    prefix = "XFW";
                    xd.add_boolean_term(value_term(h, "XFN", lower(s.text, s.len)));
                    break;
                case MV_XS_NAME:
                    prefix = "A";
                    if (role) {
                        static const char *const names[] = {"XNF", "XNT", "XNC", "XNB"};
                        prefix = names[role == 'F' ? 0 : role == 'T' ? 1 : role == 'C' ? 2 : 3];
                    }
                    break;
                case MV_XS_ADDR:
                    if (role)
                        add_address(xd, h, role, lower(s.text, s.len));
                    else
                        prefix = "A";
                    break;
                case MV_XS_MIMETYPE:
                    xd.add_boolean_term(value_term(h, "XT", lower(s.text, s.len)));
                    break;
                case MV_XS_MSGID:
                    xd.add_boolean_term(value_term(h, "XM", std::string(s.text, s.len)));
                    break;
                case MV_XS_REF:
                    xd.add_boolean_term(value_term(h, "XR", std::string(s.text, s.len)));
                    break;
                default:
                    break;
                }
                if (prefix) {
                    tg.index_text(Xapian::Utf8Iterator(s.text, s.len), 1, prefix);
                    tg.increase_termpos(SECTION_GAP);
                }
            }
        }
        for (size_t i = 0; i < d->n_env; i++)
            if (d->env && d->env[i])
                add_address(xd, h, 'E', lower(d->env[i], strlen(d->env[i])));
        for (size_t i = 0; i < d->n_holds; i++)
            if (d->holds && d->holds[i])
                xd.add_boolean_term(value_term(h, "XH", lower(d->holds[i], strlen(d->holds[i]))));
        static const struct {
            unsigned bit;
            const char *name;
        } flags[] = {{MV_XD_ENCRYPTED, "encrypted"},
                     {MV_XD_DECRYPTED, "decrypted"},
                     {MV_XD_UNDECRYPTABLE, "undecryptable"},
                     {MV_XD_SIGNED, "signed"}};
        for (const auto &f : flags)
            if (d->flags & f.bit)
                xd.add_boolean_term(value_term(h, "K", f.name));
        if (d->x && d->x->n_attachments > 0)
            xd.add_boolean_term(value_term(h, "K", "attachment"));
        if (d->n_holds > 0)
            xd.add_boolean_term(value_term(h, "K", "held"));

        xd.add_value(SLOT_DATE, Xapian::sortable_serialise((double)d->date));
        xd.add_value(SLOT_SIZE, Xapian::sortable_serialise((double)d->size));
        uint8_t data[8];
        mv_be64_put(data, d->serial);
        xd.set_data(std::string((const char *)data, sizeof data));
        *out = doc.release();
        return MV_OK;
    });
}

void mv_xap_doc_free(mv_xap_doc *d)
{
    delete d;
}

mv_status mv_xap_put(mv_xap *x, mv_xap_doc *d, mv_err *err)
{
    std::unique_ptr<mv_xap_doc> doc(d);
    if (!x || !d)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_put: missing argument");
    if (!x->writable)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_put: the index was opened read-only");
    return guarded(err, "adding to the index", [&]() -> mv_status {
        ensure_txn(x);
        x->wdb.replace_document((Xapian::docid)doc->serial, doc->doc);
        return MV_OK;
    });
}

mv_status mv_xap_delete(mv_xap *x, uint64_t serial, mv_err *err)
{
    if (!x)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_delete: missing argument");
    if (!x->writable)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_delete: the index was opened read-only");
    if (serial == 0 || serial > UINT32_MAX)
        return MV_OK; /* never indexed */
    return guarded(err, "deleting from the index", [&]() -> mv_status {
        ensure_txn(x);
        try {
            x->wdb.delete_document((Xapian::docid)serial);
        } catch (const Xapian::DocNotFoundError &) {
        }
        return MV_OK;
    });
}

mv_status mv_xap_compact(const char *from, const char *to, mv_err *err)
{
    if (!from || !to)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_compact: missing argument");
    return guarded(err, "compacting the index", [&]() -> mv_status {
        Xapian::Database db(from);
        /* FULLER: the tables are written once, in order, with full blocks
         * (commits in batches leave copy-on-write blocks behind) */
        db.compact(to, Xapian::DBCOMPACT_NO_RENUMBER | Xapian::Compactor::FULLER);
        return MV_OK;
    });
}

mv_status mv_xap_commit(mv_xap *x, uint64_t last_change, mv_err *err)
{
    if (!x)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_commit: missing argument");
    if (!x->writable)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_commit: the index was opened read-only");
    return guarded(err, "committing the index", [&]() -> mv_status {
        if (x->in_txn) {
            /* Unflushed: the changes join the pending set, and the commit
             * below writes them together with last_change. */
            x->wdb.commit_transaction();
            x->in_txn = false;
        }
        x->wdb.set_metadata("mv:last_change", std::to_string(last_change));
        x->wdb.commit();
        x->last_change = last_change;
        ensure_txn(x);
        return MV_OK;
    });
}

uint64_t mv_xap_last_change(mv_xap *x)
{
    if (!x)
        return 0;
    if (!x->writable) {
        mv_status st = guarded(nullptr, "reading the index", [&]() -> mv_status {
            x->rdb.reopen();
            x->last_change = parse_u64(x->rdb.get_metadata("mv:last_change"));
            return MV_OK;
        });
        (void)st; /* on failure the last value read stands */
    }
    return x->last_change;
}

uint64_t mv_xap_doc_count(mv_xap *x)
{
    if (!x)
        return 0;
    uint64_t n = 0;
    mv_status st = guarded(nullptr, "reading the index", [&]() -> mv_status {
        if (!x->writable)
            x->rdb.reopen();
        n = x->db().get_doccount();
        return MV_OK;
    });
    (void)st;
    return n;
}

/* ---- query translation ---------------------------------------------------- */

namespace
{

const char *const ANY_PREFIXES[] = {"", "S", "A", "XFW", "XNF", "XNT", "XNC", "XNB"};
const char *const ALL_ROLES = "FTCBE";

/* A translated node; boolean when it carries no text weight (so an AND
 * can FILTER by it without changing the ranking). */
struct qpart {
    Xapian::Query q;
    bool boolean;
};

const char *field_name(unsigned f)
{
    static const char *const names[] = {
        "any",  "from",       "to",       "cc",    "bcc",    "participant", "subject",
        "body", "attachment", "filename", "msgid", "domain", "custodian",   "hold"};
    return f < sizeof names / sizeof names[0] ? names[f] : "?";
}

/* Roles of a field: address letters and display-name letters. */
bool field_roles(unsigned f, const char **addr, const char **names)
{
    switch (f) {
    case MV_QF_FROM:
        *addr = "F", *names = "F";
        return true;
    case MV_QF_TO:
        *addr = "T", *names = "T";
        return true;
    case MV_QF_CC:
        *addr = "C", *names = "C";
        return true;
    case MV_QF_BCC:
        *addr = "BE", *names = "B";
        return true;
    case MV_QF_PARTICIPANT:
        *addr = "FTCBE", *names = "FTCB";
        return true;
    default:
        return false;
    }
}

class translator
{
  public:
    translator(mv_xap *x, const mv_xap_expand *e, std::unordered_set<std::string> *highlight)
        : x_(x), e_(e), hl_(highlight), gen_(x->hooks, x->lang, x->id, false)
    {
    }

    qpart node(const mv_qnode *n, bool negated, unsigned depth)
    {
        if (!n)
            throw fail{MV_EUSAGE, "malformed query tree: missing node"};
        if (depth > MAX_QUERY_DEPTH)
            throw fail{MV_ELIMIT, "query nested deeper than " + std::to_string(MAX_QUERY_DEPTH)};
        if (n->n_kids && !n->kids)
            throw fail{MV_EUSAGE, "malformed query tree: missing children"};
        switch (n->kind) {
        case MV_Q_AND:
            return conj(n, negated, depth);
        case MV_Q_OR: {
            std::vector<Xapian::Query> v;
            bool boolean = true;
            for (size_t i = 0; i < n->n_kids; i++) {
                qpart p = kid(n->kids[i], negated, depth);
                boolean = boolean && p.boolean;
                v.push_back(std::move(p.q));
            }
            return {Xapian::Query(Xapian::Query::OP_OR, v.begin(), v.end()), boolean};
        }
        case MV_Q_NOT: {
            if (n->n_kids < 1)
                throw fail{MV_EUSAGE, "malformed query tree: NOT without operand"};
            qpart p = node(n->kids[0], !negated, depth + 1);
            return {Xapian::Query(Xapian::Query::OP_AND_NOT, match_all(), p.q), true};
        }
        case MV_Q_ALL:
            return {match_all(), true};
        case MV_Q_WORD:
        case MV_Q_PHRASE:
            return text(n->field, need_text(n), negated);
        case MV_Q_PREFIX:
            return wildcard(n->field, need_text(n), negated);
        case MV_Q_DATE: {
            if (n->lo > n->hi)
                return {Xapian::Query(), true};
            return {range(SLOT_DATE, n->lo == INT64_MIN, (double)n->lo, n->hi == INT64_MAX,
                          (double)n->hi),
                    true};
        }
        case MV_Q_SIZE: {
            if (n->slo > n->shi)
                return {Xapian::Query(), true};
            return {
                range(SLOT_SIZE, n->slo == 0, (double)n->slo, n->shi == UINT64_MAX, (double)n->shi),
                true};
        }
        case MV_Q_HAS:
        case MV_Q_IS:
            return {term("K", lower(need_text(n))), true};
        default:
            throw fail{MV_EUSAGE, "malformed query tree: unknown node kind"};
        }
    }

  private:
    mv_xap *x_;
    const mv_xap_expand *e_;
    std::unordered_set<std::string> *hl_;
    generator gen_;

    static std::string need_text(const mv_qnode *n)
    {
        if (!n->text)
            throw fail{MV_EUSAGE, "malformed query tree: a text node without text"};
        return n->text;
    }

    qpart kid(const mv_qnode *k, bool negated, unsigned depth)
    {
        return node(k, negated, depth + 1);
    }

    Xapian::Query term(const std::string &prefix, const std::string &v)
    {
        return Xapian::Query(value_term(x_->hooks, prefix, v));
    }

    static Xapian::Query range(Xapian::valueno slot, bool open_lo, double lo, bool open_hi,
                               double hi)
    {
        if (open_lo && open_hi)
            return match_all();
        if (open_lo)
            return Xapian::Query(Xapian::Query::OP_VALUE_LE, slot, Xapian::sortable_serialise(hi));
        if (open_hi)
            return Xapian::Query(Xapian::Query::OP_VALUE_GE, slot, Xapian::sortable_serialise(lo));
        return Xapian::Query(Xapian::Query::OP_VALUE_RANGE, slot, Xapian::sortable_serialise(lo),
                             Xapian::sortable_serialise(hi));
    }

    /* conj - AND: text kids rank, boolean kids filter, NOT kids subtract. */
    qpart conj(const mv_qnode *n, bool negated, unsigned depth)
    {
        std::vector<Xapian::Query> ranked, filters, minus;
        for (size_t i = 0; i < n->n_kids; i++) {
            const mv_qnode *k = n->kids[i];
            if (k && k->kind == MV_Q_NOT) {
                if (k->n_kids < 1 || !k->kids)
                    throw fail{MV_EUSAGE, "malformed query tree: NOT without operand"};
                minus.push_back(node(k->kids[0], !negated, depth + 2).q);
                continue;
            }
            qpart p = kid(k, negated, depth);
            (p.boolean ? filters : ranked).push_back(std::move(p.q));
        }
        qpart r{match_all(), true};
        Xapian::Query filter;
        if (!filters.empty())
            filter = Xapian::Query(Xapian::Query::OP_AND, filters.begin(), filters.end());
        if (!ranked.empty()) {
            r.q = Xapian::Query(Xapian::Query::OP_AND, ranked.begin(), ranked.end());
            r.boolean = false;
            if (!filters.empty())
                r.q = Xapian::Query(Xapian::Query::OP_FILTER, r.q, filter);
        } else if (!filters.empty()) {
            r.q = filter;
        }
        if (!minus.empty())
            r.q = Xapian::Query(Xapian::Query::OP_AND_NOT, r.q,
                                Xapian::Query(Xapian::Query::OP_OR, minus.begin(), minus.end()));
        return r;
    }

    /* words - text tokens over prefixes: a term, or a phrase when several. */
    static Xapian::Query words(const std::vector<std::string> &toks, const char *const *prefixes,
                               size_t np)
    {
        if (toks.empty())
            return Xapian::Query();
        std::vector<Xapian::Query> alts;
        for (size_t i = 0; i < np; i++) {
            std::string p = prefixes[i];
            if (toks.size() == 1) {
                alts.emplace_back(p + toks[0]);
                continue;
            }
            std::vector<Xapian::Query> seq;
            for (const auto &t : toks)
                seq.emplace_back(p + t);
            alts.emplace_back(Xapian::Query::OP_PHRASE, seq.begin(), seq.end(),
                              (Xapian::termcount)toks.size());
        }
        return alts.size() == 1 ? alts[0]
                                : Xapian::Query(Xapian::Query::OP_OR, alts.begin(), alts.end());
    }

    Xapian::Query roles_term(char kind, const char *roles, const std::string &v)
    {
        std::vector<Xapian::Query> v_q;
        for (const char *r = roles; *r; r++) {
            std::string pre = "X";
            pre += kind;
            pre += *r;
            v_q.push_back(term(pre, v));
        }
        return v_q.size() == 1 ? v_q[0]
                               : Xapian::Query(Xapian::Query::OP_OR, v_q.begin(), v_q.end());
    }

    Xapian::Query domains(const char *roles, std::string v)
    {
        while (!v.empty() && v[0] == '@')
            v.erase(0, 1);
        while (!v.empty() && v.back() == '.')
            v.pop_back();
        return roles_term('D', roles, v);
    }

    std::vector<std::string> tokens(unsigned field, const std::string &t, bool negated)
    {
        std::vector<std::string> toks = gen_.tokens(t);
        if (hl_ && !negated &&
            (field == MV_QF_ANY || field == MV_QF_SUBJECT || field == MV_QF_BODY ||
             field == MV_QF_ATTACHMENT))
            hl_->insert(toks.begin(), toks.end());
        return toks;
    }

    /* text - a WORD or PHRASE in its field. */
    qpart text(unsigned field, const std::string &t, bool negated)
    {
        const char *addr_roles, *name_roles;
        if (field_roles(field, &addr_roles, &name_roles)) {
            std::string lv = lower(t);
            if (lv.find('@') != std::string::npos)
                return {roles_term('A', addr_roles, lv), true};
            std::vector<Xapian::Query> alts;
            alts.push_back(roles_term('L', addr_roles, lv));
            alts.push_back(domains(addr_roles, lv));
            std::vector<std::string> pre;
            for (const char *r = name_roles; *r; r++)
                pre.push_back(std::string("XN") + *r);
            std::vector<const char *> pp;
            for (const auto &p : pre)
                pp.push_back(p.c_str());
            Xapian::Query names = words(tokens(field, t, negated), pp.data(), pp.size());
            if (!names.empty())
                alts.push_back(names);
            return {Xapian::Query(Xapian::Query::OP_OR, alts.begin(), alts.end()), false};
        }
        switch (field) {
        case MV_QF_ANY: {
            std::vector<Xapian::Query> alts;
            Xapian::Query w = words(tokens(field, t, negated), ANY_PREFIXES,
                                    sizeof ANY_PREFIXES / sizeof ANY_PREFIXES[0]);
            if (!w.empty())
                alts.push_back(w);
            std::string lv = lower(t);
            if (lv.find('@') != std::string::npos) {
                alts.push_back(roles_term('A', ALL_ROLES, lv));
            } else {
                /* "the names and addresses of sender and recipients"
                 * (docs/search.md): a local part typed alone matches too */
                alts.push_back(roles_term('L', ALL_ROLES, lv));
                if (lv.find('.') != std::string::npos)
                    alts.push_back(domains(ALL_ROLES, lv));
            }
            if (alts.empty())
                return {Xapian::Query(), false};
            return {Xapian::Query(Xapian::Query::OP_OR, alts.begin(), alts.end()), false};
        }
        case MV_QF_SUBJECT:
        case MV_QF_BODY:
        case MV_QF_ATTACHMENT: {
            static const char *const s[] = {"S"}, *const b[] = {""}, *const a[] = {"A"};
            const char *const *p = field == MV_QF_SUBJECT ? s : field == MV_QF_BODY ? b : a;
            return {words(tokens(field, t, negated), p, 1), false};
        }
        case MV_QF_FILENAME: {
            static const char *const p[] = {"XFW"};
            Xapian::Query w = words(tokens(field, t, negated), p, 1);
            Xapian::Query whole = term("XFN", lower(t));
            return {w.empty() ? whole : Xapian::Query(Xapian::Query::OP_OR, w, whole), false};
        }
        case MV_QF_MSGID: {
            std::string id = t;
            if (id.size() >= 2 && id.front() == '<' && id.back() == '>')
                id = id.substr(1, id.size() - 2);
            return {term("XM", id), true};
        }
        case MV_QF_DOMAIN:
            return {domains(ALL_ROLES, lower(t)), true};
        case MV_QF_HOLD:
            return {term("XH", lower(t)), true};
        case MV_QF_CUSTODIAN:
            return {custodian(t), true};
        default:
            throw fail{MV_EUSAGE, "malformed query tree: unknown field"};
        }
    }

    Xapian::Query custodian(const std::string &name)
    {
        if (!e_ || !e_->custodian)
            throw fail{MV_EUSAGE, "custodian: cannot be searched here (no directory)"};
        char **addrs = nullptr;
        size_t n = 0;
        mv_err cerr{};
        mv_status st = e_->custodian(e_->ctx, name.c_str(), &addrs, &n, &cerr);
        if (st == MV_ENOTFOUND)
            throw fail{MV_ENOTFOUND, "unknown custodian '" + quote(name) + "'"};
        if (st != MV_OK)
            throw fail{st, cerr.msg[0] ? std::string(cerr.msg) : "custodian: lookup failed"};
        std::vector<std::string> v;
        for (size_t i = 0; i < n; i++) {
            if (addrs && addrs[i])
                v.push_back(lower(addrs[i], strlen(addrs[i])));
            if (addrs)
                free(addrs[i]);
        }
        free(addrs);
        std::vector<Xapian::Query> q;
        for (const auto &a : v)
            q.push_back(roles_term('A', ALL_ROLES, a));
        return Xapian::Query(Xapian::Query::OP_OR, q.begin(), q.end());
    }

    /* wildcard - the vocabulary words with the prefix, each as a WORD. */
    qpart wildcard(unsigned field, const std::string &prefix, bool negated)
    {
        if (field == MV_QF_MSGID || field == MV_QF_DOMAIN || field == MV_QF_CUSTODIAN ||
            field == MV_QF_HOLD)
            throw fail{MV_EUSAGE,
                       std::string("wildcards are not supported in ") + field_name(field) + ":"};
        if (!e_ || !e_->prefix)
            throw fail{MV_EUSAGE, "wildcards cannot be searched here (no vocabulary)"};
        char **w = nullptr;
        size_t n = 0;
        mv_err cerr{};
        std::string lp = lower(prefix);
        mv_status st = e_->prefix(e_->ctx, lp.c_str(), WILDCARD_MAX_WORDS, &w, &n, &cerr);
        if (st == MV_ELIMIT)
            throw fail{MV_ELIMIT, "wildcard '" + quote(lp) + "*' matches more than " +
                                      std::to_string(WILDCARD_MAX_WORDS) +
                                      " words: use more letters"};
        if (st != MV_OK)
            throw fail{st, cerr.msg[0] ? std::string(cerr.msg) : "wildcard: lookup failed"};
        std::vector<std::string> words_v;
        for (size_t i = 0; i < n; i++) {
            if (w && w[i] && i < WILDCARD_MAX_WORDS)
                words_v.emplace_back(w[i]);
            if (w)
                free(w[i]);
        }
        free(w);
        if (n > WILDCARD_MAX_WORDS) /* the callback ignored max */
            throw fail{MV_ELIMIT, "wildcard '" + quote(lp) + "*' matches more than " +
                                      std::to_string(WILDCARD_MAX_WORDS) +
                                      " words: use more letters"};
        std::vector<Xapian::Query> alts;
        bool boolean = true;
        for (const auto &word : words_v) {
            qpart p = text(field, word, negated);
            if (p.q.empty())
                continue;
            boolean = boolean && p.boolean;
            alts.push_back(std::move(p.q));
        }
        if (alts.empty())
            return {Xapian::Query(), false};
        bool textual = field == MV_QF_ANY || field == MV_QF_SUBJECT || field == MV_QF_BODY ||
                       field == MV_QF_ATTACHMENT || field == MV_QF_FILENAME;
        return {Xapian::Query(textual ? Xapian::Query::OP_SYNONYM : Xapian::Query::OP_OR,
                              alts.begin(), alts.end()),
                boolean};
    }
};

/* to_i64 - a date slot back to seconds (clamped: the cast of an
 * out-of-range double is undefined). */
int64_t to_i64(double d)
{
    if (!(d > -9223372036854775808.0))
        return INT64_MIN;
    if (d >= 9223372036854775808.0)
        return INT64_MAX;
    return (int64_t)d;
}

/* run_query - the exact match count, and the hits of [offset, offset+limit)
 * in the order asked. */
uint64_t run_query(Xapian::Database &db, const Xapian::Query &query, uint64_t offset,
                   uint64_t limit, mv_xsort sort, std::vector<mv_xap_hit> &hits)
{
    hits.clear();
    Xapian::doccount all = db.get_doccount();
    Xapian::Enquire enq(db);
    enq.set_query(query);
    switch (sort) {
    case MV_XSORT_DATE_ASC:
        enq.set_sort_by_value_then_relevance(SLOT_DATE, false);
        break;
    case MV_XSORT_RELEVANCE:
        break;
    default:
        enq.set_sort_by_value_then_relevance(SLOT_DATE, true);
        break;
    }
    Xapian::doccount first = offset > all ? all : (Xapian::doccount)offset;
    Xapian::doccount max = limit > all ? all : (Xapian::doccount)limit;
    /* checkatleast = every document: the count is exact, not estimated. */
    Xapian::MSet m = enq.get_mset(first, max, all);
    if (m.get_matches_lower_bound() != m.get_matches_upper_bound())
        throw fail{MV_EINDEX, "searching: the match count is not exact (" +
                                  std::to_string(m.get_matches_lower_bound()) + ".." +
                                  std::to_string(m.get_matches_upper_bound()) + ")"};
    hits.reserve(m.size());
    for (auto it = m.begin(); it != m.end(); ++it) {
        std::string v = it.get_document().get_value(SLOT_DATE);
        hits.push_back(mv_xap_hit{*it, v.empty() ? 0 : to_i64(Xapian::sortable_unserialise(v)),
                                  it.get_weight()});
    }
    return m.get_matches_estimated();
}

} // namespace

mv_status mv_xap_search(mv_xap *x, const mv_qnode *q, const mv_xap_expand *e, uint64_t offset,
                        uint64_t limit, mv_xsort sort, mv_xap_result *res, mv_err *err)
{
    if (res)
        *res = mv_xap_result{0, nullptr, 0};
    if (!x || !q || !res)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_search: missing argument");
    return guarded(err, "searching", [&]() -> mv_status {
        translator t(x, e, nullptr);
        Xapian::Query query = t.node(q, false, 0).q;
        std::vector<mv_xap_hit> hits;
        uint64_t total = 0;
        for (int attempt = 1;; attempt++) {
            try {
                if (!x->writable)
                    x->rdb.reopen();
                total = run_query(x->db(), query, offset, limit, sort, hits);
                break;
            } catch (const Xapian::DatabaseModifiedError &) {
                /* A reader overtaken by two commits of the writer: reopen
                 * and run again (what Xapian advises). */
                if (x->writable || attempt >= SEARCH_ATTEMPTS)
                    throw;
            }
        }
        mv_xap_result r{total, nullptr, 0};
        if (!hits.empty()) {
            r.hits = (mv_xap_hit *)mv_xcalloc(hits.size(), sizeof *r.hits);
            memcpy(r.hits, hits.data(), hits.size() * sizeof *r.hits);
            r.n = hits.size();
        }
        *res = r;
        return MV_OK;
    });
}

void mv_xap_result_free(mv_xap_result *r)
{
    if (!r)
        return;
    free(r->hits);
    *r = mv_xap_result{0, nullptr, 0};
}

/* ---- highlighting ------------------------------------------------------------ */

namespace
{

/* One character of the text: where its bytes are, and whether they are
 * valid UTF-8 (invalid bytes are written out as U+FFFD). */
struct hchar {
    size_t off;
    uint8_t len;
    bool valid;
    unsigned cp;
};

/* utf8_chars - decode strictly (no overlongs, surrogates or > U+10FFFF). */
std::vector<hchar> utf8_chars(const char *text, size_t len)
{
    std::vector<hchar> v;
    v.reserve(len);
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i], cp = 0;
        size_t need = 0;
        if (c < 0x80) {
            v.push_back({i, 1, true, c});
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07;
        } else {
            v.push_back({i, 1, false, 0xfffd});
            i++;
            continue;
        }
        bool ok = len - i > need;
        for (size_t k = 1; ok && k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                ok = false;
            else
                cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (ok && ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
                   (cp >= 0xd800 && cp <= 0xdfff)))
            ok = false;
        if (!ok) {
            v.push_back({i, 1, false, 0xfffd});
            i++;
            continue;
        }
        v.push_back({i, (uint8_t)(need + 1), true, cp});
        i += need + 1;
    }
    return v;
}

/* is_cjk - the scripts the TermGenerator splits into n-grams (close enough
 * for highlighting single characters). */
bool is_cjk(unsigned c)
{
    return (c >= 0x2e80 && c <= 0x2fff) || (c >= 0x3000 && c <= 0x9fff) ||
           (c >= 0xa700 && c <= 0xa71f) || (c >= 0xac00 && c <= 0xd7af) ||
           (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) ||
           (c >= 0xff00 && c <= 0xffef) || (c >= 0x20000 && c <= 0x2a6df) ||
           (c >= 0x2f800 && c <= 0x2fa1f);
}

bool wordchar(unsigned c)
{
    return Xapian::Unicode::is_wordchar(c);
}

bool is_digit(unsigned c)
{
    return Xapian::Unicode::get_category(c) == Xapian::Unicode::DECIMAL_DIGIT_NUMBER;
}

bool ignorable(unsigned c)
{
    return (c >= 0x200b && c <= 0x200d) || c == 0x2060 || c == 0xfeff;
}

/* A word of the text in characters [start, end), and whether it is a hit. */
struct hword {
    size_t start, end;
    bool hit;
};

/* split_words - the words as the TermGenerator would see them: runs of
 * word characters joined by the infixes it accepts (don't, AT&T, 3.14),
 * with up to three trailing '+' or '#' (C++), CJK one character at a time.
 * Each word is lower-cased, stemmed and hashed, and marked when its hash
 * is one of the query's. */
std::vector<hword> split_words(const std::vector<hchar> &cs, generator &gen,
                               const std::unordered_set<std::string> &want)
{
    std::vector<hword> words;
    size_t n = cs.size(), i = 0;
    while (i < n) {
        unsigned c = cs[i].cp;
        if (!wordchar(c)) {
            i++;
            continue;
        }
        std::string w;
        size_t start = i;
        if (is_cjk(c)) {
            Xapian::Unicode::append_utf8(w, Xapian::Unicode::tolower(c));
            i++;
        } else {
            unsigned prev = 0;
            while (i < n) {
                c = cs[i].cp;
                if (wordchar(c) && !is_cjk(c)) {
                    Xapian::Unicode::append_utf8(w, Xapian::Unicode::tolower(c));
                    prev = c;
                    i++;
                    continue;
                }
                if (i + 1 >= n || !wordchar(cs[i + 1].cp) || is_cjk(cs[i + 1].cp))
                    break;
                unsigned next = cs[i + 1].cp;
                if (ignorable(c)) {
                    i++;
                } else if (is_digit(prev) && is_digit(next) &&
                           (c == ',' || c == '.' || c == ';' || c == 0x37e || c == 0x589 ||
                            c == 0x60d || c == 0x7f8 || c == 0x2044 || c == 0xfe10 || c == 0xfe13 ||
                            c == 0xfe14)) {
                    Xapian::Unicode::append_utf8(w, c);
                    i++;
                } else if (!(is_digit(prev) && is_digit(next)) &&
                           (c == '\'' || c == '&' || c == 0xb7 || c == 0x5f4 || c == 0x2027 ||
                            c == 0x2019 || c == 0x201b)) {
                    Xapian::Unicode::append_utf8(w, c == 0x2019 || c == 0x201b ? '\'' : c);
                    i++;
                } else {
                    break;
                }
            }
            size_t j = i, count = 0;
            while (j < n && (cs[j].cp == '+' || cs[j].cp == '#') && count < 3)
                j++, count++;
            if (count && !(j < n && (wordchar(cs[j].cp) || cs[j].cp == '+' || cs[j].cp == '#'))) {
                for (size_t k = i; k < j; k++)
                    w.push_back((char)cs[k].cp);
                i = j;
            }
        }
        bool hit = false;
        if (w.size() <= VOCAB_MAX_WORD_BYTES && !want.empty())
            hit = want.count(gen.word_hash(w)) != 0;
        words.push_back({start, i, hit});
    }
    return words;
}

} // namespace

mv_status mv_xap_highlight(mv_xap *x, const mv_qnode *q, const mv_xap_expand *e, const char *text,
                           size_t len, size_t max_chars, const char *start, const char *end,
                           char **out, mv_err *err)
{
    if (out)
        *out = nullptr;
    if (!x || !q || (!text && len) || !out)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_highlight: missing argument");
    if (!start)
        start = "";
    if (!end)
        end = "";
    return guarded(err, "highlighting", [&]() -> mv_status {
        std::unordered_set<std::string> want;
        translator t(x, e, &want);
        (void)t.node(q, false, 0);
        std::vector<hchar> cs = utf8_chars(text ? text : "", len);
        generator gen(x->hooks, x->lang, x->id, false);
        std::vector<hword> words = split_words(cs, gen, want);
        size_t n = cs.size();

        /* hits before word k, for counting the hits of a window */
        std::vector<size_t> before(words.size() + 1, 0);
        for (size_t k = 0; k < words.size(); k++)
            before[k + 1] = before[k] + (words[k].hit ? 1 : 0);
        /* window_end - the end of a window starting at s: max_chars
         * characters counting the "…" marks, cut after a whole word when
         * one fits. */
        auto window_end = [&](size_t s) -> size_t {
            size_t avail = max_chars - (s > 0 && max_chars > 0 ? 1 : 0);
            if (n - s <= avail)
                return n;
            size_t e_ = s + (avail > 0 ? avail - 1 : 0); /* room for the closing "…" */
            auto it = std::upper_bound(words.begin(), words.end(), e_,
                                       [](size_t v, const hword &w) { return v < w.end; });
            if (it != words.begin() && (it - 1)->end > s)
                return (it - 1)->end;
            return e_;
        };
        auto count = [&](size_t s, size_t e_) -> size_t {
            auto lo = std::lower_bound(words.begin(), words.end(), s,
                                       [](const hword &w, size_t v) { return w.start < v; });
            auto hi = std::upper_bound(words.begin(), words.end(), e_,
                                       [](size_t v, const hword &w) { return v < w.end; });
            if (hi <= lo)
                return 0;
            return before[hi - words.begin()] - before[lo - words.begin()];
        };

        size_t s = 0, best = count(0, window_end(0));
        if (n > max_chars) {
            for (const auto &w : words) {
                size_t c = count(w.start, window_end(w.start));
                if (c > best)
                    best = c, s = w.start;
            }
            if (best > 0) {
                /* Centre the hits: move the start back over context while
                 * the window keeps every hit it had. */
                size_t e0 = window_end(s);
                size_t h0 = n, h1 = 0;
                for (const auto &w : words)
                    if (w.hit && w.start >= s && w.end <= e0)
                        h0 = std::min(h0, w.start), h1 = std::max(h1, w.end);
                size_t slack = (e0 - s) > (h1 - h0) ? (e0 - s) - (h1 - h0) : 0;
                size_t want_s = h0 > slack / 2 ? h0 - slack / 2 : 0;
                for (const auto &w : words) {
                    if (w.start >= want_s && w.start <= h0) {
                        if (count(w.start, window_end(w.start)) >= best)
                            s = w.start;
                        break;
                    }
                }
                if (want_s == 0 && count(0, window_end(0)) >= best)
                    s = 0;
            }
        }
        size_t e_ = window_end(s);
        bool marks = true;
        if (max_chars < 3) { /* no room for "…": a plain cut */
            s = 0, e_ = std::min(n, max_chars);
            marks = false;
        }

        std::string o;
        o.reserve((e_ - s) * 2 + 16);
        static const char ellipsis[] = "\xe2\x80\xa6";
        if (s > 0 && marks)
            o += ellipsis;
        auto w = std::lower_bound(words.begin(), words.end(), s,
                                  [](const hword &a, size_t v) { return a.start < v; });
        for (size_t i = s; i < e_; i++) {
            /* only a hit wholly inside the window is marked */
            bool marked = w != words.end() && w->hit && w->end <= e_;
            if (marked && w->start == i)
                o += start;
            if (cs[i].valid)
                o.append(text + cs[i].off, cs[i].len);
            else
                o += "\xef\xbf\xbd";
            if (w != words.end() && w->end == i + 1) {
                if (marked)
                    o += end;
                ++w;
            }
        }
        if (e_ < n && marks)
            o += ellipsis;
        *out = mv_xstrndup(o.data(), o.size());
        return MV_OK;
    });
}

/* ---- one message at a time ------------------------------------------------------ */

namespace
{

/* check_language - the stemmer exists (as mv_xap_open checks it). */
void check_language(const std::string &lang)
{
    if (lang == "none")
        return;
    try {
        Xapian::Stem probe(lang);
    } catch (const Xapian::InvalidArgumentError &) {
        throw fail{MV_EUSAGE, "unknown stemming language '" + quote(lang) + "'"};
    }
}

} // namespace

mv_status mv_xap_open_detached(const mv_xap_hooks *h, mv_xap **out, mv_err *err)
{
    if (out)
        *out = nullptr;
    if (!h || !h->prf || !out)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_open_detached: missing argument");
    std::unique_ptr<mv_xap> x;
    mv_status st = guarded(err, "preparing the matcher", [&]() -> mv_status {
        x.reset(new mv_xap);
        x->dir = "(one message)";
        x->lang = h->language ? h->language : "english";
        x->hooks = *h;
        x->hooks.language = nullptr; /* x->lang is the copy */
        check_language(x->lang);
        return MV_OK;
    });
    if (st == MV_OK)
        *out = x.release();
    return st;
}

mv_status mv_xap_check(mv_xap *x, const mv_qnode *q, const mv_xap_expand *e, mv_err *err)
{
    if (!x || !q)
        return mv_err_set(err, MV_EUSAGE, "mv_xap_check: missing argument");
    return guarded(err, "checking the query", [&]() -> mv_status {
        translator t(x, e, nullptr);
        (void)t.node(q, false, 0);
        return MV_OK;
    });
}

namespace
{

/* reduced - the document d with only the terms in want (sorted, unique)
 * and all its values.  Whether a query matches a document depends on
 * nothing but the terms the query names (presence and positions) and the
 * values, so the answer is the same, and a database of a few terms costs
 * far less to build than one of the whole message. */
Xapian::Document reduced(const Xapian::Document &d, const std::vector<std::string> &want)
{
    Xapian::Document r;
    auto t = d.termlist_begin();
    const auto end = d.termlist_end();
    for (const auto &w : want) {
        if (w.empty())
            continue; /* the empty term (every document) is no posting */
        t.skip_to(w); /* forward only: want is sorted like the termlist */
        if (t == end)
            break;
        if (*t != w)
            continue;
        bool positions = false;
        for (auto p = t.positionlist_begin(); p != t.positionlist_end(); ++p) {
            r.add_posting(w, *p, 0);
            positions = true;
        }
        if (t.get_wdf())
            r.add_term(w, t.get_wdf());
        else if (!positions)
            r.add_boolean_term(w);
    }
    for (auto v = d.values_begin(); v != d.values_end(); ++v)
        r.add_value(v.get_valueno(), *v);
    return r;
}

} // namespace

mv_status mv_xap_match(mv_xap *x, const mv_xap_doc *d, const mv_qnode *const *q, size_t nq,
                       const mv_xap_expand *e, int *hits, mv_err *err)
{
    if (!x || !d || (nq && (!q || !hits)))
        return mv_err_set(err, MV_EUSAGE, "mv_xap_match: missing argument");
    for (size_t i = 0; i < nq; i++)
        hits[i] = -1;
    return guarded(err, "matching a message", [&]() -> mv_status {
        translator t(x, e, nullptr);
        mv_status first = MV_OK;
        std::vector<Xapian::Query> queries(nq);
        std::vector<bool> ok(nq, false);
        std::vector<std::string> want;
        for (size_t i = 0; i < nq; i++) {
            mv_err qerr{};
            mv_status st = guarded(&qerr, "matching a message", [&]() -> mv_status {
                if (!q[i])
                    throw fail{MV_EUSAGE, "mv_xap_match: missing query"};
                queries[i] = t.node(q[i], false, 0).q;
                return MV_OK;
            });
            if (st != MV_OK) {
                if (first == MV_OK) {
                    first = st;
                    if (err) {
                        *err = qerr;
                        mv_err_prefix(err, "query %zu of %zu: ", i + 1, nq);
                    }
                }
                continue;
            }
            ok[i] = true;
            for (auto w = queries[i].get_unique_terms_begin(); w != queries[i].get_terms_end(); ++w)
                want.push_back(*w);
        }
        std::sort(want.begin(), want.end());
        want.erase(std::unique(want.begin(), want.end()), want.end());
        /* A database of this one document: Xapian's own matcher decides,
         * phrases and value ranges included, so nothing here re-implements
         * what a query means.  BoolWeight: only whether, never how well. */
        Xapian::WritableDatabase db(std::string(), Xapian::DB_BACKEND_INMEMORY);
        db.add_document(reduced(d->doc, want));
        Xapian::Enquire enq(db);
        enq.set_weighting_scheme(Xapian::BoolWeight());
        for (size_t i = 0; i < nq; i++) {
            if (!ok[i])
                continue;
            enq.set_query(queries[i]);
            hits[i] = enq.get_mset(0, 1).empty() ? 0 : 1;
        }
        return first;
    });
}
