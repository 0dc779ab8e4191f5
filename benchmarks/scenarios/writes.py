"""Writes of one Transaction object: what the API server charges per create and status write,
by number of changes, for a status listing every item and for one with counts only.

No workflow runs here: the benchmark creates a Transaction with N ConfigMap
patches and writes a status like the workflow's a few times, timing each call.
A status with counts only is what the workflow writes for a Transaction of more
than ``workflows.status.ITEMS_SHOWN_UP_TO`` changes. A status write the API
server refuses (the object would pass etcd's request limit) is recorded as refused.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from benchmarks.context import Context
from benchmarks.environment import api_message
from benchmarks.stats import median
from benchmarks.workload import cm_names, config_map_transaction, json_size
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
        for i, name in enumerate(cm_names(n) if items else [])
    ]
    return {
        "status": {
            "phase": "Committing",
            "message": f"Committed {k}/{n}",
            "summary": {"total": n, "prepared": n, "committed": k, "rolledBack": 0},
            "items": listed,
            "itemsOmitted": 0 if items else n,
        }
    }


async def run(ctx: Context) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for variant, items in (("every item", True), ("counts only", False)):
        for n in ctx.config.write_sizes:
            ns = await ctx.cluster.call(ctx.cluster.new_namespace, f"writes-{n}")
            try:
                rows.append(await measure(ctx, ns, variant, items, n))
            finally:
                ctx.cleanup([ns])
    return {"status_writes_per_size": STATUS_WRITES, "rows": rows}


async def measure(ctx: Context, ns: str, variant: str, items: bool, n: int) -> dict[str, Any]:
    manifest = config_map_transaction(f"writes-{n}", cm_names(n))
    row: dict[str, Any] = {"variant": variant, "changes": n, "spec_bytes": json_size(manifest)}
    where = (API_GROUP, API_VERSION, ns, PLURAL)
    custom = ctx.cluster.custom
    say = f"  writes: {n} changes, {variant}:"
    t = time.perf_counter()
    create = custom.create_namespaced_custom_object
    await ctx.cluster.call(create, *where, manifest, _request_timeout=300)
    row["create_seconds"] = time.perf_counter() - t
    row["status_bytes"] = json_size(status_body(ns, n, 0, items=items)["status"])
    times = []
    for k in range(STATUS_WRITES):
        body = status_body(ns, n, k, items=items)
        write = custom.patch_namespaced_custom_object_status
        t = time.perf_counter()
        try:
            name = manifest["metadata"]["name"]
            await ctx.cluster.call(write, *where, name, body, _request_timeout=300)
        except ApiException as err:  # e.g. the object would exceed etcd's limit
            row["status_write_error"] = api_message(err)
            ctx.say(f"{say} status refused: {row['status_write_error']}")
            return row
        times.append(time.perf_counter() - t)
    row["status_write_median"] = median(times)
    created, written = row["create_seconds"] * 1000, row["status_write_median"] * 1000
    ctx.say(f"{say} create {created:.0f} ms, status write {written:.0f} ms")
    return row
