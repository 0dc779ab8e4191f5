"""The worker's counts are what happened, for a Transaction too large to list its items.

1,500 ConfigMap patches: beyond 1,000 changes the status lists only the items with
an error, so nothing of the operations can be read from it; the worker counts them
where they run. The test scrapes the worker's ``/metrics`` before and after and
compares the difference with what kubectl shows happened: every target patched
(then, in the rolled-back variant, restored), every lease taken and released.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client import ApiClient

from tests.bridge.support import SYSTEM_NAMESPACE, Janus, JanusProcess, kubectl
from workflows.policies import SNAPSHOT_BATCH

CHANGES = 1500
#: The rolled-back variant: change FAILING's apply fails (the worker's fault seam), after
#: the changes before it were applied; the rollback undoes those.
FAILING = 150
UNDONE = "undone"
WAIT = "--timeout=600s"

Sample = tuple[str, str, str]
"""(metric, operation, outcome)."""

ITEMS = "janus_item_operations_total"
LOCKS = "janus_lock_operations_total"
SNAPSHOTS = "janus_snapshot_operations_total"
WATCHED: list[Sample] = [
    *((ITEMS, op, outcome) for op in ("prepare", "commit", "undo") for outcome in (
        "succeeded", "already_applied", "skipped", "conflict", "failed", "retried")),
    *((LOCKS, "acquire", o) for o in ("acquired", "taken_over", "contended", "timeout")),
    *((LOCKS, "renew", o) for o in ("renewed", "lost")),
    *((LOCKS, "release", o) for o in ("released", "skipped")),
    *((SNAPSHOTS, op, o) for op in ("take", "store", "load") for o in ("succeeded", "failed")),
]  # fmt: skip


def name(i: int) -> str:
    return f"cm-{i:04d}"


def patches(txn: str, key: str) -> dict[str, Any]:
    changes = [
        {
            "target": {"apiVersion": "v1", "kind": "ConfigMap", "name": name(i)},
            "type": "Patch",
            "content": {"data": {key: "1"}},
        }
        for i in range(CHANGES)
    ]
    return {
        "apiVersion": "backup.janus.io/v1alpha1",
        "kind": "Transaction",
        "metadata": {"name": txn},
        "spec": {"changes": changes},
    }


class Scrape:
    """The worker's counters as one scrape showed them."""

    def __init__(self, worker: JanusProcess) -> None:
        text = worker.metrics()
        self.values = {sample: _value(text, *sample) for sample in WATCHED}
        self.outcomes = {
            phase: _value(text, "janus_transaction_outcomes_total", phase=phase)
            for phase in ("Committed", "RolledBack", "Failed")
        }

    def since(self, before: Scrape) -> dict[Sample, float]:
        """What changed: the samples that moved, by how much."""
        moved = {s: v - before.values[s] for s, v in self.values.items()}
        return {s: d for s, d in moved.items() if d}


def _value(text: str, metric: str, operation: str = "", outcome: str = "", **labels: str) -> float:
    if operation:
        labels = {"operation": operation, "outcome": outcome}
    wanted = metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "} "
    for line in text.splitlines():
        if line.startswith(wanted):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture
def targets(kube_api: ApiClient, namespace: str) -> Iterator[k8s.CoreV1Api]:
    """CHANGES ConfigMaps in the test's namespace."""
    core = k8s.CoreV1Api(kube_api)

    def create(i: int) -> None:
        body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name(i)), data={"v": "0"})
        core.create_namespaced_config_map(namespace, body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(CHANGES)))
    yield core


def run(janus: Janus, namespace: str, txn: str, key: str, phase: str) -> dict[str, Any]:
    manifest = json.dumps(patches(txn, key))
    kubectl("-n", namespace, "create", "-f", "-", stdin=manifest)
    kubectl("-n", namespace, "wait", f"--for=jsonpath={{.status.phase}}={phase}", f"txn/{txn}",
            WAIT, timeout=660)  # fmt: skip
    status: dict[str, Any] = json.loads(
        kubectl("-n", namespace, "get", "txn", txn, "-o", "json").stdout
    )["status"]
    return status


