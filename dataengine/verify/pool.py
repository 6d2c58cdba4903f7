"""A process pool with a hard per-item deadline and worker recycling: it never hangs.

Why not `concurrent.futures.ProcessPoolExecutor`: it cannot cancel a running item, so one sympy
call that never returns blocks the pool forever. Here the parent hands one item at a time to each
worker over a pipe and waits with a deadline; a worker past its deadline is killed and replaced,
and its item gets a `timeout` outcome. A worker that dies (OOM, segfault) gives an `error`
outcome for its item only. Workers are recycled after `max_tasks_per_worker` items so caches and
leaks inside libraries stay bounded.

Workers are forked from a fork server that imported the task's module and ran its init once
(`start_method="forkserver"`, the default): a new or recycled worker starts in milliseconds
instead of re-importing sympy and Math-Verify (~1-2 CPU-seconds each time, which made recycling
a third of the verify profile). The fork server is a fresh single-threaded process, so forking
from it is as safe as `spawn` while the parent holds threads (DuckDB, HTTP clients). Workers
report their own CPU time (`cpu_seconds()`), since they are not the parent's children.

The task function is named by import path (`"package.module:function"`), so workers started with
`spawn` import it themselves; it takes one picklable item and returns a picklable value.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import os
import resource
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any


@dataclass(slots=True)
class Outcome:
    """What happened to one item: `status` is `ok`, `timeout` or `error`."""

    status: str
    value: Any = None
    error: str | None = None


# A worker holds finished results at most this long / this many before sending them.
_MAX_HOLD_S = 0.05
_MAX_BATCH = 64


def _resolve(path: str) -> Callable[[Any], Any]:
    mod, _, attr = path.partition(":")
    return getattr(importlib.import_module(mod), attr)


# Read by dataengine.verify._pool_preload inside the fork server: the init functions to run there.
PRELOAD_ENV = "DATAENGINE_POOL_PRELOAD_INIT"
_forkserver_lock = threading.Lock()


def _start_forkserver(func_path: str, init_path: str | None) -> None:
    """Start this process's fork server with the task's modules imported and its init run.

    The fork server is one per process: when it already runs (another pool started it), workers
    fork from it as it is and run their own init, which is only slower.
    """
    from multiprocessing import forkserver

    with _forkserver_lock:
        if getattr(forkserver._forkserver, "_forkserver_pid", None) is not None:
            return
        modules = [p.partition(":")[0] for p in (func_path, init_path) if p]
        # '__main__' first, as multiprocessing's default: imported once in the server, so workers
        # do not each re-run the main module's imports (as spawn would).
        mp.get_context("forkserver").set_forkserver_preload(["__main__", *modules, "dataengine.verify._pool_preload"])
        old = os.environ.get(PRELOAD_ENV)
        os.environ[PRELOAD_ENV] = init_path or ""
        try:
            forkserver.ensure_running()
        finally:
            if old is None:
                os.environ.pop(PRELOAD_ENV, None)
            else:
                os.environ[PRELOAD_ENV] = old


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _worker_main(conn: Connection, func_path: str, init_path: str | None) -> None:
    func = _resolve(func_path)
    if init_path:
        _resolve(init_path)()
    # Deadlines start when the worker is ready: importing sympy on a loaded machine can take
    # longer than an item's deadline, and a pool that kills workers mid-import never progresses.
    conn.send("ready")
    inbox: deque[Any] = deque()
    outbox: list[tuple[Any, ...]] = []
    lock = threading.Lock()

    def flush() -> None:
        nonlocal outbox
        with lock:
            if outbox:
                conn.send((_cpu_s(), outbox))
                outbox = []

    def flusher() -> None:
        # Results never wait more than _MAX_HOLD_S, even behind a long item: a finished item
        # must not be lost (and called a timeout) when the next one hangs and gets killed.
        while True:
            time.sleep(_MAX_HOLD_S)
            try:
                flush()
            except OSError:
                return

    threading.Thread(target=flusher, daemon=True).start()
    while True:
        # Take everything the parent has queued, and send results in batches while more work
        # is waiting: fewer wake-ups on both sides, which is what limits throughput for
        # millisecond items on a busy machine.
        try:
            while not inbox or conn.poll():
                msg = conn.recv()
                if msg is None:
                    flush()
                    return
                inbox.append(msg)
        except EOFError:
            return
        idx, item = inbox.popleft()
        try:
            reply = (idx, "ok", func(item), None)
        except BaseException as e:  # noqa: BLE001 - reported back as this item's error verdict
            reply = (idx, "error", None, f"{type(e).__name__}: {e}")
        with lock:
            outbox.append(reply)
            full = len(outbox) >= _MAX_BATCH
        if not inbox or full:
            flush()


class _Worker:
    def __init__(self, ctx: Any, func_path: str, init_path: str | None):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, func_path, init_path), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.sent = 0
        self.queue: deque[int] = deque()
        self.started = 0.0
        self.cpu_s = 0.0  # the worker's own CPU time, as of its last reply
        self.successor: _Worker | None = None  # started when this one reached max_tasks

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.proc.kill()
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


class DeadlinePool:
    """`map(items)` → one `Outcome` per item, in order, each within `deadline_s` of starting.

    >>> with DeadlinePool("math:sqrt", workers=1, deadline_s=5) as pool:   # doctest: +SKIP
    ...     [o.value for o in pool.map([4, 9])]
    [2.0, 3.0]
    """

    def __init__(
        self,
        func_path: str,
        workers: int = 1,
        deadline_s: float = 10.0,
        max_tasks_per_worker: int = 1000,
        start_method: str = "forkserver",
        init_path: str | None = None,
        start_timeout_s: float = 300.0,
        prefetch: int = 16,
    ):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if deadline_s <= 0:
            raise ValueError("deadline_s must be > 0")
        self.func_path = func_path
        self.init_path = init_path
        self.start_timeout_s = start_timeout_s
        self.n_workers = workers
        self.deadline_s = deadline_s
        self.max_tasks = max_tasks_per_worker
        self.prefetch = max(1, prefetch)
        # Never plain fork: the parent may hold threads (DuckDB, HTTP clients).
        if start_method not in mp.get_all_start_methods():
            start_method = "spawn"
        self.start_method = start_method
        self._ctx = mp.get_context(start_method)
        self._workers: list[_Worker] = []
        self._cpu_done = 0.0  # CPU time of workers already stopped
        self.stats = {"timeouts": 0, "crashes": 0, "recycled": 0}

    def cpu_seconds(self) -> float:
        """CPU time the workers used so far (stopped ones included; a killed worker's time since
        its last reply is not known)."""
        return self._cpu_done + sum(w.cpu_s for w in self._workers)

    def _ensure_workers(self) -> None:
        if self.start_method == "forkserver" and len(self._workers) < self.n_workers:
            _start_forkserver(self.func_path, self.init_path)
        while len(self._workers) < self.n_workers:
            self._workers.append(_Worker(self._ctx, self.func_path, self.init_path))

    def _replace(self, w: _Worker, kill: bool) -> _Worker:
        i = self._workers.index(w)
        w.stop(kill=kill)
        self._cpu_done += w.cpu_s
        # A killed worker's successor (if one was starting) takes the slot; else a new one.
        self._workers[i] = w.successor or _Worker(self._ctx, self.func_path, self.init_path)
        w.successor = None
        return self._workers[i]

    def _retire(self, w: _Worker) -> _Worker:
        """Stop an idle worker that reached max_tasks; its successor takes its slot."""
        return self._replace(w, kill=False)

    def _take_ready(self, w: _Worker) -> None:
        try:
            msg = w.conn.recv()
        except (EOFError, OSError):
            raise RuntimeError(f"pool worker for {self.func_path} died while starting (exit {w.proc.exitcode})") from None
        if msg != "ready":
            raise RuntimeError(f"pool worker sent {msg!r} instead of ready")
        w.ready = True

    def _await_ready(self) -> None:
        """Block until at least one worker has started (a broken import fails loudly here)."""
        starting = [w for w in self._workers if not w.ready]
        ready = wait([w.conn for w in starting], timeout=self.start_timeout_s)
        if not ready:
            raise RuntimeError(f"no pool worker for {self.func_path} started within {self.start_timeout_s:g}s")
        for w in starting:
            if w.conn in ready:
                self._take_ready(w)

    def map(self, items: Sequence[Any], keys: Sequence[Any] | None = None) -> list[Outcome]:
        """One `Outcome` per item, in order.

        Each worker holds up to `prefetch` items (the next one waits in its pipe, so a worker
        never idles between items); only the head of its queue is running, and the head's
        deadline starts when the previous result arrived.

        `keys`: consecutive items with equal keys go to the same worker together (the samples
        of one prompt share a gold answer, which each worker parses once: handed out one by one,
        two workers parsed most golds twice, and a second worker added 30% more CPU).
        """
        self._ensure_workers()
        results: list[Outcome | None] = [None] * len(items)
        pending: deque[list[int]] = deque()  # runs of item indices, sent to one worker each
        for i in range(len(items)):
            if pending and keys is not None and keys[i] == keys[i - 1]:
                pending[-1].append(i)
            else:
                pending.append([i])

        def requeue_rest(w: _Worker) -> None:
            # Items queued behind a killed head never started: they go to another worker.
            rest = list(w.queue)[1:]
            if rest:
                pending.appendleft(rest)
            w.queue.clear()

        while pending or any(w.queue for w in self._workers):
            now = time.monotonic()
            for i in range(len(self._workers)):
                w = self._workers[i]
                if w.sent >= self.max_tasks and w.successor is None:
                    # Recycle: the successor forks now and warms up while this worker finishes
                    # its queue, so the slot never waits for a start.
                    w.successor = _Worker(self._ctx, self.func_path, self.init_path)
                if w.successor is not None and not w.queue:
                    self.stats["recycled"] += 1
                    w = self._retire(w)
                if not w.ready:
                    continue
                while pending and len(w.queue) < self.prefetch and w.sent < self.max_tasks:
                    run = pending.popleft()
                    for k, idx in enumerate(run):
                        try:
                            w.conn.send((idx, items[idx]))
                        except OSError:
                            # The worker died. With items outstanding, the read below sees EOF
                            # and settles them; an idle dead worker is simply replaced.
                            pending.appendleft(run[k:])
                            if not w.queue:
                                self._replace(w, kill=True)
                            break
                        if not w.queue:
                            w.started = now
                        w.queue.append(idx)
                        w.sent += 1
                    else:
                        continue
                    break
            if pending and not any(w.ready for w in self._workers):
                self._await_ready()
                continue
            busy = [w for w in self._workers if w.queue]
            starting = [w for w in self._workers if not w.ready]
            if not busy and not starting:
                continue
            now = time.monotonic()
            wait_s = max(0.0, min(w.started + self.deadline_s for w in busy) - now) if busy else self.start_timeout_s
            ready = wait([w.conn for w in busy + starting], timeout=wait_s)
            for w in starting:
                if w.conn in ready:
                    self._take_ready(w)
            for w in busy:
                if w.conn not in ready:
                    continue
                try:
                    replies = w.conn.recv()
                except (EOFError, OSError):
                    w.proc.join(timeout=1)
                    results[w.queue[0]] = Outcome("error", error=f"worker_died exit={w.proc.exitcode}")
                    self.stats["crashes"] += 1
                    requeue_rest(w)
                    self._replace(w, kill=True)
                    continue
                w.cpu_s, replies = replies
                for idx, status, value, err in replies:
                    head = w.queue.popleft()
                    assert idx == head, (idx, head)
                    results[idx] = Outcome(status, value, err)
                w.started = time.monotonic()
            now = time.monotonic()
            for w in list(self._workers):
                if w.queue and now - w.started >= self.deadline_s:
                    results[w.queue[0]] = Outcome("timeout", error=f"no result within {self.deadline_s:g}s; worker killed")
                    self.stats["timeouts"] += 1
                    requeue_rest(w)
                    self._replace(w, kill=True)
        return [r if r is not None else Outcome("error", error="lost") for r in results]

    def close(self) -> None:
        for w in self._workers:
            w.stop(kill=bool(w.queue))
            self._cpu_done += w.cpu_s
            if w.successor is not None:
                w.successor.stop()
                self._cpu_done += w.successor.cpu_s
        self._workers = []

    def __enter__(self) -> DeadlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten pool must not leave processes behind
        # At interpreter shutdown there is nothing left to report a failure to.
        with contextlib.suppress(Exception):
            self.close()
