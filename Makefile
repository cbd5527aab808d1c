# churnhouse — the two commands a newcomer runs are `make demo` and `make test`.
# Each creates or reuses .venv by itself; a second run does not reinstall.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
PYTEST_ARGS ?=
BENCH_ARGS ?=

export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export GX_ANALYTICS_ENABLED := false

.PHONY: install demo celery-demo test bench lint lock services clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

## The main job end to end on the embedded default (DuckDB), with a summary.
demo: $(STAMP)
	$(BIN)/python -m churnhouse.devkit.demo

## One scheduled night on Airflow's CeleryExecutor (Redis, PostgreSQL, two workers),
## compared with a LocalExecutor night; ends with `tasks per worker: ...`.
celery-demo: $(STAMP) services
	$(BIN)/python -m churnhouse.devkit.celery_demo

## The whole test suite. Real PostgreSQL/MariaDB are used when present.
test: $(STAMP) services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Speed and memory targets at a bigger scale (ratios against in-process baselines).
bench: $(STAMP)
	$(BIN)/python -m churnhouse.devkit.bench $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests dags expectations
	$(BIN)/ruff format --check src tests dags expectations

## Re-resolve the pinned set after editing requirements.in.
lock: $(STAMP)
	$(BIN)/uv pip compile requirements.in --python-version 3.11 --no-header -o requirements.lock

## Start the local PostgreSQL when it is installed but down (tests skip or, with CI set, fail without it).
services:
	@bash scripts/ensure-services.sh

clean:
	rm -rf $(VENV) .churnhouse build *.egg-info
