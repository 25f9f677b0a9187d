# The two commands that matter: `make run` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup venv knowledge run test test-fast bench lint lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock package-lock.json scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

knowledge: setup
	$(PY) -m bot.build

run: setup
	bash scripts/run.sh

test: setup
	bash scripts/test.sh

bench: setup
	$(PY) bench/search_bench.py
	bash bench/compare.sh

lint: setup
	$(PY) -m bot.build --check

# After changing dependencies in pyproject.toml: re-resolve requirements.lock (hashes).
lock:
	bash scripts/lock.sh

clean:
	rm -rf $(VENV) var build models
