"""Text normalisation and tokenisation shared by exact hashing, MinHash and decontamination.

Normalisation: Unicode NFKC (full-width forms, ligatures, compatibility digits fold to their plain
form), lower case, punctuation and symbols as separators, any whitespace run as one separator.
Tokens are runs of letters/digits; every CJK character (U+3000–U+D7FF, i.e. CJK ideographs, kana,
Hangul) is a token of its own, so n-grams of tokens are word n-grams in English and character
n-grams in Chinese or Japanese.

The tokenizer works on a whole batch of documents at once, on the UTF-8 bytes in numpy, and never
loops over words in Python: that is what lets it hash 20 KB reasoning traces at tens of MB/s per
core. Token hashes are polynomial hashes of the token's bytes (mod 2**64), so the same token has
the same hash in every batch, and `normalize()` (for display and tests) is built from the same
token boundaries, so "exact" and "near" always agree on what a word is.

>>> normalize("Ｆｉｎｄ  the  VALUE of x, please!")
'find the value of x please'
>>> normalize("小明有3个苹果。")
'小 明 有 3 个 苹 果'
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

U64 = np.uint64
_P = 0x100000001B3  # FNV-1 64-bit prime
_MIX1 = U64(0xBF58476D1CE4E5B9)
_MIX2 = U64(0x94D049BB133111EB)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place where possible: spreads every input bit over all 64."""
    x = x ^ (x >> U64(30))
    x *= _MIX1
    x ^= x >> U64(27)
    x *= _MIX2
    x ^= x >> U64(31)
    return x


_P_INV = pow(_P, -1, 1 << 64)


def _power_table(base: int, n: int) -> np.ndarray:
    """base**i mod 2**64 for i < n, built from two short cumprods and one outer product."""
    block = 4096
    with np.errstate(over="ignore"):
        small = np.cumprod(np.r_[np.uint64(1), np.full(block - 1, base, dtype=U64)], dtype=U64)
        step = pow(base, block, 1 << 64)
        n_blocks = -(-n // block)
        big = np.cumprod(np.r_[np.uint64(1), np.full(n_blocks - 1, step, dtype=U64)], dtype=U64)
        return (big[:, None] * small[None, :]).ravel()[:n]


class _Powers:
    """P**i and P**-i mod 2**64 for every byte position of a batch, grown rarely."""

    def __init__(self) -> None:
        self.pow = np.ones(1, dtype=U64)
        self.inv = np.ones(1, dtype=U64)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.pow) < n:
            size = 1 << max(22, (n - 1).bit_length())
            self.pow, self.inv = _power_table(_P, size), _power_table(_P_INV, size)
        return self.pow[:n], self.inv[:n]


_POWERS = _Powers()

@dataclass
class TokenBatch:
    """Tokens of a batch of documents, concatenated.

    `hashes[i]` is token i's 64-bit hash; `doc[i]` the index of its document in the batch;
    `offsets[d]:offsets[d+1]` the tokens of document d; `starts/ends` byte spans in `buf`.
    """

    hashes: np.ndarray  # uint64 [n_tokens]
    doc: np.ndarray  # int64 [n_tokens]
    offsets: np.ndarray  # int64 [n_docs + 1]
    starts: np.ndarray  # int64 [n_tokens]
    ends: np.ndarray  # int64 [n_tokens]
    buf: bytes  # the normalised, lower-cased UTF-8 text (NUL between documents)

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    def token_text(self, i: int) -> str:
        return self.buf[self.starts[i] : self.ends[i]].decode("utf-8", "replace")

    def doc_tokens(self, d: int) -> list[str]:
        return [self.token_text(i) for i in range(self.offsets[d], self.offsets[d + 1])]


def _prepare(texts: list[str]) -> bytes:
    """NFKC + lower case of every text as UTF-8, joined by NUL (a separator no token contains).

    Lower-casing is left to the bytes: ASCII letters through a lookup table in `tokenize`, and
    the non-ASCII characters only where one of them changes under `str.lower` (`_lower_non_ascii`):
    `str.lower` on a whole non-ASCII text was a fifth of the hashing cost, and most traces'
    non-ASCII characters (×, ≤, CJK) have no lower case.
    """
    parts = []
    for t in texts:
        if t is None:
            t = ""
        if "\x00" in t:
            t = t.replace("\x00", " ")
        # NFKC is a third of the hashing cost of a non-ASCII trace; the quick check is 30x
        # cheaper and most real traces pass it. (A regex that finds only the characters NFKC
        # changes was tried: it scans 9x slower than normalising everything.)
        if not t.isascii() and not unicodedata.is_normalized("NFKC", t):
            t = unicodedata.normalize("NFKC", t)
        parts.append(t.encode("utf-8", "surrogatepass"))
    return _lower_non_ascii(parts)


