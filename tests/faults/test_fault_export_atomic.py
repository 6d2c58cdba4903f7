"""A killed export (a real process, SIGKILL at several moments) leaves the previous export whole."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _faults import run_cli, start_cli

from dataengine.atomicdir import publish, staging_dir

REASONING = "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("export")
    ws = root / "ws"
    run_cli(ws, "ingest", str(shared_data / REASONING), "--map", "prompt=question", "--map", "completion=response",
            "--map", "reference_answer=gold_answer", "--map", "model=thinking_model",
            "--think-format", "prompt_opened", "--domain", "math")
    run_cli(ws, "mix", "--reasoning", "300", "--non-reasoning", "0", "--mix-id", "a")
    run_cli(ws, "mix", "--reasoning", "500", "--non-reasoning", "0", "--mix-id", "b", "--seed", "3")
    return ws


def test_a_killed_export_leaves_the_previous_export_whole(mixed, tmp_path):
    out = tmp_path / "out"
    run_cli(mixed, "export", "--out", str(out), "--mix-id", "a")
    (out / "NOTES.txt").write_text("a user's own file beside the export")
    before = _snapshot(out)
    assert any(k.startswith("hf/") for k in before) and "README.md" in before

    def staging() -> list[Path]:
        return list(tmp_path.glob(".out.staging.*"))

    moments = {
        "staging folder created": lambda: bool(staging()),
        "data being written": lambda: any((s / "data").is_dir() for s in staging()),
        "hf written": lambda: any((s / "hf").is_dir() for s in staging()),
        "card written (about to swap)": lambda: any((s / "README.md").exists() for s in staging()),
    }
    # What a whole export of mix b looks like (its data files are byte-identical run to run).
    ref = tmp_path / "ref"
    run_cli(mixed, "export", "--out", str(ref), "--mix-id", "b")
    want_b = {k: v for k, v in _snapshot(ref).items() if k.startswith(("data/", "jsonl/"))}
    killed_before_swap = 0
    for name, cond in moments.items():
        proc = start_cli(mixed, "export", "--out", str(out), "--mix-id", "b")
        landed = _wait_for(cond, proc)
        if landed:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=300)
        now = _snapshot(out)
        if now == before:
            killed_before_swap += landed
            continue
        # The kill came after the swap: then the new export is there whole.
        assert {k: v for k, v in now.items() if k.startswith(("data/", "jsonl/"))} == want_b, name
        assert set(now) == set(_snapshot(ref)) | {"NOTES.txt"}, name
        break
    assert killed_before_swap >= 2  # the kills really landed mid-export, and the old one stayed whole

    run_cli(mixed, "export", "--out", str(out), "--mix-id", "b")
    after = _snapshot(out)
    assert after != before and after["NOTES.txt"] == before["NOTES.txt"]
    assert not staging() and not list(tmp_path.glob(".out.old.*"))  # dead writers' leftovers cleaned
    rows = sum(1 for k in after if k.startswith("jsonl/") for _ in (out / k).read_text().splitlines())
    assert rows == 500


def test_a_swap_killed_between_its_two_renames_is_undone_by_the_next_writer(tmp_path):
    # The fallback for filesystems without RENAME_EXCHANGE: old folder aside, then new one in.
    final = tmp_path / "out"
    final.mkdir()
    (final / "README.md").write_text("previous")
    dead = subprocess.Popen(["true"])
    dead.wait()
    aside = tmp_path / f".out.old.{os.uname().nodename}~{dead.pid}~deadbeef"
    final.rename(aside)  # ... and the writer died here
    stage = staging_dir(final)
    assert (final / "README.md").read_text() == "previous" and not aside.exists()
    (stage / "README.md").write_text("new")
    publish(stage, final)
    assert (final / "README.md").read_text() == "new" and not stage.exists()


def test_export_into_the_current_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="folder of its own"):
        staging_dir(Path("."))
