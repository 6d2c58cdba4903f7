"""Rejection sampling: per prompt keep up to k verified-correct traces that pass the filters.

Policies for which k to keep:

- ``random``: seeded, reproducible.
- ``shortest``: fewest characters (the R1 report's preference for concise, readable traces).
- ``most_distinct``: greedy max-min Jaccard distance over word 3-gram sets, so the k kept traces
  are different solutions, not paraphrases.
- ``journey``: journey learning (O1 replication, arXiv 2410.18982) prefers correct traces that
  contain a *corrected mistake*: an intermediate answer different from the final one with
  reflection ("wait", "let me check") after it. The features used are stored per trace.

Majority vote (`majority_vote`) is the pseudo-reference for prompts without a reference answer:
the final answers of the n samples are clustered by math equivalence and the largest cluster
wins when its share of all samples passes a threshold. The verify stage records such verdicts
with ``details.reference_kind = 'majority_vote'``, never as a real reference.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from dataengine import sqlfiles
from dataengine.config import PipelineConfig, apply_overrides, section
from dataengine.store import Workspace, iter_batches

SELECT_POLICIES = ("random", "shortest", "most_distinct", "journey")


@section("select")
@dataclass
class SelectConfig:
    k: int = field(default=4, metadata={"help": "traces kept per prompt at most"})
    policy: str = field(default="random", metadata={"help": "random | shortest | most_distinct | journey"})
    seed: int = field(default=0, metadata={"help": "seed of the random policy and of tie-breaks"})
    selection: str = field(default="default", metadata={"help": "name of this selection (several can coexist)"})
    require_filters: bool = field(default=True, metadata={"help": "drop traces that failed any filter that scored them"})
    allow_pseudo_reference: bool = field(default=True, metadata={"help": "keep traces verified only against a majority-vote pseudo-reference"})

    def validate(self) -> None:
        if self.k < 1:
            raise ValueError("k must be >= 1")
        if self.policy not in SELECT_POLICIES:
            raise ValueError(f"policy {self.policy!r} is not one of {', '.join(SELECT_POLICIES)}")


# --------------------------------------------------------------------------------------------
# Majority vote
# --------------------------------------------------------------------------------------------


@dataclass
class Vote:
    answer: str | None  # the pseudo-reference, or None when no cluster is large enough
    share: float  # largest cluster / all samples
    cluster_size: int
    answered: int  # samples with an extractable final answer
    clusters: list[tuple[str, int]] = field(default_factory=list)


def _norm(a: str) -> str:
    return re.sub(r"\s+", "", a).strip("$.")


def majority_vote(
    answer_texts: list[str], min_share: float = 0.5, min_samples: int = 4, timeout_s: float = 5.0
) -> Vote:
    """Cluster the samples' final answers by equivalence; the largest cluster is the vote.

    Share counts *all* samples (unanswered ones too), so a prompt most samples fail to answer
    gets no pseudo-reference.

    >>> majority_vote(["\\\\boxed{1/2}", "\\\\boxed{0.5}", "\\\\boxed{3}", "cut off"], min_share=0.4, min_samples=3).answer
    '1/2'
    """
    from dataengine.verify.math import extract_final_answer, math_equivalent

    answers = [a for a in (extract_final_answer(t) for t in answer_texts) if a]
    n = len(answer_texts)
    if len(answers) < min_samples or n == 0:
        return Vote(None, 0.0, 0, len(answers))
    exact: dict[str, list[str]] = defaultdict(list)
    for a in answers:
        exact[_norm(a)].append(a)
    clusters: list[list[str]] = []
    for group in sorted(exact.values(), key=len, reverse=True):
        for c in clusters:
            if math_equivalent(c[0], group[0], timeout_s):
                c.extend(group)
                break
        else:
            clusters.append(list(group))
    clusters.sort(key=len, reverse=True)
    top = clusters[0]
    share = len(top) / n
    summary = [(c[0], len(c)) for c in clusters[:5]]
    if share <= min_share:
        return Vote(None, share, len(top), len(answers), summary)
    return Vote(top[0], share, len(top), len(answers), summary)


# --------------------------------------------------------------------------------------------
# Journey-learning features
# --------------------------------------------------------------------------------------------

_REFLECTION = re.compile(
    r"\b(wait|hold on|let me (?:re-?check|check|verify|double-check|reconsider)|double-check|i made a mistake|"
    r"that'?s (?:not right|wrong|incorrect)|on second thought|re-?examine|actually,|hmm)\b",
    re.IGNORECASE,
)
_INTERMEDIATE = re.compile(
    r"\\boxed\{([^{}]{1,60})\}|(?:answer|result) (?:is|would be|should be)\s*:?\s*\$?([^\s$,.;]{1,40})",
    re.IGNORECASE,
)


def journey_features(reasoning: str, final_answer: str | None) -> dict[str, Any]:
    """Features of a corrected mistake in a chain of thought.

    >>> f = journey_features("So the answer is 12. Wait, I dropped a sign; redo: the answer is 8.", "8")
    >>> f["corrected_mistake"], f["wrong_intermediate"]
    (True, '12')
    """
    reflections = [m.start() for m in _REFLECTION.finditer(reasoning)]
    final_n = _norm(final_answer) if final_answer else None
    wrong_at, wrong = None, None
    for m in _INTERMEDIATE.finditer(reasoning):
        cand = (m.group(1) or m.group(2) or "").strip()
        if cand and final_n is not None and _norm(cand) != final_n:
            wrong_at, wrong = m.end(), cand
            break
    corrected = wrong_at is not None and any(r > wrong_at for r in reflections)
    return {
        "corrected_mistake": corrected,
        "wrong_intermediate": wrong,
        "reflections": len(reflections),
        "reasoning_chars": len(reasoning),
    }


# --------------------------------------------------------------------------------------------
# Choosing k per prompt
# --------------------------------------------------------------------------------------------


def _shingles(text: str) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + 3]) for i in range(max(0, len(words) - 2))}


def _most_distinct(rows: list[dict[str, Any]], k: int, rng: random.Random) -> list[dict[str, Any]]:
    sh = [_shingles(r["completion"] or "") for r in rows]
    order = list(range(len(rows)))
    rng.shuffle(order)
    chosen = [order[0]]
    while len(chosen) < min(k, len(rows)):
        best, best_d = None, -1.0
        for i in order:
            if i in chosen:
                continue
            d = min(1 - len(sh[i] & sh[j]) / max(1, len(sh[i] | sh[j])) for j in chosen)
            if d > best_d:
                best, best_d = i, d
        chosen.append(best)  # type: ignore[arg-type]
    return [rows[i] for i in chosen]


def choose(rows: list[dict[str, Any]], k: int, policy: str, rng: random.Random) -> list[dict[str, Any]]:
    """Up to k of one prompt's candidate rows, best first."""
    if policy == "random":
        rows = rows[:]
        rng.shuffle(rows)
        return rows[:k]
    if policy == "shortest":
        return sorted(rows, key=lambda r: (r["n_chars"], r["trace_id"]))[:k]
    if policy == "most_distinct":
        return _most_distinct(rows, k, rng)
    if policy == "journey":
        keyed = [(not r["features"]["corrected_mistake"], -r["features"]["reflections"], rng.random(), i) for i, r in enumerate(rows)]
        return [rows[t[-1]] for t in sorted(keyed)[:k]]
    raise ValueError(f"unknown select policy {policy!r}")


