"""Config files for flow tests: small real prompt sets from ../shared/data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_config(path: Path, shared_data: Path, **run: Any) -> Path:
    prompts = [{
        "path": str(shared_data / "benchmarks/aime24_nemo_skills.jsonl"),
        "mapping": {"prompt": "problem", "reference_answer": "expected_answer"},
        "domain": "math",
        "language": "en",
    }]
    run = {"steps": ["prompts"], "prompts": prompts, **run}
    path.write_text(yaml.safe_dump({"pipeline": "rejection_sampling", "run": run}))
    return path
