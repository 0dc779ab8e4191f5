"""Scale: one Transaction patching N ConfigMaps, committed, and rolled back at its last change.

Per size: a fresh worker process, started with the fault
``apply:<N-1>:before@scale-rb-<N>`` (``JANUS_FAULTS``), so the rollback run fails
at its last change through the worker's real fault seam and undoes N-1 changes.
Each run gets a fresh namespace with N ConfigMaps. Measured: time to the
terminal phase, the worker's peak RSS during the run (VmHWM, reset before it),
the workflow history (events, bytes, its largest event) and the Transaction as
stored (spec + status); afterwards, how many
targets are not as expected and how many leases are still held.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from benchmarks import history
from benchmarks.context import Context
from benchmarks.driver import Driver
from benchmarks.environment import LEASE_NAMESPACE, JanusProcess
from benchmarks.stats import linear_fit, ratio
from benchmarks.workload import PlainScript, cm_names, config_map_transaction, json_size

EXPECTED = {"commit": "Committed", "rollback": "RolledBack"}


def txn_name(mode: str, n: int) -> str:
    return f"scale-{'ok' if mode == 'commit' else 'rb'}-{n}"


async def run(ctx: Context) -> dict[str, Any]:
    measured: list[dict[str, Any]] = []
    for n in ctx.config.scale_sizes:
        faults = [f"apply:{n - 1}:before@{txn_name('rollback', n)}"]
        async with ctx.worker(f"scale-{n}", faults) as (worker, driver):
            for mode in ("commit", "rollback") if ctx.config.scale_rollback else ("commit",):
                result = await run_one(ctx, worker, driver, n, mode)
                measured.append(result)
                if mode == "commit":
                    result["plain_seconds"] = await plain_run(ctx, n)
    return {"start_mode": ctx.start_mode, "runs": measured, "fits": fits(measured)}


async def plain_run(ctx: Context, n: int) -> float:
    """The same N patches by the plain script (sequential get + patch), for the ratio."""
    cluster = ctx.cluster
    ns = await cluster.call(cluster.new_namespace, f"scale-{n}-plain")
    await cluster.create_config_maps(ns, cm_names(n), {"version": "1"})
    plain = PlainScript(cluster.dynamic)
    seconds = await cluster.call(plain.run, config_map_transaction("plain", cm_names(n)), ns)
    ctx.cleanup([ns])
    return seconds


async def run_one(
    ctx: Context, worker: JanusProcess, driver: Driver, n: int, mode: str
) -> dict[str, Any]:
    cluster = ctx.cluster
    ns = await cluster.call(cluster.new_namespace, f"scale-{n}-{mode[:4]}")
    await cluster.create_config_maps(ns, cm_names(n), {"version": "1"})
    ctx.say(f"  scale: {n} changes, {mode}")
    worker.reset_peak()
    meter = ctx.meter(worker)
    manifest = config_map_transaction(txn_name(mode, n), cm_names(n))
    outcome = await driver.run(manifest, ns, within=max(120.0, n * ctx.config.timeout_per_change))
    meter.stop()
    peak = worker.peak_rss_bytes()
    workflow_id = outcome.submitted.workflow_id
    hist = await history.load(ctx.temporal, workflow_id)
    described = await ctx.temporal.get_workflow_handle(workflow_id).describe()
    info = described.raw_description.workflow_execution_info
    txn = await driver.transaction(outcome.submitted)
    targets = await cluster.call(cluster.core.list_namespaced_config_map, ns)
    expected = "2" if mode == "commit" else "1"
    names = [((cm.metadata and cm.metadata.name) or "", cm.data or {}) for cm in targets.items]
    wrong = [n for n, data in names if n.startswith("cm-") and data.get("version") != expected]
    leases = await cluster.call(
        k8s.CoordinationV1Api(cluster.api).list_namespaced_lease, LEASE_NAMESPACE
    )
    holders = [(le.spec and le.spec.holder_identity) or "" for le in leases.items]
    held = [h for h in holders if h.startswith(f"{ns}/")]
    ctx.cleanup([ns])
    mirror = history.activity_times(hist).get("mirror_status", {})
    ctx.say(
        f"    {n} {mode}: {outcome.seconds:.1f}s → {outcome.phase} ({hist.close_type}), "
        f"history {info.history_length} events / {info.history_size_bytes / 1e6:.1f} MB, "
        f"worker peak {(peak or 0) / 2**20:.0f} MiB"
    )
    return {
        "changes": n,
        "mode": mode,
        "seconds": outcome.seconds,
        "create_seconds": outcome.submitted.t_created - outcome.submitted.t_apply,
        "phase": outcome.phase,
        "ok": outcome.phase == EXPECTED[mode] and not wrong,
        "close_type": hist.close_type,
        "error": outcome.error,
        "targets_not_as_expected": len(wrong),
        "leases_left_held": len(held),
        "worker_peak_rss_bytes": peak,
        "history_events": info.history_length,
        "history_size_bytes": info.history_size_bytes,
        "history_largest_event_bytes": hist.largest_event_bytes,
        "transaction_bytes": json_size(txn),
        "status_write_seconds_mean": mirror["work"] / mirror["count"] if mirror else None,
        "breakdown": history.breakdown(hist),
        "cpu": meter.summary(),
    }


def fits(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per mode: fitted per-change cost, per-change cost per size, and their ratios."""
    out: dict[str, Any] = {}
    for mode in EXPECTED:
        ok = sorted((r for r in runs if r["mode"] == mode and r["ok"]), key=lambda r: r["changes"])
        if not ok:
            continue
        xs = [r["changes"] for r in ok]
        ys = [r["seconds"] for r in ok]
        intercept, slope = linear_fit(xs, ys)
        per_change = {x: y / x for x, y in zip(xs, ys, strict=True)}
        out[mode] = {
            "sizes": xs,
            "fixed_seconds": intercept,
            "per_change_seconds_fit": slope,
            "per_change_seconds": per_change,
            "marginal_per_change_seconds": {
                f"{xs[i - 1]}→{xs[i]}": (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
                for i in range(1, len(xs))
            },
            "largest_over_smallest_per_change": ratio(
                max(per_change.values()), min(per_change.values())
            ),
        }
    return out
