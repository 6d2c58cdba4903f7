"""Hostile and forging programs, one per technique: 0 escapes, 0 forged `correct`, nothing left.

Each isolation program tries one forbidden thing and prints `ESCAPED: ...` only if it worked;
host-side checks confirm from outside (listeners that accept nothing, IPC objects and files that do
not exist afterwards). Each forging program tries to be graded `correct` without solving the task,
against real HumanEval / MBPP tests. A module-level fixture asserts that the host is as it was:
no SysV IPC objects, no process under a sandbox uid, no cgroup or temp files of ours.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dataengine.verify.code import run_tests, verify_code
from dataengine.verify.sandbox import CGROUP_DIR, LAYERS, UID_BASE, UID_SLOTS, Limits, Sandbox, uid_lease

LIMITS = Limits(wall_s=20, cpu_s=10, memory_mb=512, output_bytes=256 << 10, tmpfs_mb=32)

# x86_64 / aarch64 numbers of the syscalls glibc has no wrapper for.
NR = {
    "x86_64": {"add_key": 248, "keyctl": 250, "bpf": 321, "io_uring_setup": 425, "init_module": 175,
               "finit_module": 313, "delete_module": 176, "perf_event_open": 298, "userfaultfd": 323,
               "pivot_root": 155, "process_vm_readv": 310, "kexec_load": 246},
    "aarch64": {"add_key": 217, "keyctl": 219, "bpf": 280, "io_uring_setup": 425, "init_module": 105,
                "finit_module": 273, "delete_module": 106, "perf_event_open": 241, "userfaultfd": 282,
                "pivot_root": 41, "process_vm_readv": 270, "kexec_load": 104},
}[platform.machine()]
PRE = f"import ctypes, os, sys, socket\nlibc = ctypes.CDLL(None, use_errno=True)\nNR = {NR!r}\n"


def _sysv() -> set[str]:
    out = set()
    for kind in ("shm", "sem", "msg"):
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
        out |= {f"{kind} {' '.join(line.split()[:2])}" for line in lines}
    return out


def _uid_processes() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                uid = p.stat().st_uid
            except FileNotFoundError:
                continue
            if UID_BASE <= uid < UID_BASE + UID_SLOTS:
                out.setdefault(uid, []).append(int(p.name))
    return out


def _sandbox_uid_processes() -> list[int]:
    """Processes under a sandbox uid that no run holds (there must be none). Checked while holding
    the uid's lease, so a run of another test process ending meanwhile is not mistaken for one."""
    left = []
    for uid in _uid_processes():
        try:
            with uid_lease(uid):
                left += _uid_processes().get(uid, [])
        except BlockingIOError:
            continue  # a run is using it right now
    return left


def _our_leftovers() -> list[str]:
    left = [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_DIR}/run-{os.getpid()}-*")]
    left += [str(p) for p in Path("/sys/fs/cgroup").glob(f"{CGROUP_DIR}/run-{os.getpid()}-*")]
    for d in ("/tmp", "/var/tmp", "/dev/shm"):
        for p in Path(d).iterdir():
            try:
                if UID_BASE <= p.lstat().st_uid < UID_BASE + UID_SLOTS:
                    left.append(str(p))
            except FileNotFoundError:
                continue
    return left


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    before = _sysv()
    sb = Sandbox(LIMITS)
    assert sb.isolated and set(LAYERS) <= sb.layers, sb.isolation_note
    yield sb
    # Nothing of any run is left on the host.
    assert _sysv() == before
    assert _sandbox_uid_processes() == []
    assert _our_leftovers() == []


def run(sb: Sandbox, prog: str, **kw) -> object:  # type: ignore[no-untyped-def]
    r = sb.run_python(PRE + prog, **kw)
    assert "ESCAPED" not in r.stdout and "ESCAPED" not in r.stderr, r.stdout[-2000:]
    assert set(LAYERS) <= set(r.details["isolation"])  # type: ignore[arg-type]
    return r