# Non-ASCII code point -> whether str.lower changes it (filled as characters are met).
_CHANGES_LOWER: dict[int, bool] = {}


def _code_points(b: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """The code points of the UTF-8 characters whose lead bytes are at `lead` (lead bytes >= 0xC0)."""
    x = b[lead].astype(np.int64)
    nb = np.where(x >= 0xF0, 4, np.where(x >= 0xE0, 3, 2))
    cp = x & np.where(nb == 4, 0x07, np.where(nb == 3, 0x0F, 0x1F))
    n = len(b)
    for k in (1, 2, 3):
        more = nb > k
        cont = b[np.minimum(lead + k, n - 1)].astype(np.int64) & 0x3F
        cp = np.where(more, (cp << 6) | cont, cp)
    return cp


def _lower_non_ascii(parts: list[bytes]) -> bytes:
    """The NUL-joined parts, each document with a non-ASCII character that `str.lower` changes
    lower-cased as a whole by `str.lower` (so final sigma and multi-character mappings are
    exactly Python's); the other documents are left for the ASCII table in `tokenize`.

    The same result as `str.lower` on every text: Python lower-cases character by character
    (final sigma, the one context rule, is a character that changes), so a text none of whose
    non-ASCII characters changes differs from its lower case only in ASCII letters.
    """
    buf = b"\x00".join(parts)
    b = np.frombuffer(buf, dtype=np.uint8)
    lead = np.flatnonzero(b >= 0xC0)
    if len(lead) == 0:
        return buf
    cp = _code_points(b, lead)
    uniq = np.unique(cp)
    for c in uniq.tolist():
        if c not in _CHANGES_LOWER:
            ch = chr(c)
            _CHANGES_LOWER[c] = ch.lower() != ch
    changing = [c for c in uniq.tolist() if _CHANGES_LOWER[c]]
    if not changing:
        return buf
    hit = lead[np.isin(cp, changing)]
    docs = np.unique(np.searchsorted(np.flatnonzero(b == 0), hit))
    for d in docs.tolist():
        parts[d] = parts[d].decode("utf-8", "surrogatepass").lower().encode("utf-8", "surrogatepass")
    return b"\x00".join(parts)


def _ascii_lower(raw: np.ndarray) -> np.ndarray:
    """ASCII A-Z to a-z, other bytes as they are (wrapping uint8 compares: no 256-entry gather,
    which was 2-3x slower per byte)."""
    upper = (raw - np.uint8(65)) < np.uint8(26)
    return raw + (upper.view(np.uint8) << np.uint8(5))


def _word_bytes(a: np.ndarray) -> np.ndarray:
    """ASCII letters/digits of lower-cased bytes and every non-ASCII byte."""
    return ((a - np.uint8(97)) < np.uint8(26)) | ((a - np.uint8(48)) < np.uint8(10)) | (a >= np.uint8(0x80))


def tokenize(texts: list[str]) -> TokenBatch:
    """Tokenise and hash a batch of texts (see the module docstring for what a token is)."""
    buf = _prepare(texts)
    a = _ascii_lower(np.frombuffer(buf, dtype=np.uint8))
    n = len(a)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return TokenBatch(np.zeros(0, dtype=U64), z, np.zeros(len(texts) + 1, dtype=np.int64), z, z, buf)

    # Word bytes: ASCII letters/digits and every non-ASCII byte, except the separators below.
    word = _word_bytes(a)
    # Three-byte characters are rare in most traces: handle them on their indices only.
    hi = np.flatnonzero(a >= 0xE2)
    hi = hi[hi + 2 < n]
    inner = np.zeros(0, dtype=np.int64)
    if len(hi):
        lead, nxt = a[hi], a[hi + 1]
        # Punctuation blocks are separators: General Punctuation (U+2000–U+206F: dashes, curly
        # quotes, ellipsis: E2 80/81 xx) and CJK Symbols and Punctuation (U+3000–U+303F: 。、「」:
        # E3 80 xx). NFKC already folded full-width ASCII (，？) to ASCII.
        sep = ((lead == 0xE2) & ((nxt == 0x80) | (nxt == 0x81))) | ((lead == 0xE3) & (nxt == 0x80))
        si = hi[sep]
        for k in (0, 1, 2):
            word[si + k] = False
        # A CJK character (lead byte E3–ED: U+3000–U+D7FF) is a token by itself: a token
        # boundary before it and after its three bytes.
        ci = hi[(lead >= 0xE3) & (lead <= 0xED) & ~sep]
        extra = np.concatenate([ci, ci + 3])
        extra = extra[(extra < n) & word[np.minimum(extra, n - 1)]]
        # Only the positions inside a word run split it (one token ends, the next starts).
        inner = extra[(extra > 0) & word[np.maximum(extra - 1, 0)]]
    # Token boundaries: where word and non-word bytes meet (the buffer's ends count as non-word).
    edge = np.empty(n + 1, dtype=bool)
    edge[0] = word[0]
    np.not_equal(word[1:], word[:-1], out=edge[1:n])
    edge[n] = word[-1]
    if len(inner):
        # Marked in place, not sorted in: a sort of every boundary cost as much as the hashing.
        edge[inner] = True
        bnd = np.flatnonzero(edge)
        starts = bnd[word[np.minimum(bnd, n - 1)] & (bnd < n)]
        ends = bnd[word[np.maximum(bnd - 1, 0)] & (bnd > 0)]
    else:
        # Word runs alternate with the rest: boundaries are start, end, start, end, ...
        bnd = np.flatnonzero(edge)
        starts = bnd[0::2]
        ends = bnd[1::2]

    # Polynomial prefix hash: H[i] = sum_{j<i} a[j] * P**j; token [s,e) = (H[e]-H[s]) * P**-s.
    pw, inv = _POWERS.get(n)
    with np.errstate(over="ignore"):
        h = np.empty(n + 1, dtype=U64)
        h[0] = 0
        np.multiply(pw, a, out=h[1:])
        np.cumsum(h, out=h)
        tok = mix64((h[ends] - h[starts]) * inv[starts])
    del h

    # Document of every token: documents are separated by NUL bytes.
    bounds = np.flatnonzero(a == 0)
    offsets = np.empty(len(texts) + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:-1] = np.searchsorted(starts, bounds)
    offsets[-1] = len(starts)
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(offsets))
    return TokenBatch(tok, doc, offsets, starts, ends, a.tobytes())


