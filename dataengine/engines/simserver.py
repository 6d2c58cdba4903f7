"""A local OpenAI-compatible HTTP server that serves the simulated engine, with injected faults.

For tests and load tests of the `openai` engine without a GPU: `/v1/chat/completions`,
`/v1/completions`, `/v1/models`, `/health`. Each attempt at a request can be answered with a fault,
chosen by a seeded draw on (request body, attempt number), so a run is reproducible and a retried
request eventually gets through:

- `rate_500`, `rate_429` (with `Retry-After: retry_after`), `rate_slow` (answers after `slow_s`,
  past a client's timeout), `rate_malformed` (a 200 with truncated JSON), `rate_drop` (closes the
  connection without answering);
- `poison`: requests whose body contains this string always get a 500 (what finally fails).

Plain asyncio, HTTP/1.1 with keep-alive; no web framework, so the server is never what a load
test measures.

    python -m dataengine.engines.simserver --port 8011 --rate-500 0.05   # for a bench or by hand
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from dataengine.engines.base import GenerationRequest, SamplingParams
from dataengine.engines.simulated import SimulatedEngine
from dataengine.records import content_hash


@dataclass
class Faults:
    rate_500: float = 0.0
    rate_429: float = 0.0
    rate_slow: float = 0.0
    rate_malformed: float = 0.0
    rate_drop: float = 0.0
    slow_s: float = 5.0
    retry_after: float = 0.0
    poison: str | None = None
    seed: int = 0


class SimServer:
    """Start with `start()` (a background thread; returns the base URL) and `stop()`.

    `stats` counts attempts, faults served and responses; `latency_s` delays every good answer
    (a stand-in for generation time).
    """

    def __init__(self, engine: SimulatedEngine | None = None, faults: Faults | None = None,
                 host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0):
        self.engine = engine or SimulatedEngine()
        self.faults = faults or Faults()
        self.host, self.port, self.latency_s = host, port, latency_s
        self.stats: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        self._thread = threading.Thread(target=self._run, name="simserver", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("simulated server did not start")
        return self.base_url

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, self.host, self.port, backlog=1024))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        # Stopped: cancel open connections and let them close before the loop goes away.
        pending = asyncio.all_tasks(self._loop)
        for t in pending:
            t.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        if self._thread is not None:
            self._thread.join(10)

    async def serve_forever(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        print(f"serving {self.base_url}", flush=True)
        async with self._server:
            await self._server.serve_forever()

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                keep = await self._route(method, path, body, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: int, payload: bytes, extra: dict[str, str] | None = None) -> None:
        reason = {200: "OK", 404: "Not Found", 400: "Bad Request", 429: "Too Many Requests",
                  500: "Internal Server Error"}.get(status, "Error")
        hdrs = {"Content-Type": "application/json", "Content-Length": str(len(payload)), **(extra or {})}
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        writer.write(head.encode("latin-1") + payload)
        await writer.drain()

    async def _route(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        if method == "GET" and path in ("/health", "/v1/models"):
            data = {"object": "list", "data": [{"id": self.engine.model, "object": "model"}]}
            await self._send(writer, 200, json.dumps(data).encode())
            return True
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/completions"):
            await self._send(writer, 404, b'{"error": {"message": "not found"}}')
            return True
        self.stats["attempts"] += 1
        fault = self._fault(body)
        if fault:
            self.stats[f"fault:{fault}"] += 1
        if fault == "drop":
            return False
        if fault == "500":
            await self._send(writer, 500, b'{"error": {"message": "injected server error"}}')
            return True
        if fault == "429":
            await self._send(writer, 429, b'{"error": {"message": "injected rate limit"}}',
                             {"Retry-After": str(self.faults.retry_after)})
            return True
        if fault == "slow":
            await asyncio.sleep(self.faults.slow_s)
        try:
            req = json.loads(body)
            payload = self._complete(req, chat=path.endswith("chat/completions"))
        except (ValueError, KeyError, TypeError) as e:
            await self._send(writer, 400, json.dumps({"error": {"message": f"bad request: {e}"}}).encode())
            return True
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        if fault == "malformed":
            data = data[: len(data) // 2]
        elif fault != "slow":  # a slow answer usually arrives after the client gave up
            self.stats["ok"] += 1
        await self._send(writer, 200, data)
        return True

    def _fault(self, body: bytes) -> str | None:
        f = self.faults
        if f.poison and f.poison.encode() in body:
            return "500"
        key = content_hash(body.decode("utf-8", "replace"))
        attempt = self._attempts[key]
        self._attempts[key] += 1
        x = random.Random(content_hash("fault", f.seed, key, attempt)).random()
        for name, rate in (("500", f.rate_500), ("429", f.rate_429), ("slow", f.rate_slow),
                           ("malformed", f.rate_malformed), ("drop", f.rate_drop)):
            if x < rate:
                return name
            x -= rate
        return None

    def _complete(self, body: dict[str, Any], chat: bool) -> dict[str, Any]:
        params = SamplingParams(
            n=int(body.get("n", 1)), temperature=float(body.get("temperature", 1.0)),
            top_p=float(body.get("top_p", 1.0)), max_tokens=int(body.get("max_tokens", 16)),
            stop=tuple(body.get("stop") or ()), seed=body.get("seed"),
        )
        if chat:
            req = GenerationRequest("http", messages=list(body["messages"]), params=params)
        else:
            req = GenerationRequest("http", prompt=str(body["prompt"]), params=params)
        res = self.engine.generate([req])[0]
        if res.error:
            raise ValueError(res.error)
        choices = []
        for i, c in enumerate(res.completions):
            if chat:
                choices.append({"index": i, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason})
            else:
                choices.append({"index": i, "text": c.text, "finish_reason": c.finish_reason})
        ctoks = sum(c.completion_tokens or 0 for c in res.completions)
        return {
            "id": f"cmpl-{content_hash(time.time_ns())[:12]}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": body.get("model", self.engine.model),
            "choices": choices,
            "usage": {"prompt_tokens": res.prompt_tokens, "completion_tokens": ctoks,
                      "total_tokens": (res.prompt_tokens or 0) + ctoks},
        }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8011)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds before every good answer")
    ap.add_argument("--no-defects", action="store_true", help="serve clean samples only")
    for name in ("500", "429", "slow", "malformed", "drop"):
        ap.add_argument(f"--rate-{name}", type=float, default=0.0)
    ap.add_argument("--slow-s", type=float, default=5.0)
    args = ap.parse_args(argv)
    faults = Faults(rate_500=args.rate_500, rate_429=args.rate_429, rate_slow=args.rate_slow,
                    rate_malformed=args.rate_malformed, rate_drop=args.rate_drop, slow_s=args.slow_s)
    engine = SimulatedEngine(defect_rates={} if args.no_defects else None)
    server = SimServer(engine, faults, args.host, args.port, args.latency)
    asyncio.run(server.serve_forever())


if __name__ == "__main__":
    main()
