"""Run untrusted programs: one contained process tree per run, killed whole at its deadline.

Layers (each one stops a hostile program the others might miss):

- **Linux namespaces** (`unshare`): a new network namespace (no interface but a downed
  loopback: no connection leaves), a mount namespace with a private tmpfs on `/tmp` and
  `/dev/shm` (writes vanish with the run), and a pid namespace whose init is a root shell the
  program cannot signal; when that init dies the kernel kills every process left inside, so a
  daemon or a fork bomb cannot outlive the run.
- **An unprivileged uid** (`setpriv`): one uid per concurrent slot (so `RLIMIT_NPROC`, which
  counts per uid, is not shared between runs), no supplementary groups, no capabilities,
  `no_new_privs`.
- **rlimits**: CPU seconds, address space, processes, file size, open files.
- **An empty working directory** holding only the program, and a scrubbed environment (no
  secrets from the parent).
- **A wall-clock deadline** that SIGKILLs the run's whole process group (and so the namespace),
  and capped stdout/stderr (reading stops and the run is killed past the cap).

Candidates run with Debian's `/usr/bin/python3`: the venv's interpreter lives under `/root`, which
the unprivileged uid cannot read. Where namespaces are unavailable (not root, no `unshare`),
`Sandbox` refuses to run anything unless built with `allow_unisolated=True`, which keeps only the
rlimits, the session, the deadline and the scrubbed environment.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_PYTHON = "/usr/bin/python3"
# Unprivileged uids for runs: far above any real account, one per concurrent slot.
UID_BASE = 61000
UID_SLOTS = 512
# One lock file per uid: a run leases its uid there, so concurrent processes never share one.
LOCK_DIR = Path("/var/tmp/dataengine-sandbox-uids")


class SandboxUnavailable(RuntimeError):
    """Isolation is not available here and unisolated runs were not allowed."""


@dataclass(frozen=True)
class Limits:
    """Per-run limits; defaults suit test programs of HumanEval / MBPP / Codeforces size."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    processes: int = 32
    file_size_mb: int = 16
    open_files: int = 64
    output_bytes: int = 1 << 20
    tmpfs_mb: int = 64


@dataclass
class RunResult:
    """How one run ended.

    status: `ok` (exit 0), `failed` (non-zero exit or killed by a signal, e.g. an rlimit),
    `timeout` (wall deadline), `output_limit` (stdout/stderr over the cap).
    """

    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    wall_s: float
    isolated: bool
    details: dict[str, object] = field(default_factory=dict)


def _isolation_available() -> tuple[bool, str]:
    if os.name != "posix" or os.geteuid() != 0:
        return False, "not running as root (namespaces and uid switching need it)"
    for tool in ("unshare", "setpriv", "prlimit"):
        if shutil.which(tool) is None:
            return False, f"{tool} not found"
    if not Path(SANDBOX_PYTHON).exists():
        return False, f"{SANDBOX_PYTHON} not found"
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "true"],
        capture_output=True, timeout=30,
    )
    if probe.returncode != 0:
        return False, f"unshare failed: {probe.stderr.decode(errors='replace').strip()}"
    return True, "namespaces"


_INNER = r"""
set -e
mount --make-rprivate /
mount -t tmpfs -o size={tmpfs}m,mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o size=1m,mode=1777,nosuid,nodev tmpfs /dev/shm 2>/dev/null || true
mkdir -m 0700 /tmp/work
cp -a "$SBX_SRC"/. /tmp/work/
chown -R {uid}:{uid} /tmp/work
mount -t tmpfs -o size=1m,mode=1777,nosuid,nodev tmpfs /var/tmp 2>/dev/null || true
# Every other mount read-only: world-writable folders elsewhere (a shared scratch dir, a chmod 777
# checkout) must not take the program's writes.
for m in $(awk '{{print $2}}' /proc/self/mounts); do
  case "$m" in /tmp|/tmp/*|/var/tmp|/dev/shm|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) ;;
    *) mount -o remount,bind,ro "$m" 2>/dev/null || true ;; esac
done
cd /tmp/work
ip link set lo up 2>/dev/null || true
set +e
# Not exec: this root shell stays pid 1 of the namespace, out of the program's reach; when it
# exits (or is killed from outside) the kernel kills everything left in the namespace.
setpriv --reuid={uid} --regid={uid} --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- \
  prlimit --cpu={cpu} --as={as_bytes} --nproc={nproc} --fsize={fsize} --nofile={nofile} --core=0 -- \
  env -i PATH=/usr/bin:/bin HOME=/tmp/work TMPDIR=/tmp LANG=C.UTF-8 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 \
  "$@" <&0
exit $?
"""


