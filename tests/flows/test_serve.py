"""Deployments: a Prefect server on loopback, `dataengine serve` serving the pipeline, a run
triggered through the REST API that completes and fills the workspace."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from flow_helpers import write_config

from dataengine.store import Workspace

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(fn, timeout: float, what: str, proc_list=()):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in proc_list:
            assert p.poll() is None, f"{p.args} exited with {p.returncode} while waiting for {what}"
        try:
            value = fn()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_serve_a_deployment_and_trigger_a_run_through_the_api(tmp_path, shared_data):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cfg = write_config(tmp_path / "served.yaml", shared_data)
    ws_dir = tmp_path / "ws"
    logs = tmp_path / "logs"
    logs.mkdir()
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, cwd=ROOT, start_new_session=True,
                              stdout=open(logs / "server.log", "w"), stderr=subprocess.STDOUT)
    served = None
    try:
        _wait(lambda: httpx.get(f"{api}/health", timeout=3).status_code == 200, 240, "the Prefect server", [server])
        served = subprocess.Popen([sys.executable, "-m", "dataengine", "--workspace", str(ws_dir), "serve",
                                   "--api-url", api, "--config", str(cfg), "--cron", "0 2 * * *"],
                                  env=env, cwd=ROOT, start_new_session=True,
                                  stdout=open(logs / "serve.log", "w"), stderr=subprocess.STDOUT)

        def deployments():
            r = httpx.post(f"{api}/deployments/filter", json={}, timeout=5)
            return {d["name"]: d for d in r.json()} if r.status_code == 200 and len(r.json()) >= 2 else None

        deps = _wait(deployments, 180, "the served deployments", [server, served])
        # not `served`: prefect.yaml names its deployments after the configs, serve's must differ
        assert set(deps) == {"serve-served", "serve-nightly-refilter-served"}
        nightly = deps["serve-nightly-refilter-served"]
        assert nightly["schedules"][0]["schedule"]["cron"] == "0 2 * * *"
        assert nightly["parameters"]["steps"][0] == "filter"

        run = httpx.post(f"{api}/deployments/{deps['serve-served']['id']}/create_flow_run", json={}, timeout=10).json()

        def finished():
            state = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=5).json()["state"]
            return state if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

        state = _wait(finished, 300, "the triggered flow run", [server, served])
        assert state["type"] == "COMPLETED", (logs / "serve.log").read_text()[-3000:]
        assert Workspace.open(ws_dir).query("select count(*) from prompts").fetchone()[0] == 30
    finally:
        if served is not None:
            _stop(served)
        _stop(server)
