"""The sandbox's ordinary behaviour: a plain run, its limits, the layers it reports, refusing to run
unisolated. Hostile programs are in test_verify_hostile.py."""

from __future__ import annotations

import pytest

from dataengine.config import ConfigError, load_config_dict
from dataengine.verify.sandbox import LAYERS, UID_BASE, UID_SLOTS, Limits, Sandbox, SandboxUnavailable

LIMITS = Limits(wall_s=20, cpu_s=5, memory_mb=512, output_bytes=256 << 10)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS)


def test_sandbox_runs_a_plain_program_with_every_layer(sandbox: Sandbox) -> None:
    r = sandbox.run_python("import os\nprint(sum(map(int, input().split())), os.listdir('.'), os.getuid())", stdin="2 3\n")
    assert r.status == "ok" and r.isolated, r
    total, rest = r.stdout.split(" ", 1)
    assert total == "5" and "['main.py']" in rest
    assert UID_BASE <= int(r.stdout.split()[-1]) < UID_BASE + UID_SLOTS
    assert list(r.details["isolation"]) == list(LAYERS)  # type: ignore[arg-type]
    assert r.details["memory_peak_mb"] > 0 and r.details["oom_kill"] == 0


def test_infinite_loop_times_out(sandbox: Sandbox) -> None:
    r = sandbox.run_python("while True:\n    pass\n", limits=Limits(wall_s=20, cpu_s=2))
    assert r.status == "timeout" and r.details["limit"] in ("cpu_s", "wall_s")


def test_64_gib_allocation_fails(sandbox: Sandbox) -> None:
    r = sandbox.run_python("x = bytearray(64 << 30)\nprint('allocated')\n")
    assert r.status == "failed" and "MemoryError" in r.stderr and "allocated" not in r.stdout


def test_gigabytes_on_stdout_are_capped(sandbox: Sandbox) -> None:
    r = sandbox.run_python("import sys\nblock = 'x' * 65536\nfor _ in range(1 << 15):\n    sys.stdout.write(block)\n")
    assert r.status == "output_limit" and len(r.stdout) <= LIMITS.output_bytes


def test_a_program_killed_by_a_signal_says_which(sandbox: Sandbox) -> None:
    r = sandbox.run_python("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    assert r.status == "failed" and r.details["signal"] == "SIGSEGV"


def test_unisolated_runs_are_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    Sandbox(LIMITS)  # the real probe first, so the patched one below is not overwritten
    monkeypatch.setattr(Sandbox, "_probe", (frozenset({"rlimits"}), "missing isolation layers: cgroup, namespaces", []))
    with pytest.raises(SandboxUnavailable, match="cgroup, namespaces.*refusing"):
        Sandbox()
    sb = Sandbox(LIMITS, allow_unisolated=True)
    r = sb.run_python("print(6 * 7)")
    assert r.status == "ok" and r.stdout.strip() == "42" and not r.isolated
    assert r.details["isolation"] == ["rlimits"]


@pytest.mark.parametrize("field,value", [("code_wall_s", -1), ("code_memory_mb", 0), ("code_wall_s", 1e9)])
def test_code_limits_are_checked_at_config_load_naming_file_and_field(tmp_path, field: str, value: object) -> None:  # type: ignore[no-untyped-def]
    from dataengine.config import load_config

    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(f"verify:\n  {field}: {str(value).lower()}\n")
    with pytest.raises(ConfigError, match=rf"{cfg}: verify[:.] ?{field}: .* out of range"):
        load_config(cfg)
    with pytest.raises(ConfigError, match=field):
        load_config_dict({"verify": {field: value}})


def test_limits_outside_their_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="memory_mb"):
        Limits(memory_mb=0)
    with pytest.raises(ValueError, match="wall_s"):
        Limits(wall_s=-1)
