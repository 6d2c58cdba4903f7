"""Bad input built from real traces: each bad row is one quarantine row naming file, line or
element and field; every good row is taken; counts reconcile; nothing hangs."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess

import pytest
from _faults import real_rows, run_cli

from dataengine.config import ConfigError, load_config
from dataengine.ingest import IngestConfig, IngestOptions, ingest
from dataengine.store import Workspace


def _quarantine(ws: Workspace, run_id: str) -> list[tuple]:
    return ws.query("select source, line, field, reason, detail from quarantine where run_id = $r order by line",
                    {"r": run_id}).fetchall()


def _check(ws: Workspace, path, n_rows: int, bad: dict[int, tuple[str | None, str]], **opts):
    """Ingest `path`; `bad` maps line/element -> (field, reason). Every other row must be taken."""
    rep = ingest(ws, path, IngestOptions(**opts))
    assert rep.reconciles and rep.rows_in == n_rows, rep.summary()
    assert rep.quarantined == len(bad) and rep.taken == n_rows - len(bad), rep.summary()
    q = _quarantine(ws, rep.run_id)
    assert [(line, fld, reason) for _s, line, fld, reason, _d in q] == [(k, *v) for k, v in sorted(bad.items())]
    assert all(src == str(path) for src, *_ in q)  # the file, as given
    assert ws.query("select count(*) from traces where run_id = $r", {"r": rep.run_id}).fetchone()[0] == n_rows - len(bad)
    return rep, q


def _csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["prompt", "completion", "reference_answer"], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k].replace("\n", " ") for k in w.fieldnames})
    return buf.getvalue().encode("utf-8")


def test_csv_invalid_utf8_on_line_5_costs_that_row_only(ws, tmp_path, shared_data):
    lines = _csv_bytes(real_rows(shared_data, 11)).split(b"\n")
    lines[4] = lines[4].replace(b"Find", b"Fi\xff\xfend", 1)  # line 5 = the 4th data row
    assert b"\xff" in lines[4]
    p = tmp_path / "bad_utf8.csv"
    p.write_bytes(b"\n".join(lines))
    _rep, q = _check(ws, p, 11, {5: ("prompt", "invalid_utf8")})
    assert "line 5" in q[0][4]


def test_csv_with_a_bom_reads_every_row(ws, tmp_path, shared_data):
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + _csv_bytes(real_rows(shared_data, 10)))
    _check(ws, p, 10, {})


def test_json_array_bad_element_costs_that_element_only(ws, tmp_path, shared_data):
    els = [json.dumps(r) for r in real_rows(shared_data, 8)]
    els[2] = '{"prompt": "x", "completion": }'  # element 3 is not JSON
    els[5] = els[5][:-1] + ', }'               # element 6: trailing comma, brackets still balance
    p = tmp_path / "bad_elem.json"
    p.write_text("[\n" + ",\n".join(els) + "\n]")
    _check(ws, p, 8, {3: (None, "invalid_json"), 6: (None, "invalid_json")})


def test_json_array_invalid_utf8_names_its_element_and_field(ws, tmp_path, shared_data):
    rows = real_rows(shared_data, 6)
    raw = ("[" + ",".join(json.dumps(r, ensure_ascii=False) for r in rows) + "]").encode("utf-8")
    needle = json.dumps(rows[3]["prompt"], ensure_ascii=False)[1:40].encode("utf-8")
    assert raw.count(needle) == 1
    raw = raw.replace(needle, needle[:10] + b"\xc3\x28" + needle[10:], 1)  # element 4's prompt
    p = tmp_path / "bad_utf8_array.json"
    p.write_bytes(raw)
    _check(ws, p, 6, {4: ("prompt", "invalid_utf8")})


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_deeply_nested_rows_are_quarantined_and_the_others_taken(ws, tmp_path, shared_data, fmt):
    rows = [json.dumps(r) for r in real_rows(shared_data, 3)]
    deep = rows[1][:-1] + ', "meta": ' + "[" * 50_000 + "]" * 50_000 + "}"
    medium = rows[2][:-1] + ', "meta": ' + "[" * 300 + "]" * 300 + "}"  # orjson takes it: still too deep
    body = [rows[0], deep, medium, json.dumps(real_rows(shared_data, 4)[3])]
    p = tmp_path / f"deep.{fmt}"
    p.write_text("\n".join(body) + "\n" if fmt == "jsonl" else "[" + ",".join(body) + "]")
    rep = ingest(ws, p, IngestOptions())
    assert rep.reconciles and rep.rows_in == 4 and rep.taken == 2 and rep.quarantined == 2, rep.summary()
    q = _quarantine(ws, rep.run_id)
    assert [line for _s, line, *_ in q] == [2, 3]
    assert {reason for *_, reason, _d in q} <= {"too_deep", "invalid_json"}


def test_truncated_gz_keeps_what_it_read_and_names_the_truncation(ws, tmp_path, shared_data):
    rows = real_rows(shared_data)
    data = gzip.compress(("\n".join(json.dumps(r) for r in rows) + "\n").encode())
    p = tmp_path / "trunc.jsonl.gz"
    p.write_bytes(data[: len(data) // 2])
    proc = run_cli(ws.root, "ingest", str(p), check=False)
    assert proc.returncode == 0 and "Aborted" not in proc.stderr, proc.stderr
    run_id, count_in, count_out, quarantined = ws.query(
        "select run_id, count_in, count_out, count_quarantined from runs where stage = 'ingest'").fetchone()
    q = _quarantine(ws, run_id)
    assert quarantined == 1 and q[-1][3] == "truncated_input" and "trunc.jsonl.gz" in q[-1][4]
    assert 0 < count_out < len(rows) and count_in == count_out + 1
    # every row it kept is a whole, real row
    kept = {r[0] for r in ws.query("select prompt from prompts").fetchall()}
    assert kept <= {r["prompt"] for r in rows}


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null", "fifo"])
def test_non_regular_files_are_refused_before_a_run_starts(ws, tmp_path, target):
    p = tmp_path / "input.jsonl"
    if target == "fifo":
        os.mkfifo(p)
    else:
        p.symlink_to(target)
    proc = subprocess.run(["timeout", "120", *run_cli.__globals__["cli"](ws.root, "ingest", str(p))],
                          env=run_cli.__globals__["env"](), capture_output=True, text=True)
    assert proc.returncode == 1 and "not a regular file" in proc.stderr, proc.stderr
    assert ws.query("select count(*) from runs where status = 'running'").fetchone()[0] == 0


def test_negative_limits_in_config_are_refused(tmp_path):
    cfg = tmp_path / "neg.yaml"
    cfg.write_text("ingest:\n  max_row_bytes: -1\n")
    with pytest.raises(ConfigError, match=r"ingest.max_row_bytes: -1 is out of range"):
        load_config(cfg)
    with pytest.raises(ValueError, match="max_row_bytes"):
        IngestConfig(max_row_bytes=0).validate()


def test_zero_width_only_prompts_are_quarantined(ws, tmp_path, shared_data):
    rows = real_rows(shared_data, 4)
    rows[1]["prompt"] = "\u200b\u200c\u200d\u2060\ufeff \u00ad"
    rows[2]["prompt"] = "\u3164\u2800\n\t"
    p = tmp_path / "zw.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    _check(ws, p, 4, {2: ("prompt", "empty_prompt"), 3: ("prompt", "empty_prompt")})


def test_nan_and_infinity_are_quarantined_naming_the_field(ws, tmp_path, shared_data):
    rows = [json.dumps(r) for r in real_rows(shared_data, 5)]
    rows[1] = rows[1][:-1] + ', "score": NaN}'
    rows[2] = rows[2].replace('"reference_answer": "', '"reference_answer": Infinity, "x": "')
    rows[3] = rows[3][:-1] + ', "meta": {"w": [1, -Infinity]}}'
    p = tmp_path / "nan.jsonl"
    p.write_text("\n".join(rows) + "\n")
    _check(ws, p, 5, {2: ("score", "non_finite_number"), 3: ("reference_answer", "non_finite_number"),
                      4: ("meta.w[1]", "non_finite_number")})


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    bomb = "generate:\n  template_vars:\n    a: &a [x, x, x, x, x, x, x, x, x]\n"
    prev = "a"
    for name in "bcdefghi":
        bomb += f"    {name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text(bomb)
    with pytest.raises(ConfigError, match="alias bomb"):
        load_config(cfg)
    # anchors for shared settings still work
    ok = tmp_path / "ok.yaml"
    ok.write_text("generate:\n  template_vars: &v {k: 1}\n  stop: [a]\nfilter: {}\n")
    assert load_config(ok).section("generate").template_vars == {"k": 1}


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_a_bom_before_json_costs_no_row(ws, tmp_path, shared_data, fmt):
    rows = [json.dumps(r) for r in real_rows(shared_data, 4)]
    p = tmp_path / f"bom.{fmt}"
    body = "\n".join(rows) + "\n" if fmt == "jsonl" else "[" + ",".join(rows) + "]"
    p.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    _check(ws, p, 4, {})


def test_parquet_nan_is_quarantined_and_a_corrupt_parquet_names_the_file(ws, tmp_path, shared_data):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = real_rows(shared_data, 5)
    scores = [0.5, float("nan"), 1.0, float("inf"), 0.0]
    p = tmp_path / "scored.parquet"
    pq.write_table(pa.Table.from_pylist([{**r, "score": s} for r, s in zip(rows, scores)]), p)
    _check(ws, p, 5, {2: ("score", "non_finite_number"), 4: ("score", "non_finite_number")})
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(ValueError, match="broken.parquet: not a readable Parquet file"):
        ingest(ws, broken, IngestOptions())
    assert ws.query("select count(*) from runs where status = 'running'").fetchone()[0] == 0


def test_an_array_that_cannot_be_resynchronised_counts_the_rest_as_unreadable(ws, tmp_path, shared_data):
    # A bad element full of `,{` decoys: the reader stops after a bounded number of restarts and
    # says so with a quarantine row, rather than trying every decoy (quadratic) or dropping silently.
    rows = [json.dumps(r) for r in real_rows(shared_data, 2)]
    hostile = '{"a": , "s": "' + ',{"x' * 200_000 + '"}'
    p = tmp_path / "hostile.json"
    p.write_text("[" + ",".join([rows[0], hostile, rows[1]]) + "]")
    rep = ingest(ws, p, IngestOptions())
    assert rep.reconciles and rep.taken == 1 and rep.quarantined == 2, rep.summary()
    assert [r for *_x, r, _d in _quarantine(ws, rep.run_id)] == ["invalid_json", "unreadable_rest"]
