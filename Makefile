# Quick start: `make run` (set up + run the whole DAG with `dvc repro`), `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
EXTRAS ?= test
UV_VERSION := 0.13.9

# DVC stages call `mrirecon`, so the venv must come first on PATH; keep every tool offline-quiet.
export PATH := $(BIN):$(PATH)
export DO_NOT_TRACK := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1

.PHONY: install run repro test ui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project (EXTRAS=test,gpu for a GPU)

run: $(STAMP)  ## the main job: every stale DVC stage, each a Prefect flow
	dvc repro
	mrirecon show

test: $(STAMP)  ## the test suite (end-to-end tests need MRIRECON_SOURCE)
	$(BIN)/python -m pytest

clean:  ## remove the venv and local tool state (not data/)
	rm -rf $(VENV) .prefect .pytest_cache
