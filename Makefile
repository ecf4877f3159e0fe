# layerkit: one entry point for a new machine, a developer and CI.
#   make demo   install everything, then run layerkit on the bundled example
#   make test   install everything, then run lint, type checks and the whole test suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXAMPLE := examples/python-service

.PHONY: all setup system-deps demo test lint typecheck pytest clean

all: test

system-deps:
	bash scripts/install-system-deps.sh

$(BIN)/layerkit: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: system-deps $(BIN)/layerkit

demo: setup
	bash scripts/demo.sh

lint: setup
	$(BIN)/ruff check src tests benchmarks

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .demo
