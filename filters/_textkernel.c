/* Compiled word loops of the readability and language-mixing filters.
 *
 * On R1-length traces (~20 KB) the filters spent their time on one Python object, regex match
 * or numpy element per word or line: masking LaTeX and numbers, splitting and hashing words for
 * the Gopher n-gram tables (pandas factorize), counting duplicate lines and sentences, and the
 * function words per paragraph. These loops read the `str`'s own buffer (any of CPython's
 * 1/2/4-byte kinds) and allocate nothing per word.
 *
 * Each function reproduces a pure-Python definition that stays in filters/ as the fallback for
 * a tree nobody compiled; tests/test_textkernel.py checks every one against it on the real
 * traces in ../shared/data and on random text.
 *
 * Every scanning core is force-inlined into one copy per character width, so the width test of
 * PyUnicode_READ folds away inside the loops.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))
#define RD(i) PyUnicode_READ(kind, data, (i))

/* One copy of `call` (an expression using `kind`) per character width. */
#define BY_KIND(k, call)                                                                      \
    do {                                                                                      \
        if ((k) == PyUnicode_1BYTE_KIND) {                                                    \
            const int kind = PyUnicode_1BYTE_KIND;                                            \
            call;                                                                             \
        } else if ((k) == PyUnicode_2BYTE_KIND) {                                             \
            const int kind = PyUnicode_2BYTE_KIND;                                            \
            call;                                                                             \
        } else {                                                                              \
            const int kind = PyUnicode_4BYTE_KIND;                                            \
            call;                                                                             \
        }                                                                                     \
    } while (0)

static char ascii_space[128];
static unsigned char latin1_flags[256];

/* splitmix64's finaliser: spreads a 64-bit value over all bits (hash table slots use low bits). */
INLINE uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* str.isspace() */
INLINE int is_space(Py_UCS4 c) { return c < 128 ? ascii_space[c] : Py_UNICODE_ISSPACE(c); }

/* The LATIN class of filters/text.py: A-Za-z, U+00C0-00D6, U+00D8-00F6, U+00F8-024F,
 * U+1E00-1EFF. */
INLINE int is_latin(Py_UCS4 c) {
    if (c < 128) return ((c | 32) >= 'a' && (c | 32) <= 'z');
    if (c < 0xC0) return 0;
    if (c <= 0x24F) return c != 0xD7 && c != 0xF7;
    return c >= 0x1E00 && c <= 0x1EFF;
}

INLINE int is_apostrophe(Py_UCS4 c) { return c == '\'' || c == 0x2019; }

/* FNV-1a over code points, mixed with the length: the hash of one word or line. */
INLINE uint64_t hash_span(int kind, const void *data, Py_ssize_t a, Py_ssize_t b) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (Py_ssize_t i = a; i < b; i++) h = (h ^ (uint64_t)RD(i)) * 0x100000001b3ULL;
    return mix64(h ^ ((uint64_t)(b - a) << 56));
}

/* A hash of raw memory, 8 bytes a step: for comparing substrings of one text (same width), so
 * equal substrings have equal bytes. (Across texts of different widths use hash_span.) */
INLINE uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xc2b2ae3d27d4eb4fULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0; /* the tail, by hand: a variable-length memcpy is a library call */
    for (size_t k = 0; k < n; k++) v |= (uint64_t)(unsigned char)p[k] << (8 * k);
    return mix64(h ^ v);
}

/* (start, end) pairs of a Python sequence, clipped to [0, len]. */
static Py_ssize_t *read_spans(PyObject *spans, Py_ssize_t len, Py_ssize_t *n) {
    PyObject *seq = PySequence_Fast(spans, "spans must be a sequence of (start, end)");
    if (!seq) return NULL;
    *n = PySequence_Fast_GET_SIZE(seq);
    Py_ssize_t *out = malloc((size_t)(2 * *n + 1) * sizeof(Py_ssize_t));
    if (!out) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t j = 0; j < *n; j++) {
        Py_ssize_t a, b;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, j), "nn", &a, &b)) {
            free(out);
            Py_DECREF(seq);
            return NULL;
        }
        a = a < 0 ? 0 : (a > len ? len : a);
        b = b > len ? len : (b < a ? a : b);
        out[2 * j] = a;
        out[2 * j + 1] = b;
    }
    Py_DECREF(seq);
    return out;
}

/* ---- Gopher n-gram statistics ----------------------------------------------------------- */

typedef struct {
    uint64_t key;
    int32_t count;
    int32_t gen; /* the pass that filled the slot: older slots are empty, so no clearing */
} slot_t;

/* Counts keys[0..m) in an open-addressing table of mask+1 slots for pass `gen`; slot[j] is
 * where keys[j] landed, first[j] is 1 at the first occurrence of its value. */
static void count_keys(slot_t *t, Py_ssize_t mask, int32_t gen, const uint64_t *keys, Py_ssize_t m, Py_ssize_t *slot,
                       char *first) {
    for (Py_ssize_t j = 0; j < m; j++) {
        uint64_t k = keys[j];
        Py_ssize_t s = (Py_ssize_t)(k & (uint64_t)mask);
        if (j + 8 < m) __builtin_prefetch(&t[keys[j + 8] & (uint64_t)mask], 1); /* hide the cache miss */
        while (t[s].gen == gen && t[s].key != k) s = (s + 1) & mask;
        if (t[s].gen != gen) {
            t[s] = (slot_t){k, 1, gen};
            first[j] = 1;
        } else {
            t[s].count++;
            first[j] = 0;
        }
        slot[j] = s;
    }
}

/* Splits on str.split()'s whitespace and hashes each word (raw bytes: words are only compared
 * within this text); fills h/lens for the first `cap` words and returns the number of words. */
INLINE Py_ssize_t split_hash(int kind, const void *data, Py_ssize_t len, uint64_t *h, int64_t *lens, Py_ssize_t cap) {
    Py_ssize_t n = 0, i = 0;
    while (i < len) {
        while (i < len && is_space(RD(i))) i++;
        if (i >= len) break;
        Py_ssize_t start = i;
        while (i < len && !is_space(RD(i))) i++;
        if (n < cap) {
            h[n] = hash_bytes((const char *)data + start * kind, (size_t)(i - start) * (size_t)kind);
            lens[n] = i - start;
        }
        n++;
    }
    return n;
}

PyDoc_STRVAR(ngram_stats_doc,
"ngram_stats(low, max_words) -> (n_words, total_chars, top, dup5_chars)\n\n"
"Words of `low.split()`; over the first `max_words` of them: total_chars (sum of word lengths),\n"
"top = ((count, chars) of the most frequent 2-, 3- and 4-gram, ties to the longer), and the\n"
"characters of words covered by a repeated (not first) occurrence of a 5-gram\n"
"(readability._ngram_stats).");

