# The two commands of the quick start. Each sets itself up from a fresh clone:
# a virtual environment under .venv with the project and its test dependencies.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := $(VENV)/node/.installed
# JupyterHub's proxy (Node 20): installed into the venv, where hub/jupyterhub_config.py looks first
CHP_VERSION := 4.6.3
# the accessibility checker the browser tests inject into every page (tests/e2e/test_every_page.py)
AXE_VERSION := 4.11.0

.PHONY: run test bench clean

run: $(STAMP)
	$(BIN)/labcommons up

# one test process per core (pytest-xdist), each taking whole files, so that a module's shared
# fixtures (a demo commons, a browser) are made once; TEST_WORKERS=0 runs them in this process
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/metadata.py

# Reinstall whenever the project's dependencies change (the npm packages: when this file does).
# Each stage says what it does: a first run takes a few minutes, mostly the Python packages.
$(STAMP): pyproject.toml | $(NODE_STAMP)
	@echo "== Python: a virtual environment in $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@echo "== Python packages: the project and its test tools (a few minutes the first time)"
	@$(BIN)/pip install --quiet --upgrade pip
	@$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)
	@echo "== installed; \`make run\` starts the commons: database, demo data, worker, portal, hub"

$(NODE_STAMP): Makefile
	@echo "== npm packages into $(VENV)/node: JupyterHub's proxy, axe-core for the browser tests"
	@npm install --silent --no-audit --no-fund --prefix $(VENV)/node \
		configurable-http-proxy@$(CHP_VERSION) axe-core@$(AXE_VERSION)
	@touch $(NODE_STAMP)

clean:
	rm -rf $(VENV) .pytest_cache
