# Two commands on a fresh machine with only Python 3.11 and make: `make run`, `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint types unit bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	ORCHESTRATOR_DATA_DIR=$${ORCHESTRATOR_DATA_DIR:-$(CURDIR)/data} $(BIN)/python main.py start --foreground

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint types unit

bench: $(STAMP)
	for b in bench/*_bench.py; do $(BIN)/python $$b || exit 1; done

# The dashboard in headless Chromium against a real daemon: docs/screenshots/board.png,
# session.png and their -dark twins.
screenshots: $(STAMP)
	ORCHESTRATOR_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest tests/browser -q -k screenshots

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
