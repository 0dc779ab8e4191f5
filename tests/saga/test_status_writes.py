"""The Transaction's status (issue 11, defect 7): never put back by an older writer, and
small enough to store however many undos fail."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client as k8s
from kubernetes.client import ApiClient

from activities.cluster import Cluster
from activities.seams import Fault
from activities.status import mirror_status
from janus.contract.models import Phase, TransactionRef, TransactionStatus
from janus.contract.operations import MirrorStatusInput
from tests.saga.harness import Harness, change, finish, how_it_closed, transaction

#: Changes whose undos all fail, and target names near the limit (253): every
#: error message names its target, so the unbounded status grew past the API
#: server's object size limit and the Transaction stayed RollingBack.
MANY = 1200
LONG_NAME = "n" * 240


async def test_an_older_status_is_dropped_not_written_over_a_newer_one(
    harness: Harness, kube_api: ApiClient
) -> None:
    """A delayed local activity (or a worker that lost its workflow task) writing the
    status it had then must not move a Committed Transaction back to Committing."""
    harness.create_objects(
        [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {}}]
    )
    done = await harness.run(
        transaction("stale", change("ConfigMap", "cfg", "Patch", {"data": {"k": "1"}}))
    )
    assert done["status"]["phase"] == "Committed"
    newer = TransactionStatus.model_validate(done["status"])
    older = newer.model_copy(
        update={
            "phase": Phase.COMMITTING,
            "message": "Committing 1 changes",
            "completed_at": None,
            "sequence": newer.sequence - 1,
        }
    )
    meta = done["metadata"]
    ref = TransactionRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])

    mirror_status(Cluster(kube_api), MirrorStatusInput(ref=ref, status=older))

    after = harness.transaction("stale")["status"]
    assert after["phase"] == "Committed"
    assert after["message"] == done["status"]["message"]
    assert after["completedAt"] == done["status"]["completedAt"]


def _name(i: int) -> str:
    return f"{LONG_NAME}-{i:04d}"


async def committed_up_to(harness: Harness, index: int) -> None:
    """Until the change at ``index`` is in place (the next one then waits)."""
    for _ in range(3000):
        if (harness.config_map(_name(index)).data or {}).get("janus") == "1":
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"change {index} never committed")


@pytest.mark.worker(
    delays=[Fault.parse(f"apply:{MANY - 1}:before:12s@many-undos")],
    faults=[Fault.parse(f"apply:{MANY - 1}:before@many-undos")],
)
async def test_thousands_of_failed_undos_end_failed_with_a_status_that_fits(
    harness: Harness,
) -> None:
    """MANY - 1 changes commit; while the last one waits, someone else edits every
    target; the last one fails, and no undo may restore (each target carries the
    other writer's edit). The Transaction must end Failed, its status under the
    API server's limits, naming the count and the first targets."""
    core = harness.core

    def create(i: int) -> None:
        body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=_name(i)), data={"v": "0"})
        core.create_namespaced_config_map(harness.namespace, body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(MANY)))
    handle = await harness.start(
        transaction(
            "many-undos",
            *(
                change("ConfigMap", _name(i), "Patch", {"data": {"janus": "1"}})
                for i in range(MANY)
            ),
        )
    )
    await committed_up_to(harness, MANY - 2)

    def edit(i: int) -> None:
        core.patch_namespaced_config_map(_name(i), harness.namespace, {"data": {"other": "1"}})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(edit, range(MANY - 1)))
    await asyncio.wait_for(finish(handle), timeout=900)

    txn = harness.transaction("many-undos")
    status = txn["status"]
    assert status["phase"] == "Failed", (status["message"][:300], await how_it_closed(handle))
    assert status["message"].startswith(
        f"Rollback incomplete: {MANY - 1} undo(s) did not complete: "
    )
    assert len(status["message"]) <= 2048
    assert status["itemsOmitted"] == MANY - len(status["items"]) > 0
    assert all(item["error"] for item in status["items"])
    assert len(json.dumps(status)) < 512 * 1024
    listed = core.list_namespaced_config_map(harness.namespace).items
    names = [(cm.metadata.name if cm.metadata else None) or "" for cm in listed]
    stored = {n: cm.data for n, cm in zip(names, listed, strict=True) if n.startswith(LONG_NAME)}
    assert len(stored) == MANY
    edited = {"v": "0", "janus": "1", "other": "1"}
    assert all(stored[_name(i)] == edited for i in range(MANY - 1))  # left as they wrote it
    assert stored[_name(MANY - 1)] == {"v": "0"}
    assert harness.leases() == []
