"""Latency and overhead: the seed example to Committed, its failing variant to RolledBack,
and the same mutations by a plain script, interleaved in one run.

Every run gets a fresh namespace with the seed objects. The three kinds of run
rotate (commit, rollback, plain; then rollback, plain, commit; …) so drift in
the machine's load hits them alike. The first ``warmup_runs`` rounds are not
counted (the worker's first workflow also imports and warms its sandbox).
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks import apicount, history
from benchmarks.context import Context
from benchmarks.stats import describe, median, percentile, ratio
from benchmarks.workload import (
    PlainScript,
    create_objects,
    failing_seed_transaction,
    seed_objects,
    seed_transaction,
)

KINDS = ("commit", "rollback", "plain")
EXPECTED = {"commit": "Committed", "rollback": "RolledBack"}
START = "start (create + start workflow)"
OBSERVE = "observe (close → client)"


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    cluster = ctx.cluster
    plain = PlainScript(cluster.dynamic)
    plain.warm(seed_transaction())
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    namespaces: list[str] = []
    total = cfg.warmup_runs + cfg.latency_runs
    async with ctx.worker("latency") as (worker, driver):
        for round_ in range(total):
            warmup = round_ < cfg.warmup_runs
            order = KINDS[round_ % 3 :] + KINDS[: round_ % 3]
            for kind in order:
                ns = await cluster.call(cluster.new_namespace, f"lat-{kind[:4]}")
                namespaces.append(ns)
                await cluster.call(create_objects, cluster.api, ns, seed_objects())
                if kind == "plain":
                    seconds = await cluster.call(plain.run, seed_transaction(), ns)
                    record: dict[str, Any] = {"seconds": seconds, "ok": True}
                else:
                    record = await _janus_run(ctx, driver, kind, ns)
                record["warmup"] = warmup
                runs[kind].append(record)
            if not warmup:
                done = round_ - cfg.warmup_runs + 1
                ctx.say(
                    f"  latency {done}/{cfg.latency_runs}: "
                    + ", ".join(f"{k} {runs[k][-1]['seconds'] * 1000:.0f} ms" for k in KINDS)
                )
        peak = worker.peak_rss_bytes()
        requests = await count_requests(ctx, driver, plain, namespaces)
    ctx.cleanup(namespaces)
    return {**summarize(runs, peak, ctx.start_mode), "api_requests": requests}


async def count_requests(
    ctx: Context, driver: Any, plain: PlainScript, namespaces: list[str]
) -> dict[str, dict[str, int]]:
    """API requests of one seed commit through Janus, of the plain script, and of a quiet
    second, each on fresh seed objects."""
    cluster = ctx.cluster
    out: dict[str, dict[str, int]] = {}
    for kind in ("janus", "plain", "quiet (1 s)"):
        ns = await cluster.call(cluster.new_namespace, "lat-count")
        namespaces.append(ns)
        await cluster.call(create_objects, cluster.api, ns, seed_objects())
        await asyncio.sleep(1)  # let the controllers settle the new Deployment

        async def work(kind: str = kind, ns: str = ns) -> None:
            if kind == "janus":
                await driver.run(seed_transaction(), ns, within=120)
            elif kind == "plain":
                await cluster.call(plain.run, seed_transaction(), ns)
            else:
                await asyncio.sleep(1)

        out[kind] = await apicount.count(ctx.endpoints, work)
    return out


async def _janus_run(ctx: Context, driver: Any, kind: str, ns: str) -> dict[str, Any]:
    manifest = seed_transaction() if kind == "commit" else failing_seed_transaction()
    outcome = await driver.run(manifest, ns, within=120)
    hist = await history.load(ctx.temporal, outcome.submitted.workflow_id)
    parts = history.breakdown(hist)
    parts[START] = hist.start - outcome.submitted.t_apply
    parts[OBSERVE] = outcome.t_done - (hist.close or outcome.t_done)
    failed = [a.type for a in hist.activities if a.outcome == "failed"]
    return {
        "seconds": outcome.seconds,
        "phase": outcome.phase,
        "ok": outcome.phase == EXPECTED[kind],
        "error": outcome.error,
        "workflow_id": outcome.submitted.workflow_id,
        "breakdown": parts,
        "activities": history.activity_times(hist),
        "failed_activities": failed,
        "history": history.summary(hist),
    }


def summarize(
    runs: dict[str, list[dict[str, Any]]], worker_peak: int | None, start_mode: str
) -> dict[str, Any]:
    counted = {k: [r for r in v if not r["warmup"]] for k, v in runs.items()}
    seconds = {k: [r["seconds"] for r in v] for k, v in counted.items()}
    stats = {k: describe(v) for k, v in seconds.items()}
    breakdowns: dict[str, dict[str, float]] = {}
    activities: dict[str, dict[str, dict[str, float]]] = {}
    for kind in ("commit", "rollback"):
        rows = [r["breakdown"] for r in counted[kind]]
        keys = [START, *history.BUCKETS, OBSERVE]
        breakdowns[kind] = {k: sum(r.get(k, 0.0) for r in rows) / max(len(rows), 1) for k in keys}
        per_type: dict[str, dict[str, float]] = {}
        for r in counted[kind]:
            for name, row in r["activities"].items():
                acc = per_type.setdefault(name, {"count": 0, "queue": 0.0, "work": 0.0})
                for field in acc:
                    acc[field] += row[field] / max(len(counted[kind]), 1)
        activities[kind] = per_type
    failures = {
        k: [r for r in v if not r.get("ok", True)] for k, v in counted.items() if k in EXPECTED
    }
    return {
        "start_mode": start_mode,
        "stats": stats,
        "overhead": {
            "median_ratio": ratio(median(seconds["commit"]), median(seconds["plain"])),
            "p95_ratio": ratio(percentile(seconds["commit"], 95), percentile(seconds["plain"], 95)),
        },
        "breakdown_mean": breakdowns,
        "activities_mean": activities,
        "failures": {k: len(v) for k, v in failures.items()},
        "failure_examples": {k: [f.get("error") for f in v[:3]] for k, v in failures.items()},
        "rollback_failed_in": sorted(
            {a for r in counted["rollback"] for a in r.get("failed_activities", [])}
        ),
        "worker_peak_rss_bytes": worker_peak,
        "runs": runs,
    }
