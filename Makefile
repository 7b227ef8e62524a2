# Two commands on a fresh machine with only Python 3.11 and make: `make run`, `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# `make install`: the `orchestrator` command for this user, independent of this checkout:
# with pipx when it is there, else in a venv of its own; either way it ends up as
# ~/.local/bin/orchestrator, the path the README's systemd unit runs.
INSTALL_VENV ?= $(HOME)/.local/share/orchestrator/venv
BIN_DIR      ?= $(HOME)/.local/bin
INSTALL_WITH ?= $(if $(shell command -v pipx 2>/dev/null),pipx,venv)

.PHONY: run test lint types unit bench screenshots clean install uninstall

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

install:
ifeq ($(INSTALL_WITH),pipx)
	PIPX_BIN_DIR=$(BIN_DIR) pipx install --force --python $(PYTHON) .
else
	$(PYTHON) -m venv $(INSTALL_VENV)
	$(INSTALL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INSTALL_VENV)/bin/python -m pip install --quiet --upgrade .
	mkdir -p $(BIN_DIR)
	ln -sfn $(INSTALL_VENV)/bin/orchestrator $(BIN_DIR)/orchestrator
endif
	@echo "installed $(BIN_DIR)/orchestrator ($$($(BIN_DIR)/orchestrator --version))"
	@case ":$$PATH:" in *":$(BIN_DIR):"*) ;; *) \
	  echo "$(BIN_DIR) is not on your PATH; add this line to ~/.profile (or your shell's rc file):"; \
	  echo '  export PATH="$(BIN_DIR):$$PATH"';; esac

uninstall:
ifeq ($(INSTALL_WITH),pipx)
	pipx uninstall orchestrator
else
	rm -f $(BIN_DIR)/orchestrator
	rm -rf $(INSTALL_VENV)
endif