static PyObject *ngram_stats(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t max_words;
    if (!PyArg_ParseTuple(args, "Un", &text, &max_words)) return NULL;
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    if (max_words < 0) max_words = 0;
    Py_ssize_t cap_words = len / 2 + 1; /* words are separated: at most this many */
    if (cap_words > max_words) cap_words = max_words;
    size_t w = (size_t)cap_words + 1;
    uint64_t *h = malloc(w * sizeof(uint64_t)), *g = malloc(w * sizeof(uint64_t)), *keys = malloc(w * sizeof(uint64_t));
    int64_t *lens = malloc(w * sizeof(int64_t)), *glen = malloc(w * sizeof(int64_t));
    Py_ssize_t *pos = malloc(w * sizeof(Py_ssize_t)), *slot = malloc(w * sizeof(Py_ssize_t));
    char *first = malloc(w), *rep = malloc(w);
    slot_t *table = NULL;
    PyObject *res = NULL;
    if (!h || !g || !keys || !lens || !glen || !pos || !slot || !first || !rep) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t n_words;
    BY_KIND(PyUnicode_KIND(text), n_words = split_hash(kind, data, len, h, lens, cap_words));
    Py_ssize_t m = n_words < cap_words ? n_words : cap_words;
    Py_ssize_t tcap = 16;
    while (tcap < 2 * m) tcap <<= 1;
    if (!(table = calloc((size_t)tcap, sizeof(slot_t)))) { /* gen 0: empty */
        PyErr_NoMemory();
        goto done;
    }
    long long top_cnt[3] = {0, 0, 0}, top_chars[3] = {0, 0, 0}, total_chars = 0, dup5 = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        g[i] = h[i];
        glen[i] = lens[i];
        total_chars += lens[i];
        rep[i] = 1; /* every word "repeats" as a 1-gram: all 2-grams are counted */
    }
    const int64_t cap_chars = (1 << 20) - 1;
    for (int n = 2; n <= 5 && n <= m; n++) {
        Py_ssize_t k = m - n + 1; /* n-grams */
        /* An n-gram can repeat only where both its (n-1)-grams repeat, so only those positions
         * are counted: every repeated n-gram and all its occurrences are among them; the rest
         * occur once (never the top, never a duplicate). rep[] says "repeats" for n-1. */
        Py_ssize_t c = 0;
        for (Py_ssize_t i = 0; i < k; i++) {
            g[i] = mix64(g[i] * 0x100000001b3ULL + h[i + n - 1]);
            glen[i] += lens[i + n - 1];
            if (rep[i] && rep[i + 1]) {
                pos[c] = i;
                keys[c++] = g[i];
            }
        }
        Py_ssize_t cap = 16;
        while (cap < 2 * c) cap <<= 1;
        count_keys(table, cap - 1, n, keys, c, slot, first);
        memset(rep, 0, (size_t)m);
        for (Py_ssize_t j = 0; j < c; j++) rep[pos[j]] = table[slot[j]].count > 1;
        if (n <= 4) {
            long long best = 0;
            for (Py_ssize_t j = 0; j < c; j++) {
                long long ch = glen[pos[j]] < cap_chars ? glen[pos[j]] : cap_chars;
                long long key = ((long long)table[slot[j]].count << 20) | ch;
                if (key > best) best = key;
            }
            top_cnt[n - 2] = best >> 20;
            top_chars[n - 2] = best & cap_chars;
        } else {
            /* Words covered by a repeated (not first) occurrence: a running "covered until". */
            Py_ssize_t until = 0, j = 0;
            for (Py_ssize_t i = 0; i < m; i++) {
                while (j < c && pos[j] < i) j++;
                if (j < c && pos[j] == i && !first[j]) until = i + n;
                if (i < until) dup5 += lens[i];
            }
        }
    }
    res = Py_BuildValue("nL((LL)(LL)(LL))L", n_words, total_chars, top_cnt[0], top_chars[0], top_cnt[1],
                        top_chars[1], top_cnt[2], top_chars[2], dup5);
done:
    free(h); free(g); free(keys); free(lens); free(glen); free(pos); free(slot); free(first); free(rep);
    free(table);
    return res;
}

/* ---- Function words per paragraph (language mixing's fast path) ------------------------- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

INLINE int in_sorted(const uint64_t *v, Py_ssize_t n, uint64_t k) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (v[mid] < k) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && v[lo] == k;
}

PyDoc_STRVAR(word_hash_doc, "word_hash(word) -> int: the hash prose_counts compares words by.");

static PyObject *word_hash(PyObject *self, PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    const void *data = PyUnicode_DATA(text);
    uint64_t h;
    BY_KIND(PyUnicode_KIND(text), h = hash_span(kind, data, 0, PyUnicode_GET_LENGTH(text)));
    return PyLong_FromUnsignedLongLong(h);
}

/* PROSE_WORD_RE matches in low[a:b] (runs of 2+ LATIN letters not preceded by a backslash or a
 * LATIN letter, even before a), and how many are in `stop`. */
INLINE void prose_span(int kind, const void *data, Py_ssize_t a, Py_ssize_t b, const uint64_t *stop, Py_ssize_t n_stop,
                       Py_ssize_t max_len, Py_ssize_t *words, Py_ssize_t *hits) {
    Py_ssize_t i = a;
    *words = *hits = 0;
    while (i < b) {
        if (!is_latin(RD(i))) {
            i++;
            continue;
        }
        Py_ssize_t s = i;
        while (i < b && is_latin(RD(i))) i++;
        if (i - s < 2) continue;
        if (s > 0) {
            Py_UCS4 p = RD(s - 1);
            if (p == '\\' || is_latin(p)) continue; /* a LaTeX command, or the tail of a word */
        }
        (*words)++;
        if (n_stop && i - s <= max_len && in_sorted(stop, n_stop, hash_span(kind, data, s, i))) (*hits)++;
    }
}

PyDoc_STRVAR(prose_counts_doc,
"prose_counts(low, spans, stop_hashes, max_len) -> [(words, function_words), ...]\n\n"
"Per (start, end) span of `low`: the matches of PROSE_WORD_RE.findall(low, start, end), and\n"
"how many are in the set given by `stop_hashes` (bytes of native uint64 word_hash values) of\n"
"words up to max_len characters.");