# Policies that read the traces' text (the others need only ids and lengths).
TEXT_POLICIES = ("most_distinct", "journey")


def _candidate_groups(ws: Workspace, with_text: bool) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(prompt_id, its candidate rows) in prompt order, streamed (`select/candidates.sql`)."""
    sql = sqlfiles.load("select/candidates")
    if with_text:
        sql = (f"select c.*, t.completion, t.reasoning, t.answer from ({sql}) c join traces t using (trace_id) "
               "order by c.prompt_id, c.sample_idx, c.trace_id")
    con = ws.connect()
    try:
        group: list[dict[str, Any]] = []
        for rb in con.sql(sql).to_arrow_reader(2_000):
            for r in rb.to_pylist():
                if group and r["prompt_id"] != group[0]["prompt_id"]:
                    yield group[0]["prompt_id"], group
                    group = []
                group.append(r)
        if group:
            yield group[0]["prompt_id"], group
    finally:
        con.close()


def run_select(ws: Workspace, cfg: PipelineConfig, **overrides: Any) -> dict[str, Any]:
    """Keep up to k verified-correct, filter-passing traces per prompt into `selections`."""
    from dataengine.verify.math import extract_final_answer

    scfg: SelectConfig = apply_overrides(cfg.section("select"), overrides)
    scfg.validate()
    run = ws.start_run("select", {"select": asdict(scfg)})
    with run:
        rows_in = dropped_filters = dropped_pseudo = prompts = 0
        rng = random.Random(scfg.seed)
        out = []
        # One prompt's candidates at a time, in prompt order: memory holds one group, and the
        # texts are read only for the policies that look at them (at 800k traces, the texts of
        # every verified trace held at once were tens of GB).
        for pid, group in _candidate_groups(ws, with_text=scfg.policy in TEXT_POLICIES):
            rows_in += len(group)
            kept = []
            for r in group:
                if scfg.require_filters and not r["filters_passed"]:
                    dropped_filters += 1
                elif not scfg.allow_pseudo_reference and r["pseudo_reference"]:
                    dropped_pseudo += 1
                else:
                    kept.append(r)
            if not kept:
                continue
            prompts += 1
            for r in kept:
                feats: dict[str, Any] = {"n_chars": r["n_chars"]}
                if scfg.policy == "journey":
                    feats.update(journey_features(r["reasoning"] or "", extract_final_answer(r["answer"] or "")))
                r["features"] = feats
            for rank, r in enumerate(choose(kept, scfg.k, scfg.policy, rng)):
                out.append({
                    "selection": scfg.selection, "trace_id": r["trace_id"], "prompt_id": pid, "rank": rank,
                    "policy": scfg.policy, "features": json.dumps(r["features"]), "run_id": run.run_id,
                })
        for batch in iter_batches(out, 50_000):
            ws.write_shard("selections", batch)
        counts = {
            "in": rows_in, "out": len(out), "quarantined": 0, "prompts": prompts,
            "dropped_failed_filters": dropped_filters, "dropped_pseudo_reference": dropped_pseudo,
        }
        run.finish(counts)
    return {"run_id": run.run_id, **counts}
