# Two entry points do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The local CPU build of torch first, so the package's range never pulls a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[serve,dev,search]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/lightgode train --out runs/amazon-beauty --overwrite --progress

# The test suite, after ruff's lint rules and formatting check (what CI runs through .ci/run).
test: lint
	$(PY) -m pytest -q

# ruff's lint rules and formatting ([tool.ruff] in pyproject.toml), over src/, tests/ and benchmarks/.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) runs
