"""The one result type every verifier returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The only verdicts a verifier may give (DESIGN.md `verifications.verdict`).
VERDICTS = ("correct", "incorrect", "unparseable", "timeout", "error")


@dataclass(slots=True)
class VerifyResult:
    """A verdict, the answer the verifier extracted (None when it found none), and details.

    `details` always carries a stable snake_case `reason` saying why the verdict is what it is.
    """

    verdict: str
    answer: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"


def query_rows(ws: Any, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows of a read-only workspace query as dicts."""
    con = ws.connect()
    try:
        cur = con.execute(sql, dict(params or {}))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()
