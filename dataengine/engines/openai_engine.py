"""Any OpenAI-compatible server (`vllm serve`, SGLang, hosted APIs) behind the engine interface.

Async HTTP with hundreds of requests in flight (`max_concurrency`), a timeout per request, and
retries with exponential backoff and jitter on what is worth retrying: 429 (honouring
`Retry-After`), 408, 5xx, timeouts, dropped connections and malformed responses. Other 4xx are
the caller's fault and fail at once. A request that still fails after `max_retries` comes back as
a `GenerationResult` with `error` set; nothing raises for one bad request.

The API key is read from the environment variable named by `api_key_env` (default
`OPENAI_API_KEY`) and never from config files or arguments; no variable, no `Authorization`
header (local servers need none).

Chat requests (`messages`) go to `/chat/completions`, rendered prompts to `/completions`. When the
server splits reasoning out (vLLM's reasoning parser: `reasoning_content`), the completion is
reassembled as `<think>reasoning</think>content`, so every stage sees one shape.

>>> eng = OpenAIEngine("Qwen/QwQ-32B", base_url="http://gpu-node:8000/v1", max_concurrency=256)  # doctest: +SKIP
>>> for res in eng.iter_generate(requests):   # as they finish                                    # doctest: +SKIP
...     store(res)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import httpx

from dataengine.engines.base import Completion, Engine, GenerationRequest, GenerationResult

CONNECTIONS_PER_CLIENT = 4
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class _Retryable(Exception):
    """A failure worth another attempt; `wait` is the server's Retry-After, if it gave one;
    `reason` the quarantine reason when it is the last attempt's."""

    def __init__(self, message: str, wait: float | None = None, reason: str | None = None):
        super().__init__(message)
        self.wait, self.reason = wait, reason


