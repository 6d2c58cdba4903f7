"""prefect.yaml: every deployment points at a pipeline flow, a config that loads, and the cron
example is the nightly re-filter and export."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from dataengine.config import load_config
from dataengine.pipeline import PIPELINES

ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_deployments_resolve_to_flows_and_configs():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert spec["prefect-version"] == "3.8.8"
    names = set()
    for dep in spec["deployments"]:
        path, _, attr = dep["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, attr)
        assert flow.name in PIPELINES
        cfg = load_config(ROOT / dep["parameters"]["config"])
        assert cfg.pipeline == flow.name, dep["name"]
        names.add(dep["name"])
    nightly = next(d for d in spec["deployments"] if d["name"] == "nightly-refilter-export")
    assert nightly["schedules"][0]["cron"] == "0 2 * * *"
    assert nightly["parameters"]["steps"][0] == "filter" and nightly["parameters"]["steps"][-1] == "export"
    assert {"quickstart", "gpu-vllm", "cold-start", "nightly-refilter-export"} <= names


def test_served_names_never_collide_with_prefect_yaml_and_work_from_any_directory(tmp_path, monkeypatch):
    """`dataengine serve` with no --config serves the packaged quickstart from any directory, as
    `serve-…` deployments: `prefect.yaml`'s `rejection_sampling/quickstart` is never overwritten."""
    from dataengine import example_files
    from flows.deployments import deployments_for

    monkeypatch.chdir(tmp_path)
    served = deployments_for(example_files.root() / "quickstart.yaml", cron="0 2 * * *")
    names = {d.name for d in served}
    assert names == {"serve-quickstart", "serve-nightly-refilter-quickstart"}
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert not names & {d["name"] for d in spec["deployments"]}
    assert "pull" not in spec, "no pull step: `prefect deploy` records the checkout, no env variable needed"
    assert "DATAENGINE_HOME" not in (ROOT / "prefect.yaml").read_text()
    # the served config's data files resolve next to it, not in the current directory
    cfg = load_config(served[0].parameters["config"])
    assert all(Path(s.path).is_file() for s in cfg.section("run").non_reasoning)
