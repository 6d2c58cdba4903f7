"""A synthetic stand-in for a reasoning model: for dry runs, the quickstart, tests and load tests.

**Its output is synthetic text written by this project, never model output.** Every completion
carries `metadata.synthetic = true` and the model name defaults to `simulated`.

It recognises the project's generated problems (`dataengine.demo_problems`) in the prompt, and
writes a long-chain-of-thought-shaped completion from the problem's worked steps: an opening, one
paragraph per step with reflection ("Wait, let me double-check…"), a verification, `</think>`,
then a summary ending in `\\boxed{answer}`. Prompts it does not recognise get a generic trace
that ends in the reference answer when the request carries one.

It plants labelled defects at configured rates, and records them in the completion's
`metadata.planted_defects`, so filters, verifiers and dedup can be scored for precision and recall:

=====================  =====================================================================
defect                 what the completion looks like
=====================  =====================================================================
wrong_answer           the final answer is off (the reasoning's last line and the boxed answer)
language_mixing        Chinese sentences inside the English chain of thought
unclosed_think         cut off inside the reasoning: no `</think>`, finish_reason `length`
long_paragraph         the whole reasoning as one paragraph of several hundred words
code_block             a fenced ```python block inside the reasoning
repetition_loop        one sentence repeated dozens of times, then cut off (`length`)
near_duplicate         sample k > 0 is sample 0 of the same prompt with a one-word edit
benchmark_contaminated the prompt itself is a benchmark problem (planted by `demo-prompts`;
                       copied from the request's `prompt_metadata.planted_defects`)
=====================  =====================================================================

`length="r1"` makes completions R1-length: the reasoning is padded with exploratory paragraphs
(trial computations with fresh numbers, so the padding is neither repetitive nor duplicated across
traces) up to a length drawn from `R1_LENGTH`, a lognormal on characters whose spread is fitted to
the 3,070 real long-CoT traces in ../shared/data/traces (Sky-T1 AIME/AMC/MATH500/Minerva and
R1-distill/QwQ: sd of log-chars 0.88) and whose mean is R1's SFT-set average, ~20 KB (those real
traces answer easier benchmark questions: their mean is 5.75 KB, median 3.7 KB).

Output is deterministic per (prompt text, sample index, seed): the generate stage passes the
sample indices it wants in `request.metadata["sample_indices"]`, so a resumed run writes exactly
what an uninterrupted one would have.

>>> eng = SimulatedEngine(seed=0, defect_rates={})
>>> req = GenerationRequest("r", prompt="Solve for x: 3x + 7 = 22.", params=SamplingParams(n=1))
>>> "\\\\boxed{5}" in eng.generate([req])[0].completions[0].text
True
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from dataengine.demo_problems import Problem, solve
from dataengine.engines.base import Completion, Engine, GenerationRequest, GenerationResult, SamplingParams
from dataengine.records import content_hash

DEFECTS = (
    "wrong_answer",
    "language_mixing",
    "unclosed_think",
    "long_paragraph",
    "code_block",
    "repetition_loop",
    "near_duplicate",
)
PROMPT_DEFECTS = ("benchmark_contaminated",)

DEFAULT_DEFECT_RATES: dict[str, float] = {
    "wrong_answer": 0.15,
    "language_mixing": 0.05,
    "unclosed_think": 0.03,
    "long_paragraph": 0.03,
    "code_block": 0.03,
    "repetition_loop": 0.02,
    "near_duplicate": 0.03,
}

# The engine's token counts are estimates: characters / CHARS_PER_TOKEN (English BPE averages ~4).
CHARS_PER_TOKEN = 4

_OPENINGS = (
    "Okay, let me work through this problem carefully.",
    "Alright, I need to figure this out step by step.",
    "Let me start by reading the problem again and making sure I understand what is asked.",
    "Hmm, let me think about how to approach this.",
)
_LEADS = ("", "Let me see.", "Okay.", "Right.", "Now for the next part.", "Good, so far so good.", "Next piece.")
_REFLECTIONS = (
    "Wait, let me double-check that before going on.",
    "Hmm, is that right? Let me redo the computation another way to be sure.",
    "Let me pause and make sure I have not dropped a sign or a factor.",
    "Actually, let me re-read the question to confirm this is what it asks for.",
    "That seems reasonable, but I should verify it rather than assume it.",
)
_CONFIRMATIONS = (
    "Yes, that checks out.",
    "Good, both ways agree.",
    "Okay, that is consistent.",
    "Right, nothing was lost along the way.",
)
_ZH = (
    "让我再检查一下这个计算。",
    "所以这一步是正确的。",
    "这里需要仔细考虑每一个条件。",
    "我们先把已知条件整理一下。",
)
_LOOP = "Let me reconsider the previous step once more."

# R1-length reasoning, in characters: lognormal(mu, sigma) clipped to [MIN, MAX]. sigma fitted on
# the real traces (module docstring); mu = ln(20,000) - sigma^2 / 2, so the mean is ~20,000.
R1_LENGTH = {"mu": 9.516, "sigma": 0.88, "min": 800, "max": 200_000}
LENGTHS = ("short", "r1")
# Exploration sentences: a trial computation with fresh numbers and a remark. A number comes at
# least every four words, so no 5-gram and no sentence opening repeats (real CoT does not loop;
# the repetition filters must not see one here).
_TRY = ("Suppose", "Try", "What if", "Consider", "Say", "Testing", "Plugging in", "Checking", "Next,", "Compare",
        "If instead", "Take", "Maybe", "Or", "Estimate with", "Now")
_OPS = (("+", lambda a, b: a + b), ("-", lambda a, b: a - b), ("×", lambda a, b: a * b))
_NOUNS = ("total", "remainder", "difference", "sum", "product", "ratio", "count", "bound", "estimate", "value",
          "term", "factor", "case", "result", "quantity", "side", "angle", "area", "length", "rate", "price",
          "distance", "probability", "denominator", "numerator", "coefficient", "root", "exponent")
_CONNECT = ("so the", "then the", "hmm, the", "and the", "but the", "which makes the", "meaning the", "wait, the",
            "so my", "hence the", "yet the", "thus the")
_VERBS = ("would be", "exceeds", "stays below", "becomes", "is off by", "drops to", "matches", "is near",
          "jumps to", "shifts by", "leaves", "overshoots")
_CLOSE = ("Back to the main line with", "That narrows it to", "So keep", "Fine, continue from", "Good, note",
          "Either way, remember", "So the plan holds with")


def _estimate_tokens(text: str) -> int:
    return max(1, (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)


def _wrong(answer: str, rng: random.Random) -> str:
    """A plausible wrong answer: off by a small amount, or a sign error."""
    try:
        q = Fraction(answer)
    except (ValueError, ZeroDivisionError):
        return answer + "1"
    delta = rng.choice([1, -1, 2, 10, -10])
    w = -q if q != 0 and rng.random() < 0.3 else q + delta
    return str(w.numerator) if w.denominator == 1 else f"{w.numerator}/{w.denominator}"


def _labels_that_hold(text: str, defects: list[str]) -> list[str]:
    """After a cut-off, keep only the labels whose evidence is still in the text: a label that is
    not true of the text would count against a filter that is right."""
    kept = []
    for d in defects:
        if d == "wrong_answer":
            continue  # a cut-off completion has no answer to be wrong
        if d == "language_mixing" and not any("\u4e00" <= ch <= "\u9fff" for ch in text):
            continue
        if d == "code_block" and text.count("```") < 2:  # the whole fenced block survived
            continue
        kept.append(d)
    return kept


def _prompt_text(req: GenerationRequest) -> str:
    if req.messages is not None:
        users = [m["content"] for m in req.messages if m.get("role") == "user"]
        return users[-1] if users else req.messages[-1]["content"]
    return req.prompt or ""


@dataclass
class _Sample:
    text: str
    finish_reason: str
    defects: list[str]
    answer: str | None


class SimulatedEngine(Engine):
    """Synthetic long-CoT completions for generated problems, with labelled planted defects.

    Args:
        model: name recorded on traces (keep it obviously synthetic).
        seed: part of every sample's random seed, with the prompt text and the sample index.
        defect_rates: probability of each defect per sample (keys from `DEFECTS`); missing keys
            are 0, `None` means `DEFAULT_DEFECT_RATES`.
        think_format: `think` writes `<think>…</think>answer`; `prompt_opened` omits the opening
            tag, as when a chat template puts `<think>` in the prompt (R1-distill models).
        latency_s: sleep per request, to imitate generation time (kill tests, load tests).
        length: `short` (the worked steps only, ~1 KB) or `r1` (padded to R1 length, `R1_LENGTH`).
    """

    name = "simulated"

    def __init__(
        self,
        model: str = "simulated",
        seed: int = 0,
        defect_rates: dict[str, float] | None = None,
        think_format: str = "think",
        latency_s: float = 0.0,
        length: str = "short",
    ):
        rates = dict(DEFAULT_DEFECT_RATES if defect_rates is None else defect_rates)
        unknown = set(rates) - set(DEFECTS)
        if unknown:
            raise ValueError(f"simulated engine: unknown defects {sorted(unknown)}; known: {', '.join(DEFECTS)}")
        for k, v in rates.items():
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"simulated engine: defect rate {k}={v} is not in [0, 1]")
        if think_format not in ("think", "prompt_opened"):
            raise ValueError(f"simulated engine: think_format must be think or prompt_opened, got {think_format!r}")
        if length not in LENGTHS:
            raise ValueError(f"simulated engine: length must be one of {', '.join(LENGTHS)}, got {length!r}")
        self.model, self.seed, self.rates, self.think_format = model, seed, rates, think_format
        self.length = length
        self.latency_s = latency_s

    # ------------------------------------------------------------------ interface
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return [self._one(r) for r in requests]

    def _one(self, req: GenerationRequest) -> GenerationResult:
        t0 = time.perf_counter()
        if self.latency_s:
            time.sleep(self.latency_s)
        text = _prompt_text(req)
        meta = req.metadata or {}
        indices = list(meta.get("sample_indices") or range(req.params.n))
        if len(indices) != req.params.n:
            return GenerationResult(req.request_id, [], error=f"sample_indices has {len(indices)} entries for n={req.params.n}")
        problem = solve(text)
        prompt_defects = [d for d in (meta.get("prompt_metadata") or {}).get("planted_defects") or [] if d in PROMPT_DEFECTS]
        cache: dict[int, _Sample] = {}
        completions = []
        for idx in indices:
            s = self._sample(text, problem, meta.get("reference_answer"), idx, cache)
            comp_text, finish = self._cap(s.text, s.finish_reason, req.params)
            completions.append(
                Completion(
                    comp_text,
                    finish,
                    _estimate_tokens(comp_text),
                    metadata={
                        "synthetic": True,
                        "planted_defects": prompt_defects + s.defects,
                        "simulated_answer": s.answer,
                        "problem_kind": problem.kind if problem else None,
                    },
                )
            )
        rendered = req.prompt if req.prompt is not None else "\n".join(m["content"] for m in req.messages or [])
        return GenerationResult(
            req.request_id, completions, prompt_tokens=_estimate_tokens(rendered),
            latency_s=time.perf_counter() - t0,
        )

    @staticmethod
    def _cap(text: str, finish: str, params: SamplingParams) -> tuple[str, str]:
        limit = params.max_tokens * CHARS_PER_TOKEN
        if len(text) > limit:
            return text[:limit], "length"
        for stop in params.stop:
            cut = text.find(stop)
            if cut >= 0:
                return text[:cut], "stop"
        return text, finish

    # ------------------------------------------------------------------ one sample
    def _sample(self, text: str, problem: Problem | None, reference: str | None, idx: int, cache: dict[int, _Sample]) -> _Sample:
        if idx in cache:
            return cache[idx]
        rng = random.Random(content_hash("sim", self.seed, idx, text))
        planted = [d for d in DEFECTS if rng.random() < self.rates.get(d, 0.0)]
        if "near_duplicate" in planted:
            planted.remove("near_duplicate")
            if idx > 0:
                base = self._sample(text, problem, reference, 0, cache)
                # A one-word edit: what a near-duplicate detector must still catch.
                edited = base.text.replace(" the ", " this ", 1) if " the " in base.text else base.text + " Done."
                s = _Sample(edited, base.finish_reason, [*base.defects, "near_duplicate"], base.answer)
                cache[idx] = s
                return s
        s = self._write(rng, problem, text, reference, planted)
        cache[idx] = s
        return s

    def _write(self, rng: random.Random, problem: Problem | None, text: str, reference: str | None, defects: list[str]) -> _Sample:
        if problem is not None:
            steps, answer = list(problem.steps), problem.answer
        else:
            question = " ".join(text.split())[:300]
            answer = reference
            steps = [
                f"The question is: {question}",
                "Let me list what is given and what is asked, and pick a method that fits.",
                "I will work it out piece by piece and keep track of each intermediate result.",
                "Now I combine the pieces and see what the result must be.",
            ]
        if "wrong_answer" in defects:
            answer = _wrong(answer, rng) if answer is not None else "0"
        paragraphs = [rng.choice(_OPENINGS)]
        for i, step in enumerate(steps):
            lead = _LEADS[0] if i == 0 else rng.choice(_LEADS)
            para = f"{lead} {step}" if lead else step
            if rng.random() < 0.5:
                para += f" {rng.choice(_REFLECTIONS)} {step.split(':')[-1].strip()} {rng.choice(_CONFIRMATIONS)}"
            paragraphs.append(para)
        if self.length == "r1":
            paragraphs = _pad_to_r1_length(paragraphs, rng)
        if answer is not None:
            paragraphs.append(f"{rng.choice(_REFLECTIONS)} Going over every step again, each result follows from the one before. So the answer is {answer}.")
        else:
            paragraphs.append("I cannot pin down a single value from what I have worked out.")
        if "language_mixing" in defects:
            for _ in range(2):
                j = rng.randrange(1, len(paragraphs))
                paragraphs[j] = f"{paragraphs[j]} {rng.choice(_ZH)}{rng.choice(_ZH)}"
        if "code_block" in defects:
            check = f"print({answer})" if answer is not None else "print('check')"
            paragraphs.insert(len(paragraphs) - 1, f"Let me check this with a quick script:\n\n```python\n# verify the result\n{check}\n```")
        if "long_paragraph" in defects:
            # ~700 words, so even a cut-off (unclosed) copy keeps a paragraph of several hundred.
            filler = " ".join(rng.choice(_REFLECTIONS) + " " + rng.choice(_CONFIRMATIONS) for _ in range(45))
            paragraphs = [" ".join(p.replace("\n", " ") for p in paragraphs) + " " + filler]
        head = "<think>\n" if self.think_format == "think" else ""
        if "repetition_loop" in defects:
            reasoning = "\n\n".join(paragraphs[: max(2, len(paragraphs) // 2)])
            loop = " ".join([_LOOP] * rng.randint(40, 80))
            text = f"{head}{reasoning}\n\n{loop}"
            return _Sample(text, "length", _labels_that_hold(text, defects), None)
        reasoning = "\n\n".join(paragraphs)
        if "unclosed_think" in defects:
            text = head + reasoning[: max(40, int(len(reasoning) * rng.uniform(0.4, 0.8)))]
            return _Sample(text, "length", _labels_that_hold(text, defects), None)
        if answer is None:
            summary = "I could not determine the answer from the information given."
        elif problem is not None:
            summary = f"**Summary.** {problem.steps[-2] if len(problem.steps) > 1 else problem.steps[0]}\n\nThe final answer is $\\boxed{{{answer}}}$."
        else:
            summary = f"Working through the problem step by step gives the result.\n\nThe final answer is $\\boxed{{{answer}}}$."
        return _Sample(f"{head}{reasoning}\n</think>\n\n{summary}", "stop", defects, answer)


def _explore(rng: random.Random) -> str:
    """One exploratory paragraph: a few trial computations with fresh numbers, then a closer."""
    sentences = []
    for _ in range(rng.randint(3, 6)):
        a, b = rng.randint(2, 999), rng.randint(2, 99)
        sym, op = rng.choice(_OPS)
        remark = f"{rng.choice(_CONNECT)} {rng.choice(_NOUNS)} {rng.choice(_VERBS)} {rng.randint(2, 9999)}"
        sentences.append(f"{rng.choice(_TRY)} {a} and {b}: {a} {sym} {b} = {op(a, b)}, {remark}.")
    sentences.append(f"{rng.choice(_CLOSE)} {rng.randint(2, 9999)}.")
    return " ".join(sentences)


def _pad_to_r1_length(paragraphs: list[str], rng: random.Random) -> list[str]:
    """Insert exploratory paragraphs between the steps until the reasoning reaches a length
    drawn from `R1_LENGTH`."""
    r = R1_LENGTH
    target = int(min(r["max"], max(r["min"], rng.lognormvariate(r["mu"], r["sigma"]))))
    total = sum(len(p) + 2 for p in paragraphs)
    out = list(paragraphs)
    while total < target:
        extra = _explore(rng)
        out.insert(rng.randint(1, len(out)), extra)
        total += len(extra) + 2
    return out
