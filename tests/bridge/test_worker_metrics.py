"""The worker's counts are what happened, for a Transaction too large to list its items.

1,500 ConfigMap patches: beyond 1,000 changes the status lists only the items with
an error, so nothing of the operations can be read from it; the worker counts them
where they run. The test scrapes the worker's ``/metrics`` before and after each
Transaction and compares the difference with what the API server itself recorded
(its audit log, ``janus dev``'s policy: every write to ConfigMaps and Leases, dry
runs included), and with what kubectl shows: every target patched (then, in the
rolled-back variant, restored), every lease taken and released. An activity
retried on a loaded machine runs its requests again: the audit log has those too.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client import ApiClient

from janus.contract.operations import lease_name
from janus.dev import paths
from tests.bridge.support import SYSTEM_NAMESPACE, Janus, JanusProcess, kubectl

CHANGES = 1500
#: The rolled-back variant: change FAILING's apply fails (the worker's fault seam), after
#: the changes before it were applied; the rollback undoes those.
FAILING = 150
UNDONE = "undone"
WAIT_SECONDS = 600
WAIT = f"--timeout={WAIT_SECONDS}s"

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


def run(janus: Janus, worker: JanusProcess, txn: str, key: str, phase: str) -> Story:
    """Create the Transaction, wait for ``phase`` and for the worker to count it."""
    before = Scrape(worker)
    started = datetime.now(UTC)
    kubectl("-n", janus.namespace, "create", "-f", "-", stdin=json.dumps(patches(txn, key)))
    kubectl("-n", janus.namespace, "wait", f"--for=jsonpath={{.status.phase}}={phase}",
            f"txn/{txn}", WAIT, timeout=WAIT_SECONDS)  # fmt: skip
    outcomes = "janus_transaction_outcomes_total"
    worker.wait_for(outcomes, before.outcomes[phase] + 1, timeout=60, phase=phase)
    after = Scrape(worker)
    obj = json.loads(kubectl("-n", janus.namespace, "get", "txn", txn, "-o", "json").stdout)
    writes = audited(janus.namespace, obj["metadata"]["uid"], started, datetime.now(UTC))
    return Story(status=obj["status"], counted=after.since(before), audited=writes)


@dataclass
class Story:
    status: dict[str, Any]
    counted: dict[Sample, float]
    audited: Counter[str]

    def show(self, title: str) -> None:
        counted = ", ".join(
            f"{metric.removeprefix('janus_').removesuffix('_operations_total')} {op}/{o}={v:g}"
            for (metric, op, o), v in sorted(self.counted.items())
        )
        print(f"\n{title}\n  counted: {counted}\n  audited: {dict(sorted(self.audited.items()))}")

    def count(self, metric: str, operation: str, outcome: str) -> float:
        return self.counted.get((metric, operation, outcome), 0)


def audited(namespace: str, uid: str, since: datetime, until: datetime) -> Counter[str]:
    """The writes the API server completed between ``since`` and ``until``: to the
    targets (dry runs apart), to their leases, to the Transaction's snapshot shards.
    Only the successful ones (a 409 or a 429 changed nothing)."""
    leases = {lease_name("v1", "ConfigMap", namespace, name(i)) for i in range(CHANGES)}
    found: Counter[str] = Counter()
    for line in _audit_lines():
        if namespace not in line and "janus-snap-" not in line and "janus-configmap-" not in line:
            continue
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        code = (event.get("responseStatus") or {}).get("code", 0)
        if event.get("stage") != "ResponseComplete" or not 200 <= code < 300:
            continue
        if not since <= datetime.fromisoformat(event["stageTimestamp"]) <= until:
            continue
        verb, what = event["verb"], ref.get("resource")
        where, called = ref.get("namespace"), ref.get("name") or ""
        if what == "configmaps" and where == namespace and called.startswith("cm-"):
            dry = "dryRun=" in event.get("requestURI", "")
            found[f"target {verb}{' (dry run)' if dry else ''}"] += 1
        elif what == "leases" and where == SYSTEM_NAMESPACE and called in leases:
            found[f"lease {verb}"] += 1
        elif what == "configmaps" and called.startswith(f"janus-snap-{uid}-"):
            found[f"snapshot {verb}"] += 1
    return found


def _audit_lines() -> Iterator[str]:
    """Every line of the audit log and its rotated backup (``janus dev``'s policy)."""
    log = paths.StateLayout(paths.testing_state_dir()).audit_log
    if not log.is_file():
        pytest.skip(f"no audit log at {log}: the servers are not this session's (JANUS_TEST_REUSE)")
    for path in sorted(log.parent.glob("audit*.log"), key=lambda p: p.stat().st_mtime):
        with Path(path).open(errors="replace") as lines:
            yield from lines


def data_of(core: k8s.CoreV1Api, namespace: str) -> list[dict[str, str]]:
    listed = core.list_namespaced_config_map(namespace).items
    return [cm.data or {} for cm in listed if cm.metadata and cm.metadata.name.startswith("cm-")]  # type: ignore[union-attr]


def leases_of(namespace: str) -> list[str]:
    found = kubectl("-n", SYSTEM_NAMESPACE, "get", "leases", "-o", "name").stdout.split()
    ours = {lease_name("v1", "ConfigMap", namespace, name(i)) for i in range(CHANGES)}
    return [lease for lease in found if lease.removeprefix("lease.coordination.k8s.io/") in ours]


def check_locks_and_snapshots(story: Story) -> None:
    """Every lease write and shard write the API server recorded, the worker counted."""
    audited = story.audited
    taken = sum(story.count(LOCKS, "acquire", o) for o in ("acquired", "taken_over"))
    written = taken + story.count(LOCKS, "renew", "renewed")
    unknown = story.count(LOCKS, "acquire", "error") + story.count(LOCKS, "renew", "error")
    assert audited["lease create"] == CHANGES  # every lease new, made once
    assert written <= audited["lease create"] + audited["lease update"] <= written + unknown
    released = story.count(LOCKS, "release", "released")
    assert released <= audited["lease delete"] == CHANGES
    assert audited["lease delete"] <= released + story.count(LOCKS, "release", "error")
    for unexpected in ("contended", "timeout"):
        assert story.count(LOCKS, "acquire", unexpected) == 0
    assert story.count(LOCKS, "renew", "lost") == 0
    stored = audited["snapshot create"] + audited["snapshot update"]
    counted = story.count(SNAPSHOTS, "store", "succeeded")
    assert 0 < counted <= stored <= counted + story.count(SNAPSHOTS, "store", "failed")
    assert story.count(SNAPSHOTS, "take", "succeeded") >= CHANGES
    check_step(story, "prepare", audited["target patch (dry run)"], at_least=CHANGES)


def check_step(story: Story, step: str, audited: int, *, at_least: int) -> None:
    """The step's successes are the writes the API server recorded, except that a
    step counted ``retried`` (its request failed on the worker's side, e.g. a timeout)
    may have been recorded too: the worker cannot know."""
    succeeded = story.count(ITEMS, step, "succeeded")
    assert succeeded <= audited <= succeeded + story.count(ITEMS, step, "retried")
    assert succeeded + story.count(ITEMS, step, "already_applied") >= at_least


@pytest.mark.timeout(2 * WAIT_SECONDS)
def test_the_worker_counts_every_operation_of_a_1500_change_transaction(
    janus: Janus, targets: k8s.CoreV1Api
) -> None:
    worker = janus.worker(env={"JANUS_FAULTS": f"apply:{FAILING}:before@{UNDONE}"})
    janus.bridge()
    namespace = janus.namespace

    story = run(janus, worker, "patched", "janus", "Committed")
    story.show(f"{CHANGES} patches, Committed")

    assert story.status["summary"]["committed"] == CHANGES == story.status["itemsOmitted"]
    assert all(d.get("janus") == "1" for d in data_of(targets, namespace))
    assert leases_of(namespace) == []
    check_step(story, "commit", story.audited["target patch"], at_least=CHANGES)
    assert story.audited["target patch"] == CHANGES  # each target patched once
    assert story.audited["target update"] == 0
    check_locks_and_snapshots(story)
    for step, outcome in (("commit", "failed"), ("prepare", "failed")):
        assert story.count(ITEMS, step, outcome) == 0

    # The rolled-back variant: FAILING changes applied, then change FAILING fails.
    story = run(janus, worker, UNDONE, "undone", "RolledBack")
    story.show(f"{CHANGES} patches, change {FAILING} failing, RolledBack")

    assert story.status["summary"]["committed"] == FAILING == story.status["summary"]["rolledBack"]
    assert all("undone" not in d for d in data_of(targets, namespace))
    assert leases_of(namespace) == []
    check_step(story, "commit", story.audited["target patch"], at_least=FAILING)
    assert story.audited["target patch"] == FAILING == story.audited["target update"]
    assert story.count(ITEMS, "commit", "failed") == 1  # the fault seam, before its request
    check_step(story, "undo", story.audited["target update"], at_least=FAILING)
    # The failed change's undo, and those of its batch not reached, find nothing of ours.
    assert 1 <= story.count(ITEMS, "undo", "skipped") <= 100
    assert story.count(ITEMS, "undo", "failed") == story.count(ITEMS, "undo", "conflict") == 0
    assert story.count(LOCKS, "renew", "renewed") >= CHANGES  # held again before undoing
    check_locks_and_snapshots(story)
