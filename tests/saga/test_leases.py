"""Leases: ordered (no deadlock), waited for up to lockTimeout, never stolen while live."""

from __future__ import annotations

import asyncio
import datetime as dt

from kubernetes import client as k8s

from janus.contract.operations import lease_name
from tests.saga.harness import LEASE_NAMESPACE, Harness, change, finish, transaction


def config_maps(harness: Harness, *names: str) -> None:
    harness.create_objects(
        [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": {}}
            for n in names
        ]
    )


async def test_opposite_orders_both_commit_without_lost_updates(harness: Harness) -> None:
    config_maps(harness, "left", "right")
    a = transaction(
        "forward",
        change("ConfigMap", "left", "Patch", {"data": {"forward": "1"}}),
        change("ConfigMap", "right", "Patch", {"data": {"forward": "1"}}),
    )
    b = transaction(
        "backward",
        change("ConfigMap", "right", "Patch", {"data": {"backward": "1"}}),
        change("ConfigMap", "left", "Patch", {"data": {"backward": "1"}}),
    )

    handles = await asyncio.gather(harness.start(a), harness.start(b))
    await asyncio.wait_for(asyncio.gather(*(finish(h) for h in handles)), timeout=120)

    assert harness.transaction("forward")["status"]["phase"] == "Committed"
    assert harness.transaction("backward")["status"]["phase"] == "Committed"
    for name in ("left", "right"):
        assert harness.config_map(name).data == {"forward": "1", "backward": "1"}
    assert harness.leases() == []


def hold_lease(harness: Harness, target_name: str, holder: str, seconds: int = 300) -> str:
    """Take a target's lease as another (live) transaction would."""
    name = lease_name("v1", "ConfigMap", harness.namespace, target_name)
    now = dt.datetime.now(dt.UTC)
    k8s.CoordinationV1Api(harness.api).create_namespaced_lease(
        LEASE_NAMESPACE,
        k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(name=name),
            spec=k8s.V1LeaseSpec(
                holder_identity=holder,
                lease_duration_seconds=seconds,
                acquire_time=now,
                renew_time=now,
            ),
        ),
    )
    return name


async def test_waits_for_a_held_lease_and_commits_once_released(harness: Harness) -> None:
    config_maps(harness, "contended")
    holder = f"{harness.namespace}/other-txn/1234"
    lease = hold_lease(harness, "contended", holder)
    handle = await harness.start(
        transaction(
            "patient",
            change("ConfigMap", "contended", "Patch", {"data": {"k": "v"}}),
            lockTimeout="60s",
        )
    )
    waiting = await _wait_message(harness, "patient", "Waiting")
    assert holder in waiting
    wait = harness.transaction("patient")["status"]["waiting"]
    assert wait["lease"] == f"{LEASE_NAMESPACE}/{lease}" and wait["holder"] == holder
    assert wait["target"] == f"v1 ConfigMap {harness.namespace}/contended"
    assert not wait.get("gaveUp") and not wait.get("undo") and wait["since"]
    assert harness.config_map("contended").data is None

    k8s.CoordinationV1Api(harness.api).delete_namespaced_lease(lease, LEASE_NAMESPACE)
    await asyncio.wait_for(finish(handle), timeout=60)

    status = harness.transaction("patient")["status"]
    assert status["phase"] == "Committed"
    assert "waiting" not in status  # the wait ended: the field went with it
    assert harness.config_map("contended").data == {"k": "v"}


async def test_gives_up_after_lock_timeout_naming_the_holder(harness: Harness) -> None:
    config_maps(harness, "contended")
    holder = f"{harness.namespace}/other-txn/5678"
    lease = hold_lease(harness, "contended", holder)

    txn = await harness.run(
        transaction(
            "impatient",
            change("ConfigMap", "contended", "Patch", {"data": {"k": "v"}}),
            lockTimeout="2s",
        )
    )

    status = txn["status"]
    assert status["phase"] == "RolledBack", status
    assert holder in status["message"] and "lockTimeout 2s" in status["message"]
    assert status["waiting"]["holder"] == holder and status["waiting"]["gaveUp"] is True
    assert harness.config_map("contended").data is None
    still = k8s.CoordinationV1Api(harness.api).read_namespaced_lease(lease, LEASE_NAMESPACE)
    assert still.spec.holder_identity == holder  # type: ignore[union-attr]  # a live holder's lease is never taken


async def test_an_expired_lease_is_taken_over(harness: Harness) -> None:
    config_maps(harness, "abandoned")
    hold_lease(harness, "abandoned", f"{harness.namespace}/dead-txn/0000", seconds=1)
    await asyncio.sleep(1.5)

    txn = await harness.run(
        transaction(
            "heir",
            change("ConfigMap", "abandoned", "Patch", {"data": {"k": "v"}}),
            lockTimeout="5s",
        )
    )

    assert txn["status"]["phase"] == "Committed", txn["status"]
    assert harness.config_map("abandoned").data == {"k": "v"}


async def _wait_message(harness: Harness, name: str, text: str) -> str:
    for _ in range(300):
        message = str(harness.transaction(name).get("status", {}).get("message", ""))
        if text in message:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never said {text!r}")
