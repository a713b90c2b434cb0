# Engram: two commands on a fresh machine (Python 3.11, registries only):
#   make demo   set up a venv, install Engram, ingest the bundled sample conversation, search it
#   make test   set up a venv with dev tools, start PostgreSQL+pgvector on 127.0.0.1, run lint, types, tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG := .ci/postgres.sh

.PHONY: demo test lint typecheck pytest install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,bench,postgres,server,local-llm]"

demo: install
	$(BIN)/engram demo

lint: install-dev
	$(BIN)/ruff check src tests

typecheck: install-dev
	$(BIN)/mypy src/engram

pytest: install-dev
	$(BIN)/python -m pytest -q

test: install-dev
	$(BIN)/ruff check src tests
	$(BIN)/mypy src/engram
	@if [ -f $(PG) ] && [ -z "$$ENGRAM_TEST_PG_URL" ]; then \
		url=$$(ENGRAM_VENV=$(VENV) bash $(PG) start) || exit 1; \
		ENGRAM_TEST_PG_URL=$$url $(BIN)/python -m pytest -q; status=$$?; bash $(PG) stop; exit $$status; \
	else \
		$(BIN)/python -m pytest -q; \
	fi

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache engram-demo.db*
