"""Test harness run inside the sandbox by Debian's system python3 (stdlib only, no dataengine).

Two processes, two uids, one per role:

- the **candidate** (`python3 -I harness.py serve`): runs the program, then answers calls on a pipe
  (fds 3 in, 4 out). It never sees the tests, the expected values or the report channel.
- the **judge** (source and job on stdin): runs the tests. Every name the tests take from the
  program is a proxy whose calls go over the pipe; what comes back is decoded strictly into plain
  data (exact `int`, `str`, `list`, ... — never an object of the candidate's, so no `__eq__` that is
  always true), or an opaque handle. Builtins and the prelude's names always mean the real ones,
  whatever the program defines (`exec`, `len`, `print`, `set`, ...). Each test's outcome, and how
  many times it called the program, go on fd 5, which only the judge holds, with the run's nonce.

The candidate may write anything on the pipe; the worst it can do is answer wrongly, crash, or
hang — and then the tests fail or time out.
"""

import ast
import builtins
import contextlib
import importlib
import json
import os
import struct
import sys

MAX_MSG = 64 << 20
MAX_DEPTH = 200
BIG_INT = 10**4000


class ProtocolError(Exception):
    pass


def _send(fd, obj):  # type: ignore[no-untyped-def]
    data = json.dumps(obj, allow_nan=True).encode()
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd, n):  # type: ignore[no-untyped-def]
    buf = bytearray()
    while len(buf) < n:
        b = os.read(fd, min(n - len(buf), 1 << 20))
        if not b:
            raise EOFError("pipe closed")
        buf += b
    return bytes(buf)


def _recv(fd):  # type: ignore[no-untyped-def]
    (n,) = struct.unpack(">I", _read_exact(fd, 4))
    if n > MAX_MSG:
        raise ProtocolError(f"message of {n} bytes")
    return json.loads(_read_exact(fd, n))


# ------------------------------------------------------------------ value codec (both sides)
# Builtin types a test may pass (`remove_datatype(t, int)`) or a program return, by name.
TYPES = {t.__name__: t for t in (int, float, str, bool, bytes, bytearray, list, tuple, dict, set, frozenset, complex,
                                 type(None), object, range, type)}


def encode(v, ref, depth=0):  # type: ignore[no-untyped-def]
    """Plain data as tagged JSON; anything else through `ref` (a handle, or an error).

    Subclasses of plain types (Counter, defaultdict, OrderedDict, namedtuples, an int whose
    `__eq__` says yes to everything) go as their base type's value: what crosses is data only.
    """
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    if v is None or type(v) is bool:  # bool cannot be subclassed
        return v
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, float):
        return float.__float__(v)
    if isinstance(v, int):
        v = int.__index__(v)
        return v if -BIG_INT < v < BIG_INT else ["I", hex(v)]
    if isinstance(v, list):
        return ["L", [encode(x, ref, depth + 1) for x in list.__iter__(v)]]
    if isinstance(v, tuple):
        return ["T", [encode(x, ref, depth + 1) for x in tuple.__iter__(v)]]
    if isinstance(v, dict):
        return ["D", [[encode(k, ref, depth + 1), encode(x, ref, depth + 1)] for k, x in dict.items(v)]]
    if isinstance(v, (set, frozenset)):
        return ["F" if isinstance(v, frozenset) else "S", [encode(x, ref, depth + 1) for x in list(v)]]
    if isinstance(v, (bytes, bytearray)):
        return ["A" if isinstance(v, bytearray) else "B", bytes(v).hex()]
    if isinstance(v, complex):
        return ["C", v.real, v.imag]
    if type(v) is range:
        return ["R", v.start, v.stop, v.step]
    if isinstance(v, type) and TYPES.get(v.__name__) is v:
        return ["TY", v.__name__]
    return ref(v)


