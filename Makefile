# The two README commands: `make quickstart` and `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
DE := $(VENV)/bin/dataengine
WS ?= workspace

.PHONY: setup quickstart test lint bench clean chromium

setup: $(VENV)/.installed

# Re-install when the dependency list or the pins change.
$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

quickstart: setup
	$(DE) --workspace $(WS) run examples/quickstart.yaml

test: setup chromium
	$(PY) -m pytest -q -p no:cacheprovider

# The report's page tests render it in headless Chromium (Debian's package); CI starts fresh.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

lint: setup
	$(VENV)/bin/ruff check dataengine filters trainers flows tests bench

bench: setup
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(WS) .pytest_cache
