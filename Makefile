# Two commands: `make run` (dashboard on :8501) and `make test` (the whole suite).
# Both set up what they need and are quick when nothing changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS ?= $(or $(RELU_LAB_REQUIREMENTS),requirements.txt)
STAMP := $(VENV)/.installed-$(notdir $(REQUIREMENTS))
CHROMIUM := /usr/bin/chromium
PORT ?= 8501
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup build browser run test lint bench bench-traces readme clean

setup: $(STAMP)

$(STAMP): $(REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r $(REQUIREMENTS)
	@rm -f $(VENV)/.installed-*
	@touch $@

# Compiles csrc/ into a cache keyed by TF version, sources and compiler; a no-op when up to date.
build: setup
	$(PY) -m relu_impls.build

# The end-to-end test drives Debian's chromium (Playwright cannot download browsers here).
browser: $(CHROMIUM)

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium

run: build
	$(VENV)/bin/streamlit run app/main.py --server.port $(PORT) --server.headless true

test: build browser
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

bench: build
	TF_CPU_ALLOCATOR_USE_BFC=true $(PY) -m relu_impls.bench

# Trace ingestion at scale (generated 1M- and 8M-event Chrome traces, removed after): README
# "Traces at scale".
bench-traces: setup
	$(PY) -m profiling.trace_bench --events 1e6,8e6

# Regenerates the README's tables from the code.
readme: build
	$(PY) -m relu_impls.semantics --update-readme README.md

clean:
	rm -rf $(VENV) .relu_lab .pytest_cache
