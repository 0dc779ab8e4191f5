"""Crash at every boundary: the worker process SIGKILLed, a new one finishes the job.

Each transaction runs the scenario on a task queue of its own, served by a
worker process configured (``JANUS_CRASH_AT``) to SIGKILL itself at one point:
before an activity's API call, or after it but before the result is recorded.
Once it is dead a fresh worker takes over, armed with the next point, and so
on; the last has none. The transaction must end exactly as it does without a
crash: Committed for a
crash on the way forward, RolledBack for a crash during a rollback (from a
failure injected at the last change).

Crash points: taking the leases, the snapshot, every change's action and every
change's undo (before and after each), and releasing the leases. To keep the
suite within budget the points are spread over a few transactions, each of
which is killed at several of them in turn (a new worker armed with the next
point takes over after each kill); every kill must still end exactly as a run
without any crash.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.dynamic import DynamicClient
from temporalio.client import Client

from tests.reliability import tally
from tests.reliability.cases import CASE_TIMEOUT, CLEAN, Case, judge, play
from tests.reliability.scenario import CHANGES, LAST, Sandbox
from tests.reliability.worker_process import WorkerProcess, Zygote
from tests.saga.harness import finish

#: How long a worker may take to reach its crash point.
CRASH_TIMEOUT = 180.0

#: Crash points in the order a transaction reaches them.
FORWARD = [
    "acquire:4:before",
    "acquire:4:after",
    "snapshot:0:before",
    f"snapshot:{LAST}:after",
    *(f"apply:{k}:{p}" for k in range(CHANGES) for p in ("before", "after")),
    "release:0:before",
    f"release:{LAST}:after",
]
#: Rolling back from a failure at the last change: undos run from the last to the first.
ROLLBACK = [f"undo:{k}:{p}" for k in reversed(range(CHANGES - 1)) for p in ("before", "after")]
LINEAGES = {"forward": 6, "rollback": 4}


def lineages() -> list[tuple[Case, list[str]]]:
    """Spread the points over a few transactions, each crashing at several of them in turn."""
    out = []
    for kind, points in (("forward", FORWARD), ("rollback", ROLLBACK)):
        count = LINEAGES[kind]
        for i in range(count):
            name = f"crash-{kind}-{i}"
            if kind == "forward":
                case = Case(name)
            else:
                case = Case(name, (f"apply:{LAST}:before",), "RolledBack", failed_apply=LAST)
            out.append((case, points[i::count]))
    return out


async def test_sigkill_at_every_boundary_then_a_new_worker_finishes(
    kube_api: ApiClient,
    dyn: DynamicClient,
    temporal_client: Client,
    crd_installed: None,
    zygote: Zygote,
    tmp_path: Path,
) -> None:
    runs = [(CLEAN, []), *lineages()]
    sandboxes = [
        Sandbox(kube_api, dyn, temporal_client, f"{case.name}-{uuid.uuid4().hex[:6]}", case.name)
        for case, _ in runs
    ]
    killed: dict[str, list[str]] = {}
    timings: dict[str, str] = {}

    def runner_for(case: Case, points: list[str]) -> Any:
        async def run(sandbox: Sandbox, manifest: dict[str, Any]) -> dict[str, Any]:
            faults = {"JANUS_FAULTS": ",".join(case.fault_specs())}
            t0 = time.monotonic()
            marks: list[str] = []
            killed[case.name] = []

            def worker(generation: int) -> WorkerProcess:
                crash = points[generation] if generation < len(points) else ""
                env = {**faults, "JANUS_CRASH_AT": f"{crash}@{case.name}" if crash else ""}
                log = tmp_path / case.name / f"worker-{generation}.log"
                return WorkerProcess(zygote, sandbox.task_queue, log, env).start()

            current = worker(0)
            try:
                await current.ready()
                handle = await sandbox.harness.start(manifest)
                for generation, point in enumerate(points):
                    code = await asyncio.to_thread(current.wait_exit, CRASH_TIMEOUT)
                    marks.append(f"{point} {time.monotonic() - t0:.0f}s")
                    if code != -9:
                        break
                    killed[case.name].append(point)
                    current = worker(generation + 1)
                    await current.ready()
                await asyncio.wait_for(finish(handle), timeout=CASE_TIMEOUT)
                marks.append(f"finished {time.monotonic() - t0:.0f}s")
                timings[case.name] = ", ".join(marks)
            finally:
                current.stop()
            name = manifest["metadata"]["name"]
            return await asyncio.to_thread(sandbox.harness.transaction, name)

        return run

    try:
        outcomes = await asyncio.gather(
            *(
                play(sandbox, case, runner_for(case, points))
                for sandbox, (case, points) in zip(sandboxes, runs, strict=True)
            )
        )
    finally:
        await asyncio.gather(*(asyncio.to_thread(s.cleanup) for s in sandboxes))

    clean, *crashed = outcomes
    committed = clean.after
    problems = {CLEAN.name: judge(clean, committed)}
    for outcome, (case, points) in zip(crashed, runs[1:], strict=True):
        found = judge(outcome, committed)
        problems[case.name] = found
        for point in points:
            missed = [] if point in killed[case.name] else ["the worker was not SIGKILLed there"]
            tally.record(
                "crashes injected", point, not (found or missed), "; ".join(found + missed)
            )
            if missed:
                problems[case.name].append(f"{point}: {missed[0]}")
    for name, line in sorted(timings.items()):
        print(f"  {name}: {line}")
    total = sum(len(points) for _, points in runs)
    exact = sum(len(killed[case.name]) for case, _ in runs[1:] if not problems[case.name])
    print(
        f"\n[crashes injected] {total} SIGKILLs in {len(runs) - 1} transactions, "
        f"{exact} ended exactly as expected"
    )
    assert not any(problems.values()), "\n".join(
        f"{name}: {p}" for name, found in problems.items() for p in found
    )