# --------------------------------------------------------------------------- isolation
SYSCALL_DENIALS = {
    "user_namespace": "rc = libc.unshare(0x10000000)",
    "every_other_namespace": "rc = min(libc.unshare(f) for f in (0x20000, 0x4000000, 0x8000000, 0x20000000, 0x40000000, 0x2000000))",
    "mount_tmpfs": "rc = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)",
    "umount_proc": "rc = libc.umount2(b'/proc', 2)",
    "chroot": "rc = libc.chroot(b'/tmp')",
    "pivot_root": "rc = libc.syscall(NR['pivot_root'], b'/tmp', b'/tmp')",
    "keyctl_user_keyring": "rc = libc.syscall(NR['keyctl'], 0, ctypes.c_long(-4), 0)",  # GET_KEYRING_ID @u
    "add_key": "rc = libc.syscall(NR['add_key'], b'user', b'stash', b'secret', 6, ctypes.c_long(-4))",
    "bpf": "rc = libc.syscall(NR['bpf'], 0, None, 0)",
    "io_uring": "p = ctypes.create_string_buffer(120); rc = libc.syscall(NR['io_uring_setup'], 8, p)",
    "perf_event_open": "a = ctypes.create_string_buffer(128); rc = libc.syscall(NR['perf_event_open'], a, 0, -1, -1, 0)",
    "userfaultfd": "rc = libc.syscall(NR['userfaultfd'], 0)",
    "init_module": "rc = libc.syscall(NR['init_module'], b'\\x7fELF', 4, b'')",
    "finit_module": "rc = libc.syscall(NR['finit_module'], 0, b'', 0)",
    "delete_module": "rc = libc.syscall(NR['delete_module'], b'ext4', 0)",
    "kexec_load": "rc = libc.syscall(NR['kexec_load'], 0, 0, None, 0)",
    "ptrace_traceme": "rc = libc.ptrace(0, 0, None, None)",
    "ptrace_attach_parent": "rc = libc.ptrace(16, os.getppid(), None, None)",
    "process_vm_readv": "rc = libc.syscall(NR['process_vm_readv'], 1, None, 0, None, 0, 0)",
    "setuid_root": "rc = libc.setuid(0)",
    "raw_socket": "rc = libc.socket(2, 3, 1)",  # AF_INET SOCK_RAW ICMP
    "packet_socket": "rc = libc.socket(17, 3, 0)",  # AF_PACKET
    "netlink_socket": "rc = libc.socket(16, 3, 0)",  # AF_NETLINK
    "vsock_to_the_vm_host": "rc = libc.socket(40, 1, 0)",  # AF_VSOCK: no netns covers it
    "sethostname": "rc = libc.sethostname(b'pwned', 5)",
}


@pytest.mark.parametrize("name", sorted(SYSCALL_DENIALS))
def test_forbidden_syscall_is_denied(sandbox: Sandbox, name: str) -> None:
    r = run(sandbox, SYSCALL_DENIALS[name] + "\nprint('rc', rc, ctypes.get_errno())\n"
            "if rc >= 0: print('ESCAPED:', " + repr(name) + ")\n")
    assert r.status == "ok" and "rc -1" in r.stdout, r.stdout + r.stderr


def test_process_runs_without_privileges_under_seccomp(sandbox: Sandbox) -> None:
    r = run(sandbox, "st = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
                     "print({k: st[k].strip() for k in ('Uid', 'CapEff', 'CapPrm', 'CapBnd', 'NoNewPrivs', 'Seccomp')})\n")
    st = eval(r.stdout)  # noqa: S307 - our own print of a dict of str
    assert st["CapEff"] == st["CapPrm"] == st["CapBnd"] == "0000000000000000"
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"
    assert all(UID_BASE <= int(u) < UID_BASE + UID_SLOTS for u in st["Uid"].split())


def test_root_holds_only_the_interpreter(sandbox: Sandbox) -> None:
    r = run(sandbox, (
        "import stat\n"
        "print(sorted(os.listdir('/')))\n"
        "for p in ('/etc/shadow', '/etc/passwd', '/run', '/root', '/home', '/var', '/sys', '/work', '/proc/sys', "
        "'/proc/sysrq-trigger', '/proc/kcore', '/lib/modules', '/usr/bin/su', '/usr/bin/sudo', '/bin/sh'):\n"
        "    if os.path.lexists(p): print('ESCAPED: visible', p)\n"
        "for d, _, fs in os.walk('/usr'):\n"
        "    for f in fs:\n"
        "        try:\n"
        "            if os.lstat(os.path.join(d, f)).st_mode & (stat.S_ISUID | stat.S_ISGID): print('ESCAPED: setuid', f)\n"
        "        except OSError: pass\n"
        "for p in ('/', '/usr', '/usr/lib', '/dev'):\n"
        "    try:\n"
        "        open(os.path.join(p, 'x'), 'w'); print('ESCAPED: wrote', p)\n"
        "    except OSError: pass\n"
    ))
    assert r.status == "ok"
    assert set(eval(r.stdout.splitlines()[0])) <= {"usr", "lib", "lib64", "bin", "proc", "dev", "tmp"}  # noqa: S307