static PyObject *prose_counts(PyObject *self, PyObject *args) {
    PyObject *text, *spans;
    Py_buffer stop;
    Py_ssize_t max_len;
    if (!PyArg_ParseTuple(args, "UOy*n", &text, &spans, &stop, &max_len)) return NULL;
    Py_ssize_t n_stop = stop.len / (Py_ssize_t)sizeof(uint64_t), n = 0;
    uint64_t *sorted = malloc((size_t)(n_stop + 1) * sizeof(uint64_t));
    if (!sorted) {
        PyBuffer_Release(&stop);
        return PyErr_NoMemory();
    }
    memcpy(sorted, stop.buf, (size_t)n_stop * sizeof(uint64_t));
    PyBuffer_Release(&stop);
    qsort(sorted, (size_t)n_stop, sizeof(uint64_t), cmp_u64);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t *sp = read_spans(spans, PyUnicode_GET_LENGTH(text), &n);
    PyObject *out = sp ? PyList_New(n) : NULL;
    for (Py_ssize_t j = 0; out && j < n; j++) {
        Py_ssize_t words, hits;
        BY_KIND(PyUnicode_KIND(text), prose_span(kind, data, sp[2 * j], sp[2 * j + 1], sorted, n_stop, max_len, &words, &hits));
        PyObject *item = Py_BuildValue("(nn)", words, hits);
        if (!item) Py_CLEAR(out);
        else PyList_SET_ITEM(out, j, item);
    }
    free(sp);
    free(sorted);
    return out;
}

/* The word_hash of str.lower() of text[a:b] (full case mapping, as str.lower applies it). */
INLINE uint64_t hash_lower(int kind, const void *data, Py_ssize_t a, Py_ssize_t b) {
    uint64_t h = 0xcbf29ce484222325ULL;
    Py_ssize_t n = 0;
    for (Py_ssize_t i = a; i < b; i++) {
        Py_UCS4 c = RD(i), low[3];
        int k = 1;
        if (c < 128) low[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        else k = _PyUnicode_ToLowerFull(c, low);
        for (int j = 0; j < k; j++) h = (h ^ (uint64_t)low[j]) * 0x100000001b3ULL;
        n += k;
    }
    return mix64(h ^ ((uint64_t)n << 56));
}

/* WORD2_RE matches in text[a:b]: a LATIN letter, then letters or apostrophes followed by a
 * letter, at least two characters; for each, which of the stopword sets hold it lower-cased. */
INLINE Py_ssize_t word2_hits(int kind, const void *data, Py_ssize_t a, Py_ssize_t b, uint64_t **sets,
                             const Py_ssize_t *sizes, Py_ssize_t n_sets, Py_ssize_t *hits) {
    Py_ssize_t words = 0, i = a;
    while (i < b) {
        if (!is_latin(RD(i))) {
            i++;
            continue;
        }
        Py_ssize_t s = i++;
        while (i < b && (is_latin(RD(i)) || (is_apostrophe(RD(i)) && i + 1 < b && is_latin(RD(i + 1))))) i++;
        if (i - s < 2) continue;
        words++;
        uint64_t h = hash_lower(kind, data, s, i);
        for (Py_ssize_t k = 0; k < n_sets; k++) hits[k] += in_sorted(sets[k], sizes[k], h);
    }
    return words;
}

PyDoc_STRVAR(stopword_hits_doc,
"stopword_hits(text, start, end, sets) -> (words, [hits per set])\n\n"
"The WORD2_RE words of text[start:end], lower-cased, and how many of them each set holds\n"
"(`sets`: a sequence of bytes of native uint64 word_hash values, one per language).");

static PyObject *stopword_hits(PyObject *self, PyObject *args) {
    PyObject *text, *sets_obj;
    Py_ssize_t a, b;
    if (!PyArg_ParseTuple(args, "UnnO", &text, &a, &b, &sets_obj)) return NULL;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    a = a < 0 ? 0 : (a > len ? len : a);
    b = b > len ? len : (b < a ? a : b);
    PyObject *seq = PySequence_Fast(sets_obj, "sets must be a sequence of bytes");
    if (!seq) return NULL;
    Py_ssize_t n_sets = PySequence_Fast_GET_SIZE(seq), words = 0;
    uint64_t **sets = calloc((size_t)n_sets + 1, sizeof(uint64_t *));
    Py_ssize_t *sizes = calloc((size_t)n_sets + 1, sizeof(Py_ssize_t)), *hits = calloc((size_t)n_sets + 1, sizeof(Py_ssize_t));
    PyObject *res = NULL;
    if (!sets || !sizes || !hits) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < n_sets; k++) {
        PyObject *bts = PySequence_Fast_GET_ITEM(seq, k);
        if (!PyBytes_Check(bts)) {
            PyErr_SetString(PyExc_TypeError, "sets must be a sequence of bytes");
            goto done;
        }
        sizes[k] = PyBytes_GET_SIZE(bts) / (Py_ssize_t)sizeof(uint64_t);
        sets[k] = malloc((size_t)(sizes[k] + 1) * sizeof(uint64_t));
        if (!sets[k]) {
            PyErr_NoMemory();
            goto done;
        }
        memcpy(sets[k], PyBytes_AS_STRING(bts), (size_t)sizes[k] * sizeof(uint64_t));
        qsort(sets[k], (size_t)sizes[k], sizeof(uint64_t), cmp_u64);
    }
    const void *data = PyUnicode_DATA(text);
    BY_KIND(PyUnicode_KIND(text), words = word2_hits(kind, data, a, b, sets, sizes, n_sets, hits));
    PyObject *lst = PyList_New(n_sets);
    for (Py_ssize_t k = 0; lst && k < n_sets; k++) {
        PyObject *v = PyLong_FromSsize_t(hits[k]);
        if (!v) Py_CLEAR(lst);
        else PyList_SET_ITEM(lst, k, v);
    }
    if (lst) res = Py_BuildValue("(nN)", words, lst);
done:
    for (Py_ssize_t k = 0; sets && k < n_sets; k++) free(sets[k]);
    free(sets);
    free(sizes);
    free(hits);
    Py_DECREF(seq);
    return res;
}

PyDoc_STRVAR(count_phrases_doc,
"count_phrases(text, phrases) -> int: sum(text.count(p) for p in phrases), in one pass.");

typedef struct {
    Py_UCS4 *cp; /* the phrase's code points */
    Py_ssize_t len, next;
} phrase_t;

INLINE Py_ssize_t count_phrases_in(int kind, const void *data, Py_ssize_t len, phrase_t *ph, Py_ssize_t n_ph,
                                   const char *ascii_first) {
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = RD(i);
        if (c < 128 && !ascii_first[c]) continue; /* most characters start no phrase */
        for (Py_ssize_t k = 0; k < n_ph; k++) {
            phrase_t *p = &ph[k];
            if (p->cp[0] != c || i < p->next || i + p->len > len) continue;
            Py_ssize_t j = 1;
            while (j < p->len && RD(i + j) == p->cp[j]) j++;
            if (j == p->len) {
                total++;
                p->next = i + p->len; /* str.count: occurrences do not overlap */
            }
        }
    }
    return total;
}

