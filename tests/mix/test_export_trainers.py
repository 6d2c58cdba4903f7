"""What trainers load from an export: TRL's prompt/completion layout, a chat template whose
`{% generation %}` markers mask exactly the assistant turns, LLaMA-Factory's dataset_info.json,
and a card naming who wrote the rows and under which licenses (real SFT sets and R1/QwQ traces)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataengine.config import load_config_dict
from dataengine.mix.assemble import run_mix
from dataengine.mix.export import run_export

# The licences of the shared SFT sets (../shared/data/README.md): LLaMA-Factory and MedicalGPT are
# Apache-2.0, stanford_alpaca's data CC-BY-NC-4.0; thinking-llms-interp has no licence file.
LICENSES = {"*llamafactory*": "Apache-2.0", "*medicalgpt*": "Apache-2.0", "stanford_alpaca*": "CC-BY-NC-4.0"}


@pytest.fixture(scope="module")
def two_layouts(pool_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    import shutil

    from dataengine.store import Workspace

    tmp = tmp_path_factory.mktemp("layouts")
    shutil.copytree(pool_dir, tmp / "ws")
    ws = Workspace.open(tmp / "ws")
    cfg = load_config_dict({"mix": {"reasoning": 60, "non_reasoning": 40, "shortfall": "fill"},
                            "export": {"source_licenses": LICENSES, "license": "cc-by-nc-4.0"}})
    run_mix(ws, cfg, seed=3)
    msgs = run_export(ws, cfg, tmp / "messages")
    pc = run_export(ws, cfg, tmp / "pc", layout="prompt_completion")
    return ws, msgs, pc


def test_prompt_completion_layout_splits_before_the_assistant_turn(two_layouts):
    import datasets

    _, msgs, pc = two_layouts
    a = datasets.load_from_disk(str(Path(msgs["out_dir"]) / "hf"))["train"]
    b = datasets.load_from_disk(str(Path(pc["out_dir"]) / "hf"))["train"]
    assert "messages" not in b.column_names and {"prompt", "completion"} <= set(b.column_names)
    assert a.num_rows == b.num_rows > 0
    for ra, rb in zip(a, b):
        assert ra["trace_id"] == rb["trace_id"]
        assert rb["prompt"] + rb["completion"] == ra["messages"]
        assert [m["role"] for m in rb["completion"]] == ["assistant"] and rb["prompt"][-1]["role"] == "user"
    # the Parquet shards carry the same layout (what `load_dataset("parquet")` and TRL read)
    pq = datasets.load_dataset("parquet", data_dir=str(Path(pc["out_dir"]) / "data"))["train"]
    assert pq.column_names == b.column_names
    assert not (Path(pc["out_dir"]) / "dataset_info.json").exists()  # sharegpt needs the messages layout


def test_chat_template_masks_exactly_the_assistant_turns(two_layouts):
    import datasets

    from dataengine.tinymodel import build_tokenizer

    _, msgs, _ = two_layouts
    folder = Path(msgs["out_dir"])
    template = (folder / "chat_template.jinja").read_text()
    assert "{% generation %}" in template
    tok = build_tokenizer("qwen2.5")
    ds = datasets.load_from_disk(str(folder / "hf"))["train"]
    multi = 0
    for row in ds.select(range(min(100, ds.num_rows))):
        multi += sum(m["role"] == "assistant" for m in row["messages"]) > 1
        out = tok.apply_chat_template(row["messages"], chat_template=template, return_dict=True,
                                      return_assistant_tokens_mask=True)
        ids, mask = out["input_ids"], out["assistant_masks"]
        learned = tok.decode([i for i, m in zip(ids, mask) if m])
        # every assistant turn (earlier turns of multi-turn rows too) with its stop token, nothing else
        assert learned == "".join(m["content"] + "<|im_end|>" for m in row["messages"] if m["role"] == "assistant")
        # the training template renders the same text as the family's own
        assert tok.apply_chat_template(row["messages"], chat_template=template, tokenize=False) == \
            tok.apply_chat_template(row["messages"], tokenize=False)
    assert multi > 0, "the sample has multi-turn rows (ShareGPT)"


def test_llama3_training_template_masks_the_assistant_turns_too(two_layouts):
    import datasets

    from dataengine.chat_templates import TRAINING_TEMPLATES
    from dataengine.tinymodel import build_tokenizer

    _, msgs, _ = two_layouts
    tok = build_tokenizer("llama3")
    template = TRAINING_TEMPLATES["llama3"]
    for row in datasets.load_from_disk(str(Path(msgs["out_dir"]) / "hf"))["train"].select(range(30)):
        out = tok.apply_chat_template(row["messages"], chat_template=template, return_dict=True,
                                      return_assistant_tokens_mask=True)
        learned = tok.decode([i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m])
        assert learned == "".join(m["content"].strip() + "<|eot_id|>" for m in row["messages"] if m["role"] == "assistant")
        assert tok.apply_chat_template(row["messages"], chat_template=template, tokenize=False) == \
            tok.apply_chat_template(row["messages"], tokenize=False)


def test_llamafactory_dataset_info_points_at_sharegpt_files(two_layouts):
    _, msgs, _ = two_layouts
    folder = Path(msgs["out_dir"])
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info and all(e["formatting"] == "sharegpt" for e in info.values())
    n = 0
    for entry in info.values():
        rows = [json.loads(line) for line in (folder / entry["file_name"]).read_text().splitlines()]
        tags = entry["tags"]
        for r in rows:
            turns = r[entry["columns"]["messages"]]
            if turns[0][tags["role_tag"]] == tags["system_tag"]:
                turns = turns[1:]
            # what LLaMA-Factory's sharegpt converter accepts: user/assistant alternating, user first
            roles = [t[tags["role_tag"]] for t in turns]
            assert roles == [tags["user_tag"], tags["assistant_tag"]] * (len(roles) // 2) and len(roles) % 2 == 0
        n += len(rows)
    assert n == msgs["total_rows"]


def test_card_names_generators_sources_licenses_and_verdicts_struct(two_layouts):
    ws, msgs, _ = two_layouts
    card = (Path(msgs["out_dir"]) / "README.md").read_text()
    assert "license: cc-by-nc-4.0" in card and "synthetic: false" in card and "- synthetic" not in card
    models = [r[0] for r in ws.query("select distinct t.model from mix_latest m join traces t using (trace_id)").fetchall()]
    assert len(models) >= 2
    for model in models:
        assert f"| {model} |" in card
    assert "| stanford_alpaca_seed_tasks.jsonl |" in card and "CC-BY-NC-4.0" in card
    assert "unknown (set export.source_licenses)" in card  # the traces' repository has no licence file
    assert "`verdicts` (struct" in card and "--assistant_only_loss --chat_template_path chat_template.jinja" in card
