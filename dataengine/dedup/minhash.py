"""MinHash signatures and LSH band keys, vectorised over a whole batch of documents.

Shingles are n consecutive tokens (`normalize.tokenize`): word 5-grams in English, character
5-grams in CJK text. A document shorter than n tokens is one shingle of all its tokens.

Signatures use one-permutation hashing with optimal densification (Li, Owen & Zhang 2012;
Shrivastava 2017): each shingle is hashed once, the hash picks one of `num_perm` bins and the
bin keeps its minimum; empty bins borrow from a fixed probe sequence of other bins. The collision
probability of two signatures' slots is the Jaccard similarity of the shingle sets, as with
`num_perm` independent permutations (what datasketch computes), but the cost is one hash per
shingle instead of `num_perm`: a 20 KB trace has ~3,500 shingles, so this is 128x less work.
`method="permutations"` computes the classic k-hash signature for comparison.

>>> b, r = 16, 8
>>> round(implied_threshold(b, r), 3)
0.707
"""

from __future__ import annotations

import numpy as np

from dataengine.dedup.normalize import U64, TokenBatch, mix64

EMPTY = np.uint32(0xFFFFFFFF)
_GOLD = U64(0x9E3779B97F4A7C15)
# Odd multipliers, one per position in a shingle (cycled past 16 positions).
_MULT = (np.random.default_rng(0x5151).integers(1, 2**63, size=16, dtype=np.uint64) * U64(2) + U64(1)).astype(U64)


def implied_threshold(bands: int, rows: int) -> float:
    """The Jaccard similarity at which a pair becomes a candidate with probability ~1/2."""
    return float((1.0 / bands) ** (1.0 / rows))


def candidate_probability(j: float, bands: int, rows: int) -> float:
    """P(a pair of Jaccard `j` shares at least one band) = 1 - (1 - j**r)**b."""
    return float(1.0 - (1.0 - j**rows) ** bands)


