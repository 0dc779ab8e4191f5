"""The user's story with kubectl only: apply the seed, watch it commit, read what happened.

A worker and a bridge run as real processes (as their deploy/ service
accounts); the test never calls Temporal or the workflow to make anything
happen.
"""

from __future__ import annotations

import re
import subprocess

from tests.bridge.support import EXAMPLES, JANUS, Janus, JanusProcess, kubectl

WAIT = "--timeout=90s"
IMAGE = "jsonpath={.spec.template.spec.containers[0].image}"


def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_seed_transaction_commits_and_a_bad_one_rolls_back(janus: Janus, namespace: str) -> None:
    worker, bridge = janus.worker(), janus.bridge()
    ns = ("-n", namespace)

    kubectl(*ns, "apply", "-f", str(EXAMPLES / "seed-objects.yaml"))
    kubectl(*ns, "apply", "-f", str(EXAMPLES / "deploy-v2.yaml"))
    kubectl(*ns, "wait", "--for=jsonpath={.status.phase}=Committed", "txn/deploy-v2", WAIT)

    table = kubectl(*ns, "get", "txn").stdout.splitlines()
    assert columns(table[0]) == ["NAME", "PHASE", "CHANGES", "COMMITTED", "AGE", "MESSAGE"]
    row = columns(table[1])
    assert row[:4] == ["deploy-v2", "Committed", "3", "3"], table
    assert row[5] == "All 3 changes committed"
    described = kubectl(*ns, "describe", "txn", "deploy-v2").stdout
    events = described.split("Events:")[1]
    for reason in ("Preparing", "Prepared", "Committing", "Committed"):
        assert re.search(rf"Normal\s+{reason}\s", events), described
    assert f"Workflow Id:    txn/{namespace}/deploy-v2/" in described
    assert kubectl(*ns, "get", "deploy/web-server", "-o", IMAGE).stdout == "myapp:v2.0"
    assert kubectl(*ns, "get", "secret/old-api-key", check=False).returncode != 0

    # The failing follow-up: the API server rejects replicas: -1; nothing changes.
    kubectl(*ns, "apply", "-f", str(EXAMPLES / "deploy-v2-bad.yaml"))
    kubectl(*ns, "wait", "--for=jsonpath={.status.phase}=RolledBack", "txn/deploy-v2-bad", WAIT)
    assert kubectl(*ns, "get", "cm/app-config", "-o", "jsonpath={.data.version}").stdout == "2.0"
    assert kubectl(*ns, "get", "deploy/web-server", "-o", IMAGE).stdout == "myapp:v2.0"

    check_janus_status(janus, namespace)
    check_metrics(bridge, worker)
    assert worker.get("/healthz") == (200, "ok\n")


def check_janus_status(janus: Janus, namespace: str) -> None:
    """``janus status`` tells the rolled-back story in words."""
    told = subprocess.run(
        [str(JANUS), "status", f"{namespace}/deploy-v2-bad"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert told.startswith(f"Transaction {namespace}/deploy-v2-bad: RolledBack"), told
    assert "[!] 1: Patch apps/v1 Deployment" in told
    assert "must be greater than or equal to 0" in told
    assert f"Workflow: txn/{namespace}/deploy-v2-bad/" in told
    if janus.endpoints.ui_url:
        assert f"Temporal UI: {janus.endpoints.ui_url}/namespaces/" in told


def check_metrics(bridge: JanusProcess, worker: JanusProcess) -> None:
    """The scrapes show both stories: the bridge every transition it saw, the worker
    every step it ran, every lease, each outcome.

    A small transaction's status goes from Pending to Committing in one write
    (with an Event for each phase), and one refused while preparing from Pending
    to RolledBack; the bridge fills in the phases between."""
    transitions = [
        ("", "Pending"),
        ("Pending", "Preparing"),
        ("Preparing", "Prepared"),
        ("Prepared", "Committing"),
        ("Committing", "Committed"),
        ("Pending", "RollingBack"),
        ("RollingBack", "RolledBack"),
    ]
    for source, target in transitions:
        counted = bridge.sample(
            "janus_transaction_phase_transitions_total", from_=source, to=target
        )
        assert counted >= 1, (source, target, bridge.metrics())

    assert bridge.sample("janus_transactions", phase="Committed") == 1
    assert bridge.sample("janus_transactions", phase="RolledBack") == 1
    assert bridge.sample("janus_transactions_active") == 0
    assert bridge.sample("janus_bridge_leader") == 1

    sample = worker.sample
    assert sample("janus_transaction_outcomes_total", phase="Committed") == 1
    assert sample("janus_transaction_outcomes_total", phase="RolledBack") == 1
    assert sample("janus_transaction_duration_seconds_count", phase="Committed") == 1
    items = "janus_item_operations_total"
    assert sample(items, operation="commit", outcome="succeeded") == 3
    assert sample(items, operation="prepare", outcome="failed") == 1  # replicas: -1
    locks = "janus_lock_operations_total"
    assert sample(locks, operation="acquire", outcome="acquired") == 5
    assert sample(locks, operation="release", outcome="released") == 5
