"""Run untrusted programs: one contained process tree per run, killed whole at its deadline.

Each run is started by `_sandbox_init.py` (Debian's `/usr/bin/python3`, as root) and gets:

- **a cgroup of its own** (v2, or v1's memory/pids/cpu/cpuacct hierarchies), joined before any
  program code runs: memory (swap included where accounted), number of processes and CPU rate
  limits hold for the whole process tree, and the tree's CPU-seconds are checked against `cpu_s`
  while it runs. Created under `dataengine-sandbox/` in each hierarchy, removed after the run;
- **IPC, UTS, network, mount and pid namespaces**: SysV/POSIX IPC objects die with the run, no
  network but a downed loopback, and a pid-namespace init the program cannot signal — when it
  exits the kernel kills everything left, so no daemon outlives the run;
- **a minimal read-only root** on a tmpfs: the interpreter and the libraries it loads, bound
  read-only (nosuid, nodev), `/proc` showing the run's own processes only, five device nodes and a
  private `/tmp`. Host sockets, `/run`, `/etc`, other users' files and other runs' files are absent;
- **its own unprivileged uids** (one for the program, one for the judge that runs the tests), no
  capabilities (bounding set emptied), `no_new_privs`, rlimits, a fresh session keyring;
- **a seccomp filter** denying namespace creation, mount, keyctl, bpf, ptrace, modules, io_uring,
  and socket families other than unix/inet (vsock reaches a VM's host whatever the netns);
- a wall-clock deadline and capped stdout/stderr.

Where a layer cannot be built (not root, no cgroups, no libseccomp, ...), `Sandbox()` says which
and refuses to run anything unless built with `allow_unisolated=True`; every `RunResult` lists the
layers that were active in `details["isolation"]`.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import re
import secrets
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SANDBOX_PYTHON = "/usr/bin/python3"
INIT = Path(__file__).with_name("_sandbox_init.py")
HARNESS = Path(__file__).with_name("_harness.py")
# Unprivileged uids for runs: far above any real account; each run leases a pair (program, judge).
UID_BASE = 61000
UID_SLOTS = 512
# One lock file per uid: a run leases its uids there, so concurrent processes never share one.
LOCK_DIR = Path("/var/tmp/dataengine-sandbox-uids")
CGROUP_DIR = "dataengine-sandbox"
LAYERS = ("cgroup", "namespaces", "seccomp", "rootfs", "uid", "keyring", "rlimits")


class SandboxUnavailable(RuntimeError):
    """Isolation is not available here and unisolated runs were not allowed."""


@dataclass(frozen=True)
class Limits:
    """Per-run limits; defaults suit test programs of HumanEval / MBPP / Codeforces size.

    `memory_mb`, `processes` and `cpus` hold for the run's whole process tree (its cgroup),
    `cpu_s` for the tree's CPU time too; the rest are per process (rlimits).
    """

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    processes: int = 32
    file_size_mb: int = 16
    open_files: int = 64
    output_bytes: int = 1 << 20
    tmpfs_mb: int = 64
    cpus: float = 1.0

    def __post_init__(self) -> None:
        for name, (lo, hi) in _BOUNDS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ValueError(f"{name}: {v!r} is out of range [{lo}, {hi}]")


# (min, max) for each limit: a limit outside them is a configuration mistake, not a verdict.
_BOUNDS: dict[str, tuple[float, float]] = {
    "wall_s": (0.1, 3600), "cpu_s": (1, 3600), "memory_mb": (16, 1 << 20), "processes": (1, 4096),
    "file_size_mb": (1, 1 << 16), "open_files": (16, 1 << 16), "output_bytes": (1024, 1 << 30),
    "tmpfs_mb": (1, 1 << 16), "cpus": (0.01, 1024),
}


def limit_bounds(name: str) -> tuple[float, float]:
    """The (min, max) a limit may take."""
    return _BOUNDS[name]


@dataclass
class RunResult:
    """How one run ended.

    status: `ok` (exit 0), `failed` (non-zero exit or killed by a signal, e.g. an rlimit or the
    cgroup's OOM killer), `timeout` (wall deadline or the tree's CPU-seconds), `output_limit`
    (stdout/stderr over the cap), `error` (the sandbox itself could not start the run).
    `report`: the judge's per-test lines (judged runs only), each carrying the run's nonce.
    """

    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    wall_s: float
    isolated: bool
    details: dict[str, object] = field(default_factory=dict)
    report: list[dict[str, Any]] | None = None
    nonce: str = ""


# ------------------------------------------------------------------------------------- cgroups
class _Cgroups:
    """This machine's cgroup layout: one v2 tree or the v1 hierarchies we need. Only directories
    under `dataengine-sandbox/` are ever created, written or removed."""

    def __init__(self) -> None:
        self.version = 0
        self.roots: dict[str, Path] = {}  # controller -> our directory in its hierarchy
        self.note = ""
        try:
            self._detect()
        except OSError as e:
            self.version, self.roots, self.note = 0, {}, f"cgroups: {e}"

    def _detect(self) -> None:
        mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
        for m in mounts:
            if m[2] == "cgroup2":
                ctrl = set((Path(m[1]) / "cgroup.controllers").read_text().split())
                if {"memory", "pids", "cpu"} <= ctrl and os.access(m[1], os.W_OK):
                    top = Path(m[1]) / CGROUP_DIR
                    top.mkdir(exist_ok=True)
                    (top / "cgroup.subtree_control").write_text("+memory +pids +cpu")
                    self.version, self.roots = 2, {c: top for c in ("memory", "pids", "cpu")}
                    return
        v1: dict[str, Path] = {}
        for m in mounts:
            if m[2] == "cgroup":
                for opt in m[3].split(","):
                    if opt in ("memory", "pids", "cpu", "cpuacct"):
                        v1[opt] = Path(m[1]) / CGROUP_DIR
        missing = {"memory", "pids", "cpu", "cpuacct"} - set(v1)
        if missing:
            self.note = f"no cgroup v2 with memory+pids+cpu, and no v1 hierarchy for {', '.join(sorted(missing))}"
            return
        for d in set(v1.values()):
            d.mkdir(exist_ok=True)
        self.version, self.roots = 1, v1
        self._sweep_stale()

    def _sweep_stale(self) -> None:
        """Run groups of ours whose process died (killed mid-run): empty them, remove them."""
        for d in set(self.roots.values()):
            for sub in d.glob("run-*"):
                pid = int(sub.name.split("-")[1])
                if not Path(f"/proc/{pid}").exists():
                    _kill_cgroup([sub])
                    with contextlib.suppress(OSError):
                        sub.rmdir()

    def create(self, name: str, lim: Limits) -> _RunCgroup:
        dirs: dict[str, Path] = {}
        try:
            for c, root in self.roots.items():
                d = root / name
                if d not in dirs.values():
                    _mkdir_under(root, d)
                dirs[c] = d
            if self.version == 2:  # our top group may have been removed and made again meanwhile
                sub = root / "cgroup.subtree_control"
                if not {"memory", "pids", "cpu"} <= set(sub.read_text().split()):
                    sub.write_text("+memory +pids +cpu")
            mem = lim.memory_mb << 20
            period = 100_000
            quota = max(1000, int(period * lim.cpus))
            if self.version == 2:
                d = dirs["memory"]
                (d / "memory.max").write_text(str(mem))
                with contextlib.suppress(OSError):
                    (d / "memory.swap.max").write_text("0")
                (d / "pids.max").write_text(str(lim.processes))
                (d / "cpu.max").write_text(f"{quota} {period}")
            else:
                (dirs["memory"] / "memory.limit_in_bytes").write_text(str(mem))
                with contextlib.suppress(OSError):  # absent where swap is not accounted
                    (dirs["memory"] / "memory.memsw.limit_in_bytes").write_text(str(mem))
                (dirs["pids"] / "pids.max").write_text(str(lim.processes))
                (dirs["cpu"] / "cpu.cfs_period_us").write_text(str(period))
                (dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError:
            _RunCgroup(self.version, dirs).remove()
            raise
        return _RunCgroup(self.version, dirs)


def _mkdir_under(root: Path, d: Path) -> None:
    """mkdir `d` in `root`, which another run may remove (when it was empty) at any moment."""
    for _ in range(1000):
        with contextlib.suppress(FileExistsError):
            root.mkdir()
        try:
            d.mkdir()
            return
        except FileNotFoundError:
            continue
    raise OSError(f"cannot create {d}")


class _RunCgroup:
    def __init__(self, version: int, dirs: dict[str, Path]):
        self.version, self.dirs = version, dirs

    @property
    def procs_files(self) -> list[str]:
        return sorted({str(d / "cgroup.procs") for d in self.dirs.values()})

    def cpu_seconds(self) -> float:
        try:
            if self.version == 2:
                for line in (self.dirs["cpu"] / "cpu.stat").read_text().splitlines():
                    if line.startswith("usage_usec"):
                        return int(line.split()[1]) / 1e6
                return 0.0
            return int((self.dirs["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError, KeyError):
            return 0.0

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = {"cgroup_cpu_s": round(self.cpu_seconds(), 4)}
        with contextlib.suppress(OSError, ValueError, KeyError):
            d = self.dirs["memory"]
            if self.version == 2:
                peak = d / "memory.peak"
                if peak.exists():
                    out["memory_peak_mb"] = round(int(peak.read_text()) / 2**20, 1)
                ev = dict(line.split() for line in (d / "memory.events").read_text().splitlines())
                out["oom_kill"] = int(ev.get("oom_kill", 0))
            else:
                out["memory_peak_mb"] = round(int((d / "memory.max_usage_in_bytes").read_text()) / 2**20, 1)
                ev = dict(line.split() for line in (d / "memory.oom_control").read_text().splitlines())
                out["oom_kill"] = int(ev.get("oom_kill", int((d / "memory.failcnt").read_text()) > 0))
        return out

    def remove(self) -> None:
        """Kill whatever is still in the group, then remove its directories."""
        dirs = sorted(set(self.dirs.values()))
        _kill_cgroup(dirs)
        for d in dirs:
            for _ in range(500):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while the last tasks exit
                    _kill_cgroup([d])
                    time.sleep(0.01)
            with contextlib.suppress(OSError):  # ours, and empty when no other run is going on
                d.parent.rmdir()


def _kill_cgroup(dirs: list[Path], wait_s: float = 10.0) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        pids = set()
        for d in dirs:
            with contextlib.suppress(OSError, ValueError):
                pids |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


# ------------------------------------------------------------------------------------- probe
def _root_binds(python: str) -> list[str]:
    """What the minimal root holds: the interpreter, its standard library, the libraries it and
    its extension modules load (as `ldd` names them; symlinks on the way are recreated)."""
    out = subprocess.run(
        [python, "-I", "-S", "-c", "import sys, sysconfig, os; print(os.path.realpath(sys.executable)); "
         "print(sysconfig.get_paths()['stdlib']); print(sysconfig.get_paths()['platstdlib'])"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()
    exe, stdlib = out[0], out[1]
    binds = {python, exe, stdlib, out[2]}
    objects = [exe] + [str(p) for p in Path(stdlib).rglob("*.so")]
    ldd = subprocess.run(["ldd", *objects], capture_output=True, text=True, timeout=120).stdout
    for m in re.finditer(r"(?:=>\s*)?(/\S+)\s+\(0x", ldd):
        binds.add(m.group(1))
    return sorted(binds)


def _probe(python: str, cgroups: _Cgroups) -> tuple[frozenset[str], str, list[str]]:
    """Which layers this host can build: one real run of `print(1)` asking for all of them."""
    if os.name != "posix":
        return frozenset(), "not a POSIX system", []
    if not Path(python).exists():
        return frozenset(), f"{python} not found", []
    try:
        binds = _root_binds(python)
    except (OSError, subprocess.SubprocessError) as e:
        return frozenset(), f"cannot list the interpreter's files: {e}", []
    sb = Sandbox.__new__(Sandbox)
    sb.limits, sb.python, sb.binds, sb.cgroups = Limits(wall_s=60), python, binds, cgroups
    sb.layers, sb.require, sb.isolated = frozenset(LAYERS), frozenset(), False
    r = sb.run_python("print(1)")
    got = frozenset(r.details.get("isolation", [])) if r.stdout.strip() == "1" else frozenset()
    missing = [x for x in LAYERS if x not in got]
    notes = []
    if os.geteuid() != 0:
        notes.append("not running as root (namespaces, cgroups and uid switching need it)")
    if "cgroup" in missing and cgroups.note:
        notes.append(cgroups.note)
    if r.stdout.strip() != "1":
        notes.append(f"probe run failed: {r.status} {r.details.get('sandbox_error', '')} {r.stderr[-300:]}")
    note = "all layers" if not missing else f"missing isolation layers: {', '.join(missing)}" + (
        f" ({'; '.join(notes)})" if notes else "")
    return got, note, binds


# ------------------------------------------------------------------------------------- sandbox
class Sandbox:
    """Runs programs contained. Thread-safe: each concurrent run gets its own uids and cgroup.

    >>> sb = Sandbox()                                                      # doctest: +SKIP
    >>> sb.run_python("print(sum(map(int, input().split())))", stdin="2 3").stdout
    '5\\n'
    """

    _counter = itertools.count()
    _probe: tuple[frozenset[str], str, list[str]] | None = None
    _probe_lock = threading.Lock()
    _cgroups: _Cgroups | None = None

    def __init__(self, limits: Limits | None = None, allow_unisolated: bool = False, python: str = SANDBOX_PYTHON):
        self.limits = limits or Limits()
        self.allow_unisolated = allow_unisolated
        self.python = python
        with Sandbox._probe_lock:
            if Sandbox._cgroups is None:
                Sandbox._cgroups = _Cgroups() if os.geteuid() == 0 else _no_cgroups()
            if Sandbox._probe is None:
                Sandbox._probe = _probe(python, Sandbox._cgroups)
        self.cgroups = Sandbox._cgroups
        available, self.isolation_note, self.binds = Sandbox._probe
        self.isolated = set(LAYERS) <= available
        if not self.isolated and not allow_unisolated:
            raise SandboxUnavailable(
                f"cannot isolate untrusted code here ({self.isolation_note}); refusing to run it. "
                "Set verify.allow_unisolated: true only for trusted code."
            )
        # Isolated: every layer is required (a run fails rather than go without one).
        self.layers = frozenset(available)
        self.require = self.layers if self.isolated else frozenset()

    @contextlib.contextmanager
    def _uids(self) -> Iterator[tuple[int, int]]:
        """Lease a (program, judge) uid pair no other run on this machine holds (an flock per uid,
        across processes): rlimits count per uid, and the post-run sweep kills by uid."""
        pairs = UID_SLOTS // 2
        start = os.getpid() * 7 + next(Sandbox._counter)
        LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        for k in range(pairs):
            slot = (start + k) % pairs
            uids = (UID_BASE + 2 * slot, UID_BASE + 2 * slot + 1)
            with contextlib.ExitStack() as stack:
                try:
                    for uid in uids:
                        stack.enter_context(_uid_lock(uid))
                except BlockingIOError:
                    continue
                yield uids
                return
        raise RuntimeError(f"all {pairs} sandbox uid pairs are in use")

    def run_python(self, source: str, stdin: str = "", limits: Limits | None = None) -> RunResult:
        """Run `source` as `main.py` with `python3 -I` in a fresh sandbox."""
        return self.run({"main.py": source}, ["main.py"], stdin, limits)

    def run_judged(self, program: str, judge_job: dict[str, Any], limits: Limits | None = None) -> RunResult:
        """Run `program` as the candidate and the tests in `judge_job` in a judge process beside
        it (see `_harness.py`); the judge's per-test report comes back in `RunResult.report`."""
        nonce = secrets.token_hex(16)
        judge = {"source": HARNESS.read_text(encoding="utf-8"), "job": {**judge_job, "nonce": nonce}}
        files = {"main.py": program, "harness.py": HARNESS.read_text(encoding="utf-8")}
        return self.run(files, ["harness.py", "serve", "main.py"], "", limits, judge=judge, nonce=nonce)

    def run(self, files: dict[str, str], args: list[str], stdin: str = "", limits: Limits | None = None,
            judge: dict[str, Any] | None = None, nonce: str = "") -> RunResult:
        """Run `python3 -I ARGS...` in a directory holding `files`."""
        lim = limits or self.limits
        uids_cm = self._uids() if "uid" in self.layers else contextlib.nullcontext((os.getuid(), os.getuid()))
        with uids_cm as (uid, judge_uid):
            cg = None
            if "cgroup" in self.layers and self.cgroups.version:
                try:
                    cg = self.cgroups.create(f"run-{os.getpid()}-{next(Sandbox._counter)}", lim)
                except OSError as e:
                    if "cgroup" in self.require:
                        return _sandbox_error(f"cannot create the run's cgroup: {e}", self.isolated)
            try:
                job = {
                    "layers": sorted(self.layers), "require": sorted(self.require), "binds": self.binds,
                    "cgroup_procs": cg.procs_files if cg else [], "uid": uid, "judge_uid": judge_uid,
                    "files": files, "argv": [self.python, "-I", *args], "judge": judge,
                    "limits": asdict(lim), "tmpfs_mb": lim.tmpfs_mb,
                    "env": {"PATH": "/usr/bin:/bin", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
                            "PYTHONDONTWRITEBYTECODE": "1"},
                }
                r = self._execute(job, stdin, lim, cg, nonce)
            finally:
                if cg is not None:
                    cg.remove()
                if "uid" in self.layers:
                    _reap_uid(uid)
                    _reap_uid(judge_uid)
            return r

    def _execute(self, job: dict[str, Any], stdin: str, lim: Limits, cg: _RunCgroup | None, nonce: str) -> RunResult:
        t0 = time.monotonic()
        job_r, job_w = os.pipe()
        status_r, status_w = os.pipe()
        report_r, report_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [self.python, "-I", "-S", str(INIT), str(job_r), str(status_w), str(report_w)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, cwd="/", start_new_session=True,
                pass_fds=(job_r, status_w, report_w),
            )
        finally:
            for fd in (job_r, status_w, report_w):
                os.close(fd)
        data = json.dumps(job).encode()
        feeder = threading.Thread(target=_feed, args=(proc, stdin.encode(), job_w, data), daemon=True)
        feeder.start()
        assert proc.stdout is not None and proc.stderr is not None
        bufs = {"stdout": bytearray(), "stderr": bytearray(), "status": bytearray(), "report": bytearray()}
        caps = {"stdout": lim.output_bytes, "stderr": lim.output_bytes, "status": 1 << 16, "report": 4 << 20}
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
        sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
        status_f = os.fdopen(status_r, "rb", buffering=0)
        report_f = os.fdopen(report_r, "rb", buffering=0)
        sel.register(status_f, selectors.EVENT_READ, "status")
        sel.register(report_f, selectors.EVENT_READ, "report")
        open_streams = 4
        deadline = t0 + lim.wall_s
        status = None
        limit_hit = ""
        while open_streams:
            left = deadline - time.monotonic()
            if left <= 0:
                status, limit_hit = "timeout", "wall_s"
                break
            if cg is not None and cg.cpu_seconds() > lim.cpu_s:
                status, limit_hit = "timeout", "cpu_s"
                break
            for key, _ in sel.select(timeout=min(left, 0.1)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                buf = bufs[key.data]
                buf += chunk
                if len(buf) > caps[key.data]:
                    del buf[caps[key.data]:]
                    if key.data in ("stdout", "stderr"):
                        status, limit_hit = "output_limit", "output_bytes"
                    else:
                        status, limit_hit = "failed", f"{key.data}_too_large"
            if status:
                break
        if status:
            _kill(proc, cg)
        try:
            code = proc.wait(timeout=max(0.1, deadline - time.monotonic()) if not status else 10)
        except subprocess.TimeoutExpired:
            status, limit_hit = status or "timeout", limit_hit or "wall_s"
            _kill(proc, cg)
            code = proc.wait()
        _kill(proc, cg)
        feeder.join(timeout=5)
        sel.close()
        for f in (proc.stdout, proc.stderr, status_f, report_f):
            f.close()
        wall = time.monotonic() - t0
        info: dict[str, Any] = {}
        for line in bufs["status"].decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                info.update(json.loads(line))
        details: dict[str, object] = {"isolation": info.get("layers", [])}
        if cg is not None:
            details.update(cg.stats())
            details["isolation"] = ["cgroup", *[x for x in details["isolation"] if x != "cgroup"]]  # type: ignore[union-attr]
        if limit_hit:
            details["limit"] = limit_hit
        if "error" in info:
            details["sandbox_error"] = str(info["error"])[:500]
        cand = (info.get("result") or {}).get("candidate")
        exit_code = cand["exit"] if isinstance(cand, dict) and isinstance(cand.get("exit"), int) else code
        if exit_code is not None and exit_code < 0:
            with contextlib.suppress(ValueError):
                details["signal"] = signal.Signals(-exit_code).name
        if status is None:
            if "error" in info:
                status = "error"
            else:
                status = "ok" if exit_code == 0 and code == 0 else "failed"
        if status == "failed" and details.get("oom_kill"):
            details["limit"] = "memory_mb"
        elif status == "failed" and details.get("signal") == "SIGXCPU":  # the per-process backstop
            status, details["limit"] = "timeout", "cpu_s"
        report = None
        if job.get("judge"):
            report = []
            for line in bufs["report"].decode(errors="replace").splitlines():
                try:
                    obj = json.loads(line)
                except ValueError:
                    obj = {"event": "garbled"}
                report.append(obj if isinstance(obj, dict) else {"event": "garbled"})
        return RunResult(status, exit_code, bufs["stdout"].decode(errors="replace"),
                         bufs["stderr"].decode(errors="replace"), wall, self.isolated, details, report, nonce)


@contextlib.contextmanager
def _uid_lock(uid: int) -> Iterator[None]:
    fd = os.open(LOCK_DIR / f"{uid}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def uid_lease(uid: int) -> contextlib.AbstractContextManager[None]:
    """Hold `uid`'s lease (BlockingIOError when a run has it): no run can start with it meanwhile."""
    LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    return _uid_lock(uid)


def _no_cgroups() -> _Cgroups:
    cg = _Cgroups.__new__(_Cgroups)
    cg.version, cg.roots, cg.note = 0, {}, "not root"
    return cg


def _sandbox_error(msg: str, isolated: bool) -> RunResult:
    return RunResult("error", None, "", "", 0.0, isolated, {"sandbox_error": msg, "isolation": []})


def _feed(proc: subprocess.Popen[bytes], data: bytes, job_w: int, job: bytes) -> None:
    """The job on its pipe, then stdin, from a thread: a program that never reads must not block us."""
    try:
        view = memoryview(job)
        while view:
            view = view[os.write(job_w, view):]
    except OSError:
        pass
    finally:
        os.close(job_w)
    assert proc.stdin is not None
    try:
        if data:
            proc.stdin.write(data)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def _kill(proc: subprocess.Popen[bytes], cg: _RunCgroup | None) -> None:
    # The init and the namespace's pid 1 share the init's process group; pid 1 dying takes the
    # whole namespace with it. The cgroup sweep catches anything that got out of the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if cg is not None:
        _kill_cgroup(sorted(set(cg.dirs.values())))


def _uid_pids(uid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    pids.append(int(entry.name))
            except FileNotFoundError:
                continue
    return pids


def _reap_uid(uid: int, wait_s: float = 5.0) -> None:
    """Kill anything still running as the run's uid and wait until it is gone."""
    deadline = time.monotonic() + wait_s
    while True:
        pids = _uid_pids(uid)
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
