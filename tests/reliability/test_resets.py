"""``temporal workflow reset`` of a Transaction's workflow, as a user presses Reset.

A reset to the first workflow task starts the same Transaction again (same uid,
so the same change markers and snapshot names) after its changes may already be
applied. The new run must end with the cluster matching its phase: its snapshot
step reuses the snapshots the first run stored (never records our own write as
the state to restore), its commit finds its markers (already applied) and ends
Committed with every change in place. Found by the fault explorer (issue 11,
``make chaos SEED=2 TRIAL=6``): the reset run refused the targets it had written,
rolled back nothing and reported ``RolledBack`` with every change still applied.

Each test asserts what a user checks with kubectl: the phase, every target's end
state, and no lease or snapshot left once the Transaction is deleted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import ActivityEnvironment

from activities import Cluster, CurrentRuns, TransactionActivities
from activities.runs import RunSuperseded
from activities.seams import Fault
from janus.clients.kubernetes import kubernetes_client
from janus.contract import operations as ops
from janus.contract.models import TransactionInput
from janus.contract.settings import WorkerSettings
from tests.reliability.leases import free_lease, take_lease
from tests.reliability.test_combined_faults import marker, nothing_left, wait_committed
from tests.saga.harness import LEASE_NAMESPACE, Harness, change, finish, transaction

TEMPORAL = Path(sys.executable).parent / "temporal"
FINISH_TIMEOUT = 180.0


def reset_to_first_task(workflow_id: str) -> str:
    """The Temporal CLI's reset, as a user runs it (or presses Reset in the UI)."""
    return reset_workflow(workflow_id, "--type", "FirstWorkflowTask")