def test_only_the_runs_own_processes_are_visible(sandbox: Sandbox) -> None:
    r = run(sandbox, "pids = [p for p in os.listdir('/proc') if p.isdigit()]\nprint(pids)\n"
                     "for p in pids:\n    if int(p) == os.getpid(): continue\n    try:\n        open(f'/proc/{p}/environ').read(); print('ESCAPED: read environ of', p)\n"
                     "    except OSError: pass\n"
                     "    if int(p) != os.getpid() and open(f'/proc/{p}/status').read().count('Uid:\\t0'):\n"
                     "        print('ESCAPED: sees root process', p)\n")
    assert len(eval(r.stdout)) <= 2  # itself (and its own children only)  # noqa: S307


def test_sysv_shared_memory_dies_with_the_run(sandbox: Sandbox) -> None:
    key = int(uuid.uuid4().int % (1 << 30)) + 1
    stash = run(sandbox, f"""
libc.shmget.restype = ctypes.c_int
libc.shmat.restype = ctypes.c_void_p
for i in range(4):  # 4 x 64 MB segments, never removed
    sid = libc.shmget({key} + i, 64 << 20, 0o1666)
    assert sid >= 0, ctypes.get_errno()
    addr = libc.shmat(sid, None, 0)
    ctypes.memmove(addr, b'secret-{key}', 16)
print('stashed')
""")
    assert "stashed" in stash.stdout
    assert not any(line.startswith("shm") and str(key) in line for line in _sysv())
    later = run(sandbox, f"sid = libc.shmget({key}, 0, 0)\nprint('sid', sid)\nif sid >= 0: print('ESCAPED: found the segment')\n")
    assert "sid -1" in later.stdout


def test_posix_message_queue_stays_in_the_run(sandbox: Sandbox) -> None:
    name = f"/de-{uuid.uuid4().hex[:12]}".encode()
    r = run(sandbox, f"libc.mq_open.restype = ctypes.c_int\nq = libc.mq_open({name!r}, 0o102, 0o666, None)\nprint('q', q)\n")
    assert "q " in r.stdout
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mq_open(name, 0) == -1  # not on the host


def test_memory_limit_holds_for_the_whole_process_tree(sandbox: Sandbox) -> None:
    lim = Limits(wall_s=30, cpu_s=20, memory_mb=256, processes=16)
    r = run(sandbox, """
import time
kids = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        b = bytearray(150 << 20)
        for i in range(0, len(b), 4096): b[i] = 1
        time.sleep(3)
        os._exit(0)
    kids.append(pid)
ok = sum(os.waitpid(k, 0)[1] == 0 for k in kids)
print('children that kept 150 MB:', ok)
if ok * 150 > 256: print('ESCAPED: held', ok * 150, 'MB')
""", limits=lim)
    assert r.details["memory_peak_mb"] <= 256 + 8, r.details


def test_cpu_limit_holds_for_the_whole_process_tree(sandbox: Sandbox) -> None:
    lim = Limits(wall_s=60, cpu_s=2, processes=40)
    r = run(sandbox, "for _ in range(30):\n    if os.fork() == 0:\n        while True: pass\nimport time\ntime.sleep(60)\n",
            limits=lim)
    assert r.status == "timeout" and r.details["limit"] == "cpu_s", r.details
    assert r.details["cgroup_cpu_s"] < 2 + 1.5, r.details


