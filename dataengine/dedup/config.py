"""Config sections `dedup` and `decontaminate`."""

from __future__ import annotations

from dataclasses import dataclass, field

from dataengine.config import section
from dataengine.dedup.minhash import implied_threshold

PREFERENCES = ("accepted", "shorter", "longer", "seeded")


@section("dedup")
@dataclass
class DedupConfig:
    ngram: int = field(default=5, metadata={"help": "tokens per shingle: word 5-grams (CJK: character 5-grams)"})
    num_perm: int = field(default=128, metadata={"help": "MinHash signature slots (permutations)"})
    bands: int = field(default=25, metadata={"help": "LSH bands; bands x rows <= num_perm"})
    rows: int = field(default=5, metadata={"help": "signature slots per band; (1/bands)^(1/rows) is the implied threshold"})
    threshold: float = field(default=0.7, metadata={"help": "Jaccard similarity at or above which two texts are near-duplicates"})
    prompt_threshold: float = field(
        default=0.8,
        metadata={"help": "Jaccard threshold for prompts: short problems that differ in one word (another number, another word to spell) are different problems"},
    )
    verify: str = field(
        default="exact",
        metadata={"help": "check LSH candidates: exact (re-read texts, exact Jaccard), signature (estimated Jaccard), none"},
    )
    method: str = field(default="oph", metadata={"help": "MinHash: oph (one-permutation hashing, fast) or permutations"})
    text: str = field(default="completion", metadata={"help": "trace field compared: completion or reasoning"})
    prompt_level: bool = field(
        default=True, metadata={"help": "cluster near-duplicate prompts across sources; traces are then compared within a prompt cluster"}
    )
    preference: list[str] = field(
        default_factory=lambda: ["accepted", "shorter", "seeded"],
        metadata={"help": "representative order of preference: accepted, shorter, longer, seeded"},
    )
    seed: int = field(default=0, metadata={"help": "seed for MinHash and for the seeded tie-break"})
    max_bucket: int = field(default=64, metadata={"help": "LSH buckets larger than this pair every member with the first only"})
    batch_bytes: int = field(
        default=250_000,
        metadata={"help": "text bytes hashed per vectorised batch (small enough that its arrays stay in the CPU cache: 2 MB batches took 1.5x the CPU)"},
    )
    workers: int = field(default=0, metadata={"help": "processes that hash trace shards (0: one per CPU)"})

    def validate(self) -> None:
        if self.ngram < 1 or self.num_perm < 1 or self.bands < 1 or self.rows < 1:
            raise ValueError("ngram, num_perm, bands and rows must be positive")
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        for name in ("threshold", "prompt_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.verify not in ("exact", "signature", "none"):
            raise ValueError(f"verify must be exact, signature or none, got {self.verify!r}")
        if self.method not in ("oph", "permutations"):
            raise ValueError(f"method must be oph or permutations, got {self.method!r}")
        if self.text not in ("completion", "reasoning"):
            raise ValueError(f"text must be completion or reasoning, got {self.text!r}")
        bad = [p for p in self.preference if p not in PREFERENCES]
        if bad or not 1 <= len(self.preference) <= 4:
            raise ValueError(f"preference: 1-4 of {', '.join(PREFERENCES)}; got {self.preference}")

    @property
    def implied_threshold(self) -> float:
        return implied_threshold(self.bands, self.rows)


@dataclass
class BenchmarkSpec:
    path: str = field(metadata={"path": True, "help": "JSONL / JSON / Parquet / CSV / TSV file of benchmark problems"})
    text_field: str = field(default="auto", metadata={"help": "field holding the problem text (auto: problem, question, prompt, …)"})
    id_field: str = field(default="auto", metadata={"help": "field holding the item id (auto: id, unique_id, idx, …; else the row number)"})


@section("decontaminate")
@dataclass
class DecontamConfig:
    ngram: int = field(default=8, metadata={"help": "tokens per n-gram (8 as open-r1 and s1 use; 13 is the stricter option)"})
    benchmarks: dict[str, BenchmarkSpec] = field(
        default_factory=dict, metadata={"help": "name -> {path, text_field, id_field}; --benchmark NAME=PATH adds more"}
    )
    min_hits: int = field(default=1, metadata={"help": "shared n-grams needed before a prompt counts as contaminated"})
    min_item_overlap: float = field(
        default=0.2, metadata={"help": "share of a benchmark item's n-grams a prompt must contain to hit it (0: any min_hits)"}
    )
    max_item_share: int = field(
        default=5,
        metadata={"help": "n-grams found in more benchmark items than this (all benchmarks together) are stock phrases, ignored (0: keep all)"},
    )
    report_ngrams: int = field(default=5, metadata={"help": "shared n-grams listed per hit"})

    def validate(self) -> None:
        if self.ngram < 1 or self.min_hits < 1 or self.max_item_share < 0:
            raise ValueError("ngram and min_hits must be positive, max_item_share >= 0")