def reset_workflow(workflow_id: str, *to: str) -> str:
    """``temporal workflow reset`` to ``to`` (``--type ...`` or ``--event-id N``)."""
    done = subprocess.run(
        [
            str(TEMPORAL),
            "workflow",
            "reset",
            "--workflow-id",
            workflow_id,
            *to,
            "--reason",
            "test",
            "--yes",
            "--address",
            os.environ["TEMPORAL_ADDRESS"],
            "--namespace",
            os.environ.get("TEMPORAL_NAMESPACE", "default"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def targets(harness: Harness) -> None:
    """p is patched, n created, u updated."""
    harness.create_objects(
        [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": {"v": "1"}}
            for n in ("p", "u")
        ]
    )


def three_changes(name: str) -> dict[str, Any]:
    return transaction(
        name,
        change("ConfigMap", "p", "Patch", {"data": {"v": "2"}}),
        change("ConfigMap", "n", "Create", {"data": {"v": "new"}}),
        change("ConfigMap", "u", "Update", {"data": {"w": "3"}}),
    )


async def finish_latest(harness: Harness, workflow_id: str, name: str) -> dict[str, Any]:
    """Wait for the run the reset started (the workflow id's latest run) to close."""
    latest = harness.temporal.get_workflow_handle(workflow_id)
    await asyncio.wait_for(finish(latest), timeout=FINISH_TIMEOUT)
    status: dict[str, Any] = harness.transaction(name)["status"]
    return status


def assert_agrees_with_phase(harness: Harness, status: dict[str, Any]) -> None:
    """Committed with every change in place, or RolledBack with every target as before."""
    p, n, u = (harness.config_map(x) for x in ("p", "n", "u"))
    if status["phase"] == "Committed":
        assert p.data == {"v": "2"} and marker(p) is not None, p.data
        assert n is not None and n.data == {"v": "new"}
        assert u.data == {"w": "3"}, u.data
    else:
        assert status["phase"] == "RolledBack", status
        assert p.data == {"v": "1"} and marker(p) is None, p.data
        assert n is None
        assert u.data == {"v": "1"} and marker(u) is None, u.data


@pytest.mark.worker(delays=(Fault.parse("apply:2:before:6s"),))
async def test_a_reset_after_changes_were_applied_ends_as_its_phase_says(
    harness: Harness,
) -> None:
    targets(harness)
    handle = await harness.start(three_changes("reset-mid"))
    await wait_committed(harness, "reset-mid", 2)  # change 2 waits 6 s before its write
    reset_to_first_task(handle.id)
    status = await finish_latest(harness, handle.id, "reset-mid")
    print(f"\n[reset] mid-commit: {status['phase']}: {status['message']}")
    assert status["phase"] == "Committed", status
    assert_agrees_with_phase(harness, status)
    await nothing_left(harness, "reset-mid")


async def test_a_reset_after_committed_stays_committed(harness: Harness) -> None:
    targets(harness)
    handle = await harness.start(three_changes("reset-done"))
    await asyncio.wait_for(finish(handle), timeout=FINISH_TIMEOUT)
    assert harness.transaction("reset-done")["status"]["phase"] == "Committed"
    reset_to_first_task(handle.id)
    status = await finish_latest(harness, handle.id, "reset-done")
    print(f"\n[reset] after Committed: {status['phase']}: {status['message']}")
    assert status["phase"] == "Committed", status
    assert_agrees_with_phase(harness, status)
    await nothing_left(harness, "reset-done")


async def test_a_reset_whose_snapshots_are_gone_ends_failed_naming_the_target(
    harness: Harness,
) -> None:
    targets(harness)
    handle = await harness.start(three_changes("reset-lost"))
    await asyncio.wait_for(finish(handle), timeout=FINISH_TIMEOUT)
    uid = harness.transaction("reset-lost")["metadata"]["uid"]
    selector = f"backup.janus.io/transaction-uid={uid}"
    shards = harness.core.list_namespaced_config_map(LEASE_NAMESPACE, label_selector=selector)
    assert shards.items, "the first run stored its snapshots"
    for shard in shards.items:  # lost, as if deleted by hand
        harness.core.delete_namespaced_config_map(shard.metadata.name, LEASE_NAMESPACE)  # type: ignore[arg-type,union-attr]
    reset_to_first_task(handle.id)
    status = await finish_latest(harness, handle.id, "reset-lost")
    print(f"\n[reset] snapshots gone: {status['phase']}: {status['message']}")
    # The state to restore is unknown: the changes stay, and the status says so.
    assert status["phase"] == "Failed", status
    assert "change 0" in status["message"] and "/p)" in status["message"], status["message"]
    assert "snapshot taken before it is gone" in status["message"]
    assert harness.config_map("p").data == {"v": "2"}
    assert harness.config_map("n").data == {"v": "new"}
    assert harness.config_map("u").data == {"w": "3"}
    await nothing_left(harness, "reset-lost")


def as_attempt_of(workflow_id: str, run_id: str) -> ActivityEnvironment:
    """An activity context naming one run of the workflow, as the worker gives its attempts."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        activity_type=ops.ACQUIRE_LEASES,
        workflow_id=workflow_id,
        workflow_run_id=run_id,
        workflow_type="TransactionWorkflow",
        is_local=True,
        started_time=datetime.now(UTC),
        start_to_close_timeout=timedelta(seconds=60),
    )
    return env


async def test_an_attempt_of_a_run_a_reset_replaced_sends_nothing(
    harness: Harness, endpoints: Any
) -> None:
    """The old run's attempts still on a worker after a reset (the rest of a workflow
    task's local activities, a regular activity between heartbeats) share the new
    run's holder identity, so leases cannot fence them: they would take the leases
    again after the new run released them. Each attempt asks Temporal whether its
    run is current, and sends nothing once it is not."""
    targets(harness)
    handle = await harness.start(three_changes("reset-stale"))
    await asyncio.wait_for(finish(handle), timeout=FINISH_TIMEOUT)
    old_run = (await handle.describe()).run_id
    reset_to_first_task(handle.id)
    status = await finish_latest(harness, handle.id, "reset-stale")
    new_run = (await harness.temporal.get_workflow_handle(handle.id).describe()).run_id
    assert new_run != old_run and status["phase"] == "Committed", status
    before = {x: harness.config_map(x).data for x in ("p", "n", "u")}

    txn = TransactionInput.from_resource(harness.transaction("reset-stale"))
    leases = [
        ops.LeaseRef(name=item["lease"], namespace=LEASE_NAMESPACE, target=item["target"])
        for item in status["items"]
    ]
    take = ops.AcquireLeasesInput(
        holder=txn.ref.holder_identity(), leases=leases, duration_seconds=60
    )
    activities = TransactionActivities(
        Cluster(kubernetes_client(str(endpoints.kubeconfig))),
        WorkerSettings(lease_namespace=LEASE_NAMESPACE),
        CurrentRuns(harness.temporal, asyncio.get_running_loop()),
    )

    stale = as_attempt_of(handle.id, old_run)  # the activity runs in a thread, as in a worker
    with pytest.raises(RunSuperseded, match=f"run {new_run} is"):
        await asyncio.to_thread(stale.run, activities.acquire_leases, take)
    print(f"\n[reset] an attempt of the replaced run {old_run}: nothing sent")
    assert harness.leases() == [], "the replaced run took a lease after the new run ended"
    assert {x: harness.config_map(x).data for x in ("p", "n", "u")} == before

    current = as_attempt_of(handle.id, new_run)  # the same attempt of the current run does
    taken = await asyncio.to_thread(current.run, activities.acquire_leases, take)
    assert taken.acquired == [lease.name for lease in leases], taken
    release = ops.ReleaseLeasesInput(holder=take.holder, leases=leases)
    await asyncio.to_thread(current.run, activities.release_leases, release)
    await nothing_left(harness, "reset-stale")


async def test_a_reset_after_another_transaction_deleted_the_target_changes_nothing(
    harness: Harness,
) -> None:
    """Seed 7, trial 33 of the fault explorer: our Update committed, another transaction
    then deleted the target, and a reset started ours again. The new run finds nothing
    to update and rolls back having written nothing: the other transaction's delete
    stands, which is what RolledBack promises (another writer's later change survives)."""
    targets(harness)
    update = transaction("reset-upd", change("ConfigMap", "u", "Update", {"data": {"w": "3"}}))
    handle = await harness.start(update)
    await asyncio.wait_for(finish(handle), timeout=FINISH_TIMEOUT)
    deleted = await harness.run(transaction("reset-del", change("ConfigMap", "u", "Delete")))
    assert deleted["status"]["phase"] == "Committed", deleted["status"]
    reset_to_first_task(handle.id)
    status = await finish_latest(harness, handle.id, "reset-upd")
    print(f"\n[reset] after another transaction deleted the target: {status['phase']}")
    assert status["phase"] == "RolledBack", status
    assert "not found; Update needs an existing object" in status["message"], status
    assert status["summary"]["rolledBack"] == 0, status
    assert harness.config_map("u") is None  # the other transaction's delete stands
    await nothing_left(harness, "reset-upd")
    await nothing_left(harness, "reset-del")


async def first_workflow_task(handle: Any) -> datetime:
    """When the first workflow task started: the time ``spec.timeout`` counts from."""
    events = (await handle.fetch_history()).events
    started = EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    first = next(e for e in events if e.event_type == started)
    when: datetime = first.event_time.ToDatetime(tzinfo=UTC)
    return when


async def after_the_lease_wait(handle: Any) -> int:
    """The workflow task that took the leases, after the last wait for one: it also
    snapshots and starts the commit."""
    events = (await handle.fetch_history()).events
    applied = min(
        e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )  # the timers after it are not the lease wait's (the commit point's)
    waited = max(
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED and e.event_id < applied
    )
    return next(
        int(e.event_id)
        for e in events
        if e.event_id > waited and e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )


async def test_a_reset_run_that_rolls_back_before_its_commit_undoes_what_the_earlier_run_did(
    harness: Harness, kube_api: Any
) -> None:
    """Seed 11, trial 121 of the fault explorer: the reset dropped the earlier run's
    apply from the history, not its effect, and the reset's run rolled back before it
    reached its commit (a cancel): RolledBack with every change still applied. Here
    the reset's run starts again at the workflow task after a lease wait, which takes
    the leases and snapshots; past ``spec.timeout``, it rolls back before its commit.
    Every target carries the earlier run's marker: each is undone."""
    targets(harness)
    take_lease(kube_api, harness.namespace, "p")  # another transaction holds p a moment
    timeout = timedelta(seconds=15)
    manifest = three_changes("reset-late")
    manifest["spec"]["timeout"] = f"{timeout.seconds}s"
    handle = await harness.start(manifest)
    await harness.wait_phase("reset-late", {"Preparing"})
    free_lease(kube_api, harness.namespace, "p")
    await asyncio.wait_for(finish(handle), timeout=FINISH_TIMEOUT)
    status = harness.transaction("reset-late")["status"]
    assert status["phase"] == "Committed", status
    assert_agrees_with_phase(harness, status)
    point = await after_the_lease_wait(handle)
    started = await first_workflow_task(handle)  # the run's clock starts there
    left = started + timeout + timedelta(seconds=1) - datetime.now(UTC)
    await asyncio.sleep(max(0.0, left.total_seconds()))  # then the reset's run is past it
    reset_workflow(handle.id, "--event-id", str(point))
    status = await finish_latest(harness, handle.id, "reset-late")
    print(f"\n[reset] rolled back before its commit: {status['phase']}: {status['message']}")
    assert status["phase"] == "RolledBack", status
    assert "spec.timeout" in status["message"], status
    assert_agrees_with_phase(harness, status)  # every target as before
    assert status["summary"]["rolledBack"] == 3, status
    await nothing_left(harness, "reset-late")


async def test_a_reset_run_whose_prepare_is_refused_still_undoes_what_the_earlier_run_did(
    harness: Harness,
) -> None:
    """Seed 11, trial 100 of the fault explorer: four changes committed, someone else
    then deleted the Update's target, and a reset started the Transaction again. Its
    prepare was refused as a whole ("not found"), so nothing was snapshotted, nothing
    had an undo, and it ended RolledBack "Rolled back 0 changes" with both Creates and
    the Delete still applied. Now the refusal is that target's: the others are
    snapshotted (the earlier run's snapshots) and undone; the foreign delete stands."""
    harness.create_objects(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "web"},
                "data": {"v": "1"},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "sec-0"},
                "stringData": {"k": "s"},
            },
        ]
    )
    before = harness.secret("sec-0").data
    four = transaction(
        "reset-refused",
        change("ConfigMap", "w-new", "Create", {"data": {"v": "new"}}),
        change("ConfigMap", "web", "Update", {"data": {"v": "2"}}),
        change("ConfigMap", "cm-new", "Create", {"data": {"v": "new"}}),
        change("Secret", "sec-0", "Delete"),
    )
    handle = await harness.start(four)
    await asyncio.wait_for(finish(handle), timeout=FINISH_TIMEOUT)
    assert harness.transaction("reset-refused")["status"]["phase"] == "Committed"
    harness.core.delete_namespaced_config_map("web", harness.namespace)  # someone else
    reset_to_first_task(handle.id)
    status = await finish_latest(harness, handle.id, "reset-refused")
    print(f"\n[reset] prepare refused for one target: {status['phase']}: {status['message']}")
    assert status["phase"] == "RolledBack", status
    assert "not found; Update needs an existing object" in status["message"], status
    assert status["summary"]["rolledBack"] == 3, status
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["RolledBack"] == "True" and conditions["Committed"] == "False", conditions
    items = {item["index"]: item for item in status["items"]}
    assert "not found" in items[1]["error"], items[1]
    assert [items[i]["rolledBack"] for i in (0, 2, 3)] == [True, True, True], items
    assert harness.config_map("w-new") is None
    assert harness.config_map("cm-new") is None
    assert harness.config_map("web") is None  # the other writer's delete stands
    restored = harness.secret("sec-0")
    assert restored is not None and restored.data == before and marker(restored) is None
    await nothing_left(harness, "reset-refused")


