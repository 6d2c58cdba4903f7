"""Export: the folder loads with datasets, exactly the selected rows, the documented schema, a card,
and messages that render through real chat templates with the think block intact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataengine.config import load_config_dict
from dataengine.mix.assemble import run_mix
from dataengine.mix.export import EXPORT_SCHEMA, run_export


@pytest.fixture(scope="module")
def exported(pool_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    import shutil

    from dataengine.store import Workspace

    tmp = tmp_path_factory.mktemp("export")
    shutil.copytree(pool_dir, tmp / "ws")
    pool = Workspace.open(tmp / "ws")
    # math500 has fewer qualified traces than its share: upsampled rows must be exported twice
    cfg = load_config_dict({"mix": {"reasoning": 800, "non_reasoning": 100, "shortfall": "upsample",
                                    "reasoning_weights": {"gsm8k": 1, "math500": 1}}})
    mix = run_mix(pool, cfg, seed=5)
    # small shards and batches, so the streaming and the size bound are exercised
    out = run_export(pool, cfg, tmp / "out", test_fraction=0.1, shard_bytes=500_000, batch_rows=64)
    return pool, mix, out, tmp / "out"


def _expected_rows(ws, mix_id: str) -> dict[str, int]:
    return dict(ws.query("select trace_id, copies from mix_latest where mix_id = $m", {"m": mix_id}).fetchall())


def test_export_loads_with_exactly_the_selected_rows_and_schema(exported):
    import datasets

    ws, mix, out, folder = exported
    expected = _expected_rows(ws, mix["mix_id"])
    assert max(expected.values()) == 2  # upsampled rows are exported twice
    dd = datasets.load_from_disk(str(folder / "hf"))
    assert set(dd) == {"train", "test"}
    got: dict[str, int] = {}
    for split in dd.values():
        assert split.features.arrow_schema == EXPORT_SCHEMA
        for t in split["trace_id"]:
            got[t] = got.get(t, 0) + 1
    assert got == expected and sum(got.values()) == mix["rows"] == out["total_rows"]
    # held out by prompt: no prompt in both splits
    assert not set(dd["train"]["prompt_id"]) & set(dd["test"]["prompt_id"])
    assert 0 < dd["test"].num_rows < dd["train"].num_rows

    pq = datasets.load_dataset("parquet", data_dir=str(folder / "data"))
    assert {s: pq[s].num_rows for s in pq} == {s: dd[s].num_rows for s in dd}
    assert pq["train"]["trace_id"] == dd["train"]["trace_id"]
    assert len(out["files"]["parquet"]) > 2  # size-bounded shards
    # hf/ is written in one pass as save_to_disk's layout, size-bounded like the others
    hf_train = sorted(p.name for p in (folder / "hf" / "train").glob("*.arrow"))
    assert len(hf_train) > 2 and hf_train[0] == f"data-00000-of-{len(hf_train):05d}.arrow"
    assert json.loads((folder / "hf" / "dataset_dict.json").read_text())["splits"] == ["test", "train"]
    assert dd["train"][:]["messages"] == pq["train"][:]["messages"]
    n_jsonl = sum(len(Path(folder, p).read_text(encoding="utf-8").splitlines()) for p in out["files"]["jsonl"])
    assert n_jsonl == mix["rows"]
    first = json.loads(Path(folder, out["files"]["jsonl"][0]).read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == set(EXPORT_SCHEMA.names)


def test_messages_have_think_block_for_reasoning_rows_only(exported):
    import datasets

    ws, mix, _, folder = exported
    ds = datasets.load_from_disk(str(folder / "hf"))["train"]
    rows = list(ds.select(range(min(200, ds.num_rows))))
    stored = {r[0]: r[1:] for r in ws.query("select trace_id, reasoning, answer from traces where trace_id in "
                                            "(select unnest($ids))", {"ids": [r["trace_id"] for r in rows]}).fetchall()}
    for row in rows:
        msgs = row["messages"]
        assert msgs[-1]["role"] == "assistant" and msgs[-2]["role"] == "user"
        content = msgs[-1]["content"]
        if row["bucket"] == "reasoning":
            reasoning, answer = stored[row["trace_id"]]
            assert content == f"<think>\n{reasoning.strip()}\n</think>\n\n{answer.strip()}"
        else:
            assert "<think>" not in content
        assert row["verdicts"] == {"math": None, "mcq": None, "code": None, "judge": None, "other": None}


def test_dataset_card_has_counts_policies_and_histograms(exported):
    _, mix, out, folder = exported
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert f"Mix `{mix['mix_id']}`" in card and "path: data/train-*.parquet" in card
    assert "| train | reasoning | gsm8k |" in card
    assert "Filter stage not run" in card and "Verification stage not run" in card and "Dedup stage not run" in card
    assert "| shortfall | `\"upsample\"` |" in card
    for b in ("reasoning", "non_reasoning"):
        png = folder / "images" / f"num_tokens_{b}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"(images/num_tokens_{b}.png)" in card


def test_export_is_deterministic(exported, tmp_path):
    import datasets

    ws, mix, _, folder = exported
    again = run_export(ws, load_config_dict({}), tmp_path / "again", mix_id=mix["mix_id"], test_fraction=0.1,
                       formats=["parquet"])
    a = datasets.load_dataset("parquet", data_dir=str(folder / "data"))["train"]["trace_id"]
    b = datasets.load_dataset("parquet", data_dir=str(tmp_path / "again" / "data"))["train"]["trace_id"]
    assert "\n".join(a).encode() == "\n".join(b).encode()
    assert again["files"].keys() == {"parquet"}


@pytest.mark.parametrize("family", ["qwen2.5", "llama3"])
def test_exported_messages_render_through_real_chat_templates(exported, family):
    import datasets

    from dataengine.tinymodel import build_tokenizer

    _, _, _, folder = exported
    tok = build_tokenizer(family)
    ds = datasets.load_from_disk(str(folder / "hf"))["train"]
    rows = [r for r in ds.select(range(60)) if r["bucket"] == "reasoning"][:5]
    rows += [r for r in ds.select(range(60)) if r["bucket"] == "non_reasoning"][:2]
    think_id = tok.convert_tokens_to_ids("<think>")
    end_id = tok.convert_tokens_to_ids("</think>")
    for row in rows:
        msgs = row["messages"]
        text = tok.apply_chat_template(msgs, tokenize=False)
        assistant = msgs[-1]["content"]
        assert assistant.strip() in text  # the whole turn, think block included, verbatim
        ids = tok.apply_chat_template(msgs, tokenize=True, return_dict=False)
        ids = ids["input_ids"] if isinstance(ids, dict) else ids
        assert tok.decode(ids, skip_special_tokens=False) == text
        if row["bucket"] == "reasoning":
            # the markers survive as single special tokens, once each, in order
            assert ids.count(think_id) == 1 and ids.count(end_id) == 1 and ids.index(think_id) < ids.index(end_id)
            head = "<|im_start|>assistant\n<think>\n" if family == "qwen2.5" else "<|end_header_id|>\n\n<think>\n"
            assert head in text
        else:
            assert think_id not in ids


def test_bulk_message_building_matches_the_row_by_row_reference():
    import pyarrow as pa

    from dataengine.mix.export import build_batch, build_messages

    rows = [
        {"bucket": "reasoning", "reasoning": "2+2=4", "answer": "4", "prompt": "2+2?", "system": None, "history": None},
        {"bucket": "non_reasoning", "reasoning": "", "answer": "你好！", "prompt": "你好", "system": "be kind",
         "history": json.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])},
        {"bucket": "non_reasoning", "reasoning": "short why", "answer": "Paris", "prompt": "Capital of France?",
         "system": None, "history": None},
    ]
    extra = {"prompt_id": ["a", "b", "c"], "trace_id": ["x", "y", "z"], "source": ["s"] * 3, "domain": ["d"] * 3,
             "prompt_tokens": [10, None, None], "completion_tokens": [5, None, None], "verdicts": [None, '{"m": "correct"}', None],
             "copies": [1, 2, 1]}
    batch = pa.RecordBatch.from_pydict({**{k: [r[k] for r in rows] for k in rows[0]}, **extra})
    for system_prompt in (None, "You are helpful."):
        table, copies = build_batch(batch, system_prompt)
        assert table.column("messages").to_pylist() == [build_messages(r, system_prompt) for r in rows]
    assert copies.tolist() == [1, 2, 1]
    assert table.column("num_tokens").to_pylist()[0] == 15
    assert table.column("num_tokens_estimated").to_pylist() == [False, True, True]
    none = {"math": None, "mcq": None, "code": None, "judge": None, "other": None}
    assert table.column("verdicts").to_pylist() == [none, {**none, "other": '{"m": "correct"}'}, none]


def test_an_empty_mix_exports_an_empty_loadable_dataset(pool, tmp_path):
    import datasets

    run_mix(pool, load_config_dict({}), reasoning=0, non_reasoning=0, mix_id="empty")
    out = run_export(pool, load_config_dict({}), tmp_path / "out", mix_id="empty")
    assert out["total_rows"] == 0
    assert datasets.load_from_disk(str(tmp_path / "out" / "hf"))["train"].num_rows == 0


@pytest.mark.parametrize("part_bytes", [200_000, 1 << 40])
def test_streamed_rows_equal_the_sorted_reference_query(exported, tmp_path, part_bytes):
    """Keys sorted, texts scanned and spilled by range (200 kB: dozens of LZ4 partitions; 1 TiB:
    one in-memory partition): the same rows in the same order as sorting the joined rows."""
    import pyarrow as pa

    from dataengine import sqlfiles
    from dataengine.mix.ordered_rows import ROW_COLUMNS, ordered_rows

    ws, mix, _, _ = exported
    con = ws.connect()
    try:
        ref = con.sql(sqlfiles.load("mix/export_rows"), params={"mix_id": mix["mix_id"]}).arrow()
        ref = ref.read_all() if hasattr(ref, "read_all") else ref
        batches = list(ordered_rows(con, mix["mix_id"], 50, part_bytes, tmp_path / "sort"))
    finally:
        con.close()
    got = pa.Table.from_batches(batches)
    assert tuple(got.column_names) == ROW_COLUMNS == tuple(ref.column_names)
    assert got.num_rows == ref.num_rows == len(_expected_rows(ws, mix["mix_id"]))
    assert max(b.num_rows for b in batches) <= 50
    for c in ROW_COLUMNS:
        assert got.column(c).to_pylist() == ref.column(c).to_pylist(), c
    assert not (tmp_path / "sort").exists()  # spilled partitions are removed


def test_a_prompt_shared_by_several_rows_reaches_every_one_of_them(exported):
    import numpy as np
    import pyarrow as pa

    from dataengine.mix.ordered_rows import _grouping, _scatter

    ws = exported[0]
    # every trace's prompt id: R1-distill and QwQ answer the same questions, so ids repeat
    row_pids = [r[0] for r in ws.query("select prompt_id from traces order by trace_id").fetchall()]
    assert len(set(row_pids)) < len(row_pids)
    keys, starts, order = _grouping(pa.array(row_pids))
    scanned = pa.array(sorted(set(row_pids))[::-1] + ["not-in-the-mix"])  # storage order differs
    src, out = _scatter(keys, starts, order, scanned)
    assert sorted(out.tolist()) == list(range(len(row_pids)))  # every row once
    assert [scanned[int(i)].as_py() for i in src] == [row_pids[int(o)] for o in out]
    assert np.all(src < len(scanned) - 1)


def test_memory_sizes_parse_like_duckdb_settings():
    from dataengine.mix.ordered_rows import memory_bytes

    assert memory_bytes("2GB") == 2 * 10**9 and memory_bytes("512 MiB") == 512 << 20
    with pytest.raises(ValueError, match="not a memory size"):
        memory_bytes("lots")


def test_a_trace_stored_twice_is_exported_once(pool, tmp_path):
    """Two writers that stored the same traces (every shard copied): the keyed `traces` view yields
    each trace once, so the streamed export has each mix row once, same as before the copy."""
    import shutil

    from dataengine.mix.ordered_rows import ordered_rows

    cfg = load_config_dict({"mix": {"reasoning": 50, "non_reasoning": 10}})
    mix = run_mix(pool, cfg, seed=2)
    con = pool.connect()
    try:
        before = [b for b in ordered_rows(con, mix["mix_id"], 64, 1 << 30, tmp_path / "sort")]
    finally:
        con.close()
    for shard in [p for p in pool.shards("traces") if not p.name.startswith("_")]:
        shutil.copy(shard, shard.with_name("copy-" + shard.name))  # every trace stored twice
    con = pool.connect()
    try:
        after = [b for b in ordered_rows(con, mix["mix_id"], 64, 1 << 30, tmp_path / "sort")]
    finally:
        con.close()
    ids = [t for b in after for t in b.column("trace_id").to_pylist()]
    assert len(ids) == len(set(ids)) == sum(b.num_rows for b in before) > 0
    assert ids == [t for b in before for t in b.column("trace_id").to_pylist()]
    assert not (tmp_path / "sort").exists()
