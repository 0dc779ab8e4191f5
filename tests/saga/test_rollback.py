"""Each change type is undone when a later step fails; cancellation rolls back too."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from activities.seams import Fault
from janus.dev.servers import temporal_cli
from tests.saga.harness import Harness, change, finish, transaction

FAIL_AT_1 = pytest.mark.worker(faults=[Fault.parse("apply:1:before")])
ANCHOR = change("ConfigMap", "anchor", "Patch", {"data": {"touched": "yes"}})


def anchor(harness: Harness) -> None:
    """An object for the failing second step to fail on."""
    harness.create_objects(
        [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "anchor"}, "data": {}}]
    )


@FAIL_AT_1
async def test_create_then_fail_removes_the_created_object(harness: Harness) -> None:
    anchor(harness)
    created = change("ConfigMap", "fresh", "Create", {"data": {"a": "1"}})

    txn = await harness.run(transaction("create-then-fail", created, ANCHOR))

    assert txn["status"]["phase"] == "RolledBack", txn["status"]
    assert txn["status"]["items"][0]["committed"] and txn["status"]["items"][0]["rolledBack"]
    assert harness.config_map("fresh") is None
    assert harness.config_map("anchor").data is None


@FAIL_AT_1
async def test_delete_then_fail_brings_the_object_back(harness: Harness) -> None:
    anchor(harness)
    harness.create_objects(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "doomed", "labels": {"tier": "gold"}},
                "stringData": {"token": "s3cr3t"},
            }
        ]
    )
    before = harness.secret("doomed")

    txn = await harness.run(
        transaction("delete-then-fail", change("Secret", "doomed", "Delete"), ANCHOR)
    )

    assert txn["status"]["phase"] == "RolledBack", txn["status"]
    after = harness.secret("doomed")
    assert after is not None
    assert after.data == before.data
    assert after.metadata.labels == before.metadata.labels
    assert after.metadata.uid != before.metadata.uid  # it really was deleted and recreated


@FAIL_AT_1
async def test_update_then_fail_restores_the_object(harness: Harness) -> None:
    anchor(harness)
    harness.create_objects(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "settings", "labels": {"a": "b"}, "annotations": {"n": "1"}},
                "data": {"mode": "old", "keep": "me"},
            }
        ]
    )
    before = harness.config_map("settings")
    replaced = change("ConfigMap", "settings", "Update", {"data": {"mode": "new"}})

    txn = await harness.run(transaction("update-then-fail", replaced, ANCHOR))

    assert txn["status"]["phase"] == "RolledBack", txn["status"]
    after = harness.config_map("settings")
    assert after.data == before.data
    assert after.metadata.labels == before.metadata.labels
    assert after.metadata.annotations == before.metadata.annotations


# A commit of 40 small creates takes well under a second; a short delay before
# each change (which also ends the batch there) keeps it going long enough to
# cancel in the middle.
SLOW_COMMIT = pytest.mark.worker(
    delays=[Fault.parse(f"apply:{i}:before:0.1s@cancel-me") for i in range(40)]
)


@SLOW_COMMIT
async def test_cancel_mid_commit_rolls_back(harness: Harness) -> None:
    creates = [
        change("ConfigMap", f"item-{i:02d}", "Create", {"data": {"i": str(i)}}) for i in range(40)
    ]
    handle = await harness.start(transaction("cancel-me", *creates))
    await _wait_committed_at_least(harness, "cancel-me", 3)

    cancel = await asyncio.create_subprocess_exec(
        str(temporal_cli()),
        *("workflow", "cancel", "--workflow-id", handle.id),
        *("--address", os.environ["TEMPORAL_ADDRESS"]),
    )
    assert await cancel.wait() == 0
    await finish(handle)

    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    txn = harness.transaction("cancel-me")
    assert txn["status"]["phase"] == "RolledBack", txn["status"]
    assert "cancelled" in txn["status"]["message"]
    assert 3 <= txn["status"]["summary"]["committed"] < 40
    names = {
        cm.metadata.name  # type: ignore[union-attr]
        for cm in harness.core.list_namespaced_config_map(harness.namespace).items
    }
    assert not {n for n in names if n.startswith("item-")}  # type: ignore[union-attr]
    assert harness.leases() == []


# Releasing the leases, just before Committed is written, takes 3 s here.
SLOW_RELEASE = pytest.mark.worker(delays=[Fault.parse("release:0:before:3s@cancel-late")])


@SLOW_RELEASE
async def test_a_cancel_after_the_commit_point_does_not_roll_back(harness: Harness) -> None:
    """From a fault-explorer record: a cancel arrived while the workflow task that saw
    the last change applied was writing Committed; the server refused that task for
    the cancel (its status write stayed), and its replay, seeing the cancel first,
    rolled back: the user saw Committed, then RollingBack and RolledBack. The commit
    point is now recorded before Committed is written; a cancel after it is too late."""
    creates = [change("ConfigMap", f"late-{i}", "Create", {"data": {"i": str(i)}}) for i in (0, 1)]
    handle = await harness.start(transaction("cancel-late", *creates))
    await _wait_applied(handle)  # every change is applied: the commit point

    cancel = await asyncio.create_subprocess_exec(
        str(temporal_cli()),
        *("workflow", "cancel", "--workflow-id", handle.id),
        *("--address", os.environ["TEMPORAL_ADDRESS"]),
    )
    assert await cancel.wait() == 0
    await finish(handle)

    txn = harness.transaction("cancel-late")
    print(
        f"\n[cancel] after the commit point: {txn['status']['phase']}: {txn['status']['message']}"
    )
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert txn["status"]["phase"] == "Committed", txn["status"]
    conditions = {c["type"]: c["status"] for c in txn["status"]["conditions"]}
    assert conditions["Committed"] == "True" and "RolledBack" not in conditions, conditions
    assert [i["committed"] and not i["rolledBack"] for i in txn["status"]["items"]] == [True, True]
    assert [harness.config_map(f"late-{i}").data for i in (0, 1)] == [{"i": "0"}, {"i": "1"}]
    events = harness.core.list_namespaced_event(
        harness.namespace, field_selector="involvedObject.name=cancel-late"
    ).items
    reasons = {e.reason for e in events}
    assert "RollingBack" not in reasons and "RolledBack" not in reasons, reasons
    assert harness.leases() == []


async def _wait_applied(handle: Any) -> None:
    """Until the workflow's history holds the apply's result (one batch here)."""
    completed = EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    for _ in range(600):
        events = (await handle.fetch_history()).events
        if any(e.event_type == completed for e in events):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{handle.id}: no change was applied")


async def _wait_committed_at_least(harness: Harness, name: str, count: int) -> None:
    for _ in range(600):
        status = harness.transaction(name).get("status", {})
        if status.get("summary", {}).get("committed", 0) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} never committed {count} changes")