class Sandbox:
    """Runs programs contained. Thread-safe: each concurrent run gets its own uid slot.

    >>> sb = Sandbox()                                                      # doctest: +SKIP
    >>> sb.run_python("print(sum(map(int, input().split())))", stdin="2 3").stdout
    '5\\n'
    """

    _slots = itertools.count()
    _probe: tuple[bool, str] | None = None
    _probe_lock = threading.Lock()

    def __init__(self, limits: Limits | None = None, allow_unisolated: bool = False, python: str = SANDBOX_PYTHON):
        self.limits = limits or Limits()
        self.allow_unisolated = allow_unisolated
        self.python = python
        with Sandbox._probe_lock:
            if Sandbox._probe is None:
                Sandbox._probe = _isolation_available()
        self.isolated, self.isolation_note = Sandbox._probe
        if not self.isolated and not allow_unisolated:
            raise SandboxUnavailable(
                f"cannot isolate untrusted code here ({self.isolation_note}); refusing to run it. "
                "Pass allow_unisolated=True (verify.code.allow_unisolated: true) only for trusted code."
            )

    @contextlib.contextmanager
    def _uid(self) -> Iterator[int]:
        """Lease a uid no other run on this machine holds (an flock per uid, across processes):
        rlimits count per uid, and the post-run sweep kills everything running as it."""
        start = os.getpid() * 7 + next(Sandbox._slots)
        LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        for k in range(UID_SLOTS):
            uid = UID_BASE + (start + k) % UID_SLOTS
            fd = os.open(LOCK_DIR / f"{uid}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield uid
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        raise RuntimeError(f"all {UID_SLOTS} sandbox uids are in use")

    def run_python(self, source: str, stdin: str = "", limits: Limits | None = None) -> RunResult:
        """Run `source` as `main.py` with `python3 -I` in a fresh sandbox."""
        return self.run({"main.py": source}, [self.python, "-I", "main.py"], stdin, limits)

    def run(self, files: dict[str, str], argv: list[str], stdin: str = "", limits: Limits | None = None) -> RunResult:
        lim = limits or self.limits
        src = Path(tempfile.mkdtemp(prefix="dataengine-sbx-", dir="/var/tmp" if Path("/var/tmp").is_dir() else None))
        try:
            for name, text in files.items():
                (src / name).write_text(text, encoding="utf-8")
            os.chmod(src, 0o755)
            # Unisolated runs keep our uid: only isolated ones switch to (and lease) another.
            with self._uid() if self.isolated else contextlib.nullcontext(os.getuid()) as uid:
                if self.isolated:
                    script = _INNER.format(
                        tmpfs=lim.tmpfs_mb, uid=uid, cpu=lim.cpu_s, as_bytes=lim.memory_mb << 20,
                        nproc=lim.processes, fsize=lim.file_size_mb << 20, nofile=lim.open_files,
                    )
                    cmd = ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
                           "/bin/sh", "-c", script, "sandbox", *argv]
                    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SBX_SRC": str(src)}
                    cwd = "/"
                    preexec = None
                else:
                    cmd = argv
                    env = {"PATH": "/usr/bin:/bin", "HOME": str(src), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
                    cwd = str(src)
                    preexec = _rlimits_preexec(lim)
                return self._execute(cmd, env, cwd, stdin, lim, preexec, uid)
        finally:
            shutil.rmtree(src, ignore_errors=True)

    def _execute(
        self, cmd: list[str], env: dict[str, str], cwd: str, stdin: str, lim: Limits, preexec: object, uid: int
    ) -> RunResult:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd, start_new_session=True, preexec_fn=preexec,  # type: ignore[arg-type]
        )
        # Feed stdin from a thread: a program that never reads must not block us.
        feeder = threading.Thread(target=_feed, args=(proc, stdin.encode()), daemon=True)
        feeder.start()
        out, err = bytearray(), bytearray()
        status = None
        sel = selectors.DefaultSelector()
        assert proc.stdout is not None and proc.stderr is not None
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        open_streams = 2
        deadline = t0 + lim.wall_s
        while open_streams:
            left = deadline - time.monotonic()
            if left <= 0:
                status = "timeout"
                break
            for key, _ in sel.select(timeout=min(left, 0.5)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                buf: bytearray = key.data
                buf += chunk
                if len(buf) > lim.output_bytes:
                    status = "output_limit"
                    del buf[lim.output_bytes :]
            if status:
                break
        if status:
            _kill_group(proc)
        try:
            code = proc.wait(timeout=max(0.1, deadline - time.monotonic()) if not status else 5)
        except subprocess.TimeoutExpired:
            status = status or "timeout"
            _kill_group(proc)
            code = proc.wait()
        # Whatever the program left in our process group (unisolated mode): gone too. The kernel
        # tears a dead pid namespace down asynchronously; wait until nothing runs as the uid.
        _kill_group(proc)
        if self.isolated:
            _reap_uid(uid)
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
        wall = time.monotonic() - t0
        if status is None:
            status = "ok" if code == 0 else "failed"
        details: dict[str, object] = {}
        if code is not None and code < 0:
            details["signal"] = signal.Signals(-code).name
        elif code is not None and code > 128 and self.isolated:
            # The namespace's shell reports a program killed by signal N as 128+N.
            with contextlib.suppress(ValueError):
                details["signal"] = signal.Signals(code - 128).name
        return RunResult(status, code, out.decode(errors="replace"), err.decode(errors="replace"), wall, self.isolated, details)


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    try:
        if data:
            proc.stdin.write(data)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


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


def _rlimits_preexec(lim: Limits):  # type: ignore[no-untyped-def]
    import resource

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_s, lim.cpu_s))
        resource.setrlimit(resource.RLIMIT_AS, (lim.memory_mb << 20, lim.memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_size_mb << 20, lim.file_size_mb << 20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (lim.open_files, lim.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply
