"""`dataengine sql` is read-only without --write; templates render in Jinja's sandbox."""

from __future__ import annotations

import pytest
from _faults import AIME, SKY_MAP, run_cli

from dataengine.prompting import PromptRenderer
from dataengine.store import Workspace

# Every write form the issue saw, and its neighbours: (SQL, words the refusal must contain).
WRITE_FORMS = [
    ("copy (select 1 as x) to '{out}/evil.sh'", "COPY writes files"),
    ("copy (select * from traces limit 1) to '{ws}/tables/traces/evil.parquet'", "COPY writes files"),
    ("export database '{out}/dump'", "EXPORT DATABASE writes files"),
    ("select 1; select 2", "2 statements given"),
    ("select 1; copy (select 1) to '{out}/x.csv'", "2 statements given"),
    ("set threads = 1", "SET"),
    ("reset threads", "SET"),
    ("set enable_external_access = true", "SET"),
    ("attach '{out}/other.duckdb' as o", "ATTACH"),
    ("install httpfs", "INSTALL/LOAD"),
    ("load json", "INSTALL/LOAD"),
    ("create table t as select 1", "CREATE"),
    ("create or replace view traces as select 1", "CREATE"),
    ("insert into _catalog_meta values ('a', 'b')", "INSERT"),
    ("update _catalog_meta set value = 'x'", "UPDATE"),
    ("delete from _catalog_meta", "DELETE"),
    ("drop view traces", "DROP"),
    ("checkpoint", "CALL"),
    ("pragma enable_profiling", "PRAGMA"),
    ("explain analyze copy (select 1) to '{out}/y.csv'", "EXPLAIN ANALYZE"),
    ("vacuum", "VACUUM"),
    ("begin transaction", "transactions"),
]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, shared_data):
    ws_dir = tmp_path_factory.mktemp("sql") / "ws"
    Workspace.init(ws_dir)
    run_cli(ws_dir, "ingest", str(shared_data / AIME), *SKY_MAP)
    return ws_dir


@pytest.mark.parametrize(("sql", "why"), WRITE_FORMS, ids=[w[0][:40] for w in WRITE_FORMS])
def test_sql_refuses_each_write_form_without_write_and_says_why(ingested, tmp_path, sql, why):
    before = sorted(p.name for p in (ingested / "tables" / "traces").iterdir())
    p = run_cli(ingested, "sql", sql.format(out=tmp_path, ws=ingested), check=False)
    assert p.returncode != 0
    assert why in p.stderr and ("read-only without --write" in p.stderr or "exactly one" in p.stderr), p.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere
    assert sorted(p.name for p in (ingested / "tables" / "traces").iterdir()) == before


@pytest.mark.parametrize("sql", [
    "select * from read_csv('/etc/passwd')",
    "select * from glob('/root/*')",
    "select * from read_text('{ws}/../../../../etc/hostname')",
    "select * from read_parquet('/usr/**/*.parquet')",
])
def test_sql_reads_nothing_outside_the_workspace(ingested, sql):
    p = run_cli(ingested, "sql", sql.format(ws=ingested), check=False)
    assert p.returncode != 0 and "Permission Error" in p.stderr, p.stderr


def test_sql_reads_inside_the_workspace_and_config_allowed_dirs(ingested, tmp_path, shared_data):
    assert run_cli(ingested, "sql", "-f", "csv", "select count(*) from traces").stdout.splitlines()[1] == "30"
    # Files in the workspace are readable; a folder outside it only when the config allows it.
    glob = f"select count(*) from read_json_auto('{shared_data / AIME}')"
    assert run_cli(ingested, "sql", glob, check=False).returncode != 0
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"workspace:\n  sql_allowed_dirs: ['{shared_data / 'traces'}']\n")
    out = run_cli(ingested, "sql", "--config", str(cfg), "-f", "csv", glob).stdout
    assert out.splitlines()[1] == "30"


def test_named_queries_resolve_inside_sql_only(ingested):
    for name in ("../../x", "/etc/passwd", "views/../../pyproject", "..", "a b"):
        p = run_cli(ingested, "sql", "--query", name, check=False)
        assert p.returncode != 0 and "bad query name" in p.stderr, (name, p.stderr)
    assert run_cli(ingested, "sql", "--query", "quarantine_summary").returncode == 0


def test_write_mode_still_never_writes_into_tables(ingested, tmp_path):
    p = run_cli(ingested, "sql", "--write", f"copy (select 1) to '{ingested}/tables/traces/evil.parquet'", check=False)
    assert p.returncode != 0 and "only the store writes shards there" in p.stderr
    assert not (ingested / "tables" / "traces" / "evil.parquet").exists()
    # what --write is for still works: a scratch table in the catalog
    run_cli(ingested, "sql", "--write", "create or replace table scratch as select 42 as x")
    assert run_cli(ingested, "sql", "-f", "csv", "select x from scratch").stdout.splitlines()[1] == "42"


def test_a_template_cannot_reach_python_internals(tmp_path):
    marker = tmp_path / "pwned"
    tpl = tmp_path / "evil.jinja"
    tpl.write_text("{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "; id').read() }} {{ prompt }}")
    r = PromptRenderer(str(tpl))
    with pytest.raises(ValueError, match="sandbox"):
        r.render({"prompt": "What is 1+1?", "prompt_id": "p"})
    assert not marker.exists()
    # a plain template still renders
    ok = tmp_path / "ok.jinja"
    ok.write_text("Solve: {{ prompt }} ({{ domain }})")
    assert PromptRenderer(str(ok)).render({"prompt": "What is 1+1?", "domain": "math"}) == "Solve: What is 1+1? (math)"


def test_generate_with_an_evil_template_stops_before_it_starts(ingested, tmp_path):
    marker = tmp_path / "pwned"
    tpl = tmp_path / "evil.jinja"
    tpl.write_text("{{ lipsum.__globals__['os'].system('touch " + str(marker) + "') }}{{ prompt }}")
    p = run_cli(ingested, "generate", "--template", str(tpl), "--n", "1", check=False)
    assert p.returncode != 0 and "sandbox" in p.stderr, p.stderr
    assert not marker.exists()