static PyObject *count_phrases(PyObject *self, PyObject *args) {
    PyObject *text, *phrases;
    if (!PyArg_ParseTuple(args, "UO!", &text, &PyTuple_Type, &phrases)) return NULL;
    Py_ssize_t n_ph = PyTuple_GET_SIZE(phrases), total = 0;
    phrase_t *ph = calloc((size_t)n_ph + 1, sizeof(phrase_t));
    char ascii_first[128] = {0};
    if (!ph) return PyErr_NoMemory();
    for (Py_ssize_t k = 0; k < n_ph; k++) {
        PyObject *p = PyTuple_GET_ITEM(phrases, k);
        if (!PyUnicode_Check(p) || PyUnicode_GET_LENGTH(p) == 0) {
            PyErr_SetString(PyExc_ValueError, "phrases must be non-empty strings");
            goto done;
        }
        if (!(ph[k].cp = PyUnicode_AsUCS4Copy(p))) goto done;
        ph[k].len = PyUnicode_GET_LENGTH(p);
        if (ph[k].cp[0] < 128) ascii_first[ph[k].cp[0]] = 1;
    }
    const void *data = PyUnicode_DATA(text);
    BY_KIND(PyUnicode_KIND(text), total = count_phrases_in(kind, data, PyUnicode_GET_LENGTH(text), ph, n_ph, ascii_first));
    for (Py_ssize_t k = 0; k < n_ph; k++) PyMem_Free(ph[k].cp);
    free(ph);
    return PyLong_FromSsize_t(total);
done:
    for (Py_ssize_t k = 0; k < n_ph; k++) PyMem_Free(ph[k].cp);
    free(ph);
    return NULL;
}

PyDoc_STRVAR(has_surrogate_doc, "has_surrogate(text) -> bool: whether text holds a lone surrogate (no UTF-8).");

static PyObject *has_surrogate(PyObject *self, PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    int kind = PyUnicode_KIND(text);
    if (kind == PyUnicode_1BYTE_KIND) Py_RETURN_FALSE;
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int found = 0;
    if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *d = data;
        for (Py_ssize_t i = 0; i < len; i++) found |= (d[i] & 0xF800) == 0xD800;
    } else {
        const Py_UCS4 *d = data;
        for (Py_ssize_t i = 0; i < len; i++) found |= (d[i] & 0xFFFFF800) == 0xD800;
    }
    return PyBool_FromLong(found);
}

/* ---- Character facts -------------------------------------------------------------------- */

/* Python's `re` classes, by code point: \w is str.isalnum() or "_", \d is str.isdecimal(). */
INLINE int re_word(Py_UCS4 c) { return c == '_' || Py_UNICODE_ISALNUM(c); }

#define FLAG_NON_LATIN 1      /* NON_LATIN_LETTER_RE matches somewhere */
#define FLAG_NON_LATIN_MATH 2 /* LATIN_MATH_ONLY_RE matches somewhere */
#define FLAG_CJK 4            /* CJK_CHAR_RE matches somewhere */
#define FLAG_SURROGATE 8      /* a lone surrogate: the text cannot be encoded as UTF-8 */

static int char_flags_of(Py_UCS4 c) {
    int f = 0;
    if (c >= 0xD800 && c <= 0xDFFF) f |= FLAG_SURROGATE;
    /* HAN and KANA of filters/text.py: any character of the blocks, letter or not */
    if ((c >= 0x3005 && c <= 0x3007) || (c >= 0x3021 && c <= 0x3029) || (c >= 0x3400 && c <= 0x4DBF) ||
        (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2FFFF) ||
        (c >= 0x3040 && c <= 0x30FF) || (c >= 0x31F0 && c <= 0x31FF) || (c >= 0xFF66 && c <= 0xFF9F))
        f |= FLAG_CJK;
    /* [^\W\d_A-Za-z\u00c0-\u024f\u1e00-\u1eff]: a word character, not a digit, not "_", not Latin */
    if (c == '_' || !Py_UNICODE_ISALNUM(c) || Py_UNICODE_ISDECIMAL(c) || ((c | 32) >= 'a' && (c | 32) <= 'z') ||
        (c >= 0xC0 && c <= 0x24F) || (c >= 0x1E00 && c <= 0x1EFF))
        return f;
    f |= FLAG_NON_LATIN;
    /* LATIN_MATH_ONLY_RE also lets through Greek, ², ³, ¹, ¼-¾, modifier letters,
     * super/subscripts, letterlike symbols and math alphanumerics. */
    if (!((c >= 0x370 && c <= 0x3FF) || (c >= 0x1F00 && c <= 0x1FFF) || c == 0xB2 || c == 0xB3 || c == 0xB9 ||
          (c >= 0xBC && c <= 0xBE) || (c >= 0x2B0 && c <= 0x2FF) || (c >= 0x2070 && c <= 0x209F) ||
          (c >= 0x2100 && c <= 0x218F) || (c >= 0x1D400 && c <= 0x1D7FF)))
        f |= FLAG_NON_LATIN_MATH;
    return f;
}

INLINE int flags_span(int kind, const void *data, Py_ssize_t len) {
    int f = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = RD(i);
        if (c >= 0xAA) f |= c < 256 ? latin1_flags[c] : char_flags_of(c);
    }
    return f;
}

PyDoc_STRVAR(char_flags_doc,
"char_flags(text) -> int: which of NON_LATIN_LETTER_RE (1), LATIN_MATH_ONLY_RE (2) and\n"
"CJK_CHAR_RE (4) match somewhere in text, and whether it holds a lone surrogate (8).");

static PyObject *char_flags(PyObject *self, PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    if (PyUnicode_IS_ASCII(text)) return PyLong_FromLong(0);
    const void *data = PyUnicode_DATA(text);
    int f;
    BY_KIND(PyUnicode_KIND(text), f = flags_span(kind, data, PyUnicode_GET_LENGTH(text)));
    return PyLong_FromLong(f);
}

/* ---- Paragraphs and words ----------------------------------------------------------------- */

static int append_span(PyObject *list, Py_ssize_t a, Py_ssize_t b) {
    PyObject *t = Py_BuildValue("(nn)", a, b);
    if (!t) return -1;
    int r = PyList_Append(list, t);
    Py_DECREF(t);
    return r;
}

INLINE int paragraphs_into(int kind, const void *data, Py_ssize_t len, PyObject *out) {
    Py_ssize_t pos = 0, i = 0;
    while (i < len) {
        if (RD(i) != '\n') {
            i++;
            continue;
        }
        Py_ssize_t j = i + 1;
        while (j < len && (RD(j) == ' ' || RD(j) == '\t')) j++;
        if (j >= len || RD(j) != '\n') {
            i++;
            continue;
        }
        j++;
        while (j < len && is_space(RD(j))) j++;
        if (i > pos && append_span(out, pos, i) < 0) return -1;
        pos = i = j;
    }
    int blank = 1;
    for (Py_ssize_t k = pos; k < len && blank; k++) blank = is_space(RD(k));
    if (!blank && append_span(out, pos, len) < 0) return -1;
    return 0;
}