def decode(v, handle, depth=0):  # type: ignore[no-untyped-def]
    """The inverse of `encode`; refuses anything it does not know. `handle` maps ["O", ...]."""
    if depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    t = type(v)
    if v is None or t is bool or t is str or t is float or t is int:
        return v
    if t is not list or not v or type(v[0]) is not str:
        raise ProtocolError(f"unexpected value of type {t.__name__}")
    tag = v[0]
    if tag in ("L", "T", "S", "F", "IT") and len(v) == 2 and type(v[1]) is list:
        items = [decode(x, handle, depth + 1) for x in v[1]]
        return {"L": list, "T": tuple, "S": set, "F": frozenset, "IT": iter}[tag](items)
    if tag == "D" and len(v) == 2 and type(v[1]) is list:
        out = {}
        for kv in v[1]:
            if type(kv) is not list or len(kv) != 2:
                raise ProtocolError("bad dict item")
            out[decode(kv[0], handle, depth + 1)] = decode(kv[1], handle, depth + 1)
        return out
    if tag in ("B", "A") and len(v) == 2 and type(v[1]) is str:
        return (bytes if tag == "B" else bytearray)(bytes.fromhex(v[1]))
    if tag == "I" and len(v) == 2 and type(v[1]) is str:
        return int(v[1], 16)
    if tag == "C" and len(v) == 3 and all(type(x) in (int, float) for x in v[1:]):
        return complex(v[1], v[2])
    if tag == "R" and len(v) == 4 and all(type(x) is int for x in v[1:]):
        return range(v[1], v[2], v[3])
    if tag == "TY" and len(v) == 2 and v[1] in TYPES:
        return TYPES[v[1]]
    if tag == "O" and len(v) == 3 and type(v[1]) is int and type(v[2]) is bool:
        return handle(v[1], v[2])
    raise ProtocolError(f"unknown value tag {tag!r}")


# ------------------------------------------------------------------ candidate side
def serve(rfd, wfd, path):  # type: ignore[no-untyped-def]
    handles = {}

    def ref(obj):  # type: ignore[no-untyped-def]
        if isinstance(obj, (type({}.keys()), type({}.values()), type({}.items()))) or (
            hasattr(obj, "__next__") and hasattr(obj, "__iter__")
        ):
            return ["IT", [encode(x, ref) for x in obj]]  # generators, map, zip, ...: their items
        handles[id(obj)] = obj
        return ["O", id(obj), callable(obj)]

    def handle(h, _callable):  # type: ignore[no-untyped-def]
        return handles[h]

    g = {"__name__": "__main__", "__builtins__": builtins}
    try:
        with open(path, encoding="utf-8") as f:
            src = f.read()
        exec(compile(src, "main.py", "exec"), g)
    except BaseException as e:  # noqa: BLE001 - reported to the judge, which fails the tests
        _send(wfd, ["load_error", f"{type(e).__name__}: {str(e)[:500]}"])
        return
    names = []
    for k, v in list(g.items()):
        if k.startswith("__"):
            continue
        if type(v).__name__ == "module":
            names.append([k, ["M", str(getattr(v, "__name__", ""))]])
            continue
        try:
            names.append([k, encode(v, ref)])
        except Exception:  # noqa: BLE001, S112 - a value that cannot be sent is not offered
            continue
    _send(wfd, ["ready", names])
    ops = {
        "call": lambda o, a, k: o(*a, **k),
        "getattr": lambda o, a, k: getattr(o, a[0]),
        "setattr": lambda o, a, k: setattr(o, a[0], a[1]),
        "getitem": lambda o, a, k: o[a[0]],
        "setitem": lambda o, a, k: o.__setitem__(a[0], a[1]),
        "len": lambda o, a, k: len(o),
        "iter": lambda o, a, k: list(o),
        "bool": lambda o, a, k: bool(o),
        "str": lambda o, a, k: str(o),
        "repr": lambda o, a, k: repr(o),
        "contains": lambda o, a, k: a[0] in o,
    }
    while True:
        try:
            op, h, args, kwargs = _recv(rfd)
        except EOFError:
            return
        try:
            obj = handles[h]
            res = ops[op](obj, decode(args, handle), decode(kwargs, handle))
            reply = ["ok", encode(res, ref)]
        except BaseException as e:  # noqa: BLE001 - the judge re-raises it on its side
            reply = ["err", type(e).__name__, str(e)[:500]]
        _send(wfd, reply)


