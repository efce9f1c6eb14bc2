# stagetrack: the two commands a fresh machine needs are `make repro` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: install lock repro test bench clean-venv

LOCK := requirements.lock

$(STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$$(grep '^pip==' $(LOCK))"
	$(BIN)/python -m pip install -q -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m pip check
	@touch $(STAMP)

install: $(STAMP)  ## create .venv if missing and install everything at the locked versions

lock:  ## refresh requirements.lock from requirements.txt: a fresh venv, pip's resolver, pip freeze
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q -U pip && .lock-venv/bin/python -m pip install -q -r requirements.txt
	{ sed -n '1,2p' $(LOCK); echo "pip==$$(.lock-venv/bin/python -m pip --version | cut -d' ' -f2)"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable; } > $(LOCK).new && mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv

repro: install  ## run the whole pipeline on the synthetic default
	time dvc repro

test: install  ## run the test suite (includes a smoke repro in a temporary copy)
	$(BIN)/python -m pytest

bench: install  ## benchmarks against peers: bench/results.json, bench/RESULTS.md, plots/bench/ (see bench/README.md)
	$(BIN)/python bench/run.py

clean-venv:
	rm -rf $(VENV)