PyDoc_STRVAR(paragraph_spans_doc,
"paragraph_spans(text) -> [(start, end), ...]: text.py `_paragraphs`, the blocks between matches\n"
"of \\n[ \\t]*\\n\\s* (the last one only if it holds more than whitespace).");

static PyObject *paragraph_spans(PyObject *self, PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    const void *data = PyUnicode_DATA(text);
    PyObject *out = PyList_New(0);
    int r;
    if (!out) return NULL;
    BY_KIND(PyUnicode_KIND(text), r = paragraphs_into(kind, data, PyUnicode_GET_LENGTH(text), out));
    if (r < 0) Py_CLEAR(out);
    return out;
}

/* The script groups of text.py TOKEN_RE, in its alternation order (0: none). */
enum { S_NONE, S_HAN, S_KANA, S_HANGUL, S_LATIN, S_CYRILLIC, S_GREEK, S_ARABIC, S_HEBREW, S_DEVANAGARI,
       S_BENGALI, S_TAMIL, S_TELUGU, S_THAI };

INLINE int script_of(Py_UCS4 c) {
    if (c < 128) return ((c | 32) >= 'a' && (c | 32) <= 'z') ? S_LATIN : S_NONE;
    if ((c >= 0x3005 && c <= 0x3007) || (c >= 0x3021 && c <= 0x3029) || (c >= 0x3400 && c <= 0x4DBF) ||
        (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2FFFF))
        return S_HAN;
    if ((c >= 0x3040 && c <= 0x30FF) || (c >= 0x31F0 && c <= 0x31FF) || (c >= 0xFF66 && c <= 0xFF9F)) return S_KANA;
    if ((c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF) || (c >= 0x3130 && c <= 0x318F)) return S_HANGUL;
    if (is_latin(c)) return S_LATIN;
    if (c >= 0x400 && c <= 0x52F) return S_CYRILLIC;
    if ((c >= 0x370 && c <= 0x3FF) || (c >= 0x1F00 && c <= 0x1FFF)) return S_GREEK;
    if ((c >= 0x610 && c <= 0x61A) || (c >= 0x620 && c <= 0x6FF) || (c >= 0x750 && c <= 0x77F) ||
        (c >= 0x8A0 && c <= 0x8FF) || (c >= 0xFB50 && c <= 0xFDFF) || (c >= 0xFE70 && c <= 0xFEFF))
        return S_ARABIC;
    if (c >= 0x590 && c <= 0x5FF) return S_HEBREW;
    if ((c >= 0x900 && c <= 0x963) || (c >= 0x966 && c <= 0x97F)) return S_DEVANAGARI;
    if (c >= 0x980 && c <= 0x9FF) return S_BENGALI;
    if (c >= 0xB80 && c <= 0xBFF) return S_TAMIL;
    if (c >= 0xC00 && c <= 0xC7F) return S_TELUGU;
    if (c >= 0xE00 && c <= 0xE7F) return S_THAI;
    return S_NONE;
}

/* [^\W\d_]: a word character that is not a digit nor "_" (a letter, to Python's re). */
INLINE int re_letter(Py_UCS4 c) { return c != '_' && Py_UNICODE_ISALNUM(c) && !Py_UNICODE_ISDECIMAL(c); }

/* sum(1 for _ in TOKEN_RE.finditer(text[a:b])): CJK per character, other scripts per word. */
INLINE Py_ssize_t token_count(int kind, const void *data, Py_ssize_t a, Py_ssize_t b) {
    Py_ssize_t n = 0, i = a;
    while (i < b) {
        Py_UCS4 c = RD(i);
        int sc = script_of(c);
        if (sc == S_NONE) {
            i++;
            if (c >= 128 && re_letter(c)) { /* the `other` group: any letters, of any script */
                n++;
                while (i < b && re_letter(RD(i))) i++;
            }
            continue;
        }
        n++;
        i++;
        if (sc == S_HAN) continue; /* one per character */
        if (sc == S_LATIN) {
            for (;;) {
                while (i < b && is_latin(RD(i))) i++;
                if (i + 1 < b && is_apostrophe(RD(i)) && is_latin(RD(i + 1))) i++;
                else break;
            }
            continue;
        }
        while (i < b && script_of(RD(i)) == sc) i++;
    }
    return n;
}

PyDoc_STRVAR(word_counts_doc,
"word_counts(text, spans) -> [int, ...]: text.py count_words(text[a:b]) per span (TOKEN_RE\n"
"matches: CJK per character, other scripts per word).");

static PyObject *word_counts(PyObject *self, PyObject *args) {
    PyObject *text, *spans;
    Py_ssize_t n = 0;
    if (!PyArg_ParseTuple(args, "UO", &text, &spans)) return NULL;
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t *sp = read_spans(spans, PyUnicode_GET_LENGTH(text), &n);
    PyObject *out = sp ? PyList_New(n) : NULL;
    for (Py_ssize_t j = 0; out && j < n; j++) {
        Py_ssize_t w;
        BY_KIND(PyUnicode_KIND(text), w = token_count(kind, data, sp[2 * j], sp[2 * j + 1]));
        PyObject *v = PyLong_FromSsize_t(w);
        if (!v) Py_CLEAR(out);
        else PyList_SET_ITEM(out, j, v);
    }
    free(sp);
    return out;
}

/* ---- Repeated lines, paragraphs and sentences ------------------------------------------- */

/* A multiset of substrings of one text, compared by content (hash, then the characters). */
typedef struct {
    uint64_t hash;
    Py_ssize_t start, len, count, order;
} entry_t;

typedef struct {
    entry_t *e;
    Py_ssize_t mask, used;
} strset_t;

static int strset_init(strset_t *s) {
    s->e = calloc(256, sizeof(entry_t));
    s->mask = 255;
    s->used = 0;
    return s->e != NULL;
}

static int strset_grow(strset_t *s) {
    Py_ssize_t cap = 2 * (s->mask + 1);
    entry_t *e = calloc((size_t)cap, sizeof(entry_t));
    if (!e) return 0;
    for (Py_ssize_t i = 0; i <= s->mask; i++) {
        if (!s->e[i].count) continue;
        Py_ssize_t k = (Py_ssize_t)(s->e[i].hash & (uint64_t)(cap - 1));
        while (e[k].count) k = (k + 1) & (cap - 1);
        e[k] = s->e[i];
    }
    free(s->e);
    s->e = e;
    s->mask = cap - 1;
    return 1;
}

