# The two README commands: `make quickstart` and `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
DE := $(VENV)/bin/dataengine
WS ?= workspace

.PHONY: setup quickstart test lint bench clean

setup: $(VENV)/.installed

# Re-install when the dependency list or the pins change.
$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

quickstart: setup
	$(DE) --workspace $(WS) init
	$(DE) --workspace $(WS) ingest examples/sample_traces.jsonl --kind traces --map completion=response --map reference_answer=gold
	$(DE) --workspace $(WS) sql "select domain, think_format, count(*) as traces, count(*) filter (where think_closed) as closed from traces group by all order by all"
	$(DE) --workspace $(WS) sql --query quarantine_summary
	$(DE) --workspace $(WS) demo-prompts 200
	$(DE) --workspace $(WS) generate --engine simulated --n 4 --template cold_start
	$(DE) --workspace $(WS) sql --query generation_progress

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check dataengine filters trainers flows tests bench

bench: setup
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(WS) .pytest_cache