def test_host_unix_socket_is_unreachable(sandbox: Sandbox, tmp_path: Path) -> None:
    paths = [tmp_path / "host.sock", Path(f"/run/de-{uuid.uuid4().hex[:8]}.sock")]
    os.chmod(tmp_path, 0o777)
    servers, accepted = [], []
    for p in paths:
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        os.chmod(p, 0o777)
        s.listen(5)
        s.setblocking(False)
        servers.append(s)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\0de-{uuid.uuid4().hex}")
    abstract.listen(5)
    abstract.setblocking(False)
    servers.append(abstract)
    try:
        targets = [str(p) for p in paths] + [abstract.getsockname()]
        run(sandbox, f"import glob\nfor t in {targets!r} + glob.glob('/run/*.sock') + glob.glob('/tmp/**/*.sock', recursive=True):\n"
                     "    s = socket.socket(socket.AF_UNIX)\n    try:\n        s.connect(t); print('ESCAPED: connected', t)\n"
                     "    except OSError: pass\n")
        for s in servers:
            with contextlib.suppress(BlockingIOError):
                accepted.append(s.accept())
    finally:
        for s in servers:
            s.close()
        paths[1].unlink(missing_ok=True)
    assert accepted == []


def test_tcp_to_a_host_port_fails(sandbox: Sandbox) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.setblocking(False)
    port = server.getsockname()[1]
    run(sandbox, f"s = socket.socket()\ns.settimeout(2)\ntry:\n    s.connect(('127.0.0.1', {port})); print('ESCAPED: tcp')\n"
                 "except OSError: pass\n")
    with pytest.raises(BlockingIOError):
        server.accept()
    server.close()


def test_keyring_carries_nothing_between_runs(sandbox: Sandbox) -> None:
    find = "rc = libc.syscall(NR['keyctl'], 10, b'user', b'stash', 0)\nif rc >= 0: print('ESCAPED: found a stashed key')\n"
    run(sandbox, "libc.syscall(NR['add_key'], b'user', b'stash', b'secret', 6, ctypes.c_long(-4))\n" + find)
    run(sandbox, find)


def test_writes_outside_the_sandbox_touch_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    os.chmod(tmp_path, 0o777)  # even a world-writable host folder is out of reach
    targets = [tmp_path / f"pwned-{tag}", Path(f"/tmp/pwned-{tag}"), Path(f"/var/tmp/pwned-{tag}"), Path(f"/dev/shm/pwned-{tag}")]
    run(sandbox, "".join(f"try:\n    open({str(p)!r}, 'w').write('x')\nexcept OSError:\n    pass\n" for p in targets))
    assert not any(p.exists() for p in targets)


def test_tmpfs_cannot_fill_the_host(sandbox: Sandbox) -> None:
    r = run(sandbox, "n = 0\ntry:\n    with open('/tmp/fill', 'wb') as f:\n        for _ in range(200):\n"
                     "            f.write(b'x' * (1 << 20)); f.flush(); n += 1\nexcept OSError as e: print(type(e).__name__)\n"
                     "print('MB', n)\nif n > 40: print('ESCAPED: wrote', n, 'MB')\n")
    assert "OSError" in r.stdout or "MB" in r.stdout


def test_daemon_does_not_outlive_the_run(sandbox: Sandbox) -> None:
    tag = uuid.uuid4().hex
    r = run(sandbox, f"import time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(3)\n"
                     f"        open('/tmp/late-{tag}', 'w')\n        time.sleep(600)\n    os._exit(0)\nprint('parent done')\n")
    assert r.status == "ok"
    time.sleep(4)
    assert _sandbox_uid_processes() == [] and not Path(f"/tmp/late-{tag}").exists()


def test_signals_cannot_reach_the_parent(sandbox: Sandbox) -> None:
    me = os.getpid()
    r = run(sandbox, f"import signal\nfor pid in ({me}, os.getppid(), 1, -1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
                     "    except OSError: pass\nprint('survived')\n")
    assert r.status in ("ok", "failed")  # we are still here, and the run reported back


