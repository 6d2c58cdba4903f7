"""Write `datasets.DatasetDict.save_to_disk`'s folder layout directly from streamed Arrow tables.

Streaming rows to a temporary Arrow file and then calling `save_to_disk` reads and rewrites every
byte of the corpus a second time (16 GB at R1 scale). The layout is small and stable, so the
export writes it in one pass: per split, `data-NNNNN-of-NNNNN.arrow` (Arrow IPC stream files whose
schema carries the `huggingface` features metadata, as `datasets.arrow_writer.ArrowWriter`
writes them), `state.json` and `dataset_info.json`; at the top, `dataset_dict.json`.
`datasets.load_from_disk` reads it (tests/mix/test_mix_export.py loads every export this way).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa


def features_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with the `huggingface` features metadata `datasets` reads back (and checks)."""
    import datasets

    return datasets.Features.from_arrow_schema(schema).arrow_schema


def write_split_meta(folder: Path, schema: pa.Schema, files: list[str]) -> None:
    """`state.json` and `dataset_info.json` of one split whose data `files` are already written."""
    import datasets
    from datasets.fingerprint import generate_random_fingerprint
    from datasets.utils.py_utils import asdict

    state = {
        "_data_files": [{"filename": f} for f in files],
        "_fingerprint": generate_random_fingerprint(),
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": None,
    }
    (folder / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    info = asdict(datasets.DatasetInfo(features=datasets.Features.from_arrow_schema(schema)))
    # save_to_disk sorts only the first level: nested feature order is the column order
    (folder / "dataset_info.json").write_text(json.dumps({k: info[k] for k in sorted(info)}, indent=2),
                                              encoding="utf-8")


def write_dataset_dict(folder: Path, splits: list[str]) -> None:
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": splits}), encoding="utf-8")
