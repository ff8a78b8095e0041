# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m portal serve --host 127.0.0.1 --port 8000

# scripts/ensure-test-tools brings what pip cannot (Chromium, redis-server, nginx); a no-op
# where they are installed. The linter and the type checker fail the run before any test.
test: $(STAMP)
	scripts/ensure-test-tools
	$(BIN)/ruff check portal tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check portal tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/poll_bench.py

clean:
	rm -rf $(VENV) .portal .pytest_cache
