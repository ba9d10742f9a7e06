# Two commands: `make run` (dashboard on :8501) and `make test` (the whole suite).
# Both set up what they need and are quick when nothing changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS ?= $(or $(RELU_LAB_REQUIREMENTS),requirements.txt)
STAMP := $(VENV)/.installed-$(notdir $(REQUIREMENTS))+project
CHROMIUM := /usr/bin/chromium
PORT ?= 8501
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup build browser run test lint bench bench-timeit bench-traces bench-app screenshots readme clean

setup: $(STAMP)

# The project itself goes in editable (relu-lab, `python -m profiling` from any directory); its
# dependencies are the pinned requirements, so no build isolation and no second resolve.
$(STAMP): $(REQUIREMENTS) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r $(REQUIREMENTS)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
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
	TF_CPU_ALLOCATOR_USE_BFC=true $(PY) -m profiling.op_bench

# The tool's medians against a plain timeit of the same calls, alternating (README table).
bench-timeit: build
	$(PY) -m profiling.timeit_check

# Page speed of the dashboard with 20 stored runs of 110 cases (Compare < 2 s, Run < 1 s).
bench-app: build
	$(PY) -m app.bench_pages

# The README's pictures (docs/*.png) from a real session in headless Chromium (~3 min).
screenshots: build browser
	$(PY) -m app.screenshots

# Trace ingestion at scale (generated 1M- and 8M-event Chrome traces, removed after): README
# "Traces at scale".
bench-traces: setup
	$(PY) -m profiling.trace_bench --events 1e6,8e6

# Regenerates the README's tables from the code.
readme: build
	$(PY) -m relu_impls.semantics --update-readme README.md

clean:
	rm -rf $(VENV) .relu_lab .pytest_cache
