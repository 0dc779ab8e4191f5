"""Run the scenario's transaction in a sandbox and judge the end state a user sees.

A ``Case`` names what is done to the transaction (faults, a crash) and what
must come of it: the phase, which change's action or undo was made to fail.
``judge`` turns an ``Outcome`` into a list of problems (empty: exactly as
expected): the phase and the item named, every target's view against its
state before (or, where the transaction committed or an undo was made to fail,
against the committed state), no lease left, and no snapshot left once the
Transaction is deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.scenario import CHANGES, LAST, Sandbox, differences
from tests.saga.harness import finish

#: One transaction of the scenario must end within this long, whatever is injected.
CASE_TIMEOUT = 300.0


@dataclass(frozen=True)
class Case:
    name: str
    faults: tuple[str, ...] = ()
    phase: str = "Committed"
    failed_apply: int | None = None
    failed_undo: int | None = None

    def fault_specs(self) -> list[str]:
        return [f"{f}@{self.name}" for f in self.faults]


def fail_apply(k: int) -> Case:
    return Case(f"apply-{k}-before", (f"apply:{k}:before",), "RolledBack", failed_apply=k)


def transient_apply(k: int) -> Case:
    return Case(f"apply-{k}-after", (f"apply:{k}:after",))


def fail_undo(k: int) -> Case:
    faults = (f"apply:{LAST}:before", f"undo:{k}:before")
    return Case(f"undo-{k}-before", faults, "Failed", failed_apply=LAST, failed_undo=k)


def transient_undo(k: int) -> Case:
    faults = (f"apply:{LAST}:before", f"undo:{k}:after")
    return Case(f"undo-{k}-after", faults, "RolledBack", failed_apply=LAST)


def fail_snapshot(k: int) -> Case:
    return Case(f"snapshot-{k}-before", (f"snapshot:{k}:before",), "RolledBack", failed_apply=k)


def transient_snapshot(k: int) -> Case:
    return Case(f"snapshot-{k}-after", (f"snapshot:{k}:after",))


CLEAN = Case("clean")


@dataclass
class Outcome:
    case: Case
    status: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    leases: list[str] = field(default_factory=list)
    snapshots_seen: list[str] = field(default_factory=list)
    snapshots_left: list[str] = field(default_factory=list)


Runner = Callable[[Sandbox, dict[str, Any]], Awaitable[dict[str, Any]]]


async def default_runner(sandbox: Sandbox, manifest: dict[str, Any]) -> dict[str, Any]:
    handle = await sandbox.harness.start(manifest)
    await asyncio.wait_for(finish(handle), timeout=CASE_TIMEOUT)
    return await asyncio.to_thread(sandbox.harness.transaction, manifest["metadata"]["name"])


async def play(sandbox: Sandbox, case: Case, runner: Runner = default_runner) -> Outcome:
    """Prepare the sandbox, run the case's transaction, observe, delete it, observe again."""
    before = await asyncio.to_thread(sandbox.prepare)
    txn = await runner(sandbox, sandbox.manifest(case.name))
    uid = txn["metadata"]["uid"]
    after = await asyncio.to_thread(sandbox.views)
    leases = [lease.metadata.name for lease in await asyncio.to_thread(sandbox.harness.leases)]
    seen = await asyncio.to_thread(sandbox.snapshots, uid)
    left = await sandbox.delete_and_wait_for_gc(case.name, uid)
    return Outcome(case, txn.get("status", {}), before, after, leases, seen, left)


def expected_views(outcome: Outcome, committed: dict[str, Any]) -> dict[str, Any]:
    case = outcome.case
    if case.phase == "Committed":
        return committed
    expected = dict(outcome.before)
    if case.failed_undo is not None and case.failed_undo != case.failed_apply:
        key = str(case.failed_undo)
        expected[key] = committed[key]  # its undo was made to fail: still as committed
    return expected


def judge(outcome: Outcome, committed: dict[str, Any]) -> list[str]:
    """Everything that differs from what the case must end as; [] when exact."""
    case, status = outcome.case, outcome.status
    problems: list[str] = []
    phase = status.get("phase")
    if phase != case.phase:
        problems.append(f"phase {phase} (expected {case.phase}): {status.get('message')}")
    items = status.get("items") or []
    if len(items) != CHANGES:
        problems.append(f"{len(items)} items in status")
    elif case.phase != "Committed":
        if case.failed_undo is not None:
            item = items[case.failed_undo]
            if item.get("rolledBack") or "injected fault" not in (item.get("error") or ""):
                problems.append(f"item {case.failed_undo} does not name its failed undo: {item}")
            if f"undo of change {case.failed_undo}" not in status.get("message", ""):
                problems.append(f"message does not name the undo: {status.get('message')}")
        if case.failed_apply is not None and case.failed_undo is None:
            item = items[case.failed_apply]
            if "injected fault" not in (item.get("error") or ""):
                problems.append(f"item {case.failed_apply} does not name the fault: {item}")
        for item in items:
            stuck = item.get("committed") and not item.get("rolledBack")
            if stuck and item["index"] != case.failed_undo:
                problems.append(f"item {item['index']} committed, not rolled back")
    else:
        if not all(item.get("committed") for item in items):
            problems.append("not every item committed")
    problems += differences(expected_views(outcome, committed), outcome.after)
    if outcome.leases:
        problems.append(f"leases left: {outcome.leases}")
    if outcome.snapshots_left:
        problems.append(f"snapshots left after deleting the Transaction: {outcome.snapshots_left}")
    return problems
