"""Chain-of-thought augmentation of non-reasoning rows through an engine (the R1 report's practice).

For chosen categories (writing, factual QA, translation by default), the model is shown the
question and the dataset's answer and asked for the short reasoning that leads to that answer.
The result is a new trace of the same prompt, ``<think>\\ncot\\n</think>\\n\\nanswer`` with
``metadata.cot_augmented = true`` and ``metadata.augmented_from`` the original trace. Trivial
queries ("hello") and other categories get none. The mix prefers an augmented trace over its
original within a prompt (both stay in the store).

Only `dataengine.engines.base` is used, so any registered engine works. Reruns generate only
rows that have no augmented trace yet for that model.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from dataengine.engines.base import Engine, GenerationRequest, SamplingParams
from dataengine.records import Trace, split_completion, trace_id_for
from dataengine.store import Workspace, iter_batches

COT_SAMPLING_RUN = "cot_aug"
COT_INSTRUCTION = (
    "Here is a user request and a good answer to it.\n\n"
    "Request:\n{prompt}\n\nAnswer:\n{answer}\n\n"
    "Write the brief reasoning (a few sentences) someone would go through before giving this answer: "
    "what is asked, what matters, how to respond. Write only the reasoning, not the answer."
)

_SELECT = """
select t.trace_id, t.prompt_id, p.prompt, t.answer, t.source, t.domain, t.language, t.metadata::varchar as metadata
from traces t join prompts p on p.prompt_id = t.prompt_id
where t.metadata->>'bucket' = 'non_reasoning'
  and coalesce(t.metadata->>'cot_augmented', 'false') <> 'true'
  and coalesce(t.metadata->>'trivial', 'false') <> 'true'
  and list_contains($categories, t.domain)
order by t.trace_id
"""


def _cot_text(completion: str) -> str:
    """The reasoning a model wrote. A reasoning model answers in its own think block plus a summary:
    the think block is the chain of thought, its summary is dropped (the dataset's answer follows)."""
    s = split_completion(completion, "auto")
    if s.think_closed:
        return s.reasoning.strip()
    return completion.replace("<think>", "").replace("</think>", "").strip()


def augment_cot(
    ws: Workspace,
    engine: Engine,
    categories: list[str] | tuple[str, ...] = ("writing", "factual_qa", "translation"),
    *,
    limit: int | None = None,
    max_tokens: int = 1024,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Add augmented traces for up to `limit` eligible non-reasoning traces; returns counts."""
    run = ws.start_run("cot_augment", {"engine": engine.name, "model": engine.model, "categories": list(categories),
                                        "limit": limit, "max_tokens": max_tokens})
    rows = ws.query(_SELECT, {"categories": list(categories)}).fetchall()
    existing = ws.existing_ids("traces", "trace_id")
    todo = []
    for r in rows:
        new_id = trace_id_for(r[1], 0, engine.model, f"{COT_SAMPLING_RUN}:{r[0]}")
        if new_id not in existing:
            todo.append((new_id, r))
    if limit is not None:
        todo = todo[:limit]
    counts: Counter[str] = Counter(eligible=len(rows), todo=len(todo), written=0, cut_off=0, empty_cot=0, engine_error=0)
    params = SamplingParams(n=1, temperature=0.6, max_tokens=max_tokens)
    t0 = time.perf_counter()
    try:
        for batch in iter_batches(todo, batch_size):
            reqs = [GenerationRequest(new_id, messages=[{"role": "user", "content": COT_INSTRUCTION.format(
                prompt=r[2], answer=r[3])}], params=params) for new_id, r in batch]
            results = engine.generate(reqs)
            out = []
            for (new_id, r), res in zip(batch, results):
                if not res.ok or not res.completions:
                    counts["engine_error"] += 1
                    continue
                c = res.completions[0]
                if c.finish_reason == "length":
                    counts["cut_off"] += 1  # a truncated chain of thought is worse than none
                    continue
                cot = _cot_text(c.text)
                if not cot:
                    counts["empty_cot"] += 1
                    continue
                meta = {**json.loads(r[7] or "{}"), "cot_augmented": True, "augmented_from": r[0]}
                t = Trace(prompt_id=r[1], completion=f"<think>\n{cot}\n</think>\n\n{r[3]}", model=engine.model,
                          sampling_run=f"{COT_SAMPLING_RUN}:{r[0]}", engine=engine.name, source=r[4], domain=r[5],
                          language=r[6], think_format="think", finish_reason="stop", run_id=run.run_id,
                          latency_s=res.latency_s,
                          metadata=meta, trace_id=new_id, sampling_params=params.as_dict())
                out.append(t.to_row())
            if out:
                ws.write_shard("traces", out)
                counts["written"] += len(out)
    except BaseException:
        run.finish({"in": counts["todo"], "out": counts["written"], "quarantined": 0, **counts}, status="failed")
        raise
    counts_out = {"in": counts["todo"], "out": counts["written"], "quarantined": 0, **counts}
    run.finish(counts_out)
    return {**counts_out, "run_id": run.run_id, "seconds": round(time.perf_counter() - t0, 3)}
