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
# Where the dashboard and the viewers it starts (XProf, Perfetto) listen: this machine only,
# unless you choose the network (`make run HOST=0.0.0.0` or RELU_LAB_HOST=0.0.0.0).
# (tcsh exports HOST=<hostname>: only a HOST given on make's command line counts)
ifneq ($(origin HOST),command line)
HOST := $(or $(RELU_LAB_HOST),127.0.0.1)
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup build browser postgres run run-team test lint bench bench-timeit bench-depth bench-traces bench-app screenshots readme clean

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

# The store's tests also run against a real PostgreSQL server (tests/pg.py starts a throwaway
# cluster): install Debian's server when neither PATH nor /usr/lib/postgresql/*/bin has initdb.
postgres:
	@if command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; \
	then :; else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q \
	    postgresql; fi

run: build
	RELU_LAB_HOST=$(HOST) $(VENV)/bin/streamlit run app/main.py --server.port $(PORT) \
	  --server.address $(HOST) --server.headless true

# A local PostgreSQL (in /tmp, port TEAM_PG_PORT) and the dashboard on it: the team set-up on
# one machine. Ctrl-C stops both. Point other shells at it with RELU_LAB_STORE=<printed URL>.
TEAM_PG_DIR ?= /tmp/relu_lab_team_pg
TEAM_PG_PORT ?= 5433
run-team: build postgres
	@set -e; url=$$($(PY) -m profiling.storage.pg_cluster start $(TEAM_PG_DIR) --port $(TEAM_PG_PORT)); \
	trap '$(PY) -m profiling.storage.pg_cluster stop $(TEAM_PG_DIR) --port $(TEAM_PG_PORT)' EXIT; \
	echo "team store: $$url (export RELU_LAB_STORE=$$url to write to it)"; \
	RELU_LAB_STORE=$$url RELU_LAB_HOST=$(HOST) $(VENV)/bin/streamlit run app/main.py \
	  --server.port $(PORT) --server.address $(HOST) --server.headless true

test: build browser postgres
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

bench: build
	TF_CPU_ALLOCATOR_USE_BFC=true $(PY) -m profiling.bench.op

# The tool's medians against a plain timeit of the same calls, taking turns (README table).
bench-timeit: build
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m profiling.bench.timeit_check

# An eager op's cost against the stack depth of its caller (README table).
bench-depth: build
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m profiling.bench.stack_depth --rounds 21

# Page speed of the dashboard with 20 stored runs of 110 cases (Compare < 2 s, Run < 1 s).
bench-app: build
	$(PY) -m app.bench_pages

# The README's pictures (docs/*.png) from a real session in headless Chromium (~3 min).
screenshots: build browser
	$(PY) -m app.screenshots

# Trace ingestion at scale (generated 1M- and 8M-event Chrome traces, removed after): README
# "Traces at scale".
bench-traces: build
	$(PY) -m profiling.bench.traces --events 1e6,8e6

# Regenerates the README's tables from the code.
readme: build
	$(PY) -m relu_impls.semantics --update .

clean:
	rm -rf $(VENV) .relu_lab .pytest_cache
