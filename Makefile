# Quick start: `make run` (set up + run the whole DAG with `dvc repro`), `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
EXTRAS ?= test
UV_VERSION := 0.13.9
BENCH_VENV := .venv-bench
TORCH_VERSION := 2.13.0

# DVC stages call `mrirecon`, so the venv must come first on PATH; keep every tool offline-quiet.
export PATH := $(BIN):$(PATH)
export DO_NOT_TRACK := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1

.PHONY: install run test lint ui quality clean bench bench-pipeline bench-torch-venv

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

ui: $(STAMP)  ## Prefect server + UI and MLflow UI on 127.0.0.1 (Ctrl-C stops both)
	mrirecon ui

quality: $(STAMP)  ## the quality profile (params-quality.yaml becomes params.yaml), then the README table
	mrirecon run --profile quality
	mrirecon report

test: $(STAMP)  ## the test suite (end-to-end tests need MRIRECON_SOURCE)
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff (lint + format check) and mypy, as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)  ## benchmarks 1-3: ingestion, scale/memory, training throughput -> reports/bench.json (~20 min, 2 cores)
	$(BIN)/python benchmarks/ingest_bench.py $(INGEST_BENCH_ARGS)
	$(BIN)/python benchmarks/scale_bench.py $(SCALE_BENCH_ARGS)
	$(BIN)/python benchmarks/train_throughput.py $(TRAIN_BENCH_ARGS)

bench-pipeline: $(STAMP)  ## benchmark 4: whole pipeline (quick profile) in a temp copy; PIPELINE_BENCH_ARGS=--default adds the default profile
	$(BIN)/python benchmarks/pipeline_bench.py $(PIPELINE_BENCH_ARGS)

bench-torch-venv: $(BENCH_VENV)/.installed-torch-$(TORCH_VERSION)  ## separate venv with PyTorch (CPU) for the U-Net comparison; never a project dependency

$(BENCH_VENV)/.installed-torch-$(TORCH_VERSION):
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q "torch==$(TORCH_VERSION)" numpy
	rm -f $(BENCH_VENV)/.installed-torch-*
	touch $@

clean:  ## remove the venv and local tool state (not data/)
	rm -rf $(VENV) .prefect .pytest_cache
