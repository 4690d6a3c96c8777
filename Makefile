# Quickstart: `make demo`, then `make test`. The first run creates .venv and installs the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint up schemas bench clean chromium wrk

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "WI needs Python 3.11 or newer; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(INSTALLED)

demo: $(INSTALLED)  ## the platform on embedded defaults with a scripted workload
	$(BIN)/wi demo

test: lint chromium wrk  ## lint, type-check and the whole test suite
	$(BIN)/pytest

chromium:  ## Debian's chromium, for the dashboard's browser test (Playwright drives it)
	bash tools/chromium/install

wrk:  ## Debian's wrk, the gateway benchmark's load generator (a tiny run of it is a test)
	bash tools/wrk/install

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

up: $(INSTALLED)  ## run the platform in the foreground (state in .wi/)
	$(BIN)/wi up

bench: $(INSTALLED) wrk  ## every benchmark against its raw baseline: bench/results/latest.json and the README
	$(BIN)/python bench/run.py

schemas: $(INSTALLED)  ## regenerate schemas/ from the models
	$(BIN)/wi schemas export

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .wi