async def test_a_reset_after_someone_else_recreated_what_our_delete_deleted_leaves_theirs(
    harness: Harness,
) -> None:
    """Seed 20261202, trial 84 of the fault explorer: our Delete ran, someone else then
    created the object again (another uid), and a reset started the Transaction again.
    The new run found an object where its note says ours was deleted, snapshotted it
    as the state before, and deleted it: another writer's object erased. Now an
    object with another uid than the one our note names counts as our Delete applied
    (theirs came after): the run commits and leaves it."""
    targets(harness)
    handle = await harness.start(
        transaction(
            "reset-recreated",
            change("ConfigMap", "u", "Delete"),
            change("ConfigMap", "p", "Patch", {"data": {"v": "2"}}),
        )
    )
    await asyncio.wait_for(finish(handle), timeout=FINISH_TIMEOUT)
    assert harness.transaction("reset-recreated")["status"]["phase"] == "Committed"
    assert harness.config_map("u") is None
    harness.create_objects(  # someone else's, after our Delete
        [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u"}, "data": {"t": "x"}}]
    )
    theirs = harness.config_map("u")
    reset_to_first_task(handle.id)
    status = await finish_latest(harness, handle.id, "reset-recreated")
    print(f"\n[reset] after someone else re-created a deleted target: {status['phase']}")
    assert status["phase"] == "Committed", status
    kept = harness.config_map("u")
    assert kept is not None and kept.data == {"t": "x"}, "the reset's run deleted theirs"
    assert kept.metadata.uid == theirs.metadata.uid
    assert harness.config_map("p").data == {"v": "2"}
    await nothing_left(harness, "reset-recreated")
