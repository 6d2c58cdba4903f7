"""A full disk (a real, tiny tmpfs in a private mount namespace) and dead writers' temp shards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from _faults import AIME, SKY_MAP, env, run_cli

from dataengine.store import STALE_TMP_S, Workspace

REASONING = "traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl"

# Runs inside `unshare --mount` (plus --user --map-root-user when not root): the tmpfs exists only
# there and disappears with it, so nothing is left mounted whatever happens.
_INSIDE = r"""
import json, os, subprocess, sys
mnt, data = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt], check=True)
ws = os.path.join(mnt, "ws")
de = [sys.executable, "-m", "dataengine", "--workspace", ws]
subprocess.run(de + ["init"], check=True, capture_output=True)
filler = os.path.join(mnt, "filler")
fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
try:
    while True:
        os.write(fd, b"\0" * 65536)
except OSError:
    pass
os.close(fd)
os.truncate(filler, max(0, os.path.getsize(filler) - (384 << 10)))  # leave 384 KiB free
p = subprocess.run(de + ["ingest", data, "--map", "prompt=question", "--map", "completion=response",
                         "--think-format", "prompt_opened"], capture_output=True, text=True)
from dataengine.store import Workspace
w = Workspace(ws)
con = w.connect()
runs = con.execute("select stage, status from runs order by written_at").fetchall()
con.close()
tmps = [os.path.join(d, f) for d, _s, fs in os.walk(ws) for f in fs if f.endswith(".tmp")]
print(json.dumps({"rc": p.returncode, "stderr": p.stderr, "runs": runs, "tmps": tmps}))
"""


def _unshare() -> list[str]:
    if shutil.which("unshare") is None:
        pytest.fail("the disk-full test needs util-linux `unshare` (mount namespaces)")
    return ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--mount"]


def test_disk_full_names_the_path_records_the_run_failed_and_leaves_no_temp_shard(tmp_path, shared_data):
    mnt = tmp_path / "small"
    mnt.mkdir()
    p = subprocess.run([*_unshare(), sys.executable, "-c", _INSIDE, str(mnt), str(shared_data / REASONING)],
                       env=env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["rc"] == 1, out
    err = out["stderr"]
    assert "Traceback" not in err and "No space left on device" in err, err
    assert f"{mnt}/ws/tables/" in err and ".parquet" in err, err  # the path that could not be written
    assert out["runs"] == [["ingest", "failed"]], out["runs"]  # recorded failed, not left `running`
    print(err)
    assert out["tmps"] == []  # the partial shard was removed at once (it is what filled the disk)


_DEAD_WRITER = """
import os, sys
from pathlib import Path
from dataengine.store import tmp_tag
d = Path(sys.argv[1])
p = d / f".{os.urandom(4).hex()}.parquet.{tmp_tag()}.tmp"
with open(p, "wb") as f:
    f.write(b"PAR1" + os.urandom(3 << 20))
    f.flush()
    print(p, flush=True)
    os.kill(os.getpid(), 9)
"""


def test_temp_shards_of_dead_writers_are_cleaned_by_the_next_run(tmp_path, shared_data):
    ws = Workspace.init(tmp_path / "ws")
    traces = ws.table_dir("traces")
    p = subprocess.run([sys.executable, "-c", _DEAD_WRITER, str(traces)], env=env(), capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL
    dead = traces.parent.parent / p.stdout.strip() if not os.path.isabs(p.stdout.strip()) else p.stdout.strip()
    assert os.path.getsize(dead) > 3_000_000
    # A live writer's temp file (this process) and another host's recent one are left alone; an
    # untagged one older than a day is a leftover whatever wrote it.
    from dataengine.store import tmp_tag

    live = traces / f".x.parquet.{tmp_tag()}.tmp"
    live.write_bytes(b"x")
    foreign = traces / ".y.parquet.otherhost~1~abcd1234.tmp"
    foreign.write_bytes(b"y")
    ancient = traces / ".z.parquet.1a2b3c4d.tmp"
    ancient.write_bytes(b"z")
    old = time.time() - STALE_TMP_S - 60
    os.utime(ancient, (old, old))

    run_cli(ws.root, "ingest", str(shared_data / AIME), *SKY_MAP)
    assert not os.path.exists(dead) and not ancient.exists()
    assert live.exists() and foreign.exists()
    assert ws.query("select count(*) from traces").fetchone()[0] == 30


_INSIDE_EXPORT = r"""
import json, os, subprocess, sys
mnt, ws = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt], check=True)
de = [sys.executable, "-m", "dataengine", "--workspace", ws]
out = os.path.join(mnt, "out")
first = subprocess.run(de + ["export", "--out", out, "--mix-id", "small", "--format", "jsonl"], capture_output=True, text=True)
before = sorted((os.path.relpath(os.path.join(d, f), out), os.path.getsize(os.path.join(d, f)))
                for d, _s, fs in os.walk(out) for f in fs)
fd = os.open(os.path.join(mnt, "filler"), os.O_WRONLY | os.O_CREAT)
try:
    while True:
        os.write(fd, b"\0" * 65536)
except OSError:
    pass
os.close(fd)
os.truncate(os.path.join(mnt, "filler"), os.path.getsize(os.path.join(mnt, "filler")) - (64 << 10))
p = subprocess.run(de + ["export", "--out", out, "--mix-id", "big", "--format", "jsonl", "--format", "parquet"],
                   capture_output=True, text=True)
after = sorted((os.path.relpath(os.path.join(d, f), out), os.path.getsize(os.path.join(d, f)))
               for d, _s, fs in os.walk(out) for f in fs)
print(json.dumps({"first": first.returncode, "first_err": first.stderr, "rc": p.returncode, "stderr": p.stderr,
                  "same": before == after, "n_files": len(before)}))
"""


def test_disk_full_during_export_names_it_records_failed_and_keeps_the_previous_export(tmp_path, shared_data):
    ws = tmp_path / "ws"
    run_cli(ws, "ingest", str(shared_data / REASONING), "--map", "prompt=question", "--map", "completion=response",
            "--think-format", "prompt_opened", "--domain", "math")
    run_cli(ws, "mix", "--reasoning", "20", "--non-reasoning", "0", "--mix-id", "small")
    run_cli(ws, "mix", "--reasoning", "2000", "--non-reasoning", "0", "--mix-id", "big")
    mnt = tmp_path / "small"
    mnt.mkdir()
    p = subprocess.run([*_unshare(), sys.executable, "-c", _INSIDE_EXPORT, str(mnt), str(ws)],
                       env=env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["first"] == 0 and out["n_files"] > 0, out["first_err"]
    assert out["rc"] == 1 and "Traceback" not in out["stderr"], out["stderr"]
    assert "no space left on the device" in out["stderr"] and str(mnt) in out["stderr"], out["stderr"]
    assert out["same"]  # the previous export is whole
    status = Workspace(ws).query("select status from runs where stage = 'export' order by started_at").fetchall()
    assert [s for (s,) in status] == ["ok", "failed"]
