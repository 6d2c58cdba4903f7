"""prefect.yaml as a user deploys it: a Prefect server on loopback, `prefect deploy` of the
quickstart deployment to a process work pool, a worker, a run of the deployment; the run completes
and fills the workspace. No DATAENGINE_HOME or other variable of ours is set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from test_serve import _free_port, _stop, _wait

from dataengine.store import Workspace

ROOT = Path(__file__).resolve().parents[2]


def _prefect(args: list[str], env: dict[str, str], log: Path, timeout: float = 300) -> str:
    res = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
    log.write_text(res.stdout + res.stderr)
    assert res.returncode == 0, f"prefect {' '.join(args)}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def test_deploy_prefect_yaml_to_a_process_pool_and_run_it_with_a_worker(tmp_path):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAENGINE_")}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    logs = tmp_path / "logs"
    logs.mkdir()
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, cwd=ROOT, start_new_session=True,
                              stdout=open(logs / "server.log", "w"), stderr=subprocess.STDOUT)
    worker = None
    try:
        _wait(lambda: httpx.get(f"{api}/health", timeout=3).status_code == 200, 240, "the Prefect server", [server])
        _prefect(["work-pool", "create", "dataengine-local", "--type", "process"], env, logs / "pool.log")
        _prefect(["deploy", "--name", "quickstart"], env, logs / "deploy.log")
        ws = tmp_path / "ws"
        # The deployment as prefect.yaml declares it (examples/quickstart.yaml, relative to the
        # checkout), on a workspace of ours and only the first step, which reads the config's data
        # files relative to the config: the quick half of the quickstart.
        out = _prefect(["deployment", "run", "rejection_sampling/quickstart", "--param", f"workspace=\"{ws}\"",
                        "--param", 'steps=["prompts"]'], env, logs / "run.log")
        run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
        worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "dataengine-local"],
                                  env=env, cwd=tmp_path, start_new_session=True,  # not the checkout: deploy recorded it
                                  stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT)

        def finished():
            state = httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()["state"]
            return state if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

        state = _wait(finished, 480, "the deployment's flow run", [server, worker])
        assert state["type"] == "COMPLETED", (logs / "worker.log").read_text()[-4000:]
        w = Workspace.open(ws)
        # 150 generated demo problems + the 39 non-reasoning rows of examples/non_reasoning_sample.jsonl
        assert w.query("select count(*) from prompts where source = 'demo'").fetchone()[0] == 150
        assert w.query("select count(*) from traces where source = 'non_reasoning_sample.jsonl'").fetchone()[0] == 39
        dep = httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()
        (quick,) = [d for d in dep if d["name"] == "quickstart"]
        assert quick["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == str(ROOT)
    finally:
        if worker is not None:
            _stop(worker)
        _stop(server)
