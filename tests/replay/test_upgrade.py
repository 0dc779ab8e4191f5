"""Upgrades never break a transaction in flight, in either direction.

The last release (``RELEASES.toml``) is checked out into a temporary git
worktree and its ``janus bridge`` and ``janus worker`` run as processes beside
today's (same interpreter, ``PYTHONPATH`` at each tree). Transactions are caught
in the middle of a commit, of a rollback, and of a wait on a lease, by a delay
seam of the worker; the worker is then SIGKILLed (a node lost mid-rollout) and the
other version's installation takes over the same task queue:

- **Upgrade** (release → today): each ends exactly as it would have without the
  upgrade: Committed or RolledBack, every target as that outcome says.
- **Rollback of the deploy** (today → release): a transaction started on today's
  code must be finished correctly by the release, or refused by it (its workflow
  tasks fail replay; nothing is written), and then finished once today's worker
  is back. Never a target left half-changed.
- **``janus retry``** of a transaction the release left Failed works with today's
  code (the reset replays the release's history).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient
from temporalio.client import Client

from janus.contract.versioning import generation_queue
from janus.dev import Endpoints
from tests.replay.installation import (
    TERMINAL,
    Installation,
    builds_that_ran,
    items_where,
    retried_attempt,
    status,
    touched_by,
    until,
    until_async,
)
from tests.replay.processes import janus_command
from tests.replay.releases import ROOT, last_release
from tests.saga.harness import Harness, change, transaction

#: The window each in-flight transaction is caught in (a delayed step). It costs
#: nothing: the worker is killed inside it, and its successor has no delay.
WINDOW = "20s"
SEAMS = {
    "JANUS_FAULTS": "apply:3:before@mid-rollback",
    "JANUS_DELAYS": f"apply:2:before:{WINDOW}@mid-commit,undo:1:before:{WINDOW}@mid-rollback",
}
IN_FLIGHT = ("mid-commit", "mid-rollback", "lease-wait")
FINISH_TIMEOUT = 120.0


def patch(name: str, value: str) -> dict[str, Any]:
    return change("ConfigMap", name, "Patch", {"data": {"v": value}})


async def start_in_flight(h: Harness) -> dict[str, str]:
    """Three transactions, each caught mid-way; returns their workflow ids."""
    h.create_objects(
        [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": {"v": "1"}}
            for n in [*(f"mc-{i}" for i in range(4)), *(f"rb-{i}" for i in range(4))]
        ]
    )
    h.create_transaction(transaction("mid-commit", *(patch(f"mc-{i}", "2") for i in range(4))))
    h.create_transaction(transaction("mid-rollback", *(patch(f"rb-{i}", "2") for i in range(4))))
    # Changes 0 and 1 committed; the batch from change 2 waits in the window.
    await until(
        "mid-commit in its window", lambda: items_where(h, "mid-commit", "committed") == {0, 1}
    )
    h.create_transaction(transaction("lease-wait", patch("mc-0", "3")))
    # The failure at change 3 rolls back; the undos of 3 and 2 ran, the one of 1 waits.
    await until(
        "mid-rollback in its window", lambda: 2 in items_where(h, "mid-rollback", "rolledBack")
    )
    await until(
        "lease-wait waiting on mid-commit's lease",
        lambda: "Waiting" in (status(h, "lease-wait").get("message") or ""),
    )
    return {name: status(h, name)["workflowId"] for name in IN_FLIGHT}


def assert_still_in_flight(h: Harness) -> None:
    phases = {name: status(h, name).get("phase") for name in IN_FLIGHT}
    assert phases["mid-commit"] == "Committing", phases
    assert phases["mid-rollback"] == "RollingBack", phases
    assert phases["lease-wait"] not in TERMINAL, phases


def assert_ended_as_without_upgrade(h: Harness) -> None:
    phases = {name: status(h, name).get("phase") for name in IN_FLIGHT}
    assert phases == {
        "mid-commit": "Committed",
        "mid-rollback": "RolledBack",
        "lease-wait": "Committed",
    }, {name: status(h, name).get("message") for name in IN_FLIGHT}
    values = {f"mc-{i}": h.config_map(f"mc-{i}").data["v"] for i in range(4)}
    assert values == {"mc-0": "3", "mc-1": "2", "mc-2": "2", "mc-3": "2"}, values
    rolled_back = {f"rb-{i}": h.config_map(f"rb-{i}").data["v"] for i in range(4)}
    assert rolled_back == {f"rb-{i}": "1" for i in range(4)}, rolled_back
    assert h.leases() == []


def targets(h: Harness) -> dict[str, str]:
    return {f"{p}-{i}": h.config_map(f"{p}-{i}").data["v"] for p in ("mc", "rb") for i in range(4)}


async def wait_terminal(h: Harness, within: float = FINISH_TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(
        lambda: all(status(h, n).get("phase") in TERMINAL for n in IN_FLIGHT)
    ):
        assert time.monotonic() < deadline, {n: status(h, n) for n in IN_FLIGHT}
        await asyncio.sleep(0.3)


@dataclass(frozen=True)
class Rollout:
    """The test's harness, and either version's installation on its queue and namespace."""

    h: Harness
    release_tree: Path
    endpoints: Endpoints
    logs: Path
    version: str

    def release(self, **settings: str) -> Installation:
        """The last release's bridge and worker, labelled with its version."""
        return self._installation(self.version, self.release_tree, settings)

    def current(self, label: str = "current", **settings: str) -> Installation:
        """Today's bridge and worker."""
        return self._installation(label, ROOT, settings)

    def _installation(self, label: str, tree: Path, settings: dict[str, str]) -> Installation:
        h = self.h
        return Installation(
            label, tree, self.endpoints, h.task_queue, h.namespace, self.logs, settings
        )


