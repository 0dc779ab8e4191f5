"""Throughput: N transactions applied at once; transactions per second to all settled.

*Independent*: transaction i patches ConfigMaps of its own (``t<i>-c<j>``).
*Overlapping*: transaction i patches ``S`` shared ConfigMaps,
``shared-<(i+k) mod G>`` for k < S, and the rest of its own (odd transactions
list them in the opposite order, so with S ≥ 2 only the canonical lease order
keeps them free of deadlock). S = 1 (default): G independent queues of
transactions contending for one ConfigMap each. S = 2: a ring, where a
transaction holding one shared lease waits for the next. The clock runs from
just before the first create to the last workflow's close (from the histories).

Lease waits are read from the histories (every ``acquire_leases`` result that
names a blocker) and each one is checked: a wait is *unneeded* when the lease
is not one of the waiter's targets, when the holder is not a transaction of this
run or does not target the same object, or when the holder's workflow had
already closed (a lease left behind). A wait on a holder that was itself still
waiting for leases is *chained*: needed, but a sign of convoying.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from benchmarks import history
from benchmarks.context import Context
from benchmarks.driver import Driver, Outcome
from benchmarks.environment import CLIENT_THREADS, JanusProcess, gather_limited
from benchmarks.stats import describe
from benchmarks.workload import config_map_transaction


def plan(
    count: int, changes: int, overlapping: bool, groups: int, shared: int = 1
) -> list[list[str]]:
    """The ConfigMaps each transaction patches, in spec order.

    Overlapping: ``shared`` of each transaction's changes go to ConfigMaps shared
    with others (``shared-<(i + k) mod groups>``), the rest to its own; odd
    transactions list them in the opposite order.
    """
    if not overlapping:
        return [[f"t{i}-c{j}" for j in range(changes)] for i in range(count)]
    shared = min(shared, changes, groups)
    out = []
    for i in range(count):
        mine = [f"shared-{(i + k) % groups}" for k in range(shared)]
        mine += [f"t{i}-c{j}" for j in range(changes - shared)]
        out.append(mine[::-1] if i % 2 else mine)
    return out


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    results = []
    modes = [False, True] if cfg.overlap else [False]
    async with ctx.worker("throughput") as (worker, driver):
        for overlapping in modes:
            for count in cfg.throughput_counts:
                results.append(await run_one(ctx, worker, driver, count, overlapping))
    return {"start_mode": ctx.start_mode, "runs": results}


async def run_one(
    ctx: Context, worker: JanusProcess, driver: Driver, count: int, overlapping: bool
) -> dict[str, Any]:
    cfg, cluster = ctx.config, ctx.cluster
    label = "overlapping" if overlapping else "independent"
    targets = plan(
        count, cfg.throughput_changes, overlapping, cfg.overlap_groups, cfg.overlap_shared
    )
    ns = await cluster.call(cluster.new_namespace, f"tput-{count}")
    await cluster.create_config_maps(
        ns, sorted({cm for t in targets for cm in t}), {"version": "1"}
    )
    lock_timeout = "30m" if overlapping else "5m"
    manifests = [
        config_map_transaction(f"{label[:3]}-{i}", cms, lock_timeout=lock_timeout)
        for i, cms in enumerate(targets)
    ]
    worker.reset_peak()
    ctx.say(f"  throughput: {count} {label} transactions at once")
    meter = ctx.meter(worker)
    t0 = time.time()
    submitted = await gather_limited((driver.submit(m, ns) for m in manifests), CLIENT_THREADS)
    outcomes: list[Outcome] = await asyncio.gather(
        *(driver.wait(s, within=3600) for s in submitted)
    )
    meter.stop()
    peak = worker.peak_rss_bytes()
    histories: list[history.History] = await gather_limited(
        (history.load(ctx.temporal, s.workflow_id) for s in submitted), CLIENT_THREADS
    )
    ctx.cleanup([ns])
    t_end = max((h.close for h in histories if h.close is not None), default=time.time())
    elapsed = t_end - t0
    pairs = list(zip(outcomes, histories, strict=True))
    phases = Counter(str(o.phase) for o in outcomes)
    parts = [history.breakdown(h) for h in histories]
    waits = check_waits(ctx, outcomes, histories)
    result = {
        "mode": label,
        "count": count,
        "changes_per_transaction": len(targets[0]),
        "elapsed_seconds": elapsed,
        "txn_per_second": count / elapsed if elapsed > 0 else None,
        "all_committed": phases["Committed"] == count,
        "phases": dict(phases),
        "latency": describe([(h.close or t_end) - o.submitted.t_apply for o, h in pairs]),
        "start_delay": describe([h.start - o.submitted.t_apply for o, h in pairs]),
        "worker_peak_rss_bytes": peak,
        "breakdown_mean": {b: sum(p[b] for p in parts) / len(parts) for b in history.BUCKETS},
        "cpu": meter.summary(),
        **waits,
    }
    ctx.say(
        f"    {count} {label}: {elapsed:.1f}s, {result['txn_per_second']:.1f} txn/s, "
        f"{waits['lease_waits']} lease waits ({waits['unneeded_waits']} unneeded)"
    )
    return result


def check_waits(
    ctx: Context, outcomes: list[Outcome], histories: list[history.History]
) -> dict[str, Any]:
    """Every lease wait of the run, each checked: needed, unneeded (and why), chained."""
    pairs = zip(outcomes, histories, strict=True)
    by_identity = {
        f"{o.submitted.namespace}/{o.submitted.name}/{o.submitted.uid}": h for o, h in pairs
    }
    targets = {h.workflow_id: history.resolved_targets(ctx.temporal, h) for h in histories}
    acquired_at = {h.workflow_id: history.leases_acquired_at(ctx.temporal, h) for h in histories}
    waits = [w for h in histories for w in history.lease_waits(ctx.temporal, h)]
    unneeded: list[dict[str, Any]] = []
    chained = 0
    for wait in waits:
        mine = {t.lease_name: t.key() for t in targets[wait.workflow_id]}
        holder = by_identity.get(wait.holder)
        reason = None
        if wait.lease not in mine:
            reason = "the lease is not one of the waiter's targets"
        elif holder is None:
            reason = f"held by {wait.holder}, not a transaction of this run (a stray lease)"
        elif mine[wait.lease] not in {t.key() for t in targets[holder.workflow_id]}:
            reason = "the holder does not target the same object (lease-name collision)"
        else:
            if holder.close is not None and holder.close < wait.at:
                reason = "the holder had already finished (its lease was not released)"
            acquired = acquired_at[holder.workflow_id]
            chained += acquired is None or acquired > wait.at
        if reason is not None:
            unneeded.append({"waiter": wait.workflow_id, "lease": wait.lease, "why": reason})
    return {
        "lease_waits": len(waits),
        "transactions_that_waited": len({w.workflow_id for w in waits}),
        "lease_wait_seconds": sum(end - begin for h in histories for begin, end in h.timers),
        "unneeded_waits": len(unneeded),
        "unneeded_examples": unneeded[:5],
        "chained_waits": chained,
    }
