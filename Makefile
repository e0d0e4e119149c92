# Task file for churn-mlops. Every target runs with Kedro telemetry off.
SHELL := /bin/bash
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
export KEDRO_LOGGING_CONFIG ?= $(CURDIR)/conf/logging.yml

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv install install-dev run test test-fast lint format viz clean-data

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

## The unit tests only (no Docker, Spark, browser, Prometheus or end-to-end runs): the fast loop.
FAST_MARKERS := not slow and not docker and not spark and not browser and not prometheus and not kafka
test-fast: install-dev
	$(BIN)/python -m pytest -n auto -m "$(FAST_MARKERS)"

## The linters CI runs before the tests (.ci/run, .github/workflows/ci.yml, .pre-commit-config.yaml).
LINT_PATHS := src tests benchmarks
lint:
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

## Rewrites the tree to what `make lint` wants: sorts imports, drops dead `noqa`, formats.
format:
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

## kedro-viz on http://127.0.0.1:$(VIZ_PORT) (another port: make viz VIZ_PORT=4242).
VIZ_PORT ?= 4141
viz:
	$(BIN)/kedro viz run --host 127.0.0.1 --port $(VIZ_PORT) --no-browser

## Every generated file, and the folders Spark and versioned datasets leave (the layer folders stay).
clean-data:
	find data -type f ! -name .gitkeep -delete
	find data -mindepth 2 -type d -empty -delete

## The pipelines image the Kubernetes Jobs run (docs/handoff.md), built offline from a context
## prepared in dist/pipelines-image/. Optional: TAG=<registry>/churn-mlops-pipelines:<tag>,
## BASE_IMAGE=<Debian-based CPython 3.11 image> (default local/python:3.11).
.PHONY: pipelines-image
pipelines-image: install
	$(BIN)/python -m churn_mlops.release.pipelines_image $(if $(TAG),--tag $(TAG)) \
		$(if $(BASE_IMAGE),--base-image $(BASE_IMAGE))

## Release and retraining steps the GitHub workflows call (docs/cicd.md); each works by hand too.
.PHONY: export continuous-training k8s-manifests viz-build
## The registry's champion -> dist/<model>-v<version>/ (docs/export.md).
export: install
	$(BIN)/kedro run --pipeline export

## Monitor -> decide -> retrain -> gate -> export (docs/monitoring.md). CT_ARGS=--dry-run etc.
continuous-training: install
	$(BIN)/python -m churn_mlops.orchestration.continuous_training $(CT_ARGS)

## The Kubernetes tree for one image: IMAGE=<name>@sha256:<digest> MODEL_VERSION=<n> OUT=<dir>.
k8s-manifests: install
	$(BIN)/python -m churn_mlops.release.deploy --image "$(IMAGE)" \
		--model-version "$(MODEL_VERSION)" --out "$(OUT)"

## kedro-viz as a static site in build/ (uploaded by CI).
viz-build: install
	$(BIN)/kedro viz build
