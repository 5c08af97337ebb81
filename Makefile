# sixsense-udf developer commands. `make serve` runs the service; `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: serve demo test lint format clean

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

.venv-dbt/.installed:
	$(PYTHON) -m venv .venv-dbt
	.venv-dbt/bin/pip install -q 'dbt-core==1.11.16' 'dbt-snowflake==1.11.6'
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

test: $(VENV)/.installed .venv-checkov/.installed .venv-dbt/.installed lint  ## every check CI runs
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .venv-checkov .venv-dbt .udf-state .pytest_cache
