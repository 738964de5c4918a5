PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint venv clean-data

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start the whole stack with embedded defaults (Ctrl-C stops it all).
run: $(STAMP)
	$(PY) -m ops dev

## Run the whole test suite (starts its own Postgres and Temporal).
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy domain db api workflows activities flows workers ops
	$(VENV)/bin/lint-imports

clean-data:
	rm -rf .backoffice
