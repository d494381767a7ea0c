# Two commands do all set-up on a fresh machine with Python 3.11+ and make: `make demo`, `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
# Use uv from PATH when there is one; otherwise install it into .tools/ (from PyPI) on first use.
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export UV_PYTHON_DOWNLOADS := never
PYTEST_ARGS ?=

.PHONY: help install system-deps demo test ui lint format typecheck bench clean-instance

help:
	@echo "make demo   install, then run the whole graph on the simulated market"
	@echo "make test   install, then run the test suite"
	@echo "make ui     start the Dagster UI + daemon and the MLflow UI on 127.0.0.1"
	@echo "            (DAGSTER_PORT=3000 MLFLOW_PORT=5000 to change the ports)"
	@echo "make lint   ruff + mypy;  make bench   benchmarks"

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/python -m pip install --quiet --disable-pip-version-check uv

install: $(UV)
	$(UV) sync --locked
	@mkdir -p $(DAGSTER_HOME)
	@ln -sf ../dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	@# The dagster CLI reads .env from the working directory before it resolves DAGSTER_HOME.
	@# Only that line is ours: a key or other setting kept in .env is never touched.
	@bash scripts/env-dagster-home.sh "$(DAGSTER_HOME)"
	@# The instance's first open, serialized (concurrent first opens can corrupt SQLite storage).
	@$(UV) run python -m smallcaps_assets.instance_setup

# chromium + chromedriver and PostgreSQL for the end-to-end tests (installed when missing).
system-deps:
	@bash scripts/system-deps.sh

demo: install
	$(UV) run smallcaps demo

test: install system-deps
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	@# pytest exits 5 when it collects nothing; make treats any non-zero exit as failure.
	$(UV) run pytest -n 2 $(PYTEST_ARGS)

DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000
UI_HOST ?= 127.0.0.1

ui: install
	$(UV) run smallcaps ui --host $(UI_HOST) --dagster-port $(DAGSTER_PORT) --mlflow-port $(MLFLOW_PORT)

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

format: install
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

bench: install
	$(UV) run python -m benchmarks

clean-instance:
	rm -rf $(DAGSTER_HOME)
