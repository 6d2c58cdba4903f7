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


def test_relative_paths_resolve_against_the_config_files_folder(tmp_path, monkeypatch, shared_data):
    """A config runs the same from any directory: file paths are relative to the config file;
    names that are not paths (a hub id, a built-in template) stay as written."""
    import shutil

    conf_dir = tmp_path / "project" / "configs"
    (conf_dir / "data").mkdir(parents=True)
    shutil.copy(shared_data / "benchmarks" / "aime24_nemo_skills.jsonl", conf_dir / "data" / "aime.jsonl")
    cfg_file = conf_dir / "p.yaml"
    cfg_file.write_text(
        "run:\n  prompts: [{path: data/aime.jsonl}]\n  export_dir: out/ds\n"
        "generate: {model: Qwen/Qwen2.5-0.5B, template: rejection_sampling}\n"
        "decontaminate: {benchmarks: {aime: {path: data/aime.jsonl}}}\n"
        "demo_prompts: {benchmark_path: /abs/bench.jsonl}\n"
    )
    monkeypatch.chdir(tmp_path)  # anywhere but the config's folder
    cfg = load_config("project/configs/p.yaml")
    run = cfg.section("run")
    assert run.prompts[0].path == str(conf_dir / "data" / "aime.jsonl")
    assert Path(run.prompts[0].path).is_file()
    assert run.export_dir == str(conf_dir / "out" / "ds")
    assert cfg.section("decontaminate").benchmarks["aime"].path == str(conf_dir / "data" / "aime.jsonl")
    assert cfg.section("generate").model == "Qwen/Qwen2.5-0.5B"  # a hub id, not a file here
    assert cfg.section("generate").template == "rejection_sampling"
    assert cfg.section("demo_prompts").benchmark_path == "/abs/bench.jsonl"
    # read back from `config show` output, the absolute paths stay put
    again = tmp_path / "again.yaml"
    again.write_text(cfg.to_yaml())
    assert load_config(again).section("run").prompts[0].path == run.prompts[0].path


def test_unknown_field_suggests_the_closest_known_one(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("generate:\n  temprature: 0.6\n")
    with pytest.raises(ConfigError, match=r"generate\.temprature: unknown field \(did you mean 'temperature'\?\)"):
        load_config(p)
