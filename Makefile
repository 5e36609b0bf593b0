# The two commands of the quick start. Each sets itself up from a fresh clone:
# a virtual environment under .venv with the project and its test dependencies.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# JupyterHub's proxy (Node 20): installed into the venv, where hub/jupyterhub_config.py looks first
CHP_VERSION := 4.6.3

.PHONY: run test bench clean

run: $(STAMP)
	$(BIN)/labcommons up

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/metadata.py

# Reinstall whenever the project's dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node configurable-http-proxy@$(CHP_VERSION)
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache
