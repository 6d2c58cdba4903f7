"""Every kind of bad row lands in `quarantine` with its reason; the good rows are all taken."""

from __future__ import annotations

import json
from pathlib import Path

from dataengine.ingest import IngestConfig, IngestOptions, ingest


def _good(i: int) -> bytes:
    return json.dumps({"prompt": f"What is {i} + {i}?", "completion": f"<think>double {i}</think>{2 * i}"}).encode() + b"\n"


BAD = {
    "invalid_json": b'{"prompt": "x", "completion": \n',
    "invalid_utf8": b'{"prompt": "caf\xe9", "completion": "y"}\n',
    "not_an_object": b'["prompt", "completion"]\n',
    "missing_field": b'{"completion": "<think>a</think>b"}\n',
    "wrong_type": b'{"prompt": "q?", "completion": 42}\n',
    "empty_prompt": b'{"prompt": "   ", "completion": "<think>a</think>b"}\n',
    "row_too_large": b'{"prompt": "big", "completion": "' + b"z" * 5000 + b'"}\n',
    "invalid_unicode": b'{"prompt": "lone \\ud800 surrogate", "completion": "a"}\n',
    "empty_completion": b'{"prompt": "q2?", "completion": []}\n',
}


def test_each_bad_row_is_quarantined_with_reason(ws, tmp_path: Path):
    path = tmp_path / "mixed.jsonl"
    lines: list[bytes] = []
    expected: dict[int, str] = {}
    for i in range(20):
        lines.append(_good(i))
    for reason, raw in BAD.items():
        lines.append(raw)
        expected[len(lines)] = reason
    lines.append(b"\n")  # blank lines are not rows
    lines.append(_good(99))
    path.write_bytes(b"".join(lines))

    rep = ingest(ws, path, IngestOptions(), IngestConfig(max_row_bytes=4096))
    assert rep.rows_in == 21 + len(BAD)
    assert rep.taken == 21 and rep.quarantined == len(BAD) and rep.reconciles
    got = dict(ws.query("select line, reason from quarantine where run_id = $r", {"r": rep.run_id}).fetchall())
    assert got == expected
    # the field is named where one field was at fault, and raw text is kept for every row
    fields = dict(ws.query("select reason, field from quarantine").fetchall())
    assert fields["missing_field"] == "prompt" and fields["wrong_type"] == "completion"
    assert ws.query("select count(*) from quarantine where raw is null").fetchone() == (0,)
    assert ws.query("select count(*) from traces").fetchone() == (21,)
    summary = ws.query(open(Path(__file__).parents[1] / "sql" / "quarantine_summary.sql").read()).fetchall()
    assert sum(r[4] for r in summary) == len(BAD)


def test_json_array_and_csv_bad_rows(ws, tmp_path: Path):
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps([{"prompt": "p1", "completion": "c"}, 5, {"prompt": "", "completion": "c"},
                               {"prompt": "p2", "completion": "c"}]))
    rep = ingest(ws, arr, IngestOptions())
    assert (rep.rows_in, rep.taken, rep.quarantined) == (4, 2, 2)
    assert sorted(rep.reasons) == ["empty_prompt", "not_an_object"]

    csvf = tmp_path / "p.csv"
    csvf.write_text("prompt,reference_answer\nWhat is 1+1?,2\nbroken,row,extra\n,3\nWhat is 2+2?,4\n")
    rep = ingest(ws, csvf, IngestOptions(kind="prompts"))
    assert (rep.rows_in, rep.taken, rep.quarantined) == (4, 2, 2)
    got = dict(ws.query("select line, reason from quarantine where run_id = $r", {"r": rep.run_id}).fetchall())
    assert got == {3: "wrong_field_count", 4: "empty_prompt"}


def test_strict_flag_exits_nonzero(tmp_path: Path):
    from click.testing import CliRunner

    from dataengine.cli import cli

    path = tmp_path / "x.jsonl"
    path.write_bytes(_good(1) + BAD["invalid_json"])
    r = CliRunner().invoke(cli, ["--workspace", str(tmp_path / "w"), "ingest", str(path), "--strict"])
    assert r.exit_code == 1, r.output
    assert "in=2 = taken 1 + already stored 0 + quarantined 1" in r.output
    r = CliRunner().invoke(cli, ["--workspace", str(tmp_path / "w2"), "ingest", str(path)])
    assert r.exit_code == 0, r.output
