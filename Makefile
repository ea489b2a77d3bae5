# The two commands of the quick start. Each does its own set-up (a .venv with pinned dependencies) the
# first time, and only what changed afterwards.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.serflow-installed
CORES ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup test lint demo clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml scripts/bootstrap.sh
	@PYTHON=$(PYTHON) bash scripts/bootstrap.sh $(VENV)
	@touch $@

setup: $(STAMP)  ## create .venv and install pinned dependencies (idempotent)

lint: $(STAMP)  ## ruff; snakemake --lint; dvc.yaml up to date with the Snakefile
	$(BIN)/ruff check .
	$(BIN)/ruff format --check serflow tests workflow_scripts benchmarks
	$(BIN)/snakemake --lint text
	$(BIN)/python scripts/dvc_stages.py --check

test: $(STAMP)  ## lint + the whole pytest suite, one worker per core (pytest-xdist; a test file stays on one worker)
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -n $(CORES) --dist loadfile

demo: $(STAMP)  ## run the workflow on the synthetic demo corpus (progress and one line per trained fold)
	$(BIN)/snakemake --cores $(CORES) --quiet rules
	@$(BIN)/serflow corpus describe data/demo/manifest.parquet
	@echo; echo "Results: results/demo_*.json (schema: docs/results.md); per fold: models/demo/"
	@$(BIN)/serflow results results/demo_*.json

clean:  ## remove workflow outputs (keeps .venv)
	rm -rf data results logs .snakemake