/* Adds text[a:b]; 0 when out of memory. */
INLINE int strset_add(int kind, const void *data, strset_t *s, Py_ssize_t a, Py_ssize_t b) {
    if (2 * (s->used + 1) > s->mask + 1 && !strset_grow(s)) return 0;
    uint64_t h = hash_bytes((const char *)data + a * kind, (size_t)(b - a) * (size_t)kind);
    Py_ssize_t k = (Py_ssize_t)(h & (uint64_t)s->mask);
    for (;;) {
        entry_t *e = &s->e[k];
        if (!e->count) {
            *e = (entry_t){h, a, b - a, 1, s->used++};
            return 1;
        }
        if (e->hash == h && e->len == b - a &&
            memcmp((const char *)data + e->start * kind, (const char *)data + a * kind, (size_t)(b - a) * (size_t)kind) == 0) {
            e->count++;
            return 1;
        }
        k = (k + 1) & s->mask;
    }
}

/* The most frequent entry, ties to the first added (Counter.most_common(1)). */
static entry_t *strset_top(strset_t *s) {
    entry_t *best = NULL;
    for (Py_ssize_t i = 0; i <= s->mask; i++) {
        entry_t *e = &s->e[i];
        if (e->count && (!best || e->count > best->count || (e->count == best->count && e->order < best->order)))
            best = e;
    }
    return best;
}

INLINE void strip_span(int kind, const void *data, Py_ssize_t *a, Py_ssize_t *b) {
    while (*a < *b && is_space(RD(*a))) (*a)++;
    while (*b > *a && is_space(RD(*b - 1))) (*b)--;
}

/* Whether text[a:b] holds at least `min` spaces. */
INLINE int has_spaces(int kind, const void *data, Py_ssize_t a, Py_ssize_t b, Py_ssize_t min) {
    Py_ssize_t n = 0;
    for (Py_ssize_t i = a; i < b && n < min; i++) n += RD(i) == ' ';
    return n >= min;
}

/* Adds the stripped lines of text.split("\n") with `min_spaces` spaces or more (spans NULL), or
 * text[a:b].strip() of every span; counts items and their characters. */
INLINE int add_lines(int kind, const void *data, Py_ssize_t len, const Py_ssize_t *sp, Py_ssize_t n_spans,
                     Py_ssize_t min_spaces, strset_t *s, Py_ssize_t *n_items, Py_ssize_t *chars) {
    if (!sp) {
        Py_ssize_t a = 0;
        for (Py_ssize_t i = 0; i <= len; i++) {
            if (i < len && RD(i) != '\n') continue;
            Py_ssize_t x = a, y = i;
            a = i + 1;
            strip_span(kind, data, &x, &y);
            if (!has_spaces(kind, data, x, y, min_spaces)) continue;
            (*n_items)++;
            *chars += y - x;
            if (!strset_add(kind, data, s, x, y)) return 0;
        }
        return 1;
    }
    for (Py_ssize_t j = 0; j < n_spans; j++) {
        Py_ssize_t x = sp[2 * j], y = sp[2 * j + 1];
        strip_span(kind, data, &x, &y);
        (*n_items)++;
        *chars += y - x;
        if (!strset_add(kind, data, s, x, y)) return 0;
    }
    return 1;
}

PyDoc_STRVAR(line_dups_doc,
"line_dups(text, spans=None, min_spaces=2) -> (n_items, chars, [(order, start, end, extra), ...])\n\n"
"Items: the stripped lines of text.split('\\n') with at least min_spaces spaces, or, given spans,\n"
"text[a:b].strip() of each. Returns how many items, their characters, and each item seen more\n"
"than once (its first occurrence, in order of appearance) with its extra occurrences.");

static PyObject *line_dups(PyObject *self, PyObject *args) {
    PyObject *text, *spans = Py_None;
    Py_ssize_t min_spaces = 2, n_spans = 0, n_items = 0, chars = 0;
    if (!PyArg_ParseTuple(args, "U|On", &text, &spans, &min_spaces)) return NULL;
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    Py_ssize_t *sp = NULL;
    if (spans != Py_None && !(sp = read_spans(spans, len, &n_spans))) return NULL;
    strset_t s;
    if (!strset_init(&s)) {
        free(sp);
        return PyErr_NoMemory();
    }
    int ok;
    BY_KIND(PyUnicode_KIND(text), ok = add_lines(kind, data, len, sp, n_spans, min_spaces, &s, &n_items, &chars));
    free(sp);
    PyObject *dups = ok ? PyList_New(0) : PyErr_NoMemory();
    for (Py_ssize_t i = 0; dups && i <= s.mask; i++) {
        entry_t *e = &s.e[i];
        if (e->count < 2) continue;
        PyObject *t = Py_BuildValue("(nnnn)", e->order, e->start, e->start + e->len, e->count - 1);
        if (!t || PyList_Append(dups, t) < 0) Py_CLEAR(dups);
        Py_XDECREF(t);
    }
    free(s.e);
    if (!dups || PyList_Sort(dups) < 0) {
        Py_XDECREF(dups);
        return NULL;
    }
    return Py_BuildValue("(nnN)", n_items, chars, dups);
}

/* Sentences: '. ', '? ', '! ' end a line (the space dropped), a line ends after each U+3002,
 * lines end at '\n'; stripped; kept with min_spaces spaces or more. */
INLINE int add_sentences(int kind, const void *data, Py_ssize_t len, Py_ssize_t min_spaces, Py_ssize_t head_over,
                         Py_ssize_t head_chars, strset_t *lines, strset_t *heads) {
    Py_ssize_t a = 0;
    for (Py_ssize_t i = 0; i <= len; i++) {
        Py_ssize_t end;
        if (i == len) {
            end = i;
        } else {
            Py_UCS4 c = RD(i);
            if (c == '\n') end = i;
            else if (c == ' ' && i > 0 && (RD(i - 1) == '.' || RD(i - 1) == '?' || RD(i - 1) == '!')) end = i;
            else if (c == 0x3002) end = i + 1;
            else continue;
        }
        Py_ssize_t x = a, y = end;
        a = i + 1;
        strip_span(kind, data, &x, &y);
        if (!has_spaces(kind, data, x, y, min_spaces)) continue;
        if (!strset_add(kind, data, lines, x, y)) return 0;
        if (y - x > head_over && !strset_add(kind, data, heads, x, x + head_chars)) return 0;
    }
    return 1;
}

PyDoc_STRVAR(top_sentence_doc,
"top_sentence(text, min_spaces=4, head_over=60, head_chars=48) -> (count, start, end)\n\n"
"The most repeated sentence with at least min_spaces spaces (first seen on ties), or the most\n"
"repeated opening (first head_chars characters of those longer than head_over) when it repeats\n"
"more (readability._top_repeat). count 0: no such sentence.");

