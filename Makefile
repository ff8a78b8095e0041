# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m portal serve --host 127.0.0.1 --port 8000

# scripts/ensure-test-tools brings what pip cannot (Chromium, redis-server, nginx); a no-op
# where they are installed. Checks that run before pytest (linters, type checks) go between.
test: $(STAMP)
	scripts/ensure-test-tools
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/poll_bench.py

clean:
	rm -rf $(VENV) .portal .pytest_cache
