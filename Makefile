# sixsense-udf developer commands. `make serve` runs the service; `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: serve demo test test-fast lint format clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# checkov and dbt live in their own virtual environments: both pull dependencies that clash
# with the project's (checkov overwrites python-hcl2; dbt-snowflake wants another connector).
.venv-checkov/.installed:
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q 'checkov==3.3.30'
	touch $@

# Rebuilt when its requirements change (fakesnow, numpy and orjson run dbt models for real).
.venv-dbt/.installed: tests/sql/requirements-dbt.txt
	$(PYTHON) -m venv .venv-dbt
	.venv-dbt/bin/pip install -q -r tests/sql/requirements-dbt.txt
	touch $@

serve: $(VENV)/.installed  ## run the service (simulator when SIXSENSE_API_TOKEN is unset)
	@if [ -z "$$SIXSENSE_API_TOKEN" ]; then \
	  echo "SIXSENSE_API_TOKEN is not set: serving from the built-in 6sense SIMULATOR (not real data)."; \
	  SIXSENSE_SIMULATE=1 exec $(BIN)/udf-service serve; \
	else \
	  exec $(BIN)/udf-service serve; \
	fi

demo: $(VENV)/.installed
	$(BIN)/udf-service demo

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Four pytest workers on two cores: most end-to-end tests wait on processes, not the CPU.
# loadscope keeps a module's (or a class's) process fixtures on one worker.
PYTEST_WORKERS ?= 4
# Bytecode caches on for the tests, whatever the shell says: without them every pytest worker
# compiles the project and re-rewrites the test modules' assertions (~5 s each, every run).
unexport PYTHONDONTWRITEBYTECODE

test: $(VENV)/.installed .venv-checkov/.installed .venv-dbt/.installed lint  ## every check CI runs
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadscope

test-fast: $(VENV)/.installed  ## in-process tests only (no gunicorn, dbt, wheel build): about a minute
	$(BIN)/pytest -m "not e2e" -n $(PYTEST_WORKERS)

clean:
	rm -rf $(VENV) .venv-checkov .venv-dbt .udf-state .pytest_cache