def data_of(core: k8s.CoreV1Api, namespace: str) -> list[dict[str, str]]:
    listed = core.list_namespaced_config_map(namespace).items
    return [cm.data or {} for cm in listed if cm.metadata and cm.metadata.name.startswith("cm-")]


def leases_of(namespace: str) -> str:
    found = kubectl("-n", SYSTEM_NAMESPACE, "get", "leases", "-o", "name").stdout
    return "\n".join(line for line in found.splitlines() if "configmap-cm-" in line)


def test_the_worker_counts_every_operation_of_a_1500_change_transaction(
    janus: Janus, namespace: str, targets: k8s.CoreV1Api
) -> None:
    worker = janus.worker(env={"JANUS_FAULTS": f"apply:{FAILING}:before@{UNDONE}"})
    janus.bridge()
    shards = math.ceil(CHANGES / SNAPSHOT_BATCH)  # small targets: one shard per batch

    before = Scrape(worker)
    status = run(janus, namespace, "patched", "janus", "Committed")
    committed = Scrape(worker)
    counted = committed.since(before)
    print(f"\n{CHANGES} patches, Committed: {_table(counted)}")

    assert status["summary"]["committed"] == CHANGES and status["itemsOmitted"] == CHANGES
    assert all(d.get("janus") == "1" for d in data_of(targets, namespace))
    assert leases_of(namespace) == ""
    renewed = counted.pop((LOCKS, "renew", "renewed"), 0)
    assert renewed % CHANGES == 0  # each renewal renews every lease of the transaction
    assert counted == {
        (ITEMS, "prepare", "succeeded"): CHANGES,
        (ITEMS, "commit", "succeeded"): CHANGES,
        (LOCKS, "acquire", "acquired"): CHANGES,
        (LOCKS, "release", "released"): CHANGES,
        (SNAPSHOTS, "take", "succeeded"): CHANGES,
        (SNAPSHOTS, "store", "succeeded"): shards,
    }
    assert committed.outcomes["Committed"] - before.outcomes["Committed"] == 1

    # The rolled-back variant: FAILING changes applied, then change FAILING fails.
    status = run(janus, namespace, UNDONE, "undone", "RolledBack")
    counted = Scrape(worker).since(committed)
    print(f"{CHANGES} patches, change {FAILING} failing, RolledBack: {_table(counted)}")

    assert status["summary"]["committed"] == FAILING == status["summary"]["rolledBack"]
    assert all("undone" not in d for d in data_of(targets, namespace))
    assert leases_of(namespace) == ""
    renewed = counted.pop((LOCKS, "renew", "renewed"), 0)
    assert renewed % CHANGES == 0 and renewed >= CHANGES  # held again before undoing
    # Every undo registered runs: FAILING restore, the rest (the failed change and
    # those of its batch not reached) find nothing of ours; each loads its snapshot.
    skipped = counted.pop((ITEMS, "undo", "skipped"))
    assert 1 <= skipped <= 100
    assert counted == {
        (ITEMS, "prepare", "succeeded"): CHANGES,
        (ITEMS, "commit", "succeeded"): FAILING,
        (ITEMS, "commit", "failed"): 1,
        (ITEMS, "undo", "succeeded"): FAILING,
        (LOCKS, "acquire", "acquired"): CHANGES,
        (LOCKS, "release", "released"): CHANGES,
        (SNAPSHOTS, "take", "succeeded"): CHANGES,
        (SNAPSHOTS, "store", "succeeded"): shards,
        (SNAPSHOTS, "load", "succeeded"): FAILING + skipped,
    }
    assert Scrape(worker).outcomes["RolledBack"] - committed.outcomes["RolledBack"] == 1


def _table(counted: dict[Sample, float]) -> str:
    return ", ".join(
        f"{metric.removeprefix('janus_').removesuffix('_operations_total')} {op}/{o}={v:g}"
        for (metric, op, o), v in sorted(counted.items())
    )
