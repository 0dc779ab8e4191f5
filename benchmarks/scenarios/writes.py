"""Writes of one Transaction object: what the API server charges per create and status write,
by number of changes, with the generated CRD and with a copy minus its duplicate-target rule.

No workflow runs here: the benchmark creates a Transaction with N ConfigMap
patches and writes a status like the workflow's (one item per change) a few
times, timing each call. The copy of the CRD lives in a group of its own
(``relaxed.bench.janus.io``) and is deleted afterwards, so the Transaction CRD
the worker uses is never touched. Sizes the generated CRD rejects at admission
are recorded as rejected.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from benchmarks.context import Context
from benchmarks.environment import drop_quadratic_rule
from benchmarks.scenarios.scale import _api_message, _json_size, cm_names
from benchmarks.stats import median
from benchmarks.workload import config_map_transaction
from janus.crd import custom_resource_definition
from janus.models import API_GROUP, API_VERSION, PLURAL

RELAXED_GROUP = "relaxed.bench.janus.io"
STATUS_WRITES = 3


def status_body(namespace: str, n: int, k: int) -> dict[str, Any]:
    """A status like the workflow mirrors mid-commit: every item, k of them committed."""
    items = [
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
            "items": items,
        }
    }


async def run(ctx: Context) -> dict[str, Any]:
    cluster = ctx.cluster
    await cluster.call(install_relaxed_copy, cluster.api)
    rows: list[dict[str, Any]] = []
    try:
        for variant, group in (
            ("generated CRD", API_GROUP),
            ("without the O(n^2) rule", RELAXED_GROUP),
        ):
            for n in ctx.config.write_sizes:
                rows.append(await measure(ctx, variant, group, n))
    finally:
        await cluster.call(delete_relaxed_copy, cluster.api)
    return {"status_writes_per_size": STATUS_WRITES, "rows": rows}


async def measure(ctx: Context, variant: str, group: str, n: int) -> dict[str, Any]:
    cluster = ctx.cluster
    ns = await cluster.call(cluster.new_namespace, f"writes-{n}")
    manifest = config_map_transaction(f"writes-{n}", cm_names(n))
    manifest["apiVersion"] = f"{group}/{API_VERSION}"
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
        times = []
        for k in range(STATUS_WRITES):
            body = status_body(ns, n, k)
            t = time.perf_counter()
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
            times.append(time.perf_counter() - t)
        row["status_write_seconds"] = times
        row["status_write_median"] = median(times)
        row["status_bytes"] = _json_size(status_body(ns, n, 0)["status"])
        ctx.say(
            f"  writes: {n} changes, {variant}: create {row['create_seconds'] * 1000:.0f} ms, "
            f"status write {row['status_write_median'] * 1000:.0f} ms"
        )
        return row
    finally:
        ctx.cleanup([ns])


def _relaxed_crd() -> dict[str, Any]:
    crd: dict[str, Any] = custom_resource_definition()
    drop_quadratic_rule(crd)
    crd["metadata"]["name"] = f"{PLURAL}.{RELAXED_GROUP}"
    crd["spec"]["group"] = RELAXED_GROUP
    names = crd["spec"]["names"]
    names.pop("shortNames", None)
    names.pop("categories", None)
    return crd


def install_relaxed_copy(api: k8s.ApiClient) -> None:
    ext = k8s.ApiextensionsV1Api(api)
    body: Any = _relaxed_crd()
    try:
        ext.create_custom_resource_definition(body)
    except ApiException as err:
        if err.status != 409:
            raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(body["metadata"]["name"])
        conditions = (crd.status.conditions or []) if crd.status else []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            time.sleep(1)
            return
        time.sleep(0.1)


def delete_relaxed_copy(api: k8s.ApiClient) -> None:
    ext = k8s.ApiextensionsV1Api(api)
    try:
        ext.delete_custom_resource_definition(f"{PLURAL}.{RELAXED_GROUP}")
    except ApiException as err:
        if err.status != 404:
            raise
