"""Failure at every step: each action and each undo of the scenario made to fail.

For every change k of the nine-change scenario (all four change types; a
ConfigMap, a Secret, a Deployment, custom resources, a cluster-scoped
ClusterRole; acting as a service account) the worker's fault seam makes:

- apply k fail for good (``before``): RolledBack, every target as before;
- apply k fail after its write (``after``, transient): Committed, exactly once;
- undo k fail for good while rolling back from a failure at the last change:
  Failed, naming undo k, every other target as before, target k as committed;
- undo k fail after its write (transient): RolledBack, every target as before;
- the snapshot fail, for good and transiently.

Every case runs in a namespace of its own, all of a group at once. The same
matrix runs again with every activity executed twice (``repeat_activities``):
the outcomes must be the same; that is the proof that every activity is
idempotent.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes.client import ApiClient
from kubernetes.dynamic import DynamicClient
from temporalio.client import Client

from activities.seams import Fault
from tests.reliability import tally
from tests.reliability.cases import (
    CLEAN,
    Case,
    Outcome,
    fail_apply,
    fail_snapshot,
    fail_undo,
    judge,
    play,
    transient_apply,
    transient_snapshot,
    transient_undo,
)
from tests.reliability.scenario import CHANGES, TOKEN_AFTER, Sandbox, b64
from tests.saga.conftest import StartWorker

STEPS = range(CHANGES)

GROUPS: dict[str, list[Case]] = {
    "commit": [
        *(fail_apply(k) for k in STEPS),
        *(transient_apply(k) for k in STEPS),
        fail_snapshot(0),
        transient_snapshot(0),
    ],
    "undo": [*(fail_undo(k) for k in STEPS), *(transient_undo(k) for k in STEPS)],
}


def check_committed(views: dict[str, Any]) -> list[str]:
    """The clean run really applied every change (it is the reference for the others)."""
    facts = {
        "fresh created": views["0"] and views["0"]["data"] == {"hi": "1"},
        "settings replaced": views["1"] and views["1"]["data"] == {"mode": "2"},
        "web patched": views["2"]
        and views["2"]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v2"),
        "old-key deleted": views["3"] is None,
        "token rotated": views["4"] and views["4"]["data"] == {"token": b64(TOKEN_AFTER)},
        "gear patched": views["5"] and views["5"]["spec"] == {"size": 3},
        "sprocket created": views["6"] and views["6"]["spec"] == {"teeth": 12},
        "role patched": views["7"] and views["7"]["labels"].get("reviewed") == "yes",
        "anchor touched": views["8"] and views["8"]["data"].get("touched") == "yes",
    }
    return [f"clean run: {fact} is not so" for fact, ok in facts.items() if not ok]


@pytest.mark.parametrize("repeat", [False, True], ids=["once", "repeated"])
@pytest.mark.parametrize("group", sorted(GROUPS))
async def test_every_step_fails_and_the_cluster_ends_exact(
    group: str,
    repeat: bool,
    kube_api: ApiClient,
    dyn: DynamicClient,
    temporal_client: Client,
    task_queue: str,
    start_worker: StartWorker,
    crd_installed: None,
) -> None:
    cases = [CLEAN, *GROUPS[group]]
    faults = [Fault.parse(spec) for case in cases for spec in case.fault_specs()]
    await start_worker(faults=faults, repeat_activities=repeat)
    sandboxes = [Sandbox(kube_api, dyn, temporal_client, task_queue, c.name) for c in cases]
    try:
        outcomes: list[Outcome] = await asyncio.gather(
            *(play(sandbox, case) for sandbox, case in zip(sandboxes, cases, strict=True))
        )
    finally:
        await asyncio.gather(*(asyncio.to_thread(s.cleanup) for s in sandboxes))

    clean, *faulted = outcomes
    committed = clean.after
    problems = {CLEAN.name: judge(clean, committed) + check_committed(committed)}
    category = "failure points (activities repeated)" if repeat else "failure points"
    for outcome in faulted:
        found = judge(outcome, committed)
        problems[outcome.case.name] = found
        tally.record(category, f"{group}/{outcome.case.name}", not found, "; ".join(found))
    print(
        f"\n[{category}] {group}: {len(faulted)} failure points, "
        f"{sum(not p for n, p in problems.items() if n != CLEAN.name)} exactly as expected"
    )
    assert not any(problems.values()), "\n".join(
        f"{name}: {p}" for name, found in problems.items() for p in found
    )
