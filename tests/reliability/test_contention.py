"""Contention and interference: many transactions at once, and writers that are not Janus.

- Twenty transactions over overlapping ConfigMaps start at once (two of them
  made to fail). All finish; none deadlocks. Each committed atomically or not
  at all, and the end state is that of *some* serial order: per target, every
  transaction's snapshot (what it saw under its lease) is exactly the state
  its predecessor left, and the precedence between transactions has no cycle.
- Another writer changes a target between the snapshot and the commit: the
  conflict is detected, the transaction rolls back, the other write stays.
- Another writer changes a committed target before the rollback reaches it:
  the undo does not clobber it; the item and a condition say so (Failed).
- A live holder's lease is never stolen (the other transaction times out
  naming it); an expired one is taken over; a lease taken over mid-transaction
  stops the next write (fencing) and the transaction rolls back.

Windows for the other writer are opened with the worker's delay seam
(``JANUS_DELAYS``), never by patching code.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from graphlib import CycleError, TopologicalSorter
from typing import Any

import pytest
from kubernetes import client as k8s

from activities.seams import Fault
from janus.contract.operations import lease_name
from tests.reliability import tally
from tests.reliability.leases import take_lease
from tests.reliability.stage import Stage, config_maps
from tests.saga.harness import LEASE_NAMESPACE, Harness, change, finish, transaction

TARGETS = [f"c{i}" for i in range(6)]
COUNT = 20
DOOMED = {5, 13}


def plan(i: int) -> list[str]:
    """Transaction i's targets: two to four of the six, in an order of its own."""
    rng = random.Random(i)
    return rng.sample(TARGETS, rng.randint(2, 4))


def txn_name(i: int) -> str:
    return f"t{i:02d}"


def patch_of(i: int) -> dict[str, str]:
    return {"last": txn_name(i), txn_name(i): "1"}


def snapshot_data(harness: Harness, uid: str, index: int) -> dict[str, str]:
    """What transaction ``uid`` saw of its change ``index`` under its lease."""
    selector = f"backup.janus.io/transaction-uid={uid}"
    for cm in harness.core.list_namespaced_config_map(
        LEASE_NAMESPACE, label_selector=selector
    ).items:
        text = (cm.data or {}).get(f"{index}.json")
        if text is not None:
            data: dict[str, str] = json.loads(text).get("data") or {}
            return data
    raise AssertionError(f"no snapshot of change {index} of transaction {uid}")


@pytest.mark.worker(faults=[Fault.parse(f"apply:1:before@{txn_name(i)}") for i in DOOMED])
async def test_twenty_transactions_at_once_end_as_some_serial_order(harness: Harness) -> None:
    await asyncio.to_thread(config_maps, harness, TARGETS, {"init": "0"})
    manifests = [
        transaction(
            txn_name(i),
            *(change("ConfigMap", t, "Patch", {"data": patch_of(i)}) for t in plan(i)),
            lockTimeout="5m",
        )
        for i in range(COUNT)
    ]

    handles = await asyncio.gather(*(harness.start(m) for m in manifests))
    await asyncio.wait_for(asyncio.gather(*(finish(h) for h in handles)), timeout=300)

    txns = [await asyncio.to_thread(harness.transaction, txn_name(i)) for i in range(COUNT)]
    problems: dict[str, list[str]] = {txn_name(i): [] for i in range(COUNT)}
    for i, txn in enumerate(txns):
        expected = "RolledBack" if i in DOOMED else "Committed"
        if txn["status"]["phase"] != expected:
            problems[txn_name(i)].append(f"phase {txn['status']['phase']}, not {expected}")

    # Per target: the transactions that touched it, in the order they held its lease.
    # A snapshot's resourceVersion orders them; on a tie (nobody wrote in between)
    # the one that did not commit went first: a commit moves the resourceVersion.
    touched: dict[str, list[tuple[int, bool, int, int]]] = {t: [] for t in TARGETS}
    for i, txn in enumerate(txns):
        wrote = txn["status"]["phase"] == "Committed"
        for item in txn["status"]["items"]:
            name = item["target"].rsplit("/", 1)[-1]
            touched[name].append((int(item["resourceVersion"]), wrote, i, item["index"]))
    # Precedence: each transaction comes after the last one that wrote the target
    # before it, and a writer after every transaction that saw the state it
    # overwrote. Transactions that only saw the same state (rolled back ones) are
    # not ordered among themselves: either order is serial.
    graph: dict[int, set[int]] = {i: set() for i in range(COUNT)}
    for target, visits in touched.items():
        state = {"init": "0"}
        writer: int | None = None
        readers: list[int] = []
        for _rv, wrote, i, index in sorted(visits):
            seen = await asyncio.to_thread(
                snapshot_data, harness, txns[i]["metadata"]["uid"], index
            )
            if seen != state:
                problems[txn_name(i)].append(f"saw {target} as {seen}, not {state}")
            if writer is not None:
                graph[i].add(writer)
            if wrote:
                state = {**state, **patch_of(i)}
                graph[i].update(readers)
                writer, readers = i, []
            else:
                readers.append(i)
        final = (await asyncio.to_thread(harness.config_map, target)).data
        if final != state:
            problems[f"target {target}"] = [f"ends as {final}, serial order gives {state}"]
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        problems["serial order"] = [f"precedence has a cycle: {err.args[1]}"]
        order = []
    leases = await asyncio.to_thread(harness.leases)
    if leases:
        problems["leases"] = [f"left: {[lease.metadata.name for lease in leases]}"]

    for i in range(COUNT):
        found = problems[txn_name(i)]
        tally.record("concurrent transactions", txn_name(i), not found, "; ".join(found))
    print(f"\n[concurrent transactions] {COUNT} at once; a serial order: {order}")
    assert not any(problems.values()), problems