def shingles(tb: TokenBatch, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(doc index, 64-bit shingle hash) of every n-token shingle of every document in `tb`."""
    doc, acc, _ = shingles_at(tb, n)
    return doc, acc


def shingles_at(tb: TokenBatch, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`shingles`, plus the index of each shingle's first token (to show the n-gram's text)."""
    h, doc = tb.hashes, tb.doc
    m = len(h)
    if m == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, np.zeros(0, dtype=U64), z
    lengths = tb.offsets[1:] - tb.offsets[:-1]
    # A shingle starts at every token with n tokens left in its document, and at the first
    # token of a document that has fewer than n tokens in all (one shingle of all its tokens).
    valid = np.ones(m, dtype=bool)
    long_end = tb.offsets[1:][lengths >= n]
    for k in range(1, n):
        valid[long_end - k] = False
    short = np.flatnonzero((lengths > 0) & (lengths < n))
    valid[_short_tails(tb.offsets, short)] = False
    idx = np.flatnonzero(valid)
    with np.errstate(over="ignore"):
        # Token hashes are already mixed: a sum with distinct odd multipliers per position keeps
        # order ("a b" != "b a"), and one final mix spreads it. Computed on shifted slices of
        # the whole token array (no gathers), then taken at the shingle starts; documents
        # shorter than n tokens are summed over their own tokens only.
        acc_all = h * _MULT[0]
        tmp = np.empty(m, dtype=U64)
        for k in range(1, n):
            t = np.multiply(h[k:], _MULT[k % len(_MULT)], out=tmp[: m - k])
            t += U64(k)
            acc_all[: m - k] += t
        acc = acc_all[idx]
        if len(short):
            first = tb.offsets[short]
            sacc = np.zeros(len(short), dtype=U64)
            for k in range(n):
                ok = lengths[short] > k
                sacc[ok] += h[first[ok] + k] * _MULT[k % len(_MULT)] + U64(k)
            acc[np.searchsorted(idx, first)] = sacc
        acc = mix64(acc)
    return doc[idx], acc, idx


def _short_tails(offsets: np.ndarray, short: np.ndarray) -> np.ndarray:
    """Every token after the first of the documents in `short` (fewer than n tokens)."""
    lengths = offsets[short + 1] - offsets[short]
    rest = lengths - 1
    if rest.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.repeat(offsets[short] + 1, rest)
    within = np.arange(int(rest.sum()), dtype=np.int64) - np.repeat(np.cumsum(rest) - rest, rest)
    return first + within


def signatures(
    doc: np.ndarray, sh: np.ndarray, n_docs: int, num_perm: int = 128, method: str = "oph", seed: int = 1
) -> np.ndarray:
    """MinHash signatures [n_docs, num_perm] (uint32) from (doc, shingle hash) pairs.

    A document without shingles (empty text) gets a signature of EMPTY in every slot; callers
    keep such documents out of LSH.
    """
    seed_mix = mix64(np.array([seed], dtype=U64))[0]
    if method == "oph":
        return _oph(doc, sh ^ seed_mix, n_docs, num_perm)
    if method == "permutations":
        return _permutations(doc, sh ^ seed_mix, n_docs, num_perm, seed)
    raise ValueError(f"unknown MinHash method {method!r}; known: oph, permutations")


def _oph(doc: np.ndarray, sh: np.ndarray, n_docs: int, k: int) -> np.ndarray:
    sig = np.full(n_docs * k, EMPTY, dtype=np.uint32)
    if len(sh):
        with np.errstate(over="ignore"):
            hi = sh >> U64(32)
            bins = ((hi * U64(k)) >> U64(32)).astype(np.int64)  # fast range: uniform in [0, k)
            val = (sh & U64(0xFFFFFFFF)).astype(np.uint32)
        np.minimum.at(sig, doc * k + bins, val)
    sig = sig.reshape(n_docs, k)
    return _densify(sig)


_PROBES: dict[int, np.ndarray] = {}


def _probe_table(k: int, rounds: int = 64) -> np.ndarray:
    """probe[r, j]: the bin that empty bin j borrows from in round r (same for every document)."""
    if k not in _PROBES:
        rng = np.random.default_rng(0x5EED)
        _PROBES[k] = rng.integers(0, k, size=(rounds, k))
    return _PROBES[k]


def _densify(sig: np.ndarray) -> np.ndarray:
    """Optimal densification: an empty bin takes the value of the first non-empty bin along its
    own fixed random probe sequence (only originally filled bins are borrowed from)."""
    empty = sig == EMPTY
    rows = np.flatnonzero(empty.any(axis=1) & ~empty.all(axis=1))
    if len(rows) == 0:
        return sig
    sub = sig[rows]
    orig = sub.copy()
    todo = orig == EMPTY
    k = sig.shape[1]
    probes = _probe_table(k)
    r_idx = np.arange(len(rows))[:, None]
    for r in range(probes.shape[0]):
        cand = orig[r_idx, probes[r][None, :]]
        fill = todo & (cand != EMPTY)
        sub[fill] = cand[fill]
        todo &= ~fill
        if not todo.any():
            break
    if todo.any():
        # Past the random probes (very short documents): walk to the next filled bin circularly.
        for step in range(1, k):
            cand = np.roll(orig, -step, axis=1)
            fill = todo & (cand != EMPTY)
            sub[fill] = cand[fill]
            todo &= ~fill
            if not todo.any():
                break
    sig[rows] = sub
    return sig


def _permutations(doc: np.ndarray, sh: np.ndarray, n_docs: int, k: int, seed: int) -> np.ndarray:
    """Classic MinHash: k universal hashes (a*x + b mod 2**64, top 32 bits), min per document."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=k, dtype=np.uint64) | U64(1)
    b = rng.integers(0, 2**63, size=k, dtype=np.uint64)
    sig = np.full((n_docs, k), EMPTY, dtype=np.uint32)
    step = max(1, 4_000_000 // k)
    with np.errstate(over="ignore"):
        for s in range(0, len(sh), step):
            x = sh[s : s + step, None]
            v = ((x * a[None, :] + b[None, :]) >> U64(32)).astype(np.uint32)
            d = doc[s : s + step]
            # Shingles arrive grouped by document: reduce each run of equal doc ids at once.
            run_starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
            red = np.minimum.reduceat(v, run_starts, axis=0)
            rows_ = d[run_starts]
            sig[rows_] = np.minimum(sig[rows_], red)
    return sig


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """[n_docs, bands] int64 keys: a hash of each band's `rows` slots (and the band number)."""
    n, k = sig.shape
    if bands * rows > k:
        raise ValueError(f"bands x rows = {bands * rows} exceeds num_perm = {k}")
    s = sig[:, : bands * rows].reshape(n, bands, rows).astype(U64)
    acc = np.zeros((n, bands), dtype=U64)
    with np.errstate(over="ignore"):
        for j in range(rows):
            acc = mix64(acc ^ (s[:, :, j] + U64(j + 1) * _GOLD))
        acc = mix64(acc ^ np.arange(bands, dtype=U64)[None, :])
    return acc.view(np.int64)


def estimate_jaccard(sig: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of equal slots between the signatures of documents a[i] and b[i]."""
    out = np.empty(len(a), dtype=np.float64)
    step = 100_000
    for s in range(0, len(a), step):
        out[s : s + step] = (sig[a[s : s + step]] == sig[b[s : s + step]]).mean(axis=1)
    return out


def exact_jaccard(x: np.ndarray, y: np.ndarray) -> float:
    """Jaccard of two sets given as sorted unique arrays."""
    if len(x) == 0 and len(y) == 0:
        return 1.0
    inter = len(np.intersect1d(x, y, assume_unique=True))
    return inter / (len(x) + len(y) - inter)


def sorted_unique(x: np.ndarray) -> np.ndarray:
    """`np.unique(x)` by sorting (numpy 2's hash-based unique was 5x slower on shingle hashes)."""
    x = np.sort(x)
    return x[np.r_[True, x[1:] != x[:-1]]] if len(x) else x


def shingle_sets(tb: TokenBatch, n: int) -> list[np.ndarray]:
    """Sorted unique shingle hashes per document (for exact-Jaccard checks)."""
    doc, sh = shingles(tb, n)  # grouped by document already
    bounds = np.searchsorted(doc, np.arange(tb.n_docs + 1))
    return [sorted_unique(sh[bounds[i] : bounds[i + 1]]) for i in range(tb.n_docs)]