def normalize(text: str) -> str:
    """The normalised form of `text`: its tokens joined by single spaces."""
    return " ".join(tokenize([text]).doc_tokens(0))


_SEQ_A = U64(0x9E3779B97F4A7C15)
_SEQ_B = U64(0xC2B2AE3D27D4EB4F)


def exact_hashes(tb: TokenBatch) -> list[str]:
    """A 128-bit hash (32 hex chars) of each document's normalised token sequence.

    Two documents get the same hash iff (barring a 2**-128 collision) they have the same tokens
    in the same order: equal up to case, whitespace, punctuation and Unicode compatibility forms.
    """
    n_docs = tb.n_docs
    out = np.zeros((n_docs, 2), dtype=U64)
    if len(tb.hashes):
        pos = (np.arange(len(tb.hashes), dtype=np.int64) - tb.offsets[tb.doc]).astype(U64)
        lengths = (tb.offsets[1:] - tb.offsets[:-1]).astype(U64)
        with np.errstate(over="ignore"):
            # Each token mixed with its position, then two different wrapping sums per
            # document: order matters through the position, and 128 bits keep collisions out.
            v = mix64(tb.hashes + pos * _SEQ_A)
            for col, w in enumerate((np.ones(1, dtype=U64), pos * _SEQ_B + U64(1))):
                s = np.zeros(len(v) + 1, dtype=U64)
                np.cumsum(v * w, out=s[1:])
                out[:, col] = mix64((s[tb.offsets[1:]] - s[tb.offsets[:-1]]) ^ (lengths * _SEQ_A))
    return [f"{x:016x}{y:016x}" for x, y in out.tolist()]