# -- interference ------------------------------------------------------------------

DELAY = "6s"
WORKER = pytest.mark.worker(
    delays=[
        Fault.parse(f"apply:1:before:{DELAY}@conflict"),
        Fault.parse(f"apply:1:before:{DELAY}@clobbered"),
        # Long enough that the waiter (lockTimeout 2s) gives up while it holds on.
        Fault.parse("apply:0:before:10s@holder"),
        Fault.parse(f"apply:1:before:{DELAY}@fenced"),
    ],
    faults=[Fault.parse("apply:1:before@clobbered")],
)


def two_patches(name: str, **spec: Any) -> dict[str, Any]:
    return transaction(
        name,
        change("ConfigMap", "a", "Patch", {"data": {"x": name}}),
        change("ConfigMap", "b", "Patch", {"data": {"x": name}}),
        **spec,
    )


async def conflict_between_snapshot_and_commit(stage: Stage) -> list[str]:
    config_maps(stage.h, ["a", "b"], {"x": "0"})
    handle = await stage.h.start(two_patches("conflict"))
    await stage.wait_committed("conflict", 0)
    await asyncio.to_thread(stage.patch, "b", {"x": "other"})
    await asyncio.wait_for(finish(handle), timeout=120)
    status = stage.h.transaction("conflict")["status"]
    problems = []
    if status["phase"] != "RolledBack":
        problems.append(f"phase {status['phase']}: {status['message']}")
    if "changed by someone else after the snapshot" not in (status["items"][1].get("error") or ""):
        problems.append(f"item 1 does not report the conflict: {status['items'][1]}")
    if stage.h.config_map("a").data != {"x": "0"}:
        problems.append(f"a not restored: {stage.h.config_map('a').data}")
    if stage.h.config_map("b").data != {"x": "other"}:
        problems.append(f"the other writer's change to b is lost: {stage.h.config_map('b').data}")
    return problems


async def write_before_rollback_is_not_clobbered(stage: Stage) -> list[str]:
    config_maps(stage.h, ["a", "b"], {"x": "0"})
    handle = await stage.h.start(two_patches("clobbered"))
    await stage.wait_committed("clobbered", 0)
    await asyncio.to_thread(stage.patch, "a", {"y": "other"})
    await asyncio.wait_for(finish(handle), timeout=120)
    status = stage.h.transaction("clobbered")["status"]
    problems = []
    if status["phase"] != "Failed":
        problems.append(f"phase {status['phase']}: {status['message']}")
    error = status["items"][0].get("error") or ""
    if "changed by someone else after this transaction" not in error:
        problems.append(f"item 0 does not say why it was not restored: {status['items'][0]}")
    skipped = [c for c in status.get("conditions", []) if c["type"] == "UndoSkipped"]
    if (
        not skipped
        or skipped[0]["reason"] != "ModifiedByOthers"
        or "ConfigMap" not in (skipped[0]["message"])
    ):
        problems.append(f"no UndoSkipped condition naming the target: {status.get('conditions')}")
    if stage.h.config_map("a").data != {"x": "clobbered", "y": "other"}:
        problems.append(f"a was overwritten: {stage.h.config_map('a').data}")
    if stage.h.config_map("b").data != {"x": "0"}:
        problems.append(f"b changed: {stage.h.config_map('b').data}")
    return problems