class _Fatal(Exception):
    """A failure another attempt cannot fix (400, 401, 404, a response over the size cap, …)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


class OpenAIEngine(Engine):
    """Args:
        model: the served model name (sent as `model`; recorded on traces).
        base_url: the server's OpenAI API root, e.g. `http://localhost:8000/v1`.
        api_key_env: name of the environment variable holding the API key.
        max_concurrency: requests in flight at once (and HTTP connections kept open).
        request_timeout: seconds one attempt may take, end to end: connecting, waiting and reading
            the whole body (a server dripping bytes cannot stretch it; long CoT: minutes).
        connect_timeout: seconds to open a connection.
        max_retries: attempts after the first, for retryable failures.
        backoff_base / backoff_max: the wait before retry k is min(max, base * 2**k), jittered.
        extra_body: merged into every request body (e.g. `{"top_k": 20}` for vLLM).
        max_response_bytes: a response body larger than this fails the request
            (`response_too_large`) instead of filling memory.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = "http://localhost:8000/v1",
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 256,
        request_timeout: float = 1800.0,
        connect_timeout: float = 10.0,
        max_retries: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        extra_body: dict[str, Any] | None = None,
        max_response_bytes: int = 64 << 20,
    ):
        if max_concurrency < 1:
            raise ValueError("openai engine: max_concurrency must be >= 1")
        if max_retries < 0:
            raise ValueError("openai engine: max_retries must be >= 0")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        if not request_timeout > 0 or not connect_timeout > 0:
            raise ValueError("openai engine: request_timeout and connect_timeout must be > 0")
        if max_response_bytes < 1:
            raise ValueError("openai engine: max_response_bytes must be >= 1")
        self.request_timeout = float(request_timeout)
        self.max_response_bytes = int(max_response_bytes)
        self.timeout = httpx.Timeout(request_timeout, connect=connect_timeout)
        self.max_retries = max_retries
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.extra_body = dict(extra_body or {})

    # ------------------------------------------------------------------ sync interface
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        out: list[GenerationResult | None] = [None] * len(requests)
        for i, res in self._iter_indexed(requests):
            out[i] = res
        assert all(r is not None for r in out)
        return out  # type: ignore[return-value]

    def iter_generate(self, requests: Sequence[GenerationRequest], chunk_size: int = 64) -> Iterator[GenerationResult]:
        """Results as they finish; `max_concurrency` requests are in flight throughout."""
        for _i, res in self._iter_indexed(requests):
            yield res

    def _iter_indexed(self, requests: Sequence[GenerationRequest]) -> Iterator[tuple[int, GenerationResult]]:
        # The event loop runs in its own thread, so this works from sync code and from inside a
        # caller's running loop alike (Prefect tasks, notebooks); results cross over by a queue.
        q: queue.Queue[tuple[int, GenerationResult] | BaseException | None] = queue.Queue(maxsize=4 * self.max_concurrency)
        stop = threading.Event()

        def runner() -> None:
            try:
                asyncio.run(self._produce(requests, q.put, stop))
            except BaseException as e:  # handed to the consumer, which re-raises it
                q.put(e)
            else:
                q.put(None)

        t = threading.Thread(target=runner, name="openai-engine", daemon=True)
        t.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            # Drain so a producer blocked on a full queue can see `stop` and finish.
            while t.is_alive():
                with contextlib.suppress(queue.Empty):
                    q.get(timeout=0.05)
            t.join()

    # ------------------------------------------------------------------ async interface
    async def agenerate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """The async form of `generate`, for callers that already run an event loop."""
        out: list[GenerationResult | None] = [None] * len(requests)
        async for i, res in self._aiter(requests):
            out[i] = res
        return out  # type: ignore[return-value]

    async def _aiter(self, requests: Sequence[GenerationRequest]) -> AsyncIterator[tuple[int, GenerationResult]]:
        q: asyncio.Queue[tuple[int, GenerationResult] | None] = asyncio.Queue()

        async def put(item: tuple[int, GenerationResult]) -> None:
            await q.put(item)

        task = asyncio.create_task(self._produce_async(requests, put))
        task.add_done_callback(lambda _t: q.put_nowait(None))
        while True:
            item = await q.get()
            if item is None:
                break
            yield item
        await task  # re-raises a broken engine's exception

    async def _produce(self, requests: Sequence[GenerationRequest], put: Callable[[Any], None], stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()

        async def put_async(item: tuple[int, GenerationResult]) -> None:
            # queue.put may block when the consumer is slow: keep it off the event loop.
            await loop.run_in_executor(None, put, item)

        work = asyncio.create_task(self._produce_async(requests, put_async, stop))
        # The consumer stopped early (an exception, Ctrl-C): cancel what is in flight rather than
        # wait minutes for long generations nobody will read.
        while not work.done():
            await asyncio.wait({work}, timeout=0.1)
            if stop.is_set() and not work.done():
                work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work

    async def _produce_async(
        self,
        requests: Sequence[GenerationRequest],
        put: Callable[[tuple[int, GenerationResult]], Any],
        stop: threading.Event | None = None,
    ) -> None:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        next_index = iter(range(len(requests)))
        workers = min(self.max_concurrency, len(requests)) or 1
        # Several small connection pools instead of one big one: httpcore's pool does work
        # proportional to its size on every request, so one pool of 256 connections serves a
        # fraction of what 64 pools of 4 do (bench/bench_generate.py measures it).
        n_clients = -(-workers // CONNECTIONS_PER_CLIENT)
        limits = httpx.Limits(max_connections=CONNECTIONS_PER_CLIENT, max_keepalive_connections=CONNECTIONS_PER_CLIENT)
        ssl_context = httpx.create_ssl_context()  # once: loading the CA bundle per client is slow
        clients = [httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, limits=limits, headers=headers,
                                     verify=ssl_context) for _ in range(n_clients)]
        try:

            async def worker(client: httpx.AsyncClient) -> None:
                # A fixed pool of workers pulling the next request: memory stays flat for a
                # million requests, and exactly max_concurrency are in flight.
                for i in next_index:
                    if stop is not None and stop.is_set():
                        return
                    res = await self._request_with_retries(client, requests[i])
                    await put((i, res))

            await asyncio.gather(*(worker(clients[w % n_clients]) for w in range(workers)))
        finally:
            for c in clients:
                await c.aclose()

    # ------------------------------------------------------------------ one request
    def _body(self, req: GenerationRequest) -> tuple[str, dict[str, Any]]:
        p = req.params
        body: dict[str, Any] = {"model": self.model, "n": p.n, "temperature": p.temperature,
                                "top_p": p.top_p, "max_tokens": p.max_tokens}
        if p.stop:
            body["stop"] = list(p.stop)
        if p.seed is not None:
            body["seed"] = p.seed
        body.update(self.extra_body)
        if req.messages is not None:
            body["messages"] = req.messages
            return "/chat/completions", body
        body["prompt"] = req.prompt
        return "/completions", body

    async def _request_with_retries(self, client: httpx.AsyncClient, req: GenerationRequest) -> GenerationResult:
        path, body = self._body(req)
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        t0 = time.perf_counter()
        last, reason = "no attempt made", None
        for attempt in range(self.max_retries + 1):
            try:
                res = await self._attempt(client, path, payload, req)
                res.latency_s = time.perf_counter() - t0
                res.attempts = attempt + 1
                return res
            except _Fatal as e:
                return GenerationResult(req.request_id, [], error=str(e), attempts=attempt + 1,
                                        latency_s=time.perf_counter() - t0, error_reason=e.reason)
            except _Retryable as e:
                last, reason = str(e), e.reason
                if attempt == self.max_retries:
                    break
                wait = min(self.backoff_max, self.backoff_base * 2**attempt) * random.uniform(0.5, 1.0)
                if e.wait is not None:
                    wait = max(wait, min(e.wait, self.backoff_max))
                await asyncio.sleep(wait)
        return GenerationResult(req.request_id, [], error=f"{last} (gave up after {self.max_retries + 1} attempts)",
                                attempts=self.max_retries + 1, latency_s=time.perf_counter() - t0, error_reason=reason)

    async def _attempt(self, client: httpx.AsyncClient, path: str, payload: bytes, req: GenerationRequest) -> GenerationResult:
        # httpx's read timeout is per socket read: a server sending one byte every 0.1 s never
        # trips it. One deadline covers the whole attempt, and the body is read with a size cap.
        try:
            async with asyncio.timeout(self.request_timeout):
                status, headers, body = await self._post(client, path, payload)
        except TimeoutError:
            raise _Retryable(f"timeout: the attempt took over request_timeout={self.request_timeout}s") from None
        except httpx.TimeoutException as e:
            raise _Retryable(f"timeout: {type(e).__name__} after {self.timeout.read}s") from None
        except httpx.TransportError as e:
            raise _Retryable(f"transport error: {type(e).__name__}: {e}") from None
        if status != 200:
            snippet = body[:300].decode("utf-8", "replace").replace("\n", " ")
            msg = f"HTTP {status}: {snippet}"
            if status in RETRY_STATUS:
                raise _Retryable(msg, _retry_after(headers.get("retry-after")))
            raise _Fatal(msg)
        try:
            data = json.loads(body)
            return self._parse(data, req)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            raise _Retryable(f"malformed response: {type(e).__name__}: {str(e)[:200]}") from None

    async def _post(self, client: httpx.AsyncClient, path: str, payload: bytes) -> tuple[int, httpx.Headers, bytes]:
        async with client.stream("POST", path, content=payload) as r:
            declared = r.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.max_response_bytes:
                raise _Fatal(f"response of {declared} bytes > max_response_bytes={self.max_response_bytes}",
                             reason="response_too_large")
            chunks: list[bytes] = []
            size = 0
            async for chunk in r.aiter_bytes():
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise _Fatal(f"response over max_response_bytes={self.max_response_bytes}", reason="response_too_large")
                chunks.append(chunk)
            return r.status_code, r.headers, b"".join(chunks)

    def _parse(self, data: dict[str, Any], req: GenerationRequest) -> GenerationResult:
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        if len(choices) != req.params.n:
            raise ValueError(f"server returned {len(choices)} choices for n={req.params.n}")
        texts: list[str] = []
        finishes: list[str | None] = []
        for c in choices:
            if "message" in c:
                msg = c["message"]
                content = msg.get("content") or ""
                reasoning = msg.get("reasoning_content") or msg.get("reasoning")
                text = f"<think>\n{reasoning}\n</think>\n\n{content}" if reasoning else content
            else:
                text = c["text"] if c["text"] is not None else ""
            if not isinstance(text, str):
                raise TypeError(f"choice {c.get('index')} text is {type(text).__name__}")
            if not text.strip():
                # A 200 with `content: null` or "" is not a trace: retried, then quarantined.
                raise _Retryable(f"empty_response: choice {c.get('index', len(texts))} has no text "
                                 f"(finish_reason={c.get('finish_reason')!r})", reason="empty_response")
            texts.append(text)
            finishes.append(c.get("finish_reason"))
        usage = data.get("usage") or {}
        total = usage.get("completion_tokens")
        counts = _apportion(total, texts)
        completions = [
            Completion(t, f, k, metadata={"tokens_apportioned": True} if len(texts) > 1 and total is not None else {})
            for t, f, k in zip(texts, finishes, counts)
        ]
        return GenerationResult(req.request_id, completions, prompt_tokens=usage.get("prompt_tokens"))


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _apportion(total: int | None, texts: list[str]) -> list[int | None]:
    """Split a response's completion-token total over its n choices by text length.

    OpenAI-style `usage` counts all choices together; per-sample counts are estimated (marked
    `tokens_apportioned` in the metadata) and always sum to the server's total.
    """
    if total is None:
        return [None] * len(texts)
    if len(texts) == 1:
        return [int(total)]
    lengths = [max(1, len(t)) for t in texts]
    whole = sum(lengths)
    counts = [int(total) * n // whole for n in lengths]
    for i in range(int(total) - sum(counts)):
        counts[i % len(counts)] += 1
    return counts
