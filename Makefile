# ax: the two commands a fresh machine needs are `make run` and `make test`.
# Both create the virtual environment (.venv) themselves.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench lint install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## The main job on the simulated fleet: the dashboard with live demo traffic.
run: $(STAMP)
	$(BIN)/ax monitor realtime --demo

## Every test (Redis and PostgreSQL tests run when AX_TEST_REDIS_URL / AX_TEST_POSTGRES_URL are set).
test: $(STAMP)
	$(BIN)/python -m pytest -q

## Every benchmark: each figure beside a baseline measured in the same run.
bench: $(STAMP)
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

lint: $(STAMP)
	$(BIN)/ruff check axtui tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist build
