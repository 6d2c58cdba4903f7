"""A newcomer's first hour: the project installed from a wheel into a fresh venv outside the
repository, the packaged quickstart run from another directory with no variable of ours set, and
the export loaded by TRL's SFTTrainer with assistant-only loss on a tiny model.

The venv reuses this interpreter's installed dependencies through a `.pth` line (a full dependency
install downloads GBs and takes many minutes); the project itself comes only from the wheel:
`--no-deps`, and no PYTHONPATH, so nothing is imported from the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATAENGINE_", "PREFECT_", "PYTHON", "VIRTUAL_ENV"))}
    env.update({"HOME": str(tmp / "home"), "PREFECT_HOME": str(tmp / "prefect-home"), "HF_HUB_OFFLINE": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TOKENIZERS_PARALLELISM": "false"})
    (tmp / "home").mkdir(exist_ok=True)
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))} (in {cwd}):\n{res.stdout[-3000:]}\n{res.stderr[-4000:]}"
    return res.stdout


@pytest.mark.slow
@pytest.mark.timeout(3000)  # wheel build, a quickstart and TRL training on a loaded 2-core box
def test_install_run_the_quickstart_elsewhere_and_train_on_the_export_with_trl(tmp_path):
    env = _clean_env(tmp_path)
    # 1. a wheel, built from a copy of the sources (the build writes build/ beside its input)
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "workspace", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "bench"))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
          str(src)], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("dataengine-*.whl")
    # 2. a fresh venv that sees the installed dependencies but not the checkout
    venv = tmp_path / "venv"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], tmp_path, env)
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).strip())
    (site / "_reuse_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], tmp_path, env)
    shutil.rmtree(src)  # nothing left to import the project from but the installed wheel
    # 3. the quickstart, from a directory that is not the repository
    home = tmp_path / "newcomer"
    home.mkdir()
    de = str(venv / "bin" / "dataengine")
    out = _run([de, "init", "--example", "quickstart"], home, env)
    assert "next:     dataengine run examples/quickstart.yaml" in out
    out = _run([de, "--workspace", "ws", "run", "examples/quickstart.yaml"], home, env, timeout=1500)
    dataset = home / "ws" / "artifacts" / "dataset"
    assert f"dataset:   {dataset}" in out
    card = (dataset / "README.md").read_text()
    assert "synthetic: true" in card and "| simulated-r1 | simulated |" in card and "license: apache-2.0" in card
    # 4. TRL's SFTTrainer on the export, loss on assistant tokens only
    figures = json.loads(_run([str(py), str(ROOT / "tests" / "newcomer" / "sft_assistant_only.py"), str(dataset),
                               str(tmp_path / "train")], home, env, timeout=900).strip().splitlines()[-1])  # its one JSON line
    assert figures["dataengine"].startswith(str(venv)), figures
    assert figures["rows"] == 150 and "messages" in figures["columns"]
    assert 0 < figures["masked"] < figures["tokens"]  # the prompt carries no loss, the answer does
    assert figures["learned_is_assistant"], figures["learned_head"]
    assert figures["steps"] == 2 and figures["loss"] == figures["loss"] and figures["loss"] > 0  # finite
