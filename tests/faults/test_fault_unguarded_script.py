"""A script that runs a stage at top level, without `if __name__ == "__main__":`, fails with a
message that says so, instead of hanging: ingest's spawned workers re-import the main script,
which asks for the lease the parent holds (it used to wait on it forever)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_unguarded_script_fails_clearly_instead_of_hanging(tmp_path, shared_data):
    src = shared_data / "traces" / "thinking_llms_interp" / "r1distill_qwq_benchmark_traces.jsonl"
    script = tmp_path / "ingest_script.py"
    script.write_text(textwrap.dedent(f"""
        from dataengine.ingest import IngestConfig, IngestOptions, ingest
        from dataengine.store import Workspace
        ws = Workspace.open({str(tmp_path / 'ws')!r})
        # small blocks on 2 workers: the parallel (spawn) path even for a small real file
        cfg = IngestConfig(workers=2, parallel_min_bytes=0, block_bytes=1 << 16)
        print(ingest(ws, {str(src)!r}, IngestOptions(think_format="think"), cfg))
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env,
                          cwd=tmp_path)
    assert proc.returncode != 0
    assert 'if __name__ == "__main__":' in proc.stderr
    assert "worker process imports the main script" in proc.stderr
