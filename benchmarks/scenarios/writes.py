"""Writes of one Transaction object: what the API server charges per create and status write,
by number of changes, for a status listing every item and for one with counts only.

No workflow runs here: the benchmark creates a Transaction with N ConfigMap
patches and writes a status like the workflow's a few times, timing each call.
A status with counts only is what the workflow writes for a Transaction of more
than ``workflows.status.ITEMS_SHOWN_UP_TO`` changes. Sizes the CRD rejects at
admission are recorded as rejected.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from benchmarks.context import Context
from benchmarks.scenarios.scale import _api_message, _json_size, cm_names
from benchmarks.stats import median
from benchmarks.workload import config_map_transaction
from janus.contract.models import API_GROUP, API_VERSION, PLURAL

STATUS_WRITES = 3


def status_body(namespace: str, n: int, k: int, *, items: bool = True) -> dict[str, Any]:
    """A status like the workflow mirrors mid-commit, k of n committed: with every item,
    or (``items=False``) with counts only."""
    listed = [
        {
            "index": i,
            "target": f"v1 ConfigMap {namespace}/{name}",
            "type": "Patch",
            "lease": f"janus-configmap-{name}-0123456789",
            "resourceVersion": str(100000 + i),
            "prepared": True,
            "committed": i < k,
            "rolledBack": False,
        }
        for i, name in enumerate(cm_names(n))
    ]
    return {
        "status": {
            "phase": "Committing",
            "message": f"Committed {k}/{n}",
            "summary": {"total": n, "prepared": n, "committed": k, "rolledBack": 0},
            "items": listed if items else [],
            "itemsOmitted": 0 if items else n,
        }
    }


async def run(ctx: Context) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for variant, items in (("every item", True), ("counts only", False)):
        for n in ctx.config.write_sizes:
            rows.append(await measure(ctx, variant, items, n))
    return {"status_writes_per_size": STATUS_WRITES, "rows": rows}


async def measure(ctx: Context, variant: str, items: bool, n: int) -> dict[str, Any]:
    cluster = ctx.cluster
    group = API_GROUP
    ns = await cluster.call(cluster.new_namespace, f"writes-{n}")
    manifest = config_map_transaction(f"writes-{n}", cm_names(n))
    row: dict[str, Any] = {"variant": variant, "changes": n, "spec_bytes": _json_size(manifest)}
    custom: Any = cluster.custom
    try:
        t = time.perf_counter()
        try:
            await cluster.call(
                custom.create_namespaced_custom_object,
                group,
                API_VERSION,
                ns,
                PLURAL,
                manifest,
                _request_timeout=300,
            )
        except ApiException as err:
            row.update(admitted=False, create_seconds=time.perf_counter() - t)
            row["error"] = _api_message(err)[:500]
            ctx.say(f"  writes: {n} changes, {variant}: rejected ({row['create_seconds']:.1f}s)")
            return row
        row.update(admitted=True, create_seconds=time.perf_counter() - t)
        row["status_bytes"] = _json_size(status_body(ns, n, 0, items=items)["status"])
        times = []
        for k in range(STATUS_WRITES):
            body = status_body(ns, n, k, items=items)
            t = time.perf_counter()
            try:
                await cluster.call(
                    custom.patch_namespaced_custom_object_status,
                    group,
                    API_VERSION,
                    ns,
                    PLURAL,
                    manifest["metadata"]["name"],
                    body,
                    _request_timeout=300,
                )
            except ApiException as err:  # e.g. the object would exceed etcd's limit
                row["status_write_error"] = _api_message(err)[:500]
                ctx.say(f"  writes: {n} changes, {variant}: status refused: {_api_message(err)}")
                return row
            times.append(time.perf_counter() - t)
        row["status_write_seconds"] = times
        row["status_write_median"] = median(times)
        ctx.say(
            f"  writes: {n} changes, {variant}: create {row['create_seconds'] * 1000:.0f} ms, "
            f"status write {row['status_write_median'] * 1000:.0f} ms"
        )
        return row
    finally:
        ctx.cleanup([ns])
