"""Decontamination against the real benchmark files in ../shared/data/benchmarks."""

from __future__ import annotations

import json
import random

import pytest

from dataengine.dedup.config import BenchmarkSpec
from dataengine.dedup.decontam import BenchmarkIndex, find_hits, load_benchmark

BENCHMARKS = {
    "math500": "math500_limo.jsonl",
    "aime24": "aime24_nemo_skills.jsonl",
    "aime25": "aime25_nemo_skills.jsonl",
    "amc23": "amc23_limo.jsonl",
    "gsm8k": "gsm8k_test.jsonl",
    "mgsm_zh": "multilingual/mgsm/mgsm_zh.tsv",
    "olymmath_zh": "zh/olymmath/OlymMATH-ZH-EASY.jsonl",
}


@pytest.fixture(scope="module")
def index(shared_data):
    idx = BenchmarkIndex(ngram=8, max_item_share=5)
    for name, rel in BENCHMARKS.items():
        idx.add(name, load_benchmark(BenchmarkSpec(str(shared_data / "benchmarks" / rel))))
    idx.build()
    return idx


def _hits(index, ids, texts):
    return find_hits(index, ids, texts, min_hits=1, report=3, min_item_overlap=0.2)


def test_benchmark_files_load_with_ids_and_text(shared_data):
    items = load_benchmark(BenchmarkSpec(str(shared_data / "benchmarks" / "math500_limo.jsonl")))
    assert len(items) == 500 and items[0][0].startswith("test/")
    tsv = load_benchmark(BenchmarkSpec(str(shared_data / "benchmarks" / "multilingual/mgsm/mgsm_zh.tsv")))
    assert len(tsv) == 250 and tsv[0][0] == "1"
    with pytest.raises(ValueError, match="no problem text"):
        load_benchmark(BenchmarkSpec(str(shared_data / "math_verify_cases.jsonl")))


def test_nemo_skills_contamination_example(index, shared_data):
    rows = [json.loads(x) for x in open(shared_data / "benchmarks" / "contamination_example_nemo_skills.jsonl")]
    ids = [str(r.get("id")) for r in rows]
    hits = _hits(index, ids, [r["problem"] for r in rows])
    caught = {h.prompt_id for h in hits}
    # Rephrasings that keep an 8-gram of the original are caught: "how many positive perfect
    # squares less than 2023 are divisible by 5" vs "... are multiples of 5", and the AIME 2025
    # problems with changed wording or numbers.
    assert {"18", "aime25-17", "aime25-18", "aime25-19", "aime25-20", "aime25-21", "aime25-22"} <= caught
    assert {h.item_id for h in hits if h.prompt_id == "18"} == {"18"}  # AMC 2023 problem 18
    # Renamed variables ("a and b" for "x and y") leave no shared 8-gram: the known limit of
    # n-gram decontamination (NeMo-Skills uses an LLM judge for these).
    assert "1" not in caught


def test_math500_problems_planted_in_a_pool_are_caught(index, shared_data):
    rng = random.Random(0)
    pool = json.load(open(shared_data / "benchmarks" / "train_pools" / "math_train_7474_deepscaler.json"))
    clean = [p["problem"] for p in pool[:1500]]
    clean_hits = {h.prompt_id for h in _hits(index, [f"c{i}" for i in range(len(clean))], clean)}
    math500 = [json.loads(x) for x in open(shared_data / "benchmarks" / "math500_limo.jsonl")]
    planted = rng.sample(math500, 60)
    # reformatted the way prompt pools do: a prefix, case and spacing changes
    texts = [f"Solve the following problem.\n\n{p['problem'].replace(' ', '  ')}" for p in planted]
    hits = _hits(index, [p["unique_id"] for p in planted], texts)
    found = {(h.prompt_id, h.item_id) for h in hits if h.benchmark == "math500"}
    assert all((p["unique_id"], p["unique_id"]) in found for p in planted)
    # the MATH train split shares only templates with MATH-500 for most problems
    assert len(clean_hits) < 0.05 * len(clean)


def test_prompts_sharing_only_stock_phrases_pass(index):
    prompts = [
        "Lena sells 12 jars of jam at the farmers' market every Saturday for $4 each. How much money does she make in dollars every week at the farmers' market?",
        "A bakery has 48 muffins. It sells 3/4 of them in the morning. How many muffins are left at the end of the day?",
        "The probability that a randomly chosen tile is red is $\\frac{m}{n}$, where $m$ and $n$ are relatively prime positive integers. Find $m+n$ for a bag of 7 red and 9 blue tiles.",
        "A rectangle has a perimeter of 30 and a diagonal of length 11. What is its area? Express your answer as a common fraction.",
        "小红有15支铅笔，她送给同学7支，又买了4支。小红现在有多少支铅笔？",
    ]
    assert _hits(index, [str(i) for i in range(len(prompts))], prompts) == []
    assert index.n_stock > 0  # the boilerplate really is in the benchmarks, and was ignored


def test_chinese_problems_are_caught_by_character_ngrams(index, shared_data):
    zh = [json.loads(x) for x in open(shared_data / "benchmarks" / "zh/olymmath/OlymMATH-ZH-EASY.jsonl")][:20]
    hits = _hits(index, [r["unique_id"] for r in zh], ["请回答：" + r["problem"] for r in zh])
    assert {h.prompt_id for h in hits if h.benchmark == "olymmath_zh"} == {r["unique_id"] for r in zh}


def test_olymmath_english_versions_are_a_cross_language_limit(index, shared_data):
    en = [json.loads(x) for x in open(shared_data / "benchmarks" / "zh/olymmath/OlymMATH-EN-EASY.jsonl")]
    hits = [h for h in _hits(index, [r["unique_id"] for r in en], [r["problem"] for r in en]) if h.benchmark == "olymmath_zh"]
    caught = {h.prompt_id for h in hits}
    # Only problems whose formulas carry enough of the Chinese item's n-grams are caught; the
    # prose is in another language. Reported, not hidden: most translations pass.
    assert 0 < len(caught) < len(en) // 2
    # when caught, it is the right problem: OlymMATH-EASY-0-EN is OlymMATH-EASY-0-ZH
    assert all(h.item_id.removesuffix("-ZH") == h.prompt_id.removesuffix("-EN") for h in hits)
