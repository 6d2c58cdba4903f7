"""Hostile programs are contained: wrong or timeout verdicts, nothing outside touched, no process left."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from dataengine.verify.sandbox import UID_BASE, UID_SLOTS, Limits, Sandbox, SandboxUnavailable

LIMITS = Limits(wall_s=5, cpu_s=5, memory_mb=512, output_bytes=256 << 10)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS)


def sandbox_processes() -> list[int]:
    """Pids of processes running as a sandbox uid (there must be none after a run)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            uid = p.stat().st_uid
        except FileNotFoundError:
            continue
        if UID_BASE <= uid < UID_BASE + UID_SLOTS:
            out.append(int(p.name))
    return out


def test_sandbox_runs_a_plain_program_isolated(sandbox: Sandbox) -> None:
    r = sandbox.run_python("import os\nprint(sum(map(int, input().split())), os.listdir('.'), os.getuid())", stdin="2 3\n")
    assert r.status == "ok" and r.isolated
    total, files, uid = r.stdout.split(" ", 1)[0], r.stdout.split("[")[1].split("]")[0], int(r.stdout.split()[-1])
    assert total == "5" and files == "'main.py'"
    assert UID_BASE <= uid < UID_BASE + UID_SLOTS


def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    r = sandbox.run_python("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")
    assert r.status in ("failed", "timeout")
    assert sandbox_processes() == []


def test_infinite_loop_times_out(sandbox: Sandbox) -> None:
    r = sandbox.run_python("while True:\n    pass\n")
    assert r.status in ("timeout", "failed")
    assert r.status == "timeout" or r.details.get("signal") in ("SIGKILL", "SIGXCPU")
    assert sandbox_processes() == []


def test_64_gib_allocation_fails(sandbox: Sandbox) -> None:
    r = sandbox.run_python("x = bytearray(64 << 30)\nprint('allocated')\n")
    assert r.status == "failed" and "MemoryError" in r.stderr and "allocated" not in r.stdout


def test_network_connection_to_a_host_port_fails(sandbox: Sandbox) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                accepted.append(server.accept())
            except TimeoutError:
                continue
            except OSError:
                return

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    r = sandbox.run_python(
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'stolen')\nprint('connected')\n"
    )
    done.set()
    t.join()
    server.setblocking(False)
    with contextlib.suppress(BlockingIOError):  # a connection still waiting in the backlog counts too
        accepted.append(server.accept())
    server.close()
    assert r.status == "failed" and "connected" not in r.stdout
    assert accepted == []


def test_writes_outside_the_sandbox_touch_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    targets = [tmp_path / f"pwned-{tag}", Path(f"/tmp/pwned-{tag}"), Path(f"/var/tmp/pwned-{tag}"), Path(f"/dev/shm/pwned-{tag}")]
    os.chmod(tmp_path, 0o777)  # even a world-writable host folder is out of reach
    prog = "ok = []\n" + "".join(
        f"try:\n    open({str(p)!r}, 'w').write('x')\n    ok.append({str(p)!r})\nexcept OSError:\n    pass\n" for p in targets
    ) + "print(ok)\n"
    sandbox.run_python(prog)
    for p in targets:
        assert not p.exists(), p


def test_environment_secret_is_not_readable(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv("DATAENGINE_TEST_SECRET", secret)
    r = sandbox.run_python(
        "import os, glob\nprint(dict(os.environ))\n"
        "for p in glob.glob('/proc/*/environ') + ['/proc/%d/environ' % " + str(os.getpid()) + "]:\n"
        "    try:\n        print(open(p, 'rb').read())\n    except OSError:\n        pass\n"
    )
    assert secret not in r.stdout and secret not in r.stderr


def test_killing_the_parent_fails(sandbox: Sandbox) -> None:
    me = os.getpid()
    r = sandbox.run_python(
        "import os, signal\n"
        f"for pid in ({me}, os.getppid(), 1, -1):\n"
        "    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError as e:\n        print(pid, type(e).__name__)\n"
        "print('survived')\n"
    )
    # We are still here (this line runs), and the run itself reported back.
    assert r.status in ("ok", "failed")
    assert sandbox_processes() == []


def test_daemon_left_behind_is_killed(sandbox: Sandbox) -> None:
    r = sandbox.run_python(
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(600)\n    os._exit(0)\n"
        "print('parent done')\n"
    )
    assert r.status == "ok" and "parent done" in r.stdout
    assert sandbox_processes() == []


def test_gigabytes_on_stdout_are_capped(sandbox: Sandbox) -> None:
    r = sandbox.run_python("import sys\nblock = 'x' * 65536\nfor _ in range(1 << 15):\n    sys.stdout.write(block)\n")
    assert r.status == "output_limit"
    assert len(r.stdout) <= LIMITS.output_bytes
    assert sandbox_processes() == []


def test_unisolated_runs_are_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Sandbox, "_probe", (False, "no namespaces on this machine"))
    with pytest.raises(SandboxUnavailable, match="refusing"):
        Sandbox()
    sb = Sandbox(LIMITS, allow_unisolated=True)
    r = sb.run_python("print(6 * 7)")
    assert r.status == "ok" and r.stdout.strip() == "42" and not r.isolated
