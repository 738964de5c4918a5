PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Test files run on two workers, each with a whole stack of its own (files share nothing across
# workers). With servers of your own (BACKOFFICE_TEST_*), run on one: PYTEST_WORKERS=0.
PYTEST_WORKERS ?= 2

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
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy domain db api workflows activities workers ops
	$(VENV)/bin/lint-imports

clean-data:
	rm -rf .backoffice
