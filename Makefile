# The two commands a new machine needs: `make demo` and `make test`.
# Both create the virtual environment and install what is missing first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint unit integration setup clean

demo: setup
	$(BIN)/contractflow demo

test: setup lint
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -q tests/unit

integration: setup
	$(BIN)/pytest -q tests/integration

setup: $(VENV)/.installed
	@scripts/ensure-redis

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

clean:
	rm -rf $(VENV) .contractflow .pytest_cache .mypy_cache .ruff_cache
