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
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from activities.seams import Fault
from tests.reliability.test_combined_faults import marker, nothing_left, wait_committed
from tests.saga.harness import LEASE_NAMESPACE, Harness, change, finish, transaction

TEMPORAL = Path(sys.executable).parent / "temporal"
FINISH_TIMEOUT = 180.0


def reset_to_first_task(workflow_id: str) -> str:
    """The Temporal CLI's reset, as a user runs it (or presses Reset in the UI)."""
    done = subprocess.run(
        [
            str(TEMPORAL),
            "workflow",
            "reset",
            "--workflow-id",
            workflow_id,
            "--type",
            "FirstWorkflowTask",
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
