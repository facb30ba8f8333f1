# The README's two commands: `make lab` and `make test`. Both create the environment first
# when it is missing or older than the files that pin it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help lab test doctor lint typecheck scan unit notebooks execute-notebooks pins clean check-python

help:
	@echo "make lab    start JupyterLab on http://127.0.0.1:8888 at notebooks/00-start-here.ipynb"
	@echo "make test   lint, type-check, scan for secrets, run unit tests and every notebook"
	@echo "make doctor check this environment for a workshop and name the fix for each problem"
	@echo "make execute-notebooks   re-run the notebooks and save their outputs (no widget state)"
	@echo "make pins   regenerate binder/requirements.txt and requirements-dev.txt"

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "error: Python 3.11 or newer is needed; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing)." >&2; \
	  echo "       Install it, or point make at it: make PYTHON=/usr/bin/python3.11 test" >&2; \
	  exit 1; }

$(STAMP): pyproject.toml binder/requirements.txt requirements-dev.txt | check-python
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "error: could not create $(VENV). On Debian or Ubuntu: apt-get install python3-venv" >&2; \
	  rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

lab: check-python $(STAMP)
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=8888 \
	  --ServerApp.port_retries=0 $(if $(filter 0,$(shell id -u)),--allow-root) \
	  notebooks/00-start-here.ipynb

doctor: check-python $(STAMP)
	$(BIN)/python -m patterns doctor

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

scan: $(STAMP)
	$(BIN)/python -m patterns scan .

unit: $(STAMP)
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks $(PYTEST_ARGS)

test: check-python lint typecheck scan $(STAMP)
	$(BIN)/python -m pytest --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  tests notebooks $(PYTEST_ARGS)

execute-notebooks: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py notebooks/*.ipynb

pins: check-python
	rm -rf .pins-venv
	$(PYTHON) -m venv .pins-venv
	.pins-venv/bin/python -m pip install --quiet --upgrade pip
	.pins-venv/bin/python -m pip install --quiet .
	.pins-venv/bin/python tools/write_pins.py runtime > binder/requirements.txt.new
	.pins-venv/bin/python -m pip install --quiet '.[test]'
	.pins-venv/bin/python tools/write_pins.py dev binder/requirements.txt.new > requirements-dev.txt
	mv binder/requirements.txt.new binder/requirements.txt
	rm -rf .pins-venv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
