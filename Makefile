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
	# An editable install leaves src/ uncompiled; with PYTHONDONTWRITEBYTECODE set
	# every CLI start would recompile it (about 0.1 s).
	$(BIN)/python -m compileall -q src >/dev/null
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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .demo .measure

# Hardening (docs/reliability.md). `make fuzz` runs the fuzzers long
# (LAYERKIT_FUZZ_EXAMPLES per property, default 100000); `make hardening-long`
# also runs the long kill-anywhere variant (500 kills), a 1 GiB compression bomb and
# a longer faulty-registry soak (1000 pulls + 1000 pushes, 50 builds).
.PHONY: hardening fuzz hardening-long
FUZZ_EXAMPLES ?= 100000

hardening: setup
	$(BIN)/pytest -q -p no:cacheprovider tests/hardening

fuzz: setup
	LAYERKIT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) LAYERKIT_FUZZ_SEED=random \
		$(BIN)/pytest -q -p no:cacheprovider tests/hardening/fuzz

hardening-long: setup
	LAYERKIT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) LAYERKIT_FUZZ_SEED=random \
	LAYERKIT_KILLS=500 LAYERKIT_BOMB_BYTES=1073741824 \
	LAYERKIT_SOAK_OPS=1000 LAYERKIT_SOAK_BUILDS=50 \
		$(BIN)/pytest -q -p no:cacheprovider tests/hardening
