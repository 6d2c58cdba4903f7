"""The `verify` stage: every trace gets its verifiers' verdicts in `verifications`.

>>> counts = run_verify(Workspace.open("ws"), load_config("pipeline.yaml"))   # doctest: +SKIP
>>> counts["by_verdict"]                                                        # doctest: +SKIP
{'correct': 812, 'incorrect': 301, 'unparseable': 40, 'timeout': 2, 'error': 0}

Rows: (trace_id, verifier, verdict, answer, details, judge_model, run_id); `details.reason` is a
stable snake_case reason, `details.reference_kind` says whether the answer was graded against the
prompt's reference (`reference`) or a majority-vote pseudo-reference (`majority_vote`).
A rerun verifies only traces without verifications (`redo` re-verifies all).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataengine import sqlfiles
from dataengine.config import PipelineConfig, apply_overrides, section
from dataengine.store import Workspace
from dataengine.verify import policy as pol
from dataengine.verify.result import VERDICTS, VerifyResult

log = logging.getLogger(__name__)


@section("verify")
@dataclass
class VerifyConfig:
    policies: dict[str, str] = field(
        default_factory=lambda: dict(pol.DEFAULT_POLICIES),
        metadata={"help": "domain -> rule | judge | rule_then_judge | union (see dataengine/verify/policy.py)"},
    )
    default_policy: str = field(default=pol.DEFAULT_FALLBACK_POLICY, metadata={"help": "policy for domains not in `policies`"})
    math_workers: int = field(default=1, metadata={"help": "math verifier worker processes"})
    math_timeout_s: float = field(default=5.0, metadata={"help": "per-answer deadline for the math verifier (timeout verdict past it)"})
    majority_vote: bool = field(default=True, metadata={"help": "grade math traces whose prompt has no reference against a majority-vote pseudo-reference"})
    majority_min_share: float = field(default=0.5, metadata={"help": "the largest answer cluster must hold more than this share of a prompt's answers"})
    majority_min_samples: int = field(default=4, metadata={"help": "prompts with fewer answered samples get no pseudo-reference"})
    mcq_choices: list[str] = field(default_factory=lambda: ["A", "B", "C", "D", "E"], metadata={"help": "option letters the mcq verifier accepts"})
    code_language: str = field(default="python", metadata={"help": "language of the fenced block the code verifier runs"})
    code_parallel: int = field(default=2, metadata={"help": "sandbox runs at once"})
    code_wall_s: float = field(default=10.0, metadata={"help": "wall-clock deadline per sandbox run"})
    code_memory_mb: int = field(default=1024, metadata={"help": "address-space limit per sandbox run"})
    allow_unisolated: bool = field(default=False, metadata={"help": "run code without namespaces where they are unavailable (trusted code only)"})
    judge_engine: str | None = field(default=None, metadata={"help": "engine for the judge (openai, vllm, transformers, simulated); unset: no judge"})
    judge_model: str = field(default="", metadata={"help": "judge model name"})
    judge_base_url: str = field(default="http://localhost:8000/v1", metadata={"help": "openai engine: server URL"})
    judge_engine_args: dict[str, Any] = field(default_factory=dict, metadata={"help": "extra keyword arguments for the judge engine"})
    judge_template: str | None = field(default=None, metadata={"help": "Jinja template for the judge prompt (default: dataengine/templates/judge.jinja)"})
    judge_max_concurrency: int = field(default=32, metadata={"help": "judge requests in flight"})
    judge_max_retries: int = field(default=3, metadata={"help": "judge retries for a failed or unparseable reply, then error"})
    batch_size: int = field(default=2000, metadata={"help": "traces per written shard"})

    def validate(self) -> None:
        for domain, p in self.policies.items():
            if p not in pol.POLICIES:
                raise ValueError(f"policies.{domain}: {p!r} is not one of {', '.join(pol.POLICIES)}")
        if self.default_policy not in pol.POLICIES:
            raise ValueError(f"default_policy: {self.default_policy!r} is not one of {', '.join(pol.POLICIES)}")
        if not 0 <= self.majority_min_share < 1:
            raise ValueError("majority_min_share must be in [0, 1)")
        if self.math_workers < 1 or self.code_parallel < 1:
            raise ValueError("math_workers and code_parallel must be >= 1")
        self.code_limits()  # names the field whose value is out of range


    def code_limits(self) -> Any:
        """The sandbox limits these settings give; ValueError naming the field when out of range."""
        from dataengine.verify.sandbox import Limits, limit_bounds

        for name, value in (("code_wall_s", self.code_wall_s), ("code_memory_mb", self.code_memory_mb)):
            lo, hi = limit_bounds(name.removeprefix("code_"))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ValueError(f"{name}: {value!r} is out of range [{lo:g}, {hi:g}]")
        return Limits(wall_s=self.code_wall_s, cpu_s=max(1, int(self.code_wall_s)), memory_mb=self.code_memory_mb)


@dataclass
class _Item:
    row: dict[str, Any]
    rule: str | None
    policy: str
    reference: str | None = None
    reference_kind: str = "reference"
    results: dict[str, VerifyResult] = field(default_factory=dict)


def _answer_text(row: dict[str, Any]) -> str:
    """The text a verifier grades; a think block that never closed has none."""
    if row["think_closed"] is False:
        return "<think>"  # answer_part() turns this into think_not_closed
    return row["answer"] or ""


def _skip_non_reasoning(row: dict[str, Any], rule: str | None) -> bool:
    """A non-reasoning row (reused SFT data) lacks what the verifiers need: code rows have no
    tests, the others no reference (and a majority vote over one plain answer means nothing).
    Such rows are skipped and counted, not graded `error no_tests`; the mix takes them unverified.
    Non-reasoning rows that do carry a reference (or tests, from the prompt or the trace, looked up
    as the code verifier does) are verified like any other."""
    if row.get("bucket", "reasoning") == "reasoning":
        return False
    if rule == "code":
        from dataengine.verify.code import code_tests

        tests = code_tests(row.get("tests"), _meta(row), _meta(row, "trace_metadata"))[0]
        return tests is None or (isinstance(tests, str) and not tests.strip())
    return not (row.get("reference_answer") or "").strip()


def _meta(row: dict[str, Any], column: str = "prompt_metadata") -> dict[str, Any]:
    try:
        m = json.loads(row.get(column) or "{}")
    except json.JSONDecodeError:
        return {}
    return m if isinstance(m, dict) else {}


def build_judge(cfg: VerifyConfig, cache_path: Path | None) -> Any:
    """The configured judge, or None when no judge engine is set."""
    if not cfg.judge_engine:
        return None
    from dataengine.engines import get_engine
    from dataengine.verify.judge import Judge, JudgeCache

    kwargs = dict(cfg.judge_engine_args)
    if cfg.judge_model:
        kwargs.setdefault("model", cfg.judge_model)
    if cfg.judge_engine == "openai":
        kwargs.setdefault("base_url", cfg.judge_base_url)
    engine = get_engine(cfg.judge_engine, **kwargs)
    return Judge(engine, template=cfg.judge_template, max_concurrency=cfg.judge_max_concurrency,
                 max_retries=cfg.judge_max_retries, cache=JudgeCache(cache_path))


class _Verifiers:
    """The verifiers one run uses, built on first need and kept across chunks."""

    def __init__(self, vcfg: VerifyConfig, judge: Any):
        self.vcfg, self.judge = vcfg, judge
        self._math: Any = None
        self._sandbox: Any = None

    @property
    def math(self) -> Any:
        if self._math is None:
            from dataengine.verify.math import MathOptions, MathVerifier

            self._math = MathVerifier(workers=self.vcfg.math_workers, timeout_s=self.vcfg.math_timeout_s, options=MathOptions())
        return self._math

    @property
    def sandbox(self) -> Any:
        if self._sandbox is None:
            from dataengine.verify.sandbox import Sandbox

            v = self.vcfg
            self._sandbox = Sandbox(v.code_limits(), allow_unisolated=v.allow_unisolated)
            if not self._sandbox.isolated:  # allowed, but said out loud at the start of the code runs
                log.warning("verify: running code WITHOUT full isolation (%s)", self._sandbox.isolation_note)
        return self._sandbox

    def close(self) -> None:
        if self._math is not None:
            self._math.close()


def _verify_chunk(items: list[_Item], v: _Verifiers, counts: Counter[str]) -> None:
    """Run every verifier the policies ask for on one chunk (whole prompts); fills `it.results`."""
    from dataengine.verify.code import code_tests, verify_code
    from dataengine.verify.mcq import grade_mcq
    from dataengine.verify.select import majority_vote

    vcfg = v.vcfg
    # ---------------------------------------------------------------- majority vote
    if vcfg.majority_vote:
        by_prompt: dict[str, list[_Item]] = defaultdict(list)
        for it in items:
            if it.rule == "math" and not (it.reference or "").strip():
                by_prompt[it.row["prompt_id"]].append(it)
        for group in by_prompt.values():
            vote = majority_vote([_answer_text(it.row) for it in group], min_share=vcfg.majority_min_share,
                                 min_samples=vcfg.majority_min_samples, timeout_s=vcfg.math_timeout_s)
            if vote.answer is not None:
                counts["majority_vote_prompts"] += 1
                for it in group:
                    it.reference, it.reference_kind = vote.answer, "majority_vote"
                    it.row["_vote"] = {"share": vote.share, "cluster_size": vote.cluster_size, "answered": vote.answered}

    # ---------------------------------------------------------------- rule verifiers
    math_items = [it for it in items if it.rule == "math" and it.policy != "judge"]
    counts["no_reference"] += sum(1 for it in math_items if not (it.reference or "").strip())
    math_items = [it for it in math_items if (it.reference or "").strip()]
    if math_items:
        results = v.math.verify_batch([(it.reference or "", _answer_text(it.row)) for it in math_items])
        for it, res in zip(math_items, results):
            res.details["reference_kind"] = it.reference_kind
            if "_vote" in it.row:
                res.details["majority_vote"] = it.row["_vote"]
            it.results["math"] = res
    for it in items:
        if it.rule == "mcq" and it.policy != "judge":
            if not (it.reference or "").strip():
                counts["no_reference"] += 1
                continue
            it.results["mcq"] = grade_mcq(it.reference or "", _answer_text(it.row), vcfg.mcq_choices,
                                          pol.mcq_options(it.row["prompt_metadata"]))
    code_items = [it for it in items if it.rule == "code" and it.policy != "judge"]
    if code_items:
        sandbox = v.sandbox

        def run_code(it: _Item) -> VerifyResult:
            if it.row["think_closed"] is False:
                return VerifyResult("unparseable", None, {"reason": "think_not_closed"})
            tests, entry_point, setup, source = code_tests(it.row["tests"], _meta(it.row), _meta(it.row, "trace_metadata"))
            res = verify_code(_answer_text(it.row), tests, entry_point=entry_point, setup=setup, sandbox=sandbox,
                              language=vcfg.code_language, prompt=it.row["prompt"])
            res.details["tests_from"] = source
            return res

        with ThreadPoolExecutor(max_workers=vcfg.code_parallel) as ex:
            for it, res in zip(code_items, ex.map(run_code, code_items)):
                it.results["code"] = res

    # ---------------------------------------------------------------- judge
    to_judge = [
        it for it in items
        if pol.wants_judge(it.policy, it.rule, it.results[it.rule].verdict if it.rule in it.results else None)
        and (it.reference or "").strip()
        and it.rule != "code"
    ]
    if to_judge and v.judge is None:
        counts["judge_skipped_no_engine"] += len(to_judge)
    elif to_judge:
        from dataengine.verify.judge import JudgeItem
        from dataengine.verify.math import ThinkNotClosed, answer_part, extract_final_answer

        jitems, jtargets = [], []
        for it in to_judge:
            try:
                part = answer_part(_answer_text(it.row))
            except ThinkNotClosed:
                it.results["judge"] = VerifyResult("unparseable", None, {"reason": "think_not_closed"})
                continue
            final = extract_final_answer(part) or part.strip()[-2000:]
            jitems.append(JudgeItem(it.reference or "", final, it.row["prompt"]))
            jtargets.append(it)
        for it, res in zip(jtargets, v.judge.judge(jitems)):
            res.details["reference_kind"] = it.reference_kind
            it.results["judge"] = res


def _chunks(cur: Any, size: int) -> Any:
    """Candidate rows in chunks of about `size`, never splitting a prompt (majority vote needs
    all of a prompt's samples together)."""
    cols = [d[0] for d in cur.description]
    chunk: list[dict[str, Any]] = []
    while True:
        fetched = cur.fetchmany(1024)
        if not fetched:
            break
        for values in fetched:
            row = dict(zip(cols, values))
            if len(chunk) >= size and row["prompt_id"] != chunk[-1]["prompt_id"]:
                yield chunk
                chunk = []
            chunk.append(row)
    if chunk:
        yield chunk


def run_verify(
    ws: Workspace,
    cfg: PipelineConfig,
    redo: bool = False,
    judge: Any = None,
    progress: Callable[[int], None] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Verify traces; returns counts (in, out, by verdict, by verifier, judge calls, …).

    Traces are streamed in chunks of `batch_size` (whole prompts); each chunk's rows are written
    as one shard before the next starts, so a killed run keeps what it finished and a rerun
    continues with the rest. `judge` overrides the configured one (tests and flows pass one).
    """
    vcfg: VerifyConfig = apply_overrides(cfg.section("verify"), overrides)
    vcfg.validate()
    # One verify run at a time: a second waits, then finds only what the first left unverified.
    with ws.lease("stage:verify"):
        return _run_verify(ws, vcfg, redo, judge, progress)


def _run_verify(ws: Workspace, vcfg: VerifyConfig, redo: bool, judge: Any,
                progress: Callable[[int], None] | None) -> dict[str, Any]:
    run = ws.start_run("verify", {"verify": asdict(vcfg), "redo": redo})
    counts: Counter[str] = Counter()
    n_in = n_out = 0
    with run:
        judge_obj = judge if judge is not None else build_judge(vcfg, ws.artifacts / "judge_cache.jsonl")
        verifiers = _Verifiers(vcfg, judge_obj)
        judge_model = getattr(judge_obj, "model", None)
        con = ws.connect()
        try:
            cur = con.execute(sqlfiles.load("verify/candidates"), {"redo": redo})
            for chunk in _chunks(cur, vcfg.batch_size):
                items = []
                for r in chunk:
                    domain = r["domain"] or "general"
                    rule = pol.rule_verifier(domain, r["prompt_metadata"])
                    if _skip_non_reasoning(r, rule):
                        counts["skipped_non_reasoning"] += 1
                        continue
                    items.append(_Item(r, rule, pol.policy_for(domain, vcfg.policies, vcfg.default_policy), r["reference_answer"]))
                _verify_chunk(items, verifiers, counts)
                out_rows = []
                for it in items:
                    for name, res in it.results.items():
                        out_rows.append({
                            "trace_id": it.row["trace_id"], "verifier": name, "verdict": res.verdict, "answer": res.answer,
                            "details": json.dumps(res.details, ensure_ascii=False, default=str),
                            "judge_model": judge_model if name == "judge" else None, "run_id": run.run_id,
                        })
                        counts[f"verdict_{res.verdict}"] += 1
                        counts[f"verifier_{name}"] += 1
                    if not it.results:
                        counts["not_verified"] += 1
                if out_rows:
                    ws.write_shard("verifications", out_rows)
                n_in += len(chunk)  # skipped non-reasoning rows included: in = verified + skipped
                n_out += len(out_rows)
                if progress:
                    progress(n_in)
        finally:
            con.close()
            verifiers.close()
        # Graded per trace against its own reference; the disagreements are counted, never merged.
        counts["reference_conflicts"] = ws.query("select count(*) from reference_conflicts").fetchone()[0]
        if judge_obj is not None:
            counts["judge_requests"] = judge_obj.stats["requests"]
            counts["judge_cache_hits"] = judge_obj.stats["cache_hits"]
        result = {
            "run_id": run.run_id,
            "in": n_in,
            "out": n_out,
            "quarantined": 0,
            "by_verdict": {v: counts[f"verdict_{v}"] for v in VERDICTS},
            "by_verifier": {k[len("verifier_"):]: n for k, n in counts.items() if k.startswith("verifier_")},
            **{k: n for k, n in counts.items() if not k.startswith(("verdict_", "verifier_"))},
        }
        run.finish({k: v for k, v in result.items() if isinstance(v, int)})
    return result
