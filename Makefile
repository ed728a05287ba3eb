# Two commands set up everything on a fresh machine:
#   make demo   - runs the main job (creates .venv on first use)
#   make test   - runs the test suite (creates .venv on first use)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# exact versions of this machine (torch from its local files); pyproject.toml has ranges
CONSTRAINTS := .ci/constraints.txt

.PHONY: demo test test-all lint format bench docs-api clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-cache-dir -c $(CONSTRAINTS) -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/xclip-video demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP)
	$(BIN)/xclip-video bench model

# API reference of the public library (xclip.__all__) as HTML in build/api; warnings fail it
docs-api: $(STAMP)
	$(BIN)/python -W error -m pdoc --docformat google -o build/api xclip

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build src/*.egg-info