static PyObject *top_sentence(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t min_spaces = 4, head_over = 60, head_chars = 48;
    if (!PyArg_ParseTuple(args, "U|nnn", &text, &min_spaces, &head_over, &head_chars)) return NULL;
    if (head_chars > head_over) head_chars = head_over; /* an opening lies inside its sentence */
    const void *data = PyUnicode_DATA(text);
    strset_t lines, heads;
    if (!strset_init(&lines)) return PyErr_NoMemory();
    if (!strset_init(&heads)) {
        free(lines.e);
        return PyErr_NoMemory();
    }
    int ok;
    BY_KIND(PyUnicode_KIND(text),
            ok = add_sentences(kind, data, PyUnicode_GET_LENGTH(text), min_spaces, head_over, head_chars, &lines, &heads));
    Py_ssize_t count = 0, start = 0, stop = 0;
    entry_t *top = ok ? strset_top(&lines) : NULL, *head = ok ? strset_top(&heads) : NULL;
    if (top) {
        count = top->count;
        start = top->start;
        stop = top->start + top->len;
    }
    if (head && head->count > count) {
        count = head->count;
        start = head->start;
        stop = head->start + head->len;
    }
    free(lines.e);
    free(heads.e);
    if (!ok) return PyErr_NoMemory();
    return Py_BuildValue("(nnn)", count, start, stop);
}

/* ---- Masking: text.py _MASK_RE.sub(spaces of the same length) ---------------------------- */

/* The superscripts, number forms, letterlike symbols, modifier letters and math alphanumerics
 * _MASK_RE masks as runs. */
INLINE int is_symbol_letter(Py_UCS4 c) {
    return c == 0xB2 || c == 0xB3 || c == 0xB9 || (c >= 0xBC && c <= 0xBE) || (c >= 0x2B0 && c <= 0x2FF) ||
           (c >= 0x2070 && c <= 0x209F) || (c >= 0x2100 && c <= 0x218F) || (c >= 0x1D400 && c <= 0x1D7FF);
}

/* Whether text[i:] starts with the ASCII string lit. */
INLINE int starts(int kind, const void *data, Py_ssize_t len, Py_ssize_t i, const char *lit, Py_ssize_t n) {
    if (i + n > len) return 0;
    for (Py_ssize_t k = 0; k < n; k++)
        if (RD(i + k) != (Py_UCS4)(unsigned char)lit[k]) return 0;
    return 1;
}

/* First index >= from where text continues with lit, or -1. */
INLINE Py_ssize_t find_lit(int kind, const void *data, Py_ssize_t len, Py_ssize_t from, const char *lit, Py_ssize_t n) {
    Py_UCS4 c0 = (unsigned char)lit[0];
    for (Py_ssize_t i = from; i + n <= len; i++)
        if (RD(i) == c0 && starts(kind, data, len, i, lit, n)) return i;
    return -1;
}

/* Whether text[i:] continues with text[a:a+n]. */
INLINE int starts_same(int kind, const void *data, Py_ssize_t len, Py_ssize_t i, Py_ssize_t a, Py_ssize_t n) {
    if (i + n > len) return 0;
    for (Py_ssize_t k = 0; k < n; k++)
        if (RD(i + k) != RD(a + k)) return 0;
    return 1;
}

/* Closing markers known to be absent from some position on: the scan only moves forward, so a
 * search that failed once fails for every later opener (no quadratic rescans of a text full of
 * unclosed "\\[" or "$$"). */
#define ABSENT_NAMES 16
typedef struct {
    char fence, dollars, bracket, paren;
    int n_names; /* environment names whose \end{name} is absent from some position on */
    Py_ssize_t name_at[ABSENT_NAMES], name_len[ABSENT_NAMES];
    int ends_ready; /* positions of every "\end{", found at the first \begin{name} */
    Py_ssize_t *ends, n_ends, cap_ends;
} absent_t;

