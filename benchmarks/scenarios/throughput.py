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

import time
from typing import Any

from benchmarks import history
from benchmarks.context import Context
from benchmarks.driver import Driver, Outcome
from benchmarks.environment import CLIENT_THREADS, ChildProcess, gather_limited
from benchmarks.stats import describe
from benchmarks.workload import config_map_transaction
from janus.contract import operations as ops


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
    ctx: Context, worker: ChildProcess, driver: Driver, count: int, overlapping: bool
) -> dict[str, Any]:
    cfg, cluster = ctx.config, ctx.cluster
    label = "overlapping" if overlapping else "independent"
    targets = plan(
        count, cfg.throughput_changes, overlapping, cfg.overlap_groups, cfg.overlap_shared
    )
    ns = await cluster.call(cluster.new_namespace, f"tput-{count}")
    names = sorted({cm for txn in targets for cm in txn})
    await cluster.create_config_maps(ns, names, {"version": "1"})
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
    t_submitted = time.time()
    outcomes: list[Outcome] = await gather_limited(
        (driver.wait(s, within=3600) for s in submitted), len(submitted)
    )
    meter.stop()
    peak = worker.peak_rss_bytes()
    histories: list[history.History] = await gather_limited(
        (history.load(ctx.temporal, s.workflow_id) for s in submitted), CLIENT_THREADS
    )
    closes = [h.close for h in histories if h.close is not None]
    t_end = max(closes) if closes else time.time()
    elapsed = t_end - t0
    waits = check_waits(ctx, submitted_ids(outcomes), histories)
    phases: dict[str, int] = {}
    for o in outcomes:
        phases[str(o.phase)] = phases.get(str(o.phase), 0) + 1
    committed = phases.get("Committed", 0)
    ctx.cleanup([ns])
    result = {
        "mode": label,
        "count": count,
        "changes_per_transaction": len(targets[0]),
        "shared_per_transaction": cfg.overlap_shared if overlapping else 0,
        "shared_config_maps": cfg.overlap_groups if overlapping else 0,
        "elapsed_seconds": elapsed,
        "submit_seconds": t_submitted - t0,
        "txn_per_second": count / elapsed if elapsed > 0 else None,
        "all_committed": committed == count,
        "phases": phases,
        "errors": sorted({o.error for o in outcomes if o.error})[:5],
        "latency": describe(
            [(h.close or t_end) - o.submitted.t_apply for o, h in _pairs(outcomes, histories)]
        ),
        "start_delay": describe(
            [h.start - o.submitted.t_apply for o, h in _pairs(outcomes, histories)]
        ),
        "worker_peak_rss_bytes": peak,
        "retried_activities": sum(h.retried() for h in histories),
        "breakdown_mean": mean_breakdown(histories),
        "cpu": meter.summary(),
        **waits,
    }
    ctx.say(
        f"    {count} {label}: {elapsed:.1f}s, {result['txn_per_second']:.1f} txn/s, "
        f"{waits['lease_waits']} lease waits ({waits['unneeded_waits']} unneeded)"
    )
    return result


def mean_breakdown(histories: list[history.History]) -> dict[str, float]:
    """Mean seconds per bucket over the transactions (each one's life, from its history)."""
    parts = [history.breakdown(h) for h in histories]
    return {b: sum(p[b] for p in parts) / max(len(parts), 1) for b in history.BUCKETS}


def _pairs(
    outcomes: list[Outcome], histories: list[history.History]
) -> list[tuple[Outcome, history.History]]:
    return list(zip(outcomes, histories, strict=True))


def submitted_ids(outcomes: list[Outcome]) -> dict[str, Outcome]:
    """Holder identity (namespace/name/uid) → the transaction's outcome."""
    return {f"{o.submitted.namespace}/{o.submitted.name}/{o.submitted.uid}": o for o in outcomes}


def check_waits(
    ctx: Context, by_identity: dict[str, Outcome], histories: list[history.History]
) -> dict[str, Any]:
    by_workflow = {h.workflow_id: h for h in histories}
    targets: dict[str, list[ops.ResolvedTarget]] = {
        h.workflow_id: history.resolved_targets(ctx.temporal, h) for h in histories
    }
    leases_done = {h.workflow_id: leases_acquired_at(ctx, h) for h in histories}
    waits: list[history.LeaseWait] = []
    for h in histories:
        waits.extend(history.lease_waits(ctx.temporal, h))
    unneeded: list[dict[str, Any]] = []
    chained = 0
    for wait in waits:
        mine = {t.lease_name: t.key() for t in targets[wait.workflow_id]}
        holder = by_identity.get(wait.holder)
        holder_wf = holder.submitted.workflow_id if holder else None
        theirs = {t.key() for t in targets.get(holder_wf or "", [])}
        reason = None
        if wait.lease not in mine:
            reason = "the lease is not one of the waiter's targets"
        elif holder is None or holder_wf is None:
            reason = f"held by {wait.holder}, not a transaction of this run (a stray lease)"
        elif mine[wait.lease] not in theirs:
            reason = "the holder does not target the same object (lease-name collision)"
        else:
            closed = by_workflow[holder_wf].close
            if closed is not None and closed < wait.at:
                reason = "the holder had already finished (its lease was not released)"
            done = leases_done.get(holder_wf)
            if done is None or done > wait.at:
                chained += 1
        if reason is not None:
            unneeded.append({"waiter": wait.workflow_id, "lease": wait.lease, "why": reason})
    timer_seconds = sum(end - begin for h in histories for begin, end in h.timers)
    waiting_txns = len({w.workflow_id for w in waits})
    return {
        "lease_waits": len(waits),
        "transactions_that_waited": waiting_txns,
        "lease_wait_seconds": timer_seconds,
        "unneeded_waits": len(unneeded),
        "unneeded_examples": unneeded[:5],
        "chained_waits": chained,
    }


def leases_acquired_at(ctx: Context, hist: history.History) -> float | None:
    """When the workflow held all its leases (the first acquire that was not blocked)."""
    converter = ctx.temporal.data_converter.payload_converter
    for span in hist.activities:
        if span.type != ops.ACQUIRE_LEASES or span.result is None:
            continue
        (result,) = converter.from_payloads(list(span.result.payloads), [ops.AcquireLeasesResult])
        if isinstance(result, ops.AcquireLeasesResult) and result.blocked_by is None:
            return span.closed
    return None