def test_environment_and_parent_secrets_are_not_readable(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv("DATAENGINE_TEST_SECRET", secret)
    r = run(sandbox, f"import glob\nprint(dict(os.environ))\nfor p in glob.glob('/proc/*/environ') + ['/proc/{os.getpid()}/environ']:\n"
                     "    try:\n        print(open(p, 'rb').read())\n    except OSError:\n        pass\n")
    assert secret not in r.stdout and secret not in r.stderr


def test_huge_stderr_is_capped(sandbox: Sandbox) -> None:
    r = run(sandbox, "block = 'x' * 65536\nfor _ in range(1 << 14):\n    sys.stderr.write(block)\n")
    assert r.status == "output_limit" and len(r.stderr) <= LIMITS.output_bytes


def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    r = run(sandbox, "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", limits=Limits(wall_s=8, cpu_s=5))
    assert r.status in ("failed", "timeout")


def test_concurrent_runs_cannot_see_each_other(sandbox: Sandbox) -> None:
    tag = uuid.uuid4().hex
    writer = (f"import time\nfor p in ('/tmp/{tag}', '/tmp/work/{tag}', '/dev/shm/{tag}'):\n    open(p, 'w').write('secret')\n"
              "print('written', flush=True)\ntime.sleep(6)\n")
    reader = (f"import time, glob\ntime.sleep(2)\nfor d in ('/tmp', '/dev/shm', '/proc'):\n"
              f"    for root, _, fs in os.walk(d):\n        if '{tag}' in fs: print('ESCAPED: saw', root)\n"
              f"for p in glob.glob('/proc/*/cmdline'):\n    if '{tag}' in open(p).read(): print('ESCAPED: saw the other run')\n")
    with ThreadPoolExecutor(2) as ex:
        w = ex.submit(run, sandbox, writer)
        r = ex.submit(run, sandbox, reader)
        assert "written" in w.result().stdout
        r.result()


# --------------------------------------------------------------------------- forged verdicts
def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def he(shared_data: Path) -> dict:
    return load(shared_data / "code" / "HumanEval.jsonl")[0]  # has_close_elements


@pytest.fixture(scope="module")
def mbpp(shared_data: Path) -> dict:
    return load(shared_data / "code" / "mbpp_test500_deepseekcoder.jsonl")[0]  # remove_Occ


WRONG_HE = "def has_close_elements(numbers, threshold):\n    return False\n"
WRONG_MBPP = "def remove_Occ(s, ch):\n    return s\n"
FORGERIES = {
    "os_exit_0": "import os\nos._exit(0)\n",
    "sys_exit_0": "import sys\nsys.exit(0)\n",
    "exit_inside_the_function": "{wrong}\nimport os\n_f = {name}\ndef {name}(*a):\n    os._exit(0)\n",
    "system_exit_inside_the_function": "def {name}(*a):\n    raise SystemExit(0)\n",
    "function_named_exec": "{wrong}\ndef exec(*a, **k):\n    return None\ndef compile(*a, **k):\n    return None\n",
    "shadowed_builtins": "{wrong}\nlen = abs = sorted = set = list = all = any = lambda *a, **k: 0\n"
                         "isinstance = lambda *a: True\nclass AssertionError(Exception): pass\n",
    "patched_builtins_module": "{wrong}\nimport builtins\nbuiltins.AssertionError = type('X', (Exception,), {{}})\n"
                               "builtins.len = lambda x: 0\n",
    "prints_the_old_report_marker": "{wrong}\nprint('\\n__DATAENGINE_TEST_REPORT_7f3a__' + '[[true, \"\"]]' * 1)\n"
                                    "print('\\n__DATAENGINE_TEST_REPORT_7f3a__[[true, \"\"], [true, \"\"], [true, \"\"]]')\n",
    "forged_report_on_every_fd": "{wrong}\nimport os, json\nfor fd in range(3, 256):\n    for ev in ({{'event': 'start', 'n': 1}}, "
                                 "{{'event': 'test', 'i': 0, 'passed': True, 'calls': 1}}, {{'event': 'done'}}):\n"
                                 "        try:\n            os.write(fd, (json.dumps(ev) + '\\n').encode())\n"
                                 "        except OSError:\n            pass\n",
    "always_equal_object": "class _E:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
                           "    def __bool__(self): return True\ndef {name}(*a):\n    return _E()\n",
    "int_subclass_equal_to_everything": "class _I(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\n"
                                        "def {name}(*a):\n    return _I(0)\n",
    "str_subclass_equal_to_everything": "class _S(str):\n    def __eq__(self, o): return True\n    __hash__ = str.__hash__\n"
                                        "def {name}(*a):\n    return _S('')\n",
    "kills_every_process_it_can": "{wrong}\nimport os, signal\nos.kill(-1, signal.SIGKILL)\n",
    "speaks_the_protocol_itself": "import os, json, struct\ndef _s(o):\n    d = json.dumps(o).encode()\n"
                                  "    os.write(4, struct.pack('>I', len(d)) + d)\n"
                                  "_s(['ready', [['{name}', ['O', 1, True]]]])\nwhile True:\n    n = os.read(3, 4)\n"
                                  "    if not n: os._exit(0)\n    os.read(3, struct.unpack('>I', n)[0])\n    _s(['ok', True])\n",
    "looks_for_the_tests_on_disk_and_in_proc": "import os, glob\n_seen = []\nfor p in glob.glob('/proc/*/cmdline') + glob.glob('/proc/*/fd/*') "
                                               "+ glob.glob('/tmp/**', recursive=True):\n    try:\n        _seen.append(open(p).read())\n"
                                               "    except OSError:\n        pass\n"
                                               "def {name}(*a):\n    return 'assert' in ''.join(_seen)\n",
    "inspects_the_callers_frames": "import sys, gc\ndef {name}(*a):\n    f = sys._getframe(1)\n"
                                   "    while f is not None:\n        for v in list(f.f_locals.values()):\n"
                                   "            if isinstance(v, dict) and 'check' in v: v['check'] = lambda c: None\n"
                                   "        f = f.f_back\n    return None\n",
    "defines_check": "{wrong}\ndef check(candidate):\n    pass\nMETADATA = {{}}\n",
    "no_entry_point": "def something_else(*a):\n    return True\n",
    "deeply_nested_reply": "def {name}(*a):\n    x = []\n    for _ in range(100000):\n        x = [x]\n    return x\n",
    "huge_reply": "def {name}(*a):\n    return 'x' * (200 << 20)\n",
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_pass_is_never_correct(sandbox: Sandbox, he: dict, mbpp: dict, name: str) -> None:
    for tests, entry, fn, wrong in ((he["test"], he["entry_point"], he["entry_point"], WRONG_HE),
                                    (mbpp["test"], None, "remove_Occ", WRONG_MBPP)):
        prog = FORGERIES[name].format(wrong=wrong, name=fn)
        v = verify_code(f"```python\n{prog}\n```", tests, entry_point=entry, sandbox=sandbox)
        assert v.verdict in ("incorrect", "timeout", "error"), (name, v)
        assert v.details["reason"] != "all_tests_passed"
    assert _sandbox_uid_processes() == []


def test_the_wrong_answer_alone_is_incorrect_and_the_right_one_correct(sandbox: Sandbox, he: dict, mbpp: dict) -> None:
    """The forgeries above fail because the verdict holds, not because the harness is broken."""
    assert verify_code(f"```python\n{WRONG_HE}```", he["test"], he["entry_point"], sandbox=sandbox).verdict == "incorrect"
    right = verify_code(f"```python\n{he['prompt'] + he['canonical_solution']}```", he["test"], he["entry_point"], sandbox=sandbox)
    assert right.verdict == "correct" and set(LAYERS) <= set(right.details["isolation"])
    assert verify_code(f"```python\n{mbpp['code']}\n```", mbpp["test"], sandbox=sandbox).verdict == "correct"


def test_redefining_a_helper_the_tests_use_does_not_pass(sandbox: Sandbox, shared_data: Path) -> None:
    """HumanEval/38's tests encode with the prompt's `encode_cyclic` and expect `decode_cyclic` to
    undo it: a program that makes both the identity must not pass; nor an `all(map(...))` test
    ended early by a StopIteration from the program."""
    p = load(shared_data / "code" / "HumanEval.jsonl")[38]
    cheat = "def encode_cyclic(s):\n    return s\ndef decode_cyclic(s):\n    return s\n"
    v = verify_code(f"```python\n{cheat}```", p["test"], p["entry_point"], sandbox=sandbox, prompt=p["prompt"])
    assert v.verdict == "incorrect", v
    good = verify_code(f"```python\n{p['prompt'] + p['canonical_solution']}```", p["test"], p["entry_point"],
                       sandbox=sandbox, prompt=p["prompt"])
    assert good.verdict == "correct", good
    stop = verify_code("```python\ndef f(x):\n    raise StopIteration\n```", ["assert all(map(lambda x: f(x) == x + 1, [1, 2]))"],
                       sandbox=sandbox)
    assert stop.verdict == "incorrect", stop


MALFORMED = {
    "whitespace_string": "  \n\t ",
    "list_of_blank_strings": ["   ", "\n"],
    "single_input_output_object": {"input": "1 2\n", "output": "3\n"},
    "single_input_output_object_as_json_text": '{"input": "1 2\\n", "output": "3\\n"}',
    "script_that_asserts_nothing": "x = 1\nprint('ok')\n",
    "asserts_that_assert_nothing": ["x = 1", "pass"],
    "not_python": "assert (",
    "mixed_list": ["assert True", {"input": "", "output": "1"}],
    "every_case_expects_silence": [{"input": "1\n", "output": ""}, {"input": "2\n", "output": "  \n"}],
    "check_without_entry_point": "def check(candidate):\n    assert candidate(1) == 2\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_tests_are_an_error_never_a_pass(sandbox: Sandbox, name: str) -> None:
    v = verify_code("```python\nimport os\nos._exit(0)\n```", MALFORMED[name], sandbox=sandbox)
    assert v.verdict == "error" and v.details["reason"] == "tests_malformed", (name, v)


def test_stdin_cases_are_compared_in_the_parent(sandbox: Sandbox, shared_data: Path) -> None:
    row = load(shared_data / "code" / "codeforces_stdin_tests_nemo_skills.jsonl")[0]
    for prog in ("import os\nos._exit(0)\n", "print('__DATAENGINE_TEST_REPORT_7f3a__')\n", "import sys\nsys.exit(0)\n"):
        res = run_tests(prog, row["test_cases"], sandbox=sandbox)
        assert res.pass_fraction == 0, prog


def test_the_judge_outlives_a_program_that_floods_it(sandbox: Sandbox, he: dict) -> None:
    prog = "import threading, os\ndef _spam():\n    while True:\n        try: os.write(4, b'\\xff' * 65536)\n        except OSError: return\n"
    prog += "threading.Thread(target=_spam, daemon=True).start()\n" + WRONG_HE
    v = verify_code(f"```python\n{prog}```", he["test"], he["entry_point"], sandbox=sandbox)
    assert v.verdict in ("incorrect", "timeout")


def test_concurrent_judged_runs_keep_their_own_reports(sandbox: Sandbox, he: dict) -> None:
    right = he["prompt"] + he["canonical_solution"]
    answers = [right, WRONG_HE] * 4
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda a: verify_code(f"```python\n{a}```", he["test"], he["entry_point"], sandbox=sandbox).verdict,
                          answers))
    assert got == ["correct", "incorrect"] * 4


def test_hostile_stage_run_finishes_with_no_forged_correct(ws, he: dict) -> None:  # type: ignore[no-untyped-def]
    """Through the verify stage: a trace-kind ingest (entry_point in trace metadata), forgeries and
    hostile programs together; the stage finishes and only the real solution is correct."""
    from dataengine.config import load_config_dict
    from dataengine.ingest import IngestOptions, ingest
    from dataengine.verify.stage import run_verify

    bodies = {"canonical": he["prompt"] + he["canonical_solution"], "return_false": WRONG_HE}
    bodies |= {n: FORGERIES[n].format(wrong=WRONG_HE, name=he["entry_point"]) for n in
               ("os_exit_0", "function_named_exec", "always_equal_object", "kills_every_process_it_can", "defines_check")}
    bodies["fork_bomb"] = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    src = ws.root / "traces.jsonl"
    src.write_text("".join(json.dumps({"question": he["prompt"], "response": f"<think>x</think>```python\n{b}\n```",
                                       "model": n, "test": he["test"], "entry_point": he["entry_point"]}) + "\n"
                           for n, b in bodies.items()))
    ingest(ws, src, IngestOptions(kind="traces", mapping={"prompt": "question", "completion": "response", "tests": "test"},
                                  domain="code"))
    counts = run_verify(ws, load_config_dict({"verify": {"code_wall_s": 10.0, "code_parallel": 2}}))
    assert counts["in"] == len(bodies)
    got = {m: (v, json.loads(d)) for m, v, d in ws.query(
        "select t.model, v.verdict, v.details from traces t join verifications v using (trace_id)").fetchall()}
    assert {m for m, (v, _) in got.items() if v == "correct"} == {"canonical"}, got
    assert got["return_false"][0] == "incorrect"
    assert set(LAYERS) <= set(got["canonical"][1]["isolation"])
