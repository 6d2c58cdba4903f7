"""Sandbox init: started by `sandbox.Sandbox` with Debian's system `python3 -I -S` (stdlib only).

Runs as root on the host, reads its job (JSON) from the job fd, then builds one run's isolation
and starts the run's processes inside it:

1. joins the run's cgroup (created by the parent) before anything else, so every process the
   run ever starts is counted against the run's memory, pids and CPU limits;
2. `unshare`s IPC, UTS, network, mount and pid namespaces and forks the namespace's init (pid 1,
   root, out of the program's reach; when it exits the kernel kills everything left inside);
3. init builds a minimal root on a tmpfs: the interpreter and its libraries bound read-only
   (nosuid, nodev), `/proc` (own pids only, no `/proc/sys`), a few device nodes, a private `/tmp`,
   then `pivot_root`s into it and detaches the host's tree: host sockets, `/run`, `/etc/shadow`,
   other users' files and other runs' files do not exist in there;
4. each process it starts (the candidate, and the judge when there are tests to run) drops to its
   own unprivileged uid with no capabilities (bounding set emptied), joins a fresh session keyring,
   gets rlimits and `no_new_privs`, loads a seccomp filter (no namespaces, mount, keyctl, bpf,
   ptrace, modules, io_uring, exotic socket families such as vsock, ...) and execs the interpreter.

A layer that cannot be built is fatal when the job requires it (the parent refuses to run code
unisolated unless allowed); the layers that were built are written on the status fd.
"""

import contextlib
import ctypes
import json
import os
import resource
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.syscall.restype = ctypes.c_long

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
CLONE_NEWCGROUP, CLONE_NEWTIME = 0x02000000, 0x00000080
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE = 24, 38, 4
KEYCTL_JOIN_SESSION_KEYRING = 1
NR = {"x86_64": {"pivot_root": 155, "keyctl": 250}, "aarch64": {"pivot_root": 41, "keyctl": 219}}.get(os.uname().machine, {})

# Denied outright (EPERM): namespace and mount manipulation, kernel keyrings, bpf, tracing other
# processes, modules, kexec, io_uring (its requests bypass seccomp), clock and swap changes, ...
DENY = (
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "keyctl", "add_key", "request_key", "bpf", "ptrace",
    "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "perf_event_open",
    "userfaultfd", "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog",
    "quotactl", "quotactl_fd", "io_uring_setup", "io_uring_enter", "io_uring_register", "name_to_handle_at",
    "open_by_handle_at", "lookup_dcookie", "vhangup", "iopl", "ioperm", "uselib", "fanotify_init",
    "sethostname", "setdomainname", "move_pages", "migrate_pages", "mbind", "set_mempolicy",
    "landlock_create_ruleset", "personality",
)
CLONE_NS_FLAGS = (CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                  CLONE_NEWCGROUP, CLONE_NEWTIME)
# socket()/socketpair(): only AF_UNIX (1), AF_INET (2) and AF_INET6 (10). The network namespace
# does not cover vsock (a VM's host), netlink, packet, bluetooth, ...
SOCKET_DENY_FAMILIES = (0, 3, 4, 5, 6, 7, 8, 9)
SOCKET_FIRST_DENIED_ABOVE = 11


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_MASKED_EQ = 4, 5, 7


def scmp_errno(e: int) -> int:
    return 0x00050000 | (e & 0xFFFF)


def check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(src, dst, fstype, flags, data=None):  # type: ignore[no-untyped-def]
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    check(libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), f"mount {dst}")


