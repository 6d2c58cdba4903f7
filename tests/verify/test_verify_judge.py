"""The generative judge against a real local OpenAI-compatible HTTP server started by the test."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dataengine.engines.openai_engine import OpenAIEngine
from dataengine.verify.judge import Judge, JudgeCache, JudgeItem, parse_judge_reply


class JudgeServer:
    """/v1/chat/completions that judges like a chatty model; counts requests; injects faults."""

    def __init__(self) -> None:
        self.requests = 0
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                ref = re.search(r"Reference answer:\n(.*?)\n", prompt).group(1).strip()
                resp = re.search(r"Student's final answer:\n(.*?)\n", prompt).group(1).strip()
                with outer.lock:
                    outer.requests += 1
                    n = outer.seen[resp] = outer.seen.get(resp, 0) + 1
                if "FLAKY" in resp and n <= 2:
                    self.send_response(503)
                    self.end_headers()
                    return
                if "GARBAGE" in resp:
                    text = "Hmm, hard to say. Let me think about the units again."
                elif "unclear" in resp:
                    text = "The reference is itself ambiguous.\nVerdict: AMBIGUOUS"
                elif ref.replace(" ", "").lower() in resp.replace(" ", "").replace("FLAKY", "").lower():
                    text = "<think>Is 1/2 equivalent to 0.5? Different forms...</think>Both say the same.\n**Verdict:** Equivalent"
                else:
                    text = f"The reference is {ref}, the student wrote {resp}; these are not equivalent."
                payload = json.dumps({
                    "id": "x", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server() -> Iterator[JudgeServer]:
    s = JudgeServer()
    yield s
    s.stop()


def engine(server: JudgeServer) -> OpenAIEngine:
    return OpenAIEngine("judge-model", base_url=server.base_url, max_concurrency=4, max_retries=3,
                        backoff_base=0.01, backoff_max=0.05, request_timeout=30)


def test_judge_verdicts_through_a_real_http_server(server: JudgeServer) -> None:
    judge = Judge(engine(server), max_concurrency=2, max_retries=2, backoff_s=0.01)
    items = [
        JudgeItem("Paris", "paris", question="Capital of France?"),
        JudgeItem("Paris", "Lyon"),
        JudgeItem("x", "unclear"),
        JudgeItem("42", "42 FLAKY"),  # two 503s first: the engine's retries absorb them
        JudgeItem("7", "GARBAGE"),  # never a verdict: error after the judge's last retry
        JudgeItem("7", "   "),
    ]
    res = judge.judge(items)
    assert [r.verdict for r in res] == ["correct", "incorrect", "unparseable", "correct", "error", "unparseable"]
    assert res[4].details["reason"] == "judge_failed_after_retries" and res[4].details["attempts"] == 3
    assert server.seen["GARBAGE"] == 3
    assert judge.model == "judge-model"


def test_judge_caches_by_content_hash(server: JudgeServer, tmp_path: Path) -> None:
    cache_path = tmp_path / "judge_cache.jsonl"
    items = [JudgeItem("1/2", "0.5"), JudgeItem("3", "3")]
    first = Judge(engine(server), cache=JudgeCache(cache_path)).judge(items)
    n = server.requests
    assert n == 2
    # A new judge over the same cache file (a rerun of the stage) sends nothing.
    again = Judge(engine(server), cache=JudgeCache(cache_path)).judge(items + [JudgeItem("3", "3")])
    assert server.requests == n
    assert [r.verdict for r in again[:2]] == [r.verdict for r in first] and again[2].details["cached"]


def test_reply_parsing_tolerates_chatter() -> None:
    assert parse_judge_reply("Verdict: DIFFERENT") == "DIFFERENT"
    assert parse_judge_reply("The two are equivalent forms... but wait, no.\nVerdict: `different`") == "DIFFERENT"
    assert parse_judge_reply("I conclude they are EQUIVALENT.") == "EQUIVALENT"
    assert parse_judge_reply("Final: **AMBIGUOUS**") == "AMBIGUOUS"
    assert parse_judge_reply("No idea.") is None
