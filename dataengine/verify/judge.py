"""A generative judge: a model compares the reference answer with the response's final answer.

The prompt is data (`dataengine/templates/judge.jinja`, or any Jinja file given in config); it
receives `question`, `reference` and `response`. The model's reply is parsed tolerantly (chatter,
markdown, "**Verdict:** equivalent", a bare last word), mapped to our verdicts:
EQUIVALENT → correct, DIFFERENT → incorrect, AMBIGUOUS → unparseable.

Calls go through the engine interface (any OpenAI-compatible server, vLLM, transformers):
requests in chunks of `max_concurrency`, results cached by content hash (the same reference,
response, question, template and model are never judged twice), and a reply that fails or cannot
be parsed is retried with exponential backoff; after the last retry the verdict is `error`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataengine.engines.base import Engine, GenerationRequest, SamplingParams
from dataengine.records import content_hash
from dataengine.verify.result import VerifyResult
from filters.split import split_completion

TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "templates" / "judge.jinja"
_WORDS = {"EQUIVALENT": "correct", "DIFFERENT": "incorrect", "AMBIGUOUS": "unparseable"}
_VERDICT_LINE = re.compile(r"verdict\s*[:=\-]?\s*[*_`\"'\[(]*\s*(EQUIVALENT|DIFFERENT|AMBIGUOUS)\b", re.IGNORECASE)
_ANY_WORD = re.compile(r"\b(EQUIVALENT|DIFFERENT|AMBIGUOUS|NOT\s+EQUIVALENT)\b", re.IGNORECASE)


def parse_judge_reply(text: str) -> str | None:
    """EQUIVALENT / DIFFERENT / AMBIGUOUS from a judge's reply, or None.

    The last "Verdict: X" wins; without one, the last verdict word of the reply (a model that
    talks about "equivalent forms" and then concludes DIFFERENT is DIFFERENT). "not equivalent"
    reads as DIFFERENT. A think block is skipped: only the conclusion counts.

    >>> parse_judge_reply("Both are 1/2, so they match.\\n**Verdict:** Equivalent")
    'EQUIVALENT'
    >>> parse_judge_reply("<think>is it equivalent?</think>They are not equivalent.")
    'DIFFERENT'
    """
    text = split_completion(text).answer  # the one split: the reply after its think block
    found = _VERDICT_LINE.findall(text)
    if found:
        return found[-1].upper()
    words = _ANY_WORD.findall(text)
    if not words:
        return None
    w = re.sub(r"\s+", " ", words[-1].upper())
    return "DIFFERENT" if w == "NOT EQUIVALENT" else w


class JudgeCache:
    """Verdicts by content hash; in memory, and appended to a JSONL file when `path` is given."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self._mem: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        if self.path and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill mid-append; that item is judged again
                self._mem[row["key"]] = row

    def get(self, key: str) -> dict[str, Any] | None:
        return self._mem.get(key)

    def put(self, key: str, row: dict[str, Any]) -> None:
        row = {"key": key, **row}
        with self._lock:
            self._mem[key] = row
            if self.path:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")


@dataclass
class JudgeItem:
    reference: str
    response: str
    question: str | None = None


class Judge:
    """Judge (reference, response) pairs with a model behind `engine`.

    Args:
        engine: any `Engine`; its `model` is recorded as `judge_model`.
        template: path of the Jinja prompt template (default: the packaged judge.jinja).
        max_concurrency: requests handed to the engine at once.
        max_retries: further attempts for a failed or unparseable reply.
        backoff_s: the wait before retry k is backoff_s * 2**k.
        max_tokens / temperature: the judge's sampling (greedy, short by default).
        cache: a `JudgeCache`; a fresh in-memory one by default.
    """

    def __init__(
        self,
        engine: Engine,
        template: str | Path | None = None,
        max_concurrency: int = 32,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        cache: JudgeCache | None = None,
    ):
        import jinja2

        path = Path(template) if template else TEMPLATE_PATH
        self.template_text = path.read_text(encoding="utf-8")
        import jinja2.sandbox

        # Sandboxed: a judge template from config is user input (see prompting._env).
        self._template = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True).from_string(
            self.template_text
        )
        self.engine = engine
        self.max_concurrency = max(1, max_concurrency)
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s
        self.params = SamplingParams(n=1, temperature=temperature, top_p=1.0, max_tokens=max_tokens)
        self.cache = cache or JudgeCache()
        self.stats = {"requests": 0, "cache_hits": 0, "retries": 0}

    @property
    def model(self) -> str:
        return getattr(self.engine, "model", "unknown")

    def render(self, item: JudgeItem) -> str:
        return self._template.render(question=item.question or "", reference=item.reference, response=item.response)

    def key(self, item: JudgeItem) -> str:
        return content_hash("judge", self.model, content_hash(self.template_text), item.question or "", item.reference, item.response)

    def judge(self, items: Sequence[JudgeItem]) -> list[VerifyResult]:
        """One `VerifyResult` per item (verdict, the response judged, reply details)."""
        results: list[VerifyResult | None] = [None] * len(items)
        todo: list[int] = []
        for i, it in enumerate(items):
            if not it.response.strip():
                results[i] = VerifyResult("unparseable", None, {"reason": "empty_response"})
                continue
            hit = self.cache.get(self.key(it))
            if hit is not None:
                self.stats["cache_hits"] += 1
                results[i] = VerifyResult(hit["verdict"], it.response, {**hit["details"], "cached": True})
            else:
                todo.append(i)
        last_error: dict[int, str] = {}
        for attempt in range(self.max_retries + 1):
            if not todo:
                break
            if attempt:
                self.stats["retries"] += len(todo)
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            failed: list[int] = []
            for start in range(0, len(todo), self.max_concurrency):
                chunk = todo[start : start + self.max_concurrency]
                reqs = [
                    GenerationRequest(f"judge-{i}-{attempt}", messages=[{"role": "user", "content": self.render(items[i])}],
                                      params=self.params)
                    for i in chunk
                ]
                self.stats["requests"] += len(reqs)
                for i, res in zip(chunk, self.engine.generate(reqs)):
                    if not res.ok or not res.completions:
                        last_error[i] = f"engine: {res.error or 'no completion'}"
                        failed.append(i)
                        continue
                    reply = res.completions[0].text
                    word = parse_judge_reply(reply)
                    if word is None:
                        last_error[i] = f"unparseable reply: {reply[-200:]!r}"
                        failed.append(i)
                        continue
                    details = {"reason": f"judge_{word.lower()}", "judge_word": word, "reply": reply[-500:], "attempts": attempt + 1}
                    results[i] = VerifyResult(_WORDS[word], items[i].response, details)
                    self.cache.put(self.key(items[i]), {"verdict": _WORDS[word], "details": details})
            todo = failed
        for i in todo:
            results[i] = VerifyResult(
                "error", items[i].response,
                {"reason": "judge_failed_after_retries", "error": last_error.get(i, ""), "attempts": self.max_retries + 1},
            )
        return [r for r in results if r is not None]
