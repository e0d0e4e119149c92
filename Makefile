# Task file for churn-mlops. Every target runs with Kedro telemetry off.
SHELL := /bin/bash
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
export KEDRO_LOGGING_CONFIG ?= $(CURDIR)/conf/logging.yml

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv install install-dev run test lint viz clean-data

venv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: venv
	$(BIN)/pip install --quiet -e ".[serving]"

install-dev: venv
	$(BIN)/pip install --quiet -e ".[serving,streaming,dev,spark]"

## Command 1 of the README: install and run the whole default pipeline on simulated data.
run: install
	$(BIN)/kedro run

## Command 2 of the README: install and run the whole test suite.
test: install-dev
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check src tests benchmarks

viz:
	$(BIN)/kedro viz run --host 127.0.0.1 --no-browser

## Every generated file, and the folders Spark and versioned datasets leave (the layer folders stay).
clean-data:
	find data -type f ! -name .gitkeep -delete
	find data -mindepth 2 -type d -empty -delete

## The pipelines image the Kubernetes Jobs run (docs/handoff.md), built offline from a context
## prepared in dist/pipelines-image/. Optional: TAG=<registry>/churn-mlops-pipelines:<tag>,
## BASE_IMAGE=<Debian-based CPython 3.11 image> (default local/python:3.11).
.PHONY: pipelines-image
pipelines-image: install
	$(BIN)/python -m churn_mlops.pipelines_image $(if $(TAG),--tag $(TAG)) \
		$(if $(BASE_IMAGE),--base-image $(BASE_IMAGE))