def build_seccomp():  # type: ignore[no-untyped-def]
    """A libseccomp filter context (loaded later, in each child, after it dropped privileges)."""
    ls = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    ls.seccomp_init.restype = ctypes.c_void_p
    ls.seccomp_init.argtypes = [ctypes.c_uint32]
    ls.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    ls.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                          ctypes.POINTER(ArgCmp)]
    ls.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = ls.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise OSError("seccomp_init failed")

    def rule(name: str, errno: int, *cmps: tuple[int, int, int, int]) -> None:
        nr = ls.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:  # not a syscall on this architecture
            return
        arr = (ArgCmp * max(1, len(cmps)))(*[ArgCmp(*c) for c in cmps])
        rc = ls.seccomp_rule_add_array(ctx, scmp_errno(errno), nr, len(cmps), arr)
        if rc != 0:
            raise OSError(-rc, f"seccomp rule for {name}: {os.strerror(-rc)}")

    for name in DENY:
        rule(name, 1)
    for flag in CLONE_NS_FLAGS:
        rule("clone", 1, (0, SCMP_CMP_MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc fall back to clone.
    rule("clone3", 38)
    for call in ("socket", "socketpair"):
        for fam in SOCKET_DENY_FAMILIES:
            rule(call, 97, (0, SCMP_CMP_EQ, fam, 0))  # EAFNOSUPPORT
        rule(call, 97, (0, SCMP_CMP_GE, SOCKET_FIRST_DENIED_ABOVE, 0))
    return ls, ctx


def ensure(root: str, path: str, made: set) -> None:
    """Make host `path` resolve the same way under `root`: symlinks on the way are recreated,
    the real file or directory at the end is bound read-only."""
    parts = [p for p in path.split("/") if p]
    cur = "/"
    for i, part in enumerate(parts):
        nxt = os.path.join(cur, part)
        if os.path.islink(nxt):
            target = os.readlink(nxt)
            dst = root + nxt
            if not os.path.lexists(dst):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.symlink(target, dst)
            resolved = os.path.normpath(target if target.startswith("/") else os.path.join(cur, target))
            ensure(root, os.path.join(resolved, *parts[i + 1:]), made)
            return
        cur = nxt
    if cur in made:
        return
    for m in made:  # already inside a bound directory
        if cur.startswith(m.rstrip("/") + "/"):
            return
    dst = root + cur
    if os.path.isdir(cur):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    mount(cur, dst, None, MS_BIND | MS_REC)
    mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    made.add(cur)


def build_root(job: dict) -> None:
    """The minimal read-only root, then pivot_root into it; the host tree is detached."""
    root = "/tmp"  # any directory: the tmpfs over it exists only in this mount namespace
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    made: set = set()
    for p in job["binds"]:
        ensure(root, p, made)
    os.makedirs(root + "/proc")
    try:  # own pids only (hidepid); no /proc/sys, /proc/sysrq-trigger, ... (subset=pid)
        mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2,subset=pid")
    except OSError:
        mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    dev = root + "/dev"
    os.makedirs(dev)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for node in ("null", "zero", "full", "random", "urandom"):
        open(f"{dev}/{node}", "a").close()
        mount(f"/dev/{node}", f"{dev}/{node}", None, MS_BIND)
        mount(None, f"{dev}/{node}", None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(dev + "/shm")
    mount("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16m,mode=1777")
    mount(None, dev, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    os.makedirs(root + "/tmp")
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={job['tmpfs_mb']}m,mode=1777")
    work = root + "/tmp/work"
    os.mkdir(work, 0o700)
    for name, text in job["files"].items():
        with open(os.path.join(work, name), "w", encoding="utf-8") as f:
            f.write(text)
        os.chown(os.path.join(work, name), job["uid"], job["uid"])
    os.chown(work, job["uid"], job["uid"])
    os.makedirs(root + "/oldroot")
    check(libc.syscall(NR["pivot_root"], root.encode(), (root + "/oldroot").encode()), "pivot_root")
    os.chdir("/")
    check(libc.umount2(b"/oldroot", MNT_DETACH), "umount oldroot")
    os.rmdir("/oldroot")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def start(argv, env, uid, fds, job, layers, scmp, cwd, stdin_fd=None, run=None):  # type: ignore[no-untyped-def]
    """Fork one sandboxed process: `fds` maps child fd -> our fd; everything else is closed. It
    execs `argv`, or, with `run`, calls it in the forked interpreter (the judge: trusted code
    that may know everything this process knows; a program under test is always exec'd afresh)."""
    pid = os.fork()
    if pid:
        return pid
    try:
        if stdin_fd is not None:
            os.dup2(stdin_fd, 0)
        for target, src in fds.items():
            os.dup2(src, target)
            os.set_inheritable(target, True)
        keep = {0, 1, 2, *fds, STATUS_FD}
        for fd in os.listdir("/proc/self/fd"):
            if int(fd) not in keep:
                with contextlib.suppress(OSError):
                    os.close(int(fd))
        os.chdir(cwd)
        if "uid" in layers:
            for cap in range(64):  # empty the bounding set: nothing exec'd can regain a capability
                if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                    break
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        # A fresh anonymous session keyring: nothing a previous run with this uid stored.
        if ("keyring" in layers and libc.syscall(NR["keyctl"], KEYCTL_JOIN_SESSION_KEYRING, None) < 0
                and "keyring" in job["require"]):
            raise OSError(ctypes.get_errno(), "keyctl(JOIN_SESSION_KEYRING)")
        lim = job["limits"]
        # RLIMIT_CPU is per process and only the backstop: the parent holds the whole tree to
        # cpu_s through the cgroup, so it is set a little above.
        for res, val in ((resource.RLIMIT_CPU, lim["cpu_s"] + 2), (resource.RLIMIT_AS, lim["memory_mb"] << 20),
                         (resource.RLIMIT_NPROC, lim["processes"]), (resource.RLIMIT_FSIZE, lim["file_size_mb"] << 20),
                         (resource.RLIMIT_NOFILE, lim["open_files"]), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(res, (val, val))
        os.umask(0o077)
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        if scmp is not None:
            ls, ctx = scmp
            rc = ls.seccomp_load(ctx)
            if rc != 0:
                raise OSError(-rc, "seccomp_load")
        if run is not None:
            os.environ.clear()
            os.environ.update(env)
            run()
            os._exit(0)
        os.execve(argv[0], argv, env)
    except BaseException as e:  # noqa: BLE001 - report why the child could not start, then die
        try:
            os.write(STATUS_FD, (json.dumps({"error": f"child setup: {e}"}) + "\n").encode())
        finally:
            os._exit(125)


STATUS_FD = -1


def main() -> None:
    global STATUS_FD
    job_fd, STATUS_FD, report_fd = (int(a) for a in sys.argv[1:4])
    chunks = []
    while True:
        b = os.read(job_fd, 1 << 20)
        if not b:
            break
        chunks.append(b)
    os.close(job_fd)
    job = json.loads(b"".join(chunks))
    os.set_inheritable(STATUS_FD, False)
    want, require = set(job["layers"]), set(job["require"])
    layers: list = []

    def status(**kw) -> None:  # type: ignore[no-untyped-def]
        os.write(STATUS_FD, (json.dumps(kw) + "\n").encode())

    def layer(name: str, fn) -> bool:  # type: ignore[no-untyped-def]
        if name not in want:
            return False
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            if name in require:
                status(error=f"isolation layer {name!r} unavailable: {e}")
                os._exit(125)
            return False
        layers.append(name)
        return True

    def join_cgroup() -> None:
        if not job["cgroup_procs"]:
            raise OSError("no cgroup for this run")
        for procs in job["cgroup_procs"]:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

    layer("cgroup", join_cgroup)
    ns_flags = CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID
    in_ns = layer("namespaces", lambda: check(libc.unshare(ns_flags), "unshare"))
    if in_ns:
        pid = os.fork()
        if pid:  # stays on the host side only to hand the namespace init's exit status back
            os.close(report_fd)
            _, st = os.waitpid(pid, 0)
            os._exit(os.waitstatus_to_exitcode(st) & 0xFF)
        libc.sethostname(b"sandbox", 7)
    scmp = None

    def seccomp() -> None:
        nonlocal scmp
        scmp = build_seccomp()

    layer("seccomp", seccomp)
    uid, judge_uid = job["uid"], job["judge_uid"]
    if in_ns:
        layer("rootfs", lambda: build_root(job))
    if "rootfs" not in layers:  # unisolated: a private host directory instead of the tmpfs root
        import tempfile

        work = tempfile.mkdtemp(prefix="dataengine-sbx-")
        for name, text in job["files"].items():
            with open(os.path.join(work, name), "w", encoding="utf-8") as f:
                f.write(text)
    else:
        work = "/tmp/work"
    layer("uid", lambda: None if os.geteuid() == 0 else (_ for _ in ()).throw(OSError("not root")))
    layer("keyring", lambda: None if NR else (_ for _ in ()).throw(OSError("unknown architecture")))
    layer("rlimits", lambda: None)
    status(layers=layers)
    env = dict(job["env"], HOME=work)
    children = {}
    if job.get("judge"):
        c2j_r, c2j_w = os.pipe()
        j2c_r, j2c_w = os.pipe()
        source, judge_job = job["judge"]["source"], job["judge"]["job"]

        def run_judge() -> None:
            g = {"__name__": "__judge__"}
            exec(compile(source, "harness", "exec"), g)  # noqa: S102 - our own harness
            g["judge"](judge_job, 3, 4, 5)

        null = os.open("/dev/null", os.O_RDWR)
        jpid = start(None, dict(job["env"], HOME="/"), judge_uid if "uid" in layers else os.getuid(),
                     {1: null, 2: null, 3: c2j_r, 4: j2c_w, 5: report_fd}, job, layers, scmp, "/", stdin_fd=null,
                     run=run_judge)
        children[jpid] = "judge"
        os.close(report_fd)
        os.close(null)
        cpid = start(job["argv"], env, uid if "uid" in layers else os.getuid(), {3: j2c_r, 4: c2j_w}, job, layers,
                     scmp, work)
        for fd in (c2j_r, c2j_w, j2c_r, j2c_w):
            os.close(fd)
    else:
        os.close(report_fd)
        cpid = start(job["argv"], env, uid if "uid" in layers else os.getuid(), {}, job, layers, scmp, work)
    os.close(0)
    children[cpid] = "candidate"
    result = {}
    while children:
        try:
            pid, st = os.wait()  # as the namespace's init this also reaps orphans
        except ChildProcessError:
            break
        who = children.pop(pid, None)
        if who:
            result[who] = {"exit": os.waitstatus_to_exitcode(st)}
    status(result=result)
    if "rootfs" not in layers:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    code = result.get("candidate", {}).get("exit", 1)
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
