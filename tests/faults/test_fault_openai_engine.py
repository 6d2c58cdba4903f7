"""The openai engine against a real HTTP server on 127.0.0.1 that misbehaves: empty completions,
a body dripped one byte per 0.1 s, responses far over the size cap."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from _faults import real_rows

from dataengine.config import load_config_dict
from dataengine.engines import GenerationRequest, SamplingParams
from dataengine.engines.openai_engine import OpenAIEngine
from dataengine.generate import run_generate
from dataengine.ingest import IngestOptions, ingest


class Bad(ThreadingHTTPServer):
    daemon_threads = True
    mode = "ok"
    stats: Counter[str]


class Handler(BaseHTTPRequestHandler):
    server: Bad

    def log_message(self, *a: object) -> None:
        pass

    def _json(self, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        mode = self.server.mode
        self.server.stats[mode] += 1
        n = req.get("n", 1)
        if mode in ("ok", "null", "empty"):
            content = {"ok": "<think>\n2+2 is 4.\n</think>\n\n**4**", "null": None, "empty": "  "}[mode]
            self._json({"choices": [{"index": i, "message": {"role": "assistant", "content": content},
                                     "finish_reason": "stop"} for i in range(n)],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 7 * n}})
        elif mode == "drip":
            body = b" " * 1000
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for b in body:
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    time.sleep(0.1)
                self.server.stats["drip_completed"] += 1
            except (BrokenPipeError, ConnectionResetError):
                self.server.stats["drip_aborted"] += 1
        elif mode in ("huge", "huge_declared"):
            chunk = b'{"choices": [{"index": 0, "text": "' + b"x" * (1 << 20)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if mode == "huge_declared":
                self.send_header("Content-Length", str(100 << 20))
            self.end_headers()  # no length: the body ends when the connection closes
            try:
                for _ in range(100):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.server.stats["huge_aborted"] += 1
            self.close_connection = True


@pytest.fixture()
def server() -> Iterator[Bad]:
    srv = Bad(("127.0.0.1", 0), Handler)
    srv.stats = Counter()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _engine(srv: Bad, **kw) -> OpenAIEngine:
    opts = {"max_retries": 2, "backoff_base": 0.01, "backoff_max": 0.02, **kw}
    return OpenAIEngine("m", base_url=f"http://127.0.0.1:{srv.server_address[1]}/v1", **opts)


def _req(rid: str = "r0", n: int = 1) -> GenerationRequest:
    return GenerationRequest(rid, messages=[{"role": "user", "content": "What is 2+2?"}], params=SamplingParams(n=n))


@pytest.mark.parametrize("mode", ["null", "empty"])
def test_empty_completion_is_retried_then_failed_as_empty_response(server, mode):
    server.mode = mode
    [res] = _engine(server).generate([_req()])
    assert not res.ok and res.error_reason == "empty_response" and res.completions == []
    assert res.attempts == 3 and server.stats[mode] == 3


def test_generate_quarantines_empty_responses_and_a_rerun_samples_them(ws, server, shared_data, tmp_path):
    p = tmp_path / "prompts.jsonl"
    p.write_text("\n".join(json.dumps({"prompt": r["prompt"], "reference_answer": r["reference_answer"]})
                           for r in real_rows(shared_data, 5)) + "\n")
    ingest(ws, p, IngestOptions(kind="prompts", domain="math"))
    cfg = load_config_dict({"generate": {
        "engine": "openai", "model": "m", "n": 2, "sampling_run": "s",
        "openai": {"base_url": f"http://127.0.0.1:{server.server_address[1]}/v1", "max_retries": 1,
                   "backoff_base": 0.01, "backoff_max": 0.02}}})
    server.mode = "null"
    counts = run_generate(ws, cfg)
    assert counts["out"] == 0 and counts["quarantined"] == 10
    assert ws.query("select count(*) from traces").fetchone()[0] == 0  # never stored as traces
    reasons = ws.query("select reason, count(*) from quarantine group by 1").fetchall()
    assert reasons == [("empty_response", 10)]
    server.mode = "ok"
    counts = run_generate(ws, cfg)  # still missing, so retried
    assert counts["out"] == 10
    assert ws.query("select count(*) from traces where completion like '%**4**'").fetchone()[0] == 10


def test_a_dripping_server_cannot_stretch_an_attempt_past_request_timeout(server):
    server.mode = "drip"  # 1000 bytes at 0.1 s each: 100 s per response
    t0 = time.monotonic()
    [res] = _engine(server, request_timeout=1.0, max_retries=1).generate([_req()])
    elapsed = time.monotonic() - t0
    assert not res.ok and "request_timeout=1.0" in res.error and res.attempts == 2
    # each attempt was cut off mid-body by the client, not completed by the server
    deadline = time.monotonic() + 30
    while server.stats["drip_aborted"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.stats["drip_aborted"] == 2 and server.stats["drip_completed"] == 0
    print(f"two 1 s attempts against a 100 s drip took {elapsed:.1f}s")


@pytest.mark.parametrize("mode", ["huge", "huge_declared"])
def test_a_response_over_the_size_cap_fails_without_being_read_whole(server, mode):
    server.mode = mode  # 100 MB
    [res] = _engine(server, max_response_bytes=1 << 20).generate([_req()])
    assert not res.ok and res.error_reason == "response_too_large" and res.attempts == 1
    assert "max_response_bytes" in res.error
