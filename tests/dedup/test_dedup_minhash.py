"""Normalisation, exact hashes, MinHash signatures and LSH against exact Jaccard on real traces."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pytest

from dataengine.dedup.cluster import near_duplicates
from dataengine.dedup.minhash import (
    candidate_probability,
    exact_jaccard,
    implied_threshold,
    shingle_sets,
    shingles,
    signatures,
)
from dataengine.dedup.normalize import exact_hashes, normalize, tokenize
from tests.dedup.dedup_fixtures import mutate, near_dup_sample, real_traces


def test_normalize_folds_case_width_punctuation_and_whitespace():
    assert normalize("Ｆｉｎｄ  the\tVALUE of x, please!") == "find the value of x please"
    assert normalize("Don’t — stop…") == "don t stop"
    # CJK characters are tokens of their own; CJK punctuation separates
    assert normalize("小明有3个苹果。") == "小 明 有 3 个 苹 果"
    assert normalize("") == ""


def test_exact_hash_ignores_case_and_punctuation_but_not_word_order():
    h = exact_hashes(tokenize(["The answer is 42.", "the ANSWER   is 42", "42 is the answer", "The answer is 43."]))
    assert h[0] == h[1]
    assert len({h[0], h[2], h[3]}) == 3


def test_short_documents_are_one_shingle_and_empty_ones_none():
    tb = tokenize(["a b", "", "one two three four five six"])
    doc, _ = shingles(tb, 5)
    assert doc.tolist() == [0, 2, 2]


@pytest.mark.parametrize("method", ["oph", "permutations"])
def test_signature_agreement_estimates_exact_jaccard(shared_data, method):
    rng = random.Random(1)
    base = [t["response"] for t in real_traces(shared_data, 120) if len(t["response"]) > 2000][:40]
    texts = base + [mutate(t, rng.choice([0.02, 0.1, 0.3]), rng) for t in base]
    tb = tokenize(texts)
    doc, sh = shingles(tb, 5)
    sig = signatures(doc, sh, tb.n_docs, 128, method)
    sets = shingle_sets(tb, 5)
    n = len(base)
    est = (sig[:n] == sig[n:]).mean(axis=1)
    exact = np.array([exact_jaccard(sets[i], sets[n + i]) for i in range(n)])
    # 128 slots: standard error sqrt(J(1-J)/128) <= 0.045
    assert np.abs(est - exact).mean() < 0.04
    assert np.abs(est - exact).max() < 0.16


def test_bands_rows_report_their_threshold():
    assert implied_threshold(25, 5) == pytest.approx(0.5253, abs=1e-4)
    assert candidate_probability(0.7, 25, 5) > 0.98
    assert candidate_probability(0.2, 25, 5) < 0.01


def _sample(shared_data, n_base=150, seed=3):
    return near_dup_sample([t["response"] for t in real_traces(shared_data)], n_base, seed)


@pytest.mark.parametrize("verify", ["exact", "signature"])
def test_lsh_recall_and_precision_against_exact_jaccard(shared_data, verify):
    texts = _sample(shared_data)
    tb = tokenize(texts)
    doc, sh = shingles(tb, 5)
    sig = signatures(doc, sh, tb.n_docs, 128)
    sets = shingle_sets(tb, 5)
    n = len(texts)
    truth = set()
    for i in range(n):
        for j in range(i + 1, n):
            if exact_jaccard(sets[i], sets[j]) >= 0.7:
                truth.add((i, j))
    assert len(truth) > 50

    con = duckdb.connect()
    res = near_duplicates(
        con, sig, np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool), bands=25, rows=5, threshold=0.7,
        verify=verify, max_bucket=64, exact_sets=lambda idx: {int(i): sets[i] for i in idx},
    )
    labels = res.labels
    # Recall: pairs at or above the threshold that end in one cluster.
    recall = sum(labels[i] == labels[j] for i, j in truth) / len(truth)
    # Precision: pairs the method declared near-duplicates that really are (clusters then join
    # them transitively, which is what dedup wants, so cluster co-membership is not the measure).
    edges = list(zip(res.a.tolist(), res.b.tolist(), strict=True))
    precision = sum(exact_jaccard(sets[i], sets[j]) >= 0.7 for i, j in edges) / max(1, len(edges))
    assert recall >= 0.95, (recall, precision)
    assert precision >= (0.98 if verify == "exact" else 0.9), (recall, precision)


# Characters that change under NFKC or str.lower, compose with what comes before, or are neither.
_TRICKY = list("aZ 9.\x00") + [
    "×", "Σ", "ς", "İ", "é", "e\u0301", "\u0301", "ﬁ", "Ａ", "①", "가", "\u1100", "\u1161", "\u11a8", "\u0b47",
    "\u0b3e", "小", "。", "—", "Ǆ", "ẞ", "ß", "\u212a", "😀", "\u0345", "Ⅻ", "\u00a0", "ª", "\u09c7\u09be", "\u3099", "か",
]


def _direct(texts):
    """The normal form by definition: NFKC, then str.lower, NUL-joined (what tokenize hashes)."""
    import unicodedata

    parts = []
    for t in texts:
        t = (t or "").replace("\x00", " ")
        parts.append(unicodedata.normalize("NFKC", t).lower().encode("utf-8", "surrogatepass"))
    return b"\x00".join(parts)


def test_byte_level_normalisation_is_nfkc_then_lower_case():
    # The fast path leaves ASCII case to tokenize and sends only texts holding a special
    # character through NFKC + str.lower: same bytes as the definition, from str and from Arrow.
    import pyarrow as pa

    from dataengine.dedup.normalize import _ascii_lower, _prepare, _prepare_arrow

    rng = random.Random(3)
    for _ in range(2000):
        texts = ["".join(rng.choice(_TRICKY) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.2:
            texts.append(None)
        want = _direct(texts)
        for buf, starts in (_prepare(texts), _prepare_arrow(pa.array(texts, pa.string()))):
            assert bytes(_ascii_lower(np.frombuffer(buf, dtype=np.uint8))) == want, texts
            assert starts[-1] == len(buf) + 1 and (np.frombuffer(buf, dtype=np.uint8)[starts[1:-1] - 1] == 0).all()


def test_composing_starters_cover_this_pythons_unicode():
    # Hard-coded from unicodedata 14; a newer Unicode must not add one the table lacks.
    import unicodedata

    from dataengine.dedup.normalize import _COMPOSING_STARTERS

    for cp in range(0x300, 0x30000):
        d = unicodedata.decomposition(chr(cp))
        if d and not d.startswith("<") and len(d.split()) == 2:
            second = chr(int(d.split()[1], 16))
            if not unicodedata.combining(second) and unicodedata.normalize("NFKC", second) == second:
                assert ord(second) in _COMPOSING_STARTERS, hex(ord(second))


def test_arrow_and_str_paths_sketch_real_traces_identically(shared_data):
    import pyarrow as pa

    from dataengine.dedup.sketch import SketchParams, sketch_arrow, sketch_texts

    texts = [t["response"] for t in real_traces(shared_data, 150)] + [t["question"] for t in real_traces(shared_data, 150)]
    texts += ["".join(random.Random(i).choice(_TRICKY) for _ in range(40)) for i in range(50)] + ["", None]
    ids = [str(i) for i in range(len(texts))]
    for method in ("oph", "permutations"):
        p = SketchParams(method=method)
        a = sketch_texts(ids, ids, texts, p)
        b = sketch_arrow(ids, ids, pa.array(texts, pa.string()), p)
        assert a.exact == b.exact
        assert (a.sig == b.sig).all() and (a.n_tokens == b.n_tokens).all() and (a.n_chars == b.n_chars).all()
    # batching does not change a sketch (the stage slices shards by bytes)
    whole = sketch_texts(ids, ids, texts, SketchParams())
    part = sketch_texts(ids[100:200], ids[100:200], texts[100:200], SketchParams())
    assert (part.sig == whole.sig[100:200]).all() and part.exact == whole.exact[100:200]