# ------------------------------------------------------------------ judge side
def _called_names(src):  # type: ignore[no-untyped-def]
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return set()
    return {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


class CandidateError(Exception):
    """An exception the program raised that is not a builtin exception type."""


def judge(job, rfd, wfd, report_fd):  # type: ignore[no-untyped-def]
    nonce = job["nonce"]
    n_tests = len(job["tests"])
    calls = [0]

    def report(**kw):  # type: ignore[no-untyped-def]
        os.write(report_fd, (json.dumps(dict(kw, nonce=nonce)) + "\n").encode())

    class Remote:
        __slots__ = ("_h", "_c")

        def __init__(self, h, c):  # type: ignore[no-untyped-def]
            object.__setattr__(self, "_h", h)
            object.__setattr__(self, "_c", c)

        def __call__(self, *a, **k):  # type: ignore[no-untyped-def]
            calls[0] += 1
            return rpc("call", self, list(a), k)

        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            if name.startswith("__"):
                raise AttributeError(name)
            return rpc("getattr", self, [name])

        def __setattr__(self, name, value):  # type: ignore[no-untyped-def]
            rpc("setattr", self, [name, value])

        def __getitem__(self, key):  # type: ignore[no-untyped-def]
            return rpc("getitem", self, [key])

        def __setitem__(self, key, value):  # type: ignore[no-untyped-def]
            rpc("setitem", self, [key, value])

        def __len__(self):  # type: ignore[no-untyped-def]
            return _typed(rpc("len", self, []), int)

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(_typed(rpc("iter", self, []), list))

        def __bool__(self):  # type: ignore[no-untyped-def]
            return _typed(rpc("bool", self, []), bool)

        def __contains__(self, item):  # type: ignore[no-untyped-def]
            return _typed(rpc("contains", self, [item]), bool)

        def __str__(self):  # type: ignore[no-untyped-def]
            return _typed(rpc("str", self, []), str)

        def __repr__(self):  # type: ignore[no-untyped-def]
            return _typed(rpc("repr", self, []), str)

        # Identity only: equality is never the program's to decide.
        def __eq__(self, other):  # type: ignore[no-untyped-def]
            return self is other

        def __hash__(self):  # type: ignore[no-untyped-def]
            return object.__hash__(self)

    def _typed(v, t):  # type: ignore[no-untyped-def]
        if type(v) is not t:
            raise TypeError(f"program returned {type(v).__name__} where {t.__name__} was needed")
        return v

    handles = {}

    def handle(h, c):  # type: ignore[no-untyped-def]
        if h not in handles:
            handles[h] = Remote(h, c)
        return handles[h]

    def ref(obj):  # type: ignore[no-untyped-def]
        if isinstance(obj, Remote):
            return ["O", object.__getattribute__(obj, "_h"), object.__getattribute__(obj, "_c")]
        raise TypeError(f"cannot pass a {type(obj).__name__} to the program")

    def rpc(op, target, args, kwargs=None):  # type: ignore[no-untyped-def]
        _send(wfd, [op, object.__getattribute__(target, "_h"), encode(args, ref), encode(kwargs or {}, ref)])
        reply = _recv(rfd)
        if type(reply) is not list or not reply:
            raise ProtocolError("bad reply")
        if reply[0] == "ok" and len(reply) == 2:
            return decode(reply[1], handle)
        if reply[0] == "err" and len(reply) == 3 and type(reply[1]) is str and type(reply[2]) is str:
            cls = getattr(builtins, reply[1], None)
            # StopIteration would end the test's own loops early (`all(map(candidate, ...))` true).
            if not (isinstance(cls, type) and issubclass(cls, Exception)) or issubclass(
                    cls, (StopIteration, StopAsyncIteration)):
                cls = CandidateError
            raise cls(reply[2])
        raise ProtocolError("bad reply")

    report(event="start", n=n_tests)

    def fail_all(detail):  # type: ignore[no-untyped-def]
        for i in range(n_tests):
            report(event="test", i=i, passed=False, detail=detail, calls=0)
        report(event="done")

    try:
        hello = _recv(rfd)
    except (EOFError, ProtocolError, ValueError) as e:
        return fail_all(f"program ended before the tests ran ({type(e).__name__})")
    if type(hello) is not list or not hello or hello[0] != "ready" or len(hello) != 2 or type(hello[1]) is not list:
        detail = hello[1] if type(hello) is list and len(hello) == 2 and hello[0] == "load_error" else "bad hello"
        return fail_all(f"program failed to load: {str(detail)[:500]}")
    ns = {"__name__": "__test__", "__builtins__": builtins}
    exec(compile(job["prelude"], "prelude", "exec"), ns)
    # The tests' builtins and prelude names are ours, whatever the program called its own things.
    protected = set(ns) | set(dir(builtins))
    exported = {}
    for item in hello[1]:
        try:
            name, value = item
            if type(name) is not str or not name.isidentifier() or name.startswith("__"):
                continue
            if type(value) is list and len(value) == 2 and value[0] == "M":
                # A module the program imported: the tests get the judge's own copy of it.
                if type(value[1]) is str and value[1].split(".")[0] in sys.stdlib_module_names:
                    exported[name] = importlib.import_module(value[1])
                continue
            exported[name] = decode(value, handle)
        except (ValueError, TypeError, ProtocolError, ImportError):
            continue
    entry = job.get("entry_point")
    for name, value in exported.items():
        if name not in protected:
            ns[name] = value
    # A program's name that shadows a builtin or a prelude name (`exec`, `len`, `set`, `sum`) is
    # never seen by the tests, unless it is the function under test: the entry point, or, for
    # asserts with none, what every test calls when the tests call no other name of the program.
    shadowing = {n for n, v in exported.items() if n in protected and isinstance(v, Remote)}
    called = [_called_names(t) for t in job["tests"]]
    if entry in shadowing:
        ns[entry] = exported[entry]
    elif entry is None and shadowing and not any(c & (set(exported) - protected) for c in called):
        for name in shadowing & set.intersection(*called) if called else ():
            ns[name] = exported[name]
    if entry is not None and not isinstance(exported.get(entry), Remote):
        return fail_all(f"the program does not define {entry!r}")
    if job.get("helpers"):
        # The prompt's own definitions (HumanEval's `poly`, `encode_cyclic`): the tests use these,
        # not the program's versions of them; only the entry point is the program's.
        with contextlib.suppress(Exception):  # a prompt that does not run gives no helpers
            exec(compile(job["helpers"], "prompt", "exec"), ns)
        if entry is not None:
            ns[entry] = exported[entry]
    try:
        if job.get("setup"):
            exec(compile(job["setup"], "test_setup", "exec"), ns)
    except BaseException as e:  # noqa: BLE001
        return fail_all(f"test setup failed: {type(e).__name__}: {str(e)[:300]}")
    for i, test in enumerate(job["tests"]):
        calls[0] = 0
        try:
            exec(compile(test, f"test_{i}", "exec"), ns)
            if job.get("call_check"):
                ns["check"](exported[entry])
            passed, detail = True, ""
        except BaseException as e:  # noqa: BLE001 - any failure of a test is that test failing
            passed, detail = False, f"{type(e).__name__}: {str(e)[:300]}"
        if passed and calls[0] == 0:
            passed, detail = False, "the test never called the program"
        report(event="test", i=i, passed=passed, detail=detail, calls=calls[0])
    report(event="done")


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(3, 4, sys.argv[2])
        sys.stdout.flush()
        os._exit(0)
    raise SystemExit("usage: harness.py serve PROGRAM (the judge is started by the sandbox)")
