"""Latency and overhead: the seed example to Committed, its failing variant to RolledBack,
and the same mutations by a plain script, interleaved in one run.

Every run gets a fresh namespace with the seed objects. The three kinds of run
rotate (commit, rollback, plain; then rollback, plain, commit; …) so drift in
the machine's load hits them alike. The first ``warmup_runs`` rounds are not
counted (the worker's first workflow also imports and warms its sandbox).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from benchmarks import history
from benchmarks.context import Context
from benchmarks.driver import Driver
from benchmarks.meters import count_requests
from benchmarks.stats import describe, median, percentile, ratio
from benchmarks.workload import PlainScript, create_objects, seed_objects, seed_transaction

KINDS = ("commit", "rollback", "plain")
EXPECTED = {"commit": "Committed", "rollback": "RolledBack"}
START = "start (create + start workflow)"
OBSERVE = "observe (close → client)"
PARTS = (START, *history.BUCKETS, OBSERVE)


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    plain = PlainScript(ctx.cluster.dynamic)
    plain.warm(seed_transaction())
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    namespaces: list[str] = []

    async def seeded_namespace(prefix: str) -> str:
        ns = await ctx.cluster.call(ctx.cluster.new_namespace, prefix)
        namespaces.append(ns)
        await ctx.cluster.call(create_objects, ctx.cluster.api, ns, seed_objects())
        return ns

    async with ctx.worker("latency") as (worker, driver):

        async def one(kind: str, ns: str) -> dict[str, Any]:
            if kind == "plain":
                return {"seconds": await ctx.cluster.call(plain.run, seed_transaction(), ns)}
            return await _janus_run(ctx, driver, kind, ns)

        for round_ in range(cfg.warmup_runs + cfg.latency_runs):
            for kind in KINDS[round_ % 3 :] + KINDS[: round_ % 3]:
                record = await one(kind, await seeded_namespace(f"lat-{kind[:4]}"))
                runs[kind].append({**record, "warmup": round_ < cfg.warmup_runs})
            if round_ >= cfg.warmup_runs:
                done = ", ".join(f"{k} {runs[k][-1]['seconds'] * 1000:.0f} ms" for k in KINDS)
                ctx.say(f"  latency {round_ - cfg.warmup_runs + 1}/{cfg.latency_runs}: {done}")
        peak = worker.peak_rss_bytes()
        # API requests of one seed commit through Janus, of the plain script, and of a
        # quiet second, each on fresh seed objects.
        requests: dict[str, dict[str, int]] = {}
        counted: dict[str, str | None] = {"janus": "commit", "plain": "plain", "quiet (1 s)": None}
        for name, timed in counted.items():
            ns = await seeded_namespace("lat-count")
            await asyncio.sleep(1)  # let the controllers settle the new Deployment
            work = partial(one, timed, ns) if timed else partial(asyncio.sleep, 1)
            requests[name] = await count_requests(ctx.endpoints, work)
    ctx.cleanup(namespaces)
    return {**summarize(runs, peak, ctx.start_mode), "api_requests": requests}


async def _janus_run(ctx: Context, driver: Driver, kind: str, ns: str) -> dict[str, Any]:
    outcome = await driver.run(seed_transaction(failing=kind == "rollback"), ns, within=120)
    hist = await history.load(ctx.temporal, outcome.submitted.workflow_id)
    parts = history.breakdown(hist)
    parts[START] = hist.start - outcome.submitted.t_apply
    parts[OBSERVE] = outcome.t_done - (hist.close or outcome.t_done)
    return {
        "seconds": outcome.seconds,
        "phase": outcome.phase,
        "ok": outcome.phase == EXPECTED[kind],
        "error": outcome.error,
        "workflow_id": outcome.submitted.workflow_id,
        "breakdown": parts,
        "activities": history.activity_times(hist),
        "failed_activities": [a.type for a in hist.activities if a.outcome == "failed"],
    }


def summarize(
    runs: dict[str, list[dict[str, Any]]], worker_peak: int | None, start_mode: str
) -> dict[str, Any]:
    counted = {k: [r for r in v if not r["warmup"]] for k, v in runs.items()}
    seconds = {k: [r["seconds"] for r in v] for k, v in counted.items()}
    breakdowns: dict[str, dict[str, float]] = {}
    activities: dict[str, dict[str, dict[str, float]]] = {}
    for kind in EXPECTED:
        n = max(len(counted[kind]), 1)
        rows = [r["breakdown"] for r in counted[kind]]
        breakdowns[kind] = {p: sum(r.get(p, 0.0) for r in rows) / n for p in PARTS}
        per_type: dict[str, dict[str, float]] = {}
        for r in counted[kind]:
            for name, row in r["activities"].items():
                acc = per_type.setdefault(name, dict.fromkeys(row, 0.0))
                for key in acc:
                    acc[key] += row[key] / n
        activities[kind] = per_type
    failures = {k: [r for r in counted[k] if not r["ok"]] for k in EXPECTED}
    return {
        "start_mode": start_mode,
        "stats": {k: describe(v) for k, v in seconds.items()},
        "overhead": {
            "median_ratio": ratio(median(seconds["commit"]), median(seconds["plain"])),
            "p95_ratio": ratio(percentile(seconds["commit"], 95), percentile(seconds["plain"], 95)),
        },
        "breakdown_mean": breakdowns,
        "activities_mean": activities,
        "failures": {k: len(v) for k, v in failures.items()},
        "failure_examples": {k: [f["error"] for f in v[:3]] for k, v in failures.items()},
        "rollback_failed_in": sorted(
            {a for r in counted["rollback"] for a in r["failed_activities"]}
        ),
        "worker_peak_rss_bytes": worker_peak,
        "runs": runs,
    }
