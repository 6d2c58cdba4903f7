"""Chain-of-thought augmentation through the Engine interface: chosen categories only, never trivial
queries; the mix prefers the augmented trace and the export renders its think block."""

from __future__ import annotations

import json
from collections.abc import Sequence

from dataengine.config import load_config_dict
from dataengine.engines.base import Completion, Engine, GenerationRequest, GenerationResult
from dataengine.mix.assemble import run_mix
from dataengine.mix.cot import augment_cot
from dataengine.mix.sft_ingest import ingest_sft


class ScriptedEngine(Engine):
    """A deterministic engine behind the real interface (issue 5 ships the production engines).

    It writes a reasoning that quotes the request, wraps every third one in its own think block
    (as R1-style models do) and cuts one off at the token limit, so every branch is taken.
    """

    name = "scripted"
    model = "scripted-cot"

    def __init__(self) -> None:
        self.seen: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        out = []
        for r in requests:
            self.seen.append(r)
            i = len(self.seen)
            ask = r.messages[-1]["content"].split("Request:\n", 1)[1].split("\n\nAnswer:", 1)[0]
            text = f"The user asks: {ask[:60]}. I should answer directly."
            if i % 3 == 0:
                text = f"<think>{text}</think>"
            finish = "length" if i == 5 else "stop"
            out.append(GenerationResult(r.request_id, [Completion(text, finish)]))
        return out


def test_augmentation_covers_chosen_categories_and_skips_trivial_queries(ws, shared_data, tmp_path):
    import datasets

    from dataengine.mix.export import run_export

    ingest_sft(ws, shared_data / "sft" / "identity_llamafactory.json", category="chat")  # many trivial greetings
    ingest_sft(ws, shared_data / "sft" / "alpaca_en_demo_llamafactory.json")
    eng = ScriptedEngine()
    out = augment_cot(ws, eng, ["writing", "chat"], limit=30, batch_size=8)
    assert out["written"] == 29 and out["cut_off"] == 1 and out["todo"] == 30
    prompts = [r.messages[-1]["content"] for r in eng.seen]
    assert not any("Request:\nhi\n" in p or "Request:\nhello\n" in p or "Request:\n你好\n" in p for p in prompts)
    rows = ws.query("select t.domain, t.completion, o.answer, t.metadata->>'trivial' from traces t "
                    "join traces o on o.trace_id = t.metadata->>'augmented_from' "
                    "where t.metadata->>'cot_augmented' = 'true'").fetchall()
    assert len(rows) == 29 and {r[0] for r in rows} <= {"writing", "chat"} and {r[3] for r in rows} == {"false"}
    for _, completion, answer, _ in rows:
        assert completion.startswith("<think>\nThe user asks: ") and "<think>" not in completion[7:]
        assert completion.endswith(f"</think>\n\n{answer}")
    # a rerun only does what is missing (the cut-off one and the next ones)
    again = augment_cot(ws, eng, ["writing", "chat"], limit=30, batch_size=8)
    assert again["eligible"] == out["eligible"] and again["todo"] == 30 and len(eng.seen) == 60

    # the mix takes the augmented trace of a prompt before its original; the export keeps the think block
    mix = run_mix(ws, load_config_dict({}), reasoning=0, non_reasoning=400, non_reasoning_weights={"writing": 1})
    chosen = ws.query("select count(*) filter (where t.metadata->>'cot_augmented' = 'true'), "
                      "count(distinct m.prompt_id), count(*) from mix_latest m join traces t using (trace_id) "
                      "where m.mix_id = $m", {"m": mix["mix_id"]}).fetchone()
    n_aug_writing = ws.query("select count(distinct prompt_id) from traces where metadata->>'cot_augmented' = 'true' "
                             "and domain = 'writing'").fetchone()[0]
    n_writing = ws.query("select count(distinct prompt_id) from traces where domain = 'writing'").fetchone()[0]
    assert chosen[0] == n_aug_writing and chosen[1] == chosen[2] == n_writing < 400
    run_export(ws, load_config_dict({}), tmp_path / "out", formats=["datasets"])
    ds = datasets.load_from_disk(str(tmp_path / "out" / "hf"))["train"]
    with_think = [m[-1]["content"] for m in ds["messages"] if m[-1]["content"].startswith("<think>\n")]
    assert len(with_think) == n_aug_writing


def test_augmentation_with_the_simulated_engine_and_the_cli(ws, shared_data):
    from click.testing import CliRunner

    from dataengine.cli import cli
    from dataengine.engines import get_engine

    ingest_sft(ws, shared_data / "sft" / "alpaca_en_demo_llamafactory.json")
    eng = get_engine("simulated", seed=0, defect_rates={"unclosed_think": 0.2})
    out = augment_cot(ws, eng, ["factual_qa"], limit=40, max_tokens=4096)
    assert out["todo"] == 40 and out["written"] + out["cut_off"] + out["empty_cot"] + out["engine_error"] == 40
    assert out["written"] > 20 and out["cut_off"] > 0  # unclosed chains of thought are not used
    rows = ws.query("select t.completion, o.answer from traces t join traces o on o.trace_id = t.metadata->>'augmented_from' "
                    "where t.model = 'simulated'").fetchall()
    assert len(rows) == out["written"]
    for completion, answer in rows:
        cot = completion[len("<think>\n"):completion.index("\n</think>\n\n")]
        assert completion.startswith("<think>\n") and completion.endswith(f"\n</think>\n\n{answer}")
        assert cot.strip() and "</think>" not in cot and "\\boxed" not in cot.split("\n")[0]

    r = CliRunner().invoke(cli, ["--workspace", str(ws.root), "augment-cot", "--engine", "simulated",
                                 "--category", "writing", "--limit", "5", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["todo"] == 5
