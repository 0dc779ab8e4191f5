"""Scale: one Transaction patching N ConfigMaps, committed, and rolled back at its last change.

Per size: a fresh worker process, started with the fault
``apply:<N-1>:before@scale-rb-<N>`` (``JANUS_FAULTS``), so the rollback run fails
at its last change through the worker's real fault seam and undoes N-1 changes.
Each run gets a fresh namespace with N ConfigMaps. Measured: time to the
terminal phase, the worker's peak RSS during the run (VmHWM, reset before it),
the workflow history (events, bytes, its largest event), the Transaction as
stored (spec + status) and the largest snapshot shard.

Sizes above ``janus.contract.models.MAX_CHANGES`` cannot be submitted: the API server
rejects them at admission. For those the scenario records the server's answer
to a dry-run create and extrapolates, from the measured sizes, what such a
transaction would need (status and history size against the limits).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from benchmarks import history
from benchmarks.context import Context
from benchmarks.driver import Driver
from benchmarks.environment import LEASE_NAMESPACE, ChildProcess
from benchmarks.stats import linear_fit, quadratic_fit, ratio
from benchmarks.workload import PlainScript, config_map_transaction
from janus.contract.models import API_GROUP, API_VERSION, MAX_CHANGES, PLURAL

TRANSACTION_UID_LABEL = f"{API_GROUP}/transaction-uid"

#: Defaults of the servers the limits come from (Temporal server dynamic config,
#: etcd / kube-apiserver flags), for the extrapolation of unsupported sizes.
LIMITS = {
    "temporal_history_size_error_bytes": 50 * 1024 * 1024,
    "temporal_history_size_warn_bytes": 10 * 1024 * 1024,
    "temporal_history_count_error": 51_200,
    "temporal_blob_size_error_bytes": 2 * 1024 * 1024,
    "temporal_blob_size_warn_bytes": 512 * 1024,
    "etcd_max_request_bytes": int(1.5 * 1024 * 1024),
}
EXPECTED = {"commit": "Committed", "rollback": "RolledBack"}


def cm_names(n: int) -> list[str]:
    return [f"cm-{i:05d}" for i in range(n)]


def txn_name(mode: str, n: int) -> str:
    return f"scale-{'ok' if mode == 'commit' else 'rb'}-{n}"


async def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    measured: list[dict[str, Any]] = []
    unsupported: list[dict[str, Any]] = []
    for n in cfg.scale_sizes:
        if n > MAX_CHANGES:
            unsupported.append(await probe_unsupported(ctx, n))
            continue
        faults = [f"apply:{n - 1}:before@{txn_name('rollback', n)}"]
        modes = ["commit", "rollback"] if cfg.scale_rollback else ["commit"]
        async with ctx.worker(f"scale-{n}", faults) as (worker, driver):
            for mode in modes:
                result = await run_one(ctx, worker, driver, n, mode)
                if mode == "commit" and result["admitted"]:
                    result["plain_seconds"] = await plain_run(ctx, n)
                measured.append(result)
                if not result["admitted"]:
                    break  # the rollback run would be rejected the same way
    return {
        "start_mode": ctx.start_mode,
        "runs": measured,
        "fits": fits(measured),
        "unsupported": [extrapolate(u, measured) for u in unsupported],
        "limits": LIMITS,
    }


async def plain_run(ctx: Context, n: int) -> float:
    """The same N patches by the plain script (sequential get + patch), for the ratio."""
    cluster = ctx.cluster
    ns = await cluster.call(cluster.new_namespace, f"scale-{n}-plain")
    names = cm_names(n)
    await cluster.create_config_maps(ns, names, {"version": "1"})
    seconds = await cluster.call(
        PlainScript(cluster.dynamic).run, config_map_transaction("plain", names), ns
    )
    ctx.cleanup([ns])
    return seconds


async def run_one(
    ctx: Context, worker: ChildProcess, driver: Driver, n: int, mode: str
) -> dict[str, Any]:
    cluster = ctx.cluster
    ns = await cluster.call(cluster.new_namespace, f"scale-{n}-{mode[:4]}")
    names = cm_names(n)
    await cluster.create_config_maps(ns, names, {"version": "1"})
    manifest = config_map_transaction(txn_name(mode, n), names)
    ctx.say(f"  scale: {n} changes, {mode}")
    worker.reset_peak()
    rss_before = worker.rss_bytes()
    timeout = max(120.0, n * ctx.config.timeout_per_change)
    meter = ctx.meter(worker)
    t_apply = time.time()
    try:
        outcome = await driver.run(manifest, ns, within=timeout)
    except ApiException as err:
        ctx.cleanup([ns])
        answer = _api_message(err)
        ctx.say(f"    {n} {mode}: rejected at admission after {time.time() - t_apply:.1f}s")
        return {
            "changes": n,
            "mode": mode,
            "admitted": False,
            "ok": False,
            "seconds": time.time() - t_apply,
            "phase": None,
            "error": answer[:2000],
            "spec_bytes": _json_size(manifest["spec"]),
        }
    meter.stop()
    peak = worker.peak_rss_bytes()
    hist = await history.load(ctx.temporal, outcome.submitted.workflow_id)
    described = await ctx.temporal.get_workflow_handle(outcome.submitted.workflow_id).describe()
    info = described.raw_description.workflow_execution_info
    txn = await driver.transaction(outcome.submitted)
    status = txn.get("status") or {}
    shards = await cluster.call(
        cluster.core.list_namespaced_config_map,
        ns,
        label_selector=f"{TRANSACTION_UID_LABEL}={outcome.submitted.uid}",
    )
    serialize: Any = cluster.api.sanitize_for_serialization
    shard_sizes = [_json_size(serialize(s)) for s in shards.items]
    expected_value = "2" if mode == "commit" else "1"
    cms = await cluster.call(cluster.core.list_namespaced_config_map, ns)
    wrong = sum(
        1
        for cm in cms.items
        if cm.metadata is not None
        and (cm.metadata.name or "").startswith("cm-")
        and (cm.data or {}).get("version") != expected_value
    )
    leases = await cluster.call(
        k8s.CoordinationV1Api(cluster.api).list_namespaced_lease, LEASE_NAMESPACE
    )
    leases_left = sum(
        1
        for lease in leases.items
        if lease.spec and (lease.spec.holder_identity or "").startswith(f"{ns}/")
    )
    ctx.cleanup([ns])
    activities = history.activity_times(hist)
    mirror = activities.get("mirror_status", {})
    result = {
        "changes": n,
        "mode": mode,
        "admitted": True,
        "seconds": outcome.seconds,
        "create_seconds": outcome.submitted.t_created - outcome.submitted.t_apply,
        "phase": outcome.phase,
        "ok": outcome.phase == EXPECTED[mode] and wrong == 0,
        "error": outcome.error,
        "summary": status.get("summary"),
        "targets_not_as_expected": wrong,
        "leases_left_held": leases_left,
        "worker_rss_before_bytes": rss_before,
        "worker_peak_rss_bytes": peak,
        "history_events": info.history_length,
        "history_size_bytes": info.history_size_bytes,
        "history_largest_event_bytes": hist.largest_event_bytes,
        "history_largest_event_type": hist.largest_event_type,
        "spec_bytes": _json_size(txn.get("spec")),
        "status_bytes": _json_size(status),
        "transaction_bytes": _json_size(txn),
        "snapshot_shards": len(shard_sizes),
        "largest_shard_bytes": max(shard_sizes, default=0),
        "largest_object_bytes": max([_json_size(txn), *shard_sizes]),
        "status_write_seconds_mean": (mirror["work"] / mirror["count"])
        if mirror.get("count")
        else None,
        "breakdown": history.breakdown(hist),
        "activities": activities,
        "close_type": hist.close_type,
        "cpu": meter.summary(),
    }
    ctx.say(
        f"    {n} {mode}: {outcome.seconds:.1f}s → {outcome.phase} ({hist.close_type}), "
        f"history {info.history_length} events / {info.history_size_bytes / 1e6:.1f} MB, "
        f"worker peak {(peak or 0) / 2**20:.0f} MiB"
    )
    return result


def _api_message(err: ApiException) -> str:
    try:
        message = json.loads(err.body or "{}").get("message", err.reason)
    except ValueError:
        message = err.reason
    return f"HTTP {err.status}: {message}"


def _json_size(obj: Any) -> int:
    return len(json.dumps(obj, separators=(",", ":"), default=str))


def fits(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per mode: fitted per-change cost, per-change cost per size, and their ratios."""
    out: dict[str, Any] = {}
    for mode in EXPECTED:
        ok = sorted((r for r in runs if r["mode"] == mode and r["ok"]), key=lambda r: r["changes"])
        if not ok:
            continue
        xs = [float(r["changes"]) for r in ok]
        ys = [float(r["seconds"]) for r in ok]
        intercept, slope = linear_fit(xs, ys)
        per_change = {int(x): y / x for x, y in zip(xs, ys, strict=True)}
        marginal = {
            f"{int(xs[i - 1])}→{int(xs[i])}": (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
            for i in range(1, len(xs))
        }
        quad = quadratic_fit(xs, ys)
        target = _target_pair(per_change)
        out[mode] = {
            "sizes": [int(x) for x in xs],
            "fixed_seconds": intercept,
            "per_change_seconds_fit": slope,
            "per_change_seconds": per_change,
            "marginal_per_change_seconds": marginal,
            "largest_over_smallest_per_change": ratio(
                max(per_change.values()), min(per_change.values())
            ),
            "target_pair": target,
            "target_ratio": ratio(per_change[target[1]], per_change[target[0]]) if target else None,
            "quadratic_seconds_per_change_squared": quad[2] if quad else None,
        }
    return out


def _target_pair(per_change: dict[int, float]) -> tuple[int, int] | None:
    """(100, 1000) when measured, else the two largest sizes measured."""
    sizes = sorted(per_change)
    if 100 in per_change and 1000 in per_change:
        return (100, 1000)
    if len(sizes) >= 2:
        return (sizes[-2], sizes[-1])
    return None


async def probe_unsupported(ctx: Context, n: int) -> dict[str, Any]:
    """What the API server says to an N-change Transaction (a dry-run create)."""
    cluster = ctx.cluster
    ns = await cluster.call(cluster.new_namespace, f"scale-{n}-probe")
    manifest = config_map_transaction(txn_name("commit", n), cm_names(n))
    answer = "accepted (dry run)"
    try:
        await cluster.call(
            cluster.custom_objects.create_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            ns,
            PLURAL,
            manifest,
            dry_run="All",
        )
    except ApiException as err:
        answer = _api_message(err)
    ctx.cleanup([ns])
    ctx.say(f"  scale: {n} changes not supported (MAX_CHANGES={MAX_CHANGES}): {answer[:160]}")
    return {
        "changes": n,
        "supported": False,
        "max_changes": MAX_CHANGES,
        "admission": answer[:2000],
        "spec_bytes": _json_size(manifest["spec"]),
    }


def extrapolate(probe: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Project the unsupported size from the measured ones (commit runs)."""
    n = probe["changes"]
    ok = sorted((r for r in runs if r["mode"] == "commit" and r["ok"]), key=lambda r: r["changes"])
    if not ok:
        return probe
    largest = ok[-1]
    xs = [float(r["changes"]) for r in ok]

    def project(key: str) -> float | None:
        ys = [float(r[key]) for r in ok]
        quad = quadratic_fit(xs, ys)
        if quad is not None:
            c, b, a = quad
            return float(c + b * n + a * n * n)
        if len(xs) >= 2:
            intercept, slope = linear_fit(xs, ys)
            return float(intercept + slope * n)
        return None

    status_per_item = largest["status_bytes"] / largest["changes"]
    projected = {
        "status_bytes": status_per_item * n,
        "transaction_bytes": probe["spec_bytes"] + status_per_item * n,
        "largest_history_event_bytes": largest["history_largest_event_bytes"]
        / largest["changes"]
        * n,
        "history_size_bytes": project("history_size_bytes"),
        "history_events": project("history_events"),
        "commit_seconds": project("seconds"),
        "worker_peak_rss_bytes": project("worker_peak_rss_bytes"),
    }
    over = []
    if projected["transaction_bytes"] > LIMITS["etcd_max_request_bytes"]:
        over.append("Transaction object > etcd request limit (1.5 MiB)")
    if projected["largest_history_event_bytes"] > LIMITS["temporal_blob_size_error_bytes"]:
        over.append("one status payload > Temporal blob limit (2 MiB)")
    size = projected["history_size_bytes"]
    if (
        size is not None
        and not math.isnan(size)
        and size > LIMITS["temporal_history_size_error_bytes"]
    ):
        over.append("history > Temporal history size limit (50 MiB)")
    events = projected["history_events"]
    if events is not None and events > LIMITS["temporal_history_count_error"]:
        over.append("history > Temporal event count limit (51,200)")
    return {**probe, "projected": projected, "would_exceed": over, "projected_from": xs}
