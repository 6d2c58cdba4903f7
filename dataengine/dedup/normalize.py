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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


def _slow(t: str | None) -> bytes:
    """A text's normalised UTF-8 the direct way: NFKC, then lower case (the definition that the
    byte-level path below reproduces for texts with no special character)."""
    t = (t or "").replace("\x00", " ")
    if not t.isascii():
        if not unicodedata.is_normalized("NFKC", t):
            t = unicodedata.normalize("NFKC", t)
        t = t.lower()
    return t.encode("utf-8", "surrogatepass")


def _prepare(texts: list[str]) -> tuple[bytes, np.ndarray]:
    """NFKC + lower case of every text as UTF-8, joined by NUL (a separator no token contains),
    and the byte offset where each document starts (plus the end)."""
    parts = [(t.replace("\x00", " ") if "\x00" in t else t).encode("utf-8", "surrogatepass") if t else b"" for t in texts]
    starts = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) + 1 for p in parts], out=starts[1:])
    return _fix_special(b"\x00".join(parts), starts, lambda d: texts[d])


def _prepare_arrow(arr: pa.Array) -> tuple[bytes, np.ndarray]:
    """`_prepare` of an Arrow string array, from its UTF-8 buffer: no Python string per text."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    off_t = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], dtype=off_t)[arr.offset : arr.offset + n + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, dtype=np.uint8)
    values = data[offs[0] : offs[-1]]
    lengths = np.diff(offs)
    if n == 0:
        return b"", np.zeros(1, dtype=np.int64)
    nul = values == 0
    if nul.any():  # a NUL inside a text is a space (as str.replace in `_slow`)
        values = np.where(nul, np.uint8(32), values)
    # Document d's bytes move right by d: one NUL before each document but the first.
    out = np.insert(values, offs[1:-1] - offs[0], np.uint8(0)) if n > 1 else values
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths + 1, out=starts[1:])
    return _fix_special(out.tobytes(), starts, lambda d: arr[d].as_py())


# Per code point: 1 if a text holding it goes the direct way (`_slow`), 0 if not, -1 not known yet.
_SPECIAL = np.full(0x110000, -1, dtype=np.int8)
_SPECIAL[:0x80] = 0


# Starters (combining class 0) that compose with the character before them (NFKC_QC=Maybe):
# the class-0 seconds of two-character canonical decompositions (unicodedata 14.0; the tests
# rescan the running Python's tables to catch a newer Unicode), and the Hangul medial vowels
# and final consonants that compose algorithmically.
_COMPOSING_STARTERS = frozenset(
    [0x9BE, 0x9D7, 0xB3E, 0xB56, 0xB57, 0xBBE, 0xBD7, 0xCC2, 0xCD5, 0xCD6, 0xD3E, 0xD57, 0xDCF, 0xDDF,
     0xFB5, 0xFB7, 0x102E, 0x1B35, 0x11127, 0x1133E, 0x11357, 0x114B0, 0x114BA, 0x114BD, 0x115AF, 0x11930]
    + list(range(0x1161, 0x1176)) + list(range(0x11A8, 0x11C3))
)


def _is_special(c: int) -> bool:
    """Whether a text holding code point `c` may change under NFKC or under `str.lower` other
    than in its ASCII letters. A character that NFKC keeps as it is, of combining class 0, that
    composes with nothing before it and has no lower case leaves a text's NFKC quick check at
    YES and `str.lower` character by character (final sigma, the one context rule, is a
    character that changes), so the text's normal form is itself with ASCII lower-cased."""
    if 0xD800 <= c <= 0xDFFF:
        return True
    ch = chr(c)
    if ch.lower() != ch or unicodedata.normalize("NFKC", ch) != ch or unicodedata.combining(ch):
        return True
    return c in _COMPOSING_STARTERS


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
    return np.minimum(cp, 0x10FFFF)


def _fix_special(buf: bytes, starts: np.ndarray, text_of: Callable[[int], str | None]) -> tuple[bytes, np.ndarray]:
    """`buf` with every document that holds a special character (`_is_special`) replaced by its
    direct normal form (`_slow`); the other documents are already normal up to ASCII case, which
    `tokenize` folds on the bytes. Per-text NFKC checks and `str.lower` were half the hashing
    cost, and most traces' non-ASCII characters (×, ≤, CJK) are not special."""
    b = np.frombuffer(buf, dtype=np.uint8)
    lead = np.flatnonzero(b >= 0xC0)
    if len(lead) == 0:
        return buf, starts
    cp = _code_points(b, lead)
    if len(cp) < 100_000:
        uniq = np.unique(cp)
    else:  # CJK-heavy batches: a bitmap over all code points beats sorting them
        seen = np.zeros(0x110000, dtype=bool)
        seen[cp] = True
        uniq = np.flatnonzero(seen)
    unknown = uniq[_SPECIAL[uniq] < 0]
    for c in unknown.tolist():
        _SPECIAL[c] = _is_special(c)
    hit = _SPECIAL[cp] > 0
    if not hit.any():
        return buf, starts
    docs = np.unique(np.searchsorted(starts, lead[hit], side="right") - 1)
    pieces, prev = [], 0
    for d in docs.tolist():
        pieces += [buf[prev : starts[d]], _slow(text_of(d))]
        prev = starts[d + 1] - 1  # the NUL after document d (or the end)
    pieces.append(buf[prev:])
    out = b"".join(pieces)
    # New document starts: after each NUL (the normal forms hold none).
    new = np.zeros(len(starts), dtype=np.int64)
    new[1:-1] = np.flatnonzero(np.frombuffer(out, dtype=np.uint8) == 0) + 1
    new[-1] = len(out) + 1
    return out, new


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
    return _tokenize(*_prepare(texts))


def tokenize_arrow(arr: pa.Array | pa.ChunkedArray) -> TokenBatch:
    """`tokenize` of an Arrow string column (null is the empty text), read from its buffers."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return _tokenize(*_prepare_arrow(arr))


def _tokenize(buf: bytes, doc_starts: np.ndarray) -> TokenBatch:
    n_docs = len(doc_starts) - 1
    a = _ascii_lower(np.frombuffer(buf, dtype=np.uint8))
    n = len(a)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return TokenBatch(np.zeros(0, dtype=U64), z, np.zeros(n_docs + 1, dtype=np.int64), z, z, buf)

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

    # Document of every token: documents are separated by NUL bytes (at doc_starts[1:] - 1).
    offsets = np.empty(n_docs + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:-1] = np.searchsorted(starts, doc_starts[1:-1] - 1)
    offsets[-1] = len(starts)
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(offsets))
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