@pytest.fixture
def rollout(
    crd_installed: None,
    release_tree: Path,
    endpoints: Endpoints,
    kube_api: ApiClient,
    temporal_client: Client,
    task_queue: str,
    namespace: str,
    tmp_path: Path,
) -> Rollout:
    h = Harness(kube_api, temporal_client, task_queue, namespace)
    return Rollout(h, release_tree, endpoints, tmp_path, last_release().version)


async def caught_in_flight(h: Harness, installation: Installation) -> dict[str, str]:
    """The three transactions caught mid-way on ``installation``, whose worker is
    then SIGKILLed (they stay in flight); returns their workflow ids."""
    installation.start()
    try:
        workflow_ids = await start_in_flight(h)
    finally:
        installation.crash()
    assert_still_in_flight(h)
    return workflow_ids


async def finished_on(h: Harness, installation: Installation) -> None:
    """``installation`` runs until every transaction in flight has ended."""
    installation.start()
    try:
        await wait_terminal(h)
    finally:
        installation.stop()


async def test_transactions_in_flight_on_the_last_release_finish_on_the_current_worker(
    rollout: Rollout,
) -> None:
    h, version = rollout.h, rollout.version
    workflow_ids = await caught_in_flight(h, rollout.release(**SEAMS))

    await finished_on(h, rollout.current())
    assert_ended_as_without_upgrade(h)
    for name, workflow_id in workflow_ids.items():
        described = await h.temporal.get_workflow_handle(workflow_id).describe()
        assert described.task_queue == generation_queue(h.task_queue, 1), described.task_queue
        ran = await builds_that_ran(h.temporal, workflow_id)
        assert len(ran) >= 2, f"{name} was not finished by another worker than it started on: {ran}"
    ended = ", ".join(f"{n} {status(h, n)['phase']}" for n in IN_FLIGHT)
    print(f"upgrade {version} -> current: {ended}")


async def test_a_rolled_back_deploy_never_corrupts_a_transaction_started_on_the_new_one(
    rollout: Rollout,
) -> None:
    h, version = rollout.h, rollout.version
    workflow_ids = await caught_in_flight(h, rollout.current(**SEAMS))
    at_crash = targets(h)
    for workflow_id in workflow_ids.values():
        described = await h.temporal.get_workflow_handle(workflow_id).describe()
        assert described.task_queue == generation_queue(h.task_queue), described.task_queue

    old = rollout.release().start()
    try:
        # The batches the crash interrupted are offered again (their heartbeat timed
        # out): had the release's worker been able to take them, it would have now.
        for name in ("mid-commit", "mid-rollback"):
            workflow_id = workflow_ids[name]
            await until_async(
                f"{name}'s interrupted batch offered again",
                lambda w=workflow_id: _offered_again(h.temporal, w),  # type: ignore[misc]
            )
        assert old.worker is not None and old.worker.process is not None
        pid = old.worker.process.pid
        for name, workflow_id in workflow_ids.items():
            touched = await touched_by(h.temporal, workflow_id, pid)
            assert touched == [], f"{version}'s worker ran part of {name}: {touched}"
        assert_still_in_flight(h)
        assert targets(h) == at_crash
    finally:
        old.stop()

    await finished_on(h, rollout.current("current-again"))
    assert_ended_as_without_upgrade(h)
    print(
        f"deploy rolled back current -> {version}: {version} took no task of the "
        f"{len(workflow_ids)} in flight; rolled forward, they ended as without the rollback"
    )


async def test_janus_retry_of_a_transaction_the_last_release_left_failed(
    rollout: Rollout,
) -> None:
    h, version = rollout.h, rollout.version
    h.create_objects(
        [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": {"v": "1"}}
            for n in ("first", "second")
        ]
    )
    faulty = rollout.release(JANUS_FAULTS="apply:1:before@stuck,undo:0:before@stuck").start()
    try:
        h.create_transaction(transaction("stuck", patch("first", "2"), patch("second", "2")))
        failed = await until(
            "stuck Failed on the release",
            lambda: status(h, "stuck").get("phase") == "Failed" and status(h, "stuck"),
        )
    finally:
        faulty.stop()
    assert "undo of change 0" in failed["message"], failed
    assert h.config_map("first").data == {"v": "2"}

    current = rollout.current()
    janus_command(ROOT, "retry", f"{h.namespace}/stuck", env=current.env())
    current.start()
    try:
        done = await until(
            "stuck RolledBack after retry",
            lambda: status(h, "stuck").get("phase") == "RolledBack" and status(h, "stuck"),
            within=FINISH_TIMEOUT,
        )
    finally:
        current.stop()
    assert h.config_map("first").data == {"v": "1"}
    assert h.config_map("second").data == {"v": "1"}
    assert h.leases() == []
    print(f"janus retry (current) of a transaction {version} left Failed: {done['phase']}")


async def _offered_again(client: Client, workflow_id: str) -> bool:
    return await retried_attempt(client, workflow_id) >= 2
