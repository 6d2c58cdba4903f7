"""Turn a `prompts` row into chat messages with a Jinja template: templates are data, not code.

Shipped templates (`dataengine/templates/*.jinja`):

- `cold_start`: R1 cold start — one long chain-of-thought exemplar (drawn per domain from
  `cold_start_exemplars.yaml`, seeded per prompt), asking for reflection and verification and for
  `<think>reasoning</think>` then a summary;
- `rejection_sampling`: the prompt plus "Please reason step by step, and put your final answer
  within \\boxed{}." (math, science, logic);
- `non_reasoning_cot`: a short chain of thought before the answer, none for trivial queries;
- `plain`: the prompt as it is.

A template name may also be a path to your own `.jinja` file. Templates see `prompt`, `domain`,
`language`, `prompt_id`, `metadata`, `exemplar` (problem, reasoning, summary), `trivial`, and any
`template_vars` from config. Undefined variables are errors, not empty strings.

>>> r = PromptRenderer("rejection_sampling")
>>> r.messages({"prompt": "1+1?", "domain": "math", "prompt_id": "p"})[0]["content"]
'1+1?\\nPlease reason step by step, and put your final answer within \\\\boxed{}.'
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox

from dataengine.config import safe_load_bounded
from dataengine.records import content_hash

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_EXEMPLARS = TEMPLATE_DIR / "cold_start_exemplars.yaml"

# Queries that need no chain of thought: greetings, thanks, one-word small talk.
# One definition of a trivial query for the whole project (generation templates and the
# non-reasoning mix both ask it). "who are you" is not here: that is self-cognition data.
_TRIVIAL = re.compile(
    r"^\s*(hi+|hello+|hey+|yo|hiya|good (morning|afternoon|evening|night)|thanks?( you)?( very much)?|"
    r"thx|ok(ay)?|bye|goodbye|how are you( doing)?|what'?s up|hallo|bonjour|hola|merci|danke|gracias|"
    r"(嘿，?)?你好|您好|嗨|哈喽|谢谢|多谢|再见|早上好|中午好|下午好|晚上好|好的|在吗)"
    r"\s*[啊呀呢]?\s*[!！.。?？~]*\s*$",
    re.IGNORECASE,
)


def is_trivial_query(text: str) -> bool:
    """True for greetings and small talk (R1: trivial queries get no chain of thought)."""
    return bool(_TRIVIAL.match(text)) or not text.strip()


def template_names() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.jinja"))


@cache
def _env(folder: str) -> jinja2.Environment:
    # Sandboxed: a template file is user input, and plain Jinja lets it reach Python internals
    # (`cycler.__init__.__globals__.os.popen(...)` runs a command); the sandbox refuses them.
    return jinja2.sandbox.ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,  # noqa: S701 - prompts are plain text, not HTML
    )


def load_template(name: str) -> jinja2.Template:
    """A shipped template by name (`cold_start`), or a `.jinja` file by path."""
    p = Path(name)
    if p.suffix == ".jinja" or p.parent != Path("."):
        if not p.is_file():
            raise FileNotFoundError(f"template file {p} not found")
        return _env(str(p.resolve().parent)).get_template(p.name)
    if not (TEMPLATE_DIR / f"{name}.jinja").is_file():
        raise ValueError(f"unknown template {name!r}; shipped: {', '.join(template_names())}, or give a path to a .jinja file")
    return _env(str(TEMPLATE_DIR)).get_template(f"{name}.jinja")


@dataclass(frozen=True)
class Exemplar:
    problem: str
    reasoning: str
    summary: str


def load_exemplars(path: str | Path | None = None) -> dict[str, list[Exemplar]]:
    """The exemplar pool: a YAML mapping of domain to a list of {problem, reasoning, summary}."""
    p = Path(path) if path else DEFAULT_EXEMPLARS
    try:
        data = safe_load_bounded(p.read_text(encoding="utf-8"), str(p))
    except OSError as e:
        raise FileNotFoundError(f"exemplar pool {p}: {e.strerror}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{p}: expected a mapping of domain to a list of exemplars")
    pool: dict[str, list[Exemplar]] = {}
    for domain, items in data.items():
        if not isinstance(items, list) or not items:
            raise ValueError(f"{p}: {domain}: expected a non-empty list of exemplars")
        out = []
        for i, it in enumerate(items):
            missing = [k for k in ("problem", "reasoning", "summary") if not isinstance(it, dict) or not it.get(k)]
            if missing:
                raise ValueError(f"{p}: {domain}[{i}]: missing {', '.join(missing)}")
            out.append(Exemplar(str(it["problem"]), str(it["reasoning"]), str(it["summary"])))
        pool[str(domain)] = out
    if "general" not in pool:
        raise ValueError(f"{p}: the pool needs a `general` list (used for domains without their own)")
    return pool


class PromptRenderer:
    """Renders `prompts` rows into chat messages.

    Args:
        template: a shipped template name or a `.jinja` path.
        system_prompt: an optional system message (the R1 report recommends none).
        exemplars: the cold-start exemplar pool file (default: the shipped one).
        seed: with the prompt id, picks the exemplar, so a rerun renders the same text.
        variables: extra template variables (`template_vars` in config).
    """

    def __init__(self, template: str = "rejection_sampling", system_prompt: str | None = None,
                 exemplars: str | Path | None = None, seed: int = 0, variables: dict[str, Any] | None = None):
        self.template_name = template
        self.template = load_template(template)
        env = self.template.environment
        source = env.loader.get_source(env, self.template.name)[0]  # type: ignore[union-attr, arg-type]
        # Only templates that use an exemplar load the pool (and draw one per prompt).
        self.uses = jinja2.meta.find_undeclared_variables(env.parse(source))
        self.system_prompt = system_prompt
        self.seed = seed
        self.variables = dict(variables or {})
        self._exemplars_path = exemplars
        self._pool: dict[str, list[Exemplar]] | None = None

    @property
    def pool(self) -> dict[str, list[Exemplar]]:
        if self._pool is None:
            self._pool = load_exemplars(self._exemplars_path)
        return self._pool

    def exemplar_for(self, prompt_id: str, domain: str) -> Exemplar:
        choices = self.pool.get(domain) or self.pool["general"]
        return choices[random.Random(content_hash("exemplar", self.seed, prompt_id)).randrange(len(choices))]

    def render(self, row: dict[str, Any]) -> str:
        text = row["prompt"]
        domain = row.get("domain") or "general"
        ctx = {
            "prompt": text,
            "domain": domain,
            "language": row.get("language"),
            "prompt_id": row.get("prompt_id", ""),
            "metadata": row.get("metadata") or {},
            "trivial": is_trivial_query(text),
            **self.variables,
        }
        if "exemplar" in self.uses:
            ctx["exemplar"] = self.exemplar_for(ctx["prompt_id"], domain)
        try:
            return self.template.render(**ctx).strip()
        except jinja2.UndefinedError as e:
            raise ValueError(f"template {self.template_name}: {e.message}; pass it in generate.template_vars") from None
        except jinja2.sandbox.SecurityError as e:
            raise ValueError(f"template {self.template_name}: refused by the template sandbox: {e}") from None

    def messages(self, row: dict[str, Any]) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        msgs.append({"role": "user", "content": self.render(row)})
        return msgs
