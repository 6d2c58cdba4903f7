from pathlib import Path

import pytest

from dataengine.config import ConfigError, apply_overrides, load_config


def test_defaults_resolve_without_a_file():
    cfg = load_config(None)
    assert cfg.section("ingest").shard_rows > 0
    assert "ingest:" in cfg.to_yaml()


def test_unknown_field_names_file_and_path(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("ingest:\n  shard_rowz: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: ingest.shard_rowz: unknown field"):
        load_config(p)


def test_mistyped_field_names_file_and_path(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("ingest:\n  shard_rows: many\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: ingest.shard_rows: expected int, got 'many'"):
        load_config(p)


def test_unknown_section_is_rejected(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("ingset: {}\n")
    with pytest.raises(ConfigError, match="unknown section 'ingset'"):
        load_config(p)


def test_validate_hook_runs_at_load(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("ingest:\n  shard_rows: 0\n")
    with pytest.raises(ConfigError, match="must be positive"):
        load_config(p)


def test_flag_overrides_are_type_checked():
    cfg = load_config(None).section("ingest")
    assert apply_overrides(cfg, {"shard_rows": 7, "strict": None}).shard_rows == 7
    with pytest.raises(ConfigError):
        apply_overrides(cfg, {"shard_rows": "7"})


def test_two_stages_cannot_claim_one_section_name():
    from dataclasses import dataclass

    from dataengine.config import section

    load_config(None).to_dict()  # every stage's sections registered

    with pytest.raises(ValueError, match="'ingest' is already registered"):
        @section("ingest")
        @dataclass
        class Other:
            x: int = 1


def test_resolved_config_reads_back(tmp_path):
    """`config show` output is a valid pipeline file: every section's defaults load again."""
    p = tmp_path / "resolved.yaml"
    p.write_text(load_config(None).to_yaml())
    assert load_config(p).to_dict() == load_config(None).to_dict()