/* The end of the _MASK_RE match at p (alternatives tried in the pattern's order), or -1. */
INLINE Py_ssize_t mask_match(int kind, const void *data, Py_ssize_t len, Py_ssize_t p, absent_t *gone) {
    Py_UCS4 c = RD(p);
    if (c == '`') {
        if (starts(kind, data, len, p, "```", 3)) { /* ```.*?(?:```|\Z) */
            Py_ssize_t q = gone->fence ? -1 : find_lit(kind, data, len, p + 3, "```", 3);
            gone->fence |= q < 0;
            return q < 0 ? len : q + 3;
        }
        for (Py_ssize_t j = p + 1; j < len; j++) { /* `[^`\n]*` */
            Py_UCS4 d = RD(j);
            if (d == '`') return j + 1;
            if (d == '\n') break;
        }
        return -1;
    }
    if (c == '$') {
        if (p + 1 < len && RD(p + 1) == '$') { /* \$\$.*?\$\$ */
            Py_ssize_t q = gone->dollars ? -1 : find_lit(kind, data, len, p + 2, "$$", 2);
            gone->dollars |= q < 0;
            if (q >= 0) return q + 2;
        }
        for (Py_ssize_t j = p + 1; j < len && j <= p + 401; j++) { /* \$[^$\n]{0,400}?\$ */
            Py_UCS4 d = RD(j);
            if (d == '$') return j + 1;
            if (d == '\n') break;
        }
        return -1;
    }
    if (c == '\\') {
        if (p + 1 < len && (RD(p + 1) == '[' || RD(p + 1) == '(')) { /* \\\[.*?\\\] and \\\(.*?\\\) */
            char *g = RD(p + 1) == '[' ? &gone->bracket : &gone->paren;
            Py_ssize_t q = *g ? -1 : find_lit(kind, data, len, p + 2, RD(p + 1) == '[' ? "\\]" : "\\)", 2);
            *g |= q < 0;
            if (q >= 0) return q + 2;
        }
        if (starts(kind, data, len, p, "\\begin{", 7)) { /* \\begin\{(\w+\*?)\}.*?\\end\{\1\} */
            Py_ssize_t j = p + 7;
            while (j < len && re_word(RD(j))) j++;
            if (j > p + 7) {
                if (j < len && RD(j) == '*') j++;
                if (j < len && RD(j) == '}') {
                    Py_ssize_t a = p + 7, n = j - a; /* the name, with its star */
                    int known_absent = 0;
                    for (int k = 0; k < gone->n_names && !known_absent; k++)
                        known_absent = gone->name_len[k] == n && starts_same(kind, data, len, gone->name_at[k], a, n);
                    if (!known_absent && !gone->ends_ready) { /* every \end{ of the text, once */
                        gone->ends_ready = 1;
                        for (Py_ssize_t q = 0; q + 5 <= len; q++)
                            if (RD(q) == '\\' && starts(kind, data, len, q, "\\end{", 5)) {
                                if (gone->n_ends == gone->cap_ends) {
                                    Py_ssize_t cap = gone->cap_ends ? 2 * gone->cap_ends : 64;
                                    Py_ssize_t *e = realloc(gone->ends, (size_t)cap * sizeof(Py_ssize_t));
                                    if (!e) return -2;
                                    gone->ends = e;
                                    gone->cap_ends = cap;
                                }
                                gone->ends[gone->n_ends++] = q;
                            }
                    }
                    if (!known_absent) {
                        Py_ssize_t lo = 0, hi = gone->n_ends; /* the first \end{ after the \begin{name} */
                        while (lo < hi) {
                            Py_ssize_t mid = (lo + hi) / 2;
                            if (gone->ends[mid] < j + 1) lo = mid + 1;
                            else hi = mid;
                        }
                        for (Py_ssize_t e = lo; e < gone->n_ends; e++) {
                            Py_ssize_t q = gone->ends[e];
                            if (q + 5 + n < len && starts_same(kind, data, len, q + 5, a, n) && RD(q + 5 + n) == '}')
                                return q + 5 + n + 1;
                        }
                        if (gone->n_names < ABSENT_NAMES) { /* no \end{name} from here on */
                            gone->name_at[gone->n_names] = a;
                            gone->name_len[gone->n_names++] = n;
                        }
                    }
                }
            }
        }
        Py_ssize_t j = p + 1; /* \\[A-Za-z]+(?:\{[^{}\n]{0,80}\})? */
        while (j < len && RD(j) < 128 && ((RD(j) | 32) >= 'a' && (RD(j) | 32) <= 'z')) j++;
        if (j == p + 1) return -1;
        if (j < len && RD(j) == '{') {
            Py_ssize_t k = j + 1;
            while (k < len && k - (j + 1) < 80 && RD(k) != '{' && RD(k) != '}' && RD(k) != '\n') k++;
            if (k < len && RD(k) == '}') return k + 1;
        }
        return j;
    }
    if (c == 'h') { /* https?://\S+ */
        if (!starts(kind, data, len, p, "http", 4)) return -1;
        Py_ssize_t j = p + 4;
        if (j < len && RD(j) == 's') j++;
        if (!starts(kind, data, len, j, "://", 3)) return -1;
        Py_ssize_t k = j + 3;
        while (k < len && !is_space(RD(k))) k++;
        return k > j + 3 ? k : -1;
    }
    if (is_symbol_letter(c)) {
        Py_ssize_t j = p + 1;
        while (j < len && is_symbol_letter(RD(j))) j++;
        return j;
    }
    if (c >= '0' && c <= '9') { /* \d+(?:[.,]\d+)* (the lookahead asks for an ASCII digit first) */
        Py_ssize_t j = p + 1;
        while (j < len && Py_UNICODE_ISDECIMAL(RD(j))) j++;
        while (j + 1 < len && (RD(j) == '.' || RD(j) == ',') && Py_UNICODE_ISDECIMAL(RD(j + 1))) {
            j += 2;
            while (j < len && Py_UNICODE_ISDECIMAL(RD(j))) j++;
        }
        return j;
    }
    return -1;
}

/* Marks masked characters in m[]; returns the largest code point left unmasked. */
INLINE Py_UCS4 mask_into(int kind, const void *data, Py_ssize_t len, char *m) {
    Py_ssize_t p = 0;
    absent_t gone = {0};
    while (p < len) {
        Py_UCS4 c = RD(p);
        Py_ssize_t end = -1;
        if (c == '`' || c == '$' || c == '\\' || c == 'h' || (c >= '0' && c <= '9') || (c >= 0xB2 && is_symbol_letter(c)))
            end = mask_match(kind, data, len, p, &gone);
        if (end == -2) { /* out of memory */
            free(gone.ends);
            return (Py_UCS4)-1;
        }
        if (end > p) {
            memset(m + p, 1, (size_t)(end - p));
            p = end;
        } else {
            p++;
        }
    }
    free(gone.ends);
    Py_UCS4 maxc = ' ';
    for (Py_ssize_t i = 0; i < len; i++)
        if (!m[i] && RD(i) > maxc) maxc = RD(i);
    return maxc;
}

PyDoc_STRVAR(mask_non_prose_doc,
"mask_non_prose(text) -> str: text with code, LaTeX, URLs and numbers replaced by spaces of the\n"
"same length (text.py _MASK_RE).");

static PyObject *mask_non_prose(PyObject *self, PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    char *m = calloc((size_t)len + 1, 1);
    if (!m) return PyErr_NoMemory();
    Py_UCS4 maxc;
    BY_KIND(PyUnicode_KIND(text), maxc = mask_into(kind, data, len, m));
    if (maxc == (Py_UCS4)-1) {
        free(m);
        return PyErr_NoMemory();
    }
    /* The result's width is that of what is left: CPython needs the narrowest (canonical) one. */
    PyObject *out = PyUnicode_New(len, maxc);
    if (out) {
        int okind = PyUnicode_KIND(out);
        void *odata = PyUnicode_DATA(out);
        int ikind = PyUnicode_KIND(text);
        for (Py_ssize_t i = 0; i < len; i++)
            PyUnicode_WRITE(okind, odata, i, m[i] ? ' ' : PyUnicode_READ(ikind, data, i));
    }
    free(m);
    return out;
}

static PyMethodDef methods[] = {
    {"ngram_stats", ngram_stats, METH_VARARGS, ngram_stats_doc},
    {"word_hash", word_hash, METH_VARARGS, word_hash_doc},
    {"prose_counts", prose_counts, METH_VARARGS, prose_counts_doc},
    {"char_flags", char_flags, METH_VARARGS, char_flags_doc},
    {"paragraph_spans", paragraph_spans, METH_VARARGS, paragraph_spans_doc},
    {"word_counts", word_counts, METH_VARARGS, word_counts_doc},
    {"line_dups", line_dups, METH_VARARGS, line_dups_doc},
    {"top_sentence", top_sentence, METH_VARARGS, top_sentence_doc},
    {"mask_non_prose", mask_non_prose, METH_VARARGS, mask_non_prose_doc},
    {"stopword_hits", stopword_hits, METH_VARARGS, stopword_hits_doc},
    {"count_phrases", count_phrases, METH_VARARGS, count_phrases_doc},
    {"has_surrogate", has_surrogate, METH_VARARGS, has_surrogate_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_textkernel",
                                    "Compiled word loops of the readability and language-mixing filters.", -1, methods};

PyMODINIT_FUNC PyInit__textkernel(void) {
    for (int c = 0; c < 128; c++) ascii_space[c] = (char)Py_UNICODE_ISSPACE((Py_UCS4)c);
    for (int c = 0; c < 256; c++) latin1_flags[c] = (unsigned char)char_flags_of((Py_UCS4)c);
    return PyModule_Create(&module);
}
