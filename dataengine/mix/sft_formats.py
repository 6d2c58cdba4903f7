"""Existing SFT sets in their common shapes → one `Conversation` (system, alternating turns).

Shapes (`fmt`):

- ``alpaca``: ``instruction`` + optional ``input`` + ``output`` (optional ``system``, ``history``
  as ``[[user, assistant], …]``, LLaMA-Factory style).
- ``sharegpt``: ``conversations`` (or ``messages``) of ``{from, value}`` with ``human``/``gpt``
  roles (also ``user``/``assistant``/``system``; optional top-level ``system``).
- ``messages``: OpenAI-style ``messages`` of ``{role, content}``.
- ``seed_tasks``: stanford_alpaca's ``seed_tasks.jsonl`` (``instruction`` + ``instances`` of
  ``{input, output}``; one conversation from the first instance).
- ``auto``: decided per row from its fields.

A conversation must end with an assistant turn; a trailing unanswered user turn (common in
ShareGPT dumps) is dropped and noted, a conversation with no answered user turn is an error.

>>> c = to_conversation({"instruction": "Translate to French", "input": "cat", "output": "chat"}, "alpaca")
>>> c.prompt, c.response
('Translate to French\\n\\ncat', 'chat')
>>> c = to_conversation({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]})
>>> (c.prompt, c.response, c.history)
('hi', 'hello', [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SftFormat = Literal["auto", "alpaca", "sharegpt", "messages", "seed_tasks"]
SFT_FORMATS: tuple[str, ...] = ("auto", "alpaca", "sharegpt", "messages", "seed_tasks")

_ROLE = {
    "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "bot": "assistant",
    "model": "assistant", "chatgpt": "assistant", "system": "system",
}


class SftRowError(ValueError):
    """A row that is not a usable conversation; `reason` is a stable snake_case string."""

    def __init__(self, reason: str, field_name: str | None, detail: str):
        super().__init__(detail)
        self.reason, self.field_name, self.detail = reason, field_name, detail


@dataclass
class Conversation:
    """The last user turn and its answer, plus what came before (for multi-turn rows)."""

    prompt: str
    response: str
    system: str | None = None
    # Earlier turns, oldest first: [{"role": "user"|"assistant", "content": str}, …]
    history: list[dict[str, str]] = field(default_factory=list)
    fmt: str = ""
    dropped_trailing_user_turn: bool = False

    def messages(self) -> list[dict[str, str]]:
        out = [{"role": "system", "content": self.system}] if self.system else []
        return out + self.history + [{"role": "user", "content": self.prompt},
                                     {"role": "assistant", "content": self.response}]


def detect_format(row: dict[str, Any]) -> str:
    """The shape of one row, from its fields."""
    if isinstance(row.get("conversations"), list):
        return "sharegpt"
    if isinstance(row.get("messages"), list):
        msgs = row["messages"]
        if msgs and isinstance(msgs[0], dict) and "from" in msgs[0]:
            return "sharegpt"
        return "messages"
    if "instruction" in row and isinstance(row.get("instances"), list):
        return "seed_tasks"
    if "instruction" in row and "output" in row:
        return "alpaca"
    raise SftRowError("unknown_sft_format", None,
                      f"fields {sorted(row)[:8]} match no SFT shape (alpaca, sharegpt, messages, seed_tasks)")


def _str(row: dict[str, Any], key: str, *, required: bool = True) -> str:
    v = row.get(key)
    if v is None:
        if required:
            raise SftRowError("missing_field", key, f"no field {key!r}")
        return ""
    if not isinstance(v, str):
        raise SftRowError("wrong_type", key, f"field {key!r} is {type(v).__name__}, expected a string")
    return v


def _content(v: Any, where: str) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list):  # content parts: [{type: text, text: …}]
        return "".join(str(p.get("text", p.get("value", ""))) if isinstance(p, dict) else str(p) for p in v)
    raise SftRowError("wrong_type", where, f"{where} is {type(v).__name__}, expected text")


def _from_alpaca(row: dict[str, Any]) -> Conversation:
    instruction = _str(row, "instruction")
    extra = _str(row, "input", required=False)
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    history: list[dict[str, str]] = []
    hist = row.get("history") or []
    if not isinstance(hist, list):
        raise SftRowError("wrong_type", "history", "history must be a list of [user, assistant] pairs")
    for i, pair in enumerate(hist):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise SftRowError("wrong_type", "history", f"history[{i}] is not a [user, assistant] pair of strings")
        history += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    system = row.get("system")
    return Conversation(prompt, _str(row, "output"), system if isinstance(system, str) and system else None,
                        history, "alpaca")


def _from_seed_task(row: dict[str, Any]) -> Conversation:
    inst = row["instances"]
    if not inst or not isinstance(inst[0], dict):
        raise SftRowError("missing_field", "instances", "no instance with input/output")
    first = inst[0]
    conv = _from_alpaca({"instruction": row.get("instruction"), "input": first.get("input") or "",
                         "output": first.get("output")})
    conv.fmt = "seed_tasks"
    return conv


def _from_turns(turns: list[dict[str, str]], system: str | None, fmt: str) -> Conversation:
    if turns and turns[0]["role"] == "system":
        system = system or turns[0]["content"]
        turns = turns[1:]
    dropped = False
    while turns and turns[-1]["role"] == "user":
        turns = turns[:-1]
        dropped = True
    if len(turns) < 2:
        raise SftRowError("no_assistant_turn", "conversations", "no user turn followed by an assistant turn")
    for i, t in enumerate(turns):
        want = "user" if i % 2 == 0 else "assistant"
        if t["role"] != want:
            raise SftRowError("turns_out_of_order", "conversations",
                              f"turn {i} is {t['role']!r}, expected {want!r} (turns must alternate user/assistant)")
    if not turns[-2]["content"].strip():
        raise SftRowError("empty_prompt", "conversations", "the last user turn is empty")
    return Conversation(turns[-2]["content"], turns[-1]["content"], system or None,
                        [dict(t) for t in turns[:-2]], fmt, dropped)


def _from_sharegpt(row: dict[str, Any]) -> Conversation:
    key = "conversations" if "conversations" in row else "messages"
    turns = []
    for i, m in enumerate(row[key]):
        if not isinstance(m, dict) or "from" not in m:
            raise SftRowError("wrong_type", key, f"{key}[{i}] has no 'from'")
        role = _ROLE.get(str(m["from"]).lower())
        if role is None:
            raise SftRowError("unknown_role", key, f"{key}[{i}].from = {m['from']!r}")
        turns.append({"role": role, "content": _content(m.get("value"), f"{key}[{i}].value")})
    system = row.get("system")
    return _from_turns(turns, system if isinstance(system, str) else None, "sharegpt")


def _from_messages(row: dict[str, Any]) -> Conversation:
    turns = []
    for i, m in enumerate(row["messages"]):
        if not isinstance(m, dict) or "role" not in m:
            raise SftRowError("wrong_type", "messages", f"messages[{i}] has no 'role'")
        role = _ROLE.get(str(m["role"]).lower())
        if role is None:
            raise SftRowError("unknown_role", "messages", f"messages[{i}].role = {m['role']!r}")
        turns.append({"role": role, "content": _content(m.get("content"), f"messages[{i}].content")})
    return _from_turns(turns, None, "messages")


_CONVERTERS = {"alpaca": _from_alpaca, "sharegpt": _from_sharegpt, "messages": _from_messages,
               "seed_tasks": _from_seed_task}


def to_conversation(row: dict[str, Any], fmt: str = "auto") -> Conversation:
    """Convert one row; raises `SftRowError` (reason, field, detail) for rows that cannot be used."""
    if fmt not in SFT_FORMATS:
        raise ValueError(f"unknown SFT format {fmt!r}; known: {', '.join(SFT_FORMATS)}")
    name = detect_format(row) if fmt == "auto" else fmt
    try:
        conv = _CONVERTERS[name](row)
    except KeyError as e:
        raise SftRowError("missing_field", str(e.args[0]), f"{name} row without field {e.args[0]!r}") from None
    if not conv.prompt.strip():
        raise SftRowError("empty_prompt", "prompt", "prompt is empty or whitespace")
    if not conv.response.strip():
        raise SftRowError("empty_completion", "response", "response is empty or whitespace")
    return conv