async def live_lease_is_never_stolen(stage: Stage) -> list[str]:
    config_maps(stage.h, ["x"], {"v": "0"})
    holder = await stage.h.start(
        transaction("holder", change("ConfigMap", "x", "Patch", {"data": {"v": "holder"}}))
    )
    await stage.h.wait_phase("holder", {"Committing"})
    waiter = await stage.h.start(
        transaction(
            "waiter",
            change("ConfigMap", "x", "Patch", {"data": {"v": "waiter"}}),
            lockTimeout="2s",
        )
    )
    await asyncio.wait_for(asyncio.gather(finish(holder), finish(waiter)), timeout=120)
    problems = []
    held, waited = stage.h.transaction("holder")["status"], stage.h.transaction("waiter")["status"]
    if held["phase"] != "Committed":
        problems.append(f"holder {held['phase']}: {held['message']}")
    if waited["phase"] != "RolledBack" or f"{stage.namespace}/holder/" not in waited["message"]:
        problems.append(f"waiter did not time out naming the holder: {waited['message']}")
    if stage.h.config_map("x").data != {"v": "holder"}:
        problems.append(f"x is {stage.h.config_map('x').data}")
    return problems


async def expired_lease_is_taken_over(stage: Stage) -> list[str]:
    config_maps(stage.h, ["x"], {"v": "0"})
    take_lease(stage.h.api, stage.namespace, "x", f"{stage.namespace}/dead/0000", seconds=1)
    await asyncio.sleep(1.5)
    txn = await stage.h.run(
        transaction(
            "heir", change("ConfigMap", "x", "Patch", {"data": {"v": "heir"}}), lockTimeout="10s"
        )
    )
    problems = []
    if txn["status"]["phase"] != "Committed":
        problems.append(f"heir {txn['status']['phase']}: {txn['status']['message']}")
    if stage.h.config_map("x").data != {"v": "heir"}:
        problems.append(f"x is {stage.h.config_map('x').data}")
    return problems


async def lease_taken_over_mid_transaction_fences_the_write(stage: Stage) -> list[str]:
    config_maps(stage.h, ["a", "b"], {"x": "0"})
    handle = await stage.h.start(two_patches("fenced"))
    await stage.wait_committed("fenced", 0)
    usurper = f"{stage.namespace}/usurper/9999"
    await asyncio.to_thread(take_lease, stage.h.api, stage.namespace, "b", usurper, 300)
    await asyncio.wait_for(finish(handle), timeout=120)
    status = stage.h.transaction("fenced")["status"]
    problems = []
    if status["phase"] != "RolledBack":
        problems.append(f"phase {status['phase']}: {status['message']}")
    if usurper not in (status["items"][1].get("error") or ""):
        problems.append(f"item 1 does not name the new holder: {status['items'][1]}")
    if stage.h.config_map("a").data != {"x": "0"} or stage.h.config_map("b").data != {"x": "0"}:
        problems.append("a or b not as before")
    k8s.CoordinationV1Api(stage.h.api).delete_namespaced_lease(
        lease_name("v1", "ConfigMap", stage.namespace, "b"), LEASE_NAMESPACE
    )
    return problems


SCENARIOS: dict[str, Callable[[Stage], Awaitable[list[str]]]] = {
    "conflict": conflict_between_snapshot_and_commit,
    "clobber": write_before_rollback_is_not_clobbered,
    "live-lease": live_lease_is_never_stolen,
    "expired-lease": expired_lease_is_taken_over,
    "fencing": lease_taken_over_mid_transaction_fences_the_write,
}


@WORKER
async def test_other_writers_and_lease_holders(harness: Harness) -> None:
    stages = {name: Stage(harness, name) for name in SCENARIOS}
    try:
        results = await asyncio.gather(
            *(scenario(stages[name]) for name, scenario in SCENARIOS.items())
        )
        leftovers = {
            name: [lease.metadata.name for lease in stage.h.leases()]
            for name, stage in stages.items()
        }
    finally:
        for stage in stages.values():
            stage.cleanup()
    problems = dict(zip(SCENARIOS, results, strict=True))
    for name, held in leftovers.items():
        if held:
            problems[name].append(f"leases left: {held}")
    for name, found in problems.items():
        tally.record("interference scenarios", name, not found, "; ".join(found))
    exact = sum(not p for p in problems.values())
    print(f"\n[interference scenarios] {len(problems)} scenarios, {exact} exactly as expected")
    assert not any(problems.values()), problems
