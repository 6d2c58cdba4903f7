"""The labelled real-trace set (tests/labelled_traces.tsv): every filter's verdict against labels
read by hand, per reason.

Each row names a trace by file and line/row in ../shared/data/traces (tests/trace_refs.py loads
it; nothing is copied), and gives, per filter, `keep` or the reason it must be rejected for, and a
one-line why. Rows of set `calibration` were read while the rules and defaults were set; rows of
set `heldout` were drawn and read after, with the rules frozen.

Holds: false rejection of keepable traces at most 2% per reason, no truncated answer kept.
Print the table: `python tests/test_labelled_traces.py`.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trace_refs import load_ref  # noqa: E402

from filters import run_filters  # noqa: E402

LABELS = Path(__file__).with_name("labelled_traces.tsv")
FILTERS = ("format", "readability", "language_mixing")
MAX_FALSE_REJECTION = 0.02


def read_labels() -> list[dict[str, str]]:
    rows = []
    for n, line in enumerate(LABELS.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 7:
            raise ValueError(f"{LABELS.name}:{n}: expected 7 tab-separated fields, got {len(parts)}")
        file, loc, fmt, rd, lg, set_, why = parts
        rows.append({"file": file, "locator": loc, "format": fmt, "readability": rd, "language_mixing": lg,
                     "set": set_, "why": why, "line": str(n)})
    return rows


def judge(traces: Path) -> list[tuple[dict[str, str], dict[str, str | None]]]:
    labels = read_labels()
    inputs = [load_ref(traces, r["file"], r["locator"]) for r in labels]
    out = []
    for i in range(0, len(inputs), 200):
        out += run_filters(inputs[i:i + 200], FILTERS)
    return [(lab, {f: got[f].reason for f in FILTERS}) for lab, got in zip(labels, out)]


def table(judged: list[tuple[dict[str, str], dict[str, str | None]]], which: str | None = None) -> list[dict]:
    """Per filter and reason: labelled, predicted, TP, precision, recall, false rejections of keepable."""
    rows = []
    for f in FILTERS:
        pairs = [(lab[f], got[f] or "keep") for lab, got in judged if lab[f] != "-" and (which is None or lab["set"] == which)]
        keepable = sum(1 for lab, _ in pairs if lab == "keep")
        reasons = sorted({r for p in pairs for r in p} - {"keep"})
        for reason in reasons:
            labelled = sum(1 for lab, _ in pairs if lab == reason)
            predicted = sum(1 for _, got in pairs if got == reason)
            tp = sum(1 for lab, got in pairs if lab == got == reason)
            false_rej = sum(1 for lab, got in pairs if lab == "keep" and got == reason)
            rows.append({"filter": f, "reason": reason, "labelled": labelled, "predicted": predicted, "tp": tp,
                         "precision": tp / predicted if predicted else None,
                         "recall": tp / labelled if labelled else None,
                         "false_rejections": false_rej, "keepable": keepable,
                         "false_rejection_rate": false_rej / keepable if keepable else 0.0})
    return rows


def format_table(rows: list[dict]) -> str:
    def pct(x: float | None) -> str:
        return "   -  " if x is None else f"{x:6.1%}"

    lines = [f"{'filter':16} {'reason':32} {'label':>5} {'pred':>5} {'tp':>4} {'prec':>7} {'recall':>7} {'false rej of keepable':>22}"]
    for r in rows:
        lines.append(f"{r['filter']:16} {r['reason']:32} {r['labelled']:5} {r['predicted']:5} {r['tp']:4} "
                     f"{pct(r['precision']):>7} {pct(r['recall']):>7} {r['false_rejections']:>6}/{r['keepable']:<4} {pct(r['false_rejection_rate'])}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def judged(shared_data):
    return judge(shared_data / "traces")


def test_the_set_is_large_balanced_and_read(shared_data):
    labels = read_labels()
    assert len(labels) >= 300
    labelled_files = {r["file"] for r in labels}
    traces = shared_data / "traces"
    every = {p.relative_to(traces).as_posix() for p in traces.rglob("*") if p.is_file()}
    assert every <= labelled_files, f"trace files without labelled traces: {sorted(every - labelled_files)}"
    per_file = Counter(r["file"] for r in labels)
    assert max(per_file.values()) <= 0.3 * len(labels), f"one file dominates: {per_file.most_common(3)}"
    assert all(len(r["why"]) > 15 for r in labels), "every label says why"
    assert len({(r["file"], r["locator"]) for r in labels}) == len(labels), "a trace is labelled once"


def test_no_keepable_trace_is_falsely_rejected_above_2_percent_per_reason(judged):
    rows = table(judged)
    print("\n" + format_table(rows))
    bad = [r for r in rows if r["false_rejection_rate"] > MAX_FALSE_REJECTION]
    assert not bad, format_table(bad)


def test_no_truncated_answer_is_kept(judged):
    kept = [f"{lab['file']}@{lab['locator']} ({lab['format']}: {lab['why']})" for lab, got in judged
            if (lab["format"].startswith("truncated_") or lab["format"] == "think_not_closed") and got["format"] is None]
    assert not kept, "\n".join(kept)


def test_every_labelled_rejection_is_rejected(judged):
    """A trace labelled for rejection by a filter is rejected by it (the reason may differ: the
    table above counts reasons)."""
    missed = [f"{lab['file']}@{lab['locator']} {f}: labelled {lab[f]}, got keep ({lab['why']})"
              for lab, got in judged for f in FILTERS if lab[f] not in ("keep", "-") and got[f] is None]
    assert not missed, "\n".join(missed)


if __name__ == "__main__":
    from conftest import SHARED_DATA

    j = judge(SHARED_DATA / "traces")
    for which in (None, "calibration", "heldout"):
        print(f"\n== {which or 'all'} ({sum(1 for lab, _ in j if which in (None, lab['set']))} traces)")
        print(format_table(table(j, which)))
