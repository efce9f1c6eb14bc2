# stagetrack: the two commands a fresh machine needs are `make repro` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: install repro test bench clean-venv

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)  ## create .venv if missing and install everything (pinned)

repro: install  ## run the whole pipeline on the synthetic default
	time dvc repro

test: install  ## run the test suite (includes a smoke repro in a temporary copy)
	$(BIN)/python -m pytest

bench: install  ## benchmarks against peers: bench/results.json, bench/RESULTS.md, plots/bench/ (see bench/README.md)
	$(BIN)/python bench/run.py

clean-venv:
	rm -rf $(VENV)
