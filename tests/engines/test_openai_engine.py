"""The openai engine against a real local HTTP server (serving the simulated engine) with faults."""

from __future__ import annotations

import asyncio

import pytest

from dataengine.demo_problems import demo_prompts
from dataengine.engines import GenerationRequest, SamplingParams, get_engine
from dataengine.engines.openai_engine import _apportion
from dataengine.engines.simserver import Faults, SimServer
from dataengine.engines.simulated import SimulatedEngine


@pytest.fixture()
def server():
    servers = []

    def start(**kw):
        s = SimServer(SimulatedEngine(defect_rates={}), **kw)
        s.start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def _reqs(k: int, n: int = 2, chat: bool = True) -> list[GenerationRequest]:
    out = []
    for i, p in enumerate(demo_prompts(k, seed=7)):
        if chat:
            out.append(GenerationRequest(f"q{i}", messages=[{"role": "user", "content": p.prompt}], params=SamplingParams(n=n, max_tokens=4096)))
        else:
            out.append(GenerationRequest(f"q{i}", prompt=p.prompt, params=SamplingParams(n=n, max_tokens=4096)))
    return out


def test_faults_are_retried_and_what_finally_fails_is_an_error(server):
    faults = Faults(rate_500=0.12, rate_429=0.12, rate_slow=0.06, rate_malformed=0.12, rate_drop=0.06,
                    slow_s=3.0, poison="POISON", seed=1)
    srv = server(faults=faults)
    eng = get_engine("openai", model="simulated", base_url=srv.base_url, max_concurrency=32,
                     request_timeout=0.6, backoff_base=0.01, backoff_max=0.05, max_retries=8)
    reqs = _reqs(120)
    reqs.append(GenerationRequest("poisoned", messages=[{"role": "user", "content": "POISON: always fails"}],
                                  params=SamplingParams(n=2)))
    out = eng.generate(reqs)
    # nothing lost, nothing duplicated, order kept
    assert [r.request_id for r in out] == [r.request_id for r in reqs]
    good, bad = out[:-1], out[-1]
    assert all(r.ok and len(r.completions) == 2 for r in good)
    assert not bad.ok and "HTTP 500" in bad.error and bad.attempts == 9 and bad.completions == []
    # every fault kind was served, and the requests it hit were retried through
    for kind in ("500", "429", "slow", "malformed", "drop"):
        assert srv.stats[f"fault:{kind}"] > 0, srv.stats
    assert sum(r.attempts - 1 for r in good) >= sum(srv.stats[f"fault:{k}"] for k in ("500", "429", "malformed", "drop"))
    assert srv.stats["ok"] == len(good)
    # usage recorded: the per-sample token counts add up to the server's total
    for r in good:
        assert r.prompt_tokens and all(c.completion_tokens for c in r.completions)
        assert all(c.finish_reason == "stop" for c in r.completions)


def test_completions_endpoint_and_identical_text_to_the_engine_itself(server):
    srv = server()
    eng = get_engine("openai", model="simulated", base_url=srv.base_url, max_concurrency=8)
    reqs = _reqs(10, n=3, chat=False)
    via_http = eng.generate(reqs)
    direct = SimulatedEngine(defect_rates={}).generate(reqs)
    assert [c.text for r in via_http for c in r.completions] == [c.text for r in direct for c in r.completions]


def test_client_errors_are_not_retried(server):
    srv = server()
    eng = get_engine("openai", model="simulated", base_url=srv.base_url.replace("/v1", "/nope"), max_retries=5)
    res = eng.generate(_reqs(2))
    assert all(not r.ok and "HTTP 404" in r.error and r.attempts == 1 for r in res)


def test_iter_generate_streams_and_agenerate_runs_inside_a_loop(server):
    srv = server()
    eng = get_engine("openai", model="simulated", base_url=srv.base_url, max_concurrency=4)
    reqs = _reqs(12)
    ids = sorted(r.request_id for r in eng.iter_generate(reqs))
    assert ids == sorted(r.request_id for r in reqs)
    out = asyncio.run(eng.agenerate(reqs))
    assert [r.request_id for r in out] == [r.request_id for r in reqs] and all(r.ok for r in out)


def test_api_key_comes_from_the_environment_only(server, monkeypatch):
    srv = server()
    monkeypatch.setenv("MY_KEY", "sk-test-123")
    eng = get_engine("openai", model="simulated", base_url=srv.base_url, api_key_env="MY_KEY")
    import httpx

    captured: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        captured.append(request)

    orig_client = httpx.AsyncClient

    class Spy(orig_client):  # type: ignore[misc, valid-type]
        def __init__(self, *a, **kw):
            super().__init__(*a, event_hooks={"request": [hook]}, **kw)

    monkeypatch.setattr(httpx, "AsyncClient", Spy)
    assert eng.generate(_reqs(1))[0].ok
    assert captured[0].headers["authorization"] == "Bearer sk-test-123"
    with pytest.raises(TypeError):
        get_engine("openai", model="m", api_key="sk-inline")  # no way to pass a key inline


def test_apportioned_tokens_sum_to_the_server_total():
    assert _apportion(101, ["a" * 10, "b" * 30, "c" * 60]) == [11, 30, 60]
    assert sum(_apportion(7, ["x", "yy", "zzz"])) == 7
    assert _apportion(None, ["x"]) == [None]


def test_a_consumer_that_stops_early_cancels_what_is_in_flight(server):
    import time

    srv = server(faults=Faults(rate_slow=0.7, slow_s=60.0, seed=2))  # most answers would take a minute
    eng = get_engine("openai", model="simulated", base_url=srv.base_url, max_concurrency=16, request_timeout=120)
    t0 = time.monotonic()
    it = eng.iter_generate(_reqs(16))
    first = next(it)  # a fast one
    it.close()  # the consumer stops: what is in flight is cancelled, not awaited
    assert first.ok and srv.stats["fault:slow"] > 0
    assert time.monotonic() - t0 < 20
