# ax: the two commands a fresh machine needs are `make run` and `make test`.
# Both create the virtual environment (.venv) themselves, installing the exact
# versions pinned in requirements.lock (the set CI tests). `make lock` refreshes
# the lock after pyproject.toml's dependencies change; `make lock ARGS=--upgrade`
# moves every pin to the newest release within pyproject.toml's bounds.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench lint install lock clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## The main job on the simulated fleet: the dashboard with live demo traffic.
run: $(STAMP)
	$(BIN)/ax monitor realtime --demo

## Every test (Redis and PostgreSQL tests run when AX_TEST_REDIS_URL / AX_TEST_POSTGRES_URL are set),
## one pytest-xdist worker per core up to four, each test file in one worker (its module fixtures
## are set up once); each worker gets a Redis and a PostgreSQL database of its own (tests/conftest.py).
## `make test WORKERS=0` runs them in this process.
WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(WORKERS) --maxprocesses 4 --dist loadfile

## Every benchmark: each figure beside a baseline measured in the same run.
bench: $(STAMP)
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

## Pin every dependency (dev and postgres extras included) in requirements.lock.
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --extra dev --extra postgres --strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file requirements.lock $(ARGS) pyproject.toml

lint: $(STAMP)
	$(BIN)/ruff check axtui tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist build
