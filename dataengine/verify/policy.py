"""Which verifiers run for a trace, and how their verdicts combine.

Policies (per domain, `verify.policies` in the config):

- ``rule``: the domain's rule verifier only (math, mcq or code).
- ``judge``: the generative judge only.
- ``rule_then_judge``: the rule verifier; the judge only where the rule said `unparseable` or
  `incorrect` (an answer the rules cannot read, or an equivalent form they miss).
- ``union``: both always.

A trace is accepted when any verifier that ran for it says `correct` (the `verified_traces` view).

Defaults, and why:

| domain | policy | rule verifier |
|---|---|---|
| math | rule_then_judge | math (Math-Verify) |
| code | rule | code (tests in the sandbox; a judge cannot run code) |
| science, logic, mcq | rule_then_judge | mcq when the prompt has options, else math |
| anything else (general, writing, medical, qa, chat) | judge | none |
"""

from __future__ import annotations

import json
from typing import Any

POLICIES = ("rule", "judge", "rule_then_judge", "union")

DEFAULT_POLICIES: dict[str, str] = {
    "math": "rule_then_judge",
    "code": "rule",
    "science": "rule_then_judge",
    "logic": "rule_then_judge",
    "mcq": "rule_then_judge",
}
DEFAULT_FALLBACK_POLICY = "judge"
# Rule verdicts after which `rule_then_judge` asks the judge.
JUDGE_AFTER = ("unparseable", "incorrect")


def mcq_options(prompt_metadata: str | dict[str, Any] | None) -> dict[str, str] | None:
    """{letter: text} from a prompt's metadata `options` / `choices` (a mapping or a list)."""
    meta = json.loads(prompt_metadata) if isinstance(prompt_metadata, str) and prompt_metadata else prompt_metadata or {}
    raw = meta.get("options") or meta.get("choices") if isinstance(meta, dict) else None
    if isinstance(raw, dict):
        return {str(k).strip().upper(): str(v) for k, v in raw.items()}
    if isinstance(raw, list) and raw:
        return {chr(ord("A") + i): str(v) for i, v in enumerate(raw)}
    return None


def rule_verifier(domain: str, prompt_metadata: str | dict[str, Any] | None = None) -> str | None:
    """The rule verifier for a domain: `math`, `mcq`, `code`, or None (no rule applies)."""
    if domain == "code":
        return "code"
    if domain == "mcq" or (domain in ("science", "logic", "math") and mcq_options(prompt_metadata)):
        return "mcq"
    if domain in ("math", "science", "logic"):
        return "math"
    return None


def policy_for(domain: str, policies: dict[str, str], fallback: str) -> str:
    p = policies.get(domain, fallback)
    if p not in POLICIES:
        raise ValueError(f"unknown policy {p!r} for domain {domain!r}; known: {', '.join(POLICIES)}")
    return p


def wants_judge(policy: str, rule_name: str | None, rule_verdict: str | None) -> bool:
    """Whether the judge runs for a trace, given its policy and what the rule verifier said."""
    if policy == "judge" or (rule_name is None and policy != "rule"):
        return True
    if policy == "union":
        return True
    if policy == "rule_then_judge":
        return rule_verdict in JUDGE_AFTER
    return False


def combine(verdicts: dict[str, str]) -> str:
    """One verdict from several verifiers': correct if any is; else the rule's, else the judge's."""
    if not verdicts:
        return "error"
    if "correct" in verdicts.values():
        return "correct"
    for name in ("code", "math", "mcq", "judge"):
        if name in verdicts:
            return verdicts[name]
    return next(iter(verdicts.values()))
