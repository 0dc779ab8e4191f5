"""The bad-input catalog: every kind of bad Transaction gets a clear error; nothing changes.

Some are refused at admission (the CRD's schema and CEL rules: the API server
answers 422 and no Transaction exists); the others are accepted and fail on
their status before the first write, naming the change and saying what to fix,
on the status and on the item of the change at fault. Each of those also
carries a good change before the bad one, which must not be applied either; and
every object in the namespace keeps its resourceVersion. (The one catalog of
bad input: each case once, here.)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from janus.contract.models import API_GROUP, API_VERSION, PLURAL
from tests.reliability import tally
from tests.reliability.scenario import user_view, web_deployment
from tests.saga.harness import Harness, change, finish, transaction

PATCH = change("ConfigMap", "present", "Patch", {"data": {"k": "v"}})
BIG = 1_100_000  # over a ConfigMap's 1 MiB, under etcd's 1.5 MiB for the Transaction

#: Refused before validation: 413, or 500 from etcd. Every other refusal is a 422.
TOO_LARGE = "Transaction over the size limit"

ADMISSION: dict[str, tuple[dict[str, Any], str]] = {
    "changes not a list": (
        {**transaction("x"), "spec": {"changes": "all of them"}},
        "spec.changes: Invalid value",
    ),
    "target not an object": (
        transaction("x", {"target": "v1/ConfigMap/present", "type": "Delete"}),
        "spec.changes[0].target: Invalid value",
    ),
    "missing apiVersion": (
        transaction("x", {"target": {"kind": "ConfigMap", "name": "present"}, "type": "Delete"}),
        "spec.changes[0].target.apiVersion: Required value",
    ),
    "missing name": (
        transaction("x", {"target": {"apiVersion": "v1", "kind": "ConfigMap"}, "type": "Delete"}),
        "spec.changes[0].target.name: Required value",
    ),
    "empty name": (
        transaction("x", change("ConfigMap", "", "Delete")),
        "spec.changes[0].target.name",
    ),
    "unknown change type": (
        transaction("x", change("ConfigMap", "present", "Upsert", {"data": {}})),
        'Unsupported value: "Upsert"',
    ),
    "content on Delete": (
        transaction("x", change("ConfigMap", "present", "Delete", {"data": {}})),
        "content is forbidden for Delete",
    ),
    "no content on Patch": (
        transaction("x", change("ConfigMap", "present", "Patch")),
        "content is required for Create, Update and Patch",
    ),
    "invalid lockTimeout": (transaction("x", PATCH, lockTimeout="5 minutes"), "lockTimeout"),
    "invalid timeout": (transaction("x", PATCH, timeout="soon"), "spec.timeout"),
    "no changes": (transaction("x"), "spec.changes: Invalid value"),
    # One spelling per group: discovery reads an empty group as "any group".
    "apiVersion with an empty group": (
        transaction("x", change("Secret", "s", "Delete", api_version="/v1")),
        'spec.changes[0].target.apiVersion: Invalid value: "/v1": target.apiVersion is '
        "malformed: write it as VERSION for the core group (v1) or GROUP/VERSION",
    ),
    "apiVersion with an empty version": (
        transaction("x", change("Deployment", "web", "Delete", api_version="apps/")),
        "target.apiVersion is malformed: write it as VERSION for the core group (v1) or "
        "GROUP/VERSION",
    ),
    "apiVersion with two slashes": (
        transaction("x", change("Deployment", "web", "Delete", api_version="apps//v1")),
        "target.apiVersion is malformed",
    ),
    "over the maximum of changes": (
        transaction("x", *[change("ConfigMap", f"c{i}", "Delete") for i in range(5001)]),
        "must have at most 5000 items",
    ),
    # Beyond what etcd stores in one object: the API server says so (see TOO_LARGE).
    TOO_LARGE: (
        transaction("x", change("ConfigMap", "huge", "Create", {"data": {"big": "x" * 2_000_000}})),
        "request is too large",
    ),
}

BAD_CHANGES: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
    # name: (the bad change, what the status must say, extra spec; "then": changes after it)
    "unknown kind": (
        change("Gizmo", "g", "Create", {"spec": {}}, api_version="example.com/v1"),
        "kind Gizmo in example.com/v1 is not served by the API server",
        {},
    ),
    "unknown apiVersion": (
        change("ConfigMap", "present", "Patch", {"data": {"k": "v"}}, api_version="v2"),
        "kind ConfigMap in v2 is not served by the API server",
        {},
    ),
    "Patch of a missing object": (
        change("ConfigMap", "absent", "Patch", {"data": {"k": "v"}}),
        "not found; Patch needs an existing object",
        {},
    ),
    "Update of a missing object": (
        change("ConfigMap", "absent", "Update", {"data": {"k": "v"}}),
        "not found; Update needs an existing object",
        {},
    ),
    "Delete of a missing object": (
        change("ConfigMap", "absent", "Delete"),
        "not found; Delete needs an existing object",
        {},
    ),
    "Create of an existing object": (
        change("ConfigMap", "present", "Create", {"data": {"k": "v"}}),
        "already exists; use Update or Patch",
        {},
    ),
    "content the API server rejects": (
        change("ConfigMap", "present", "Patch", {"data": {"bad key!": "v"}}),
        "a valid config key",
        {},
    ),
    "invalid Deployment spec": (
        change("Deployment", "web", "Patch", {"spec": {"replicas": -1}}, api_version="apps/v1"),
        "greater than or equal to 0",
        {},
    ),
    "content naming another object": (
        change("ConfigMap", "present", "Update", {"metadata": {"name": "other"}, "data": {}}),
        "content.metadata.name is 'other' but target.name is 'present'",
        {},
    ),
    "oversized content": (
        change("ConfigMap", "huge", "Create", {"data": {"big": "x" * BIG}}),
        "may not be more than 1048576 bytes",
        {},
    ),
    "forbidden namespace": (
        change("ConfigMap", "present", "Patch", {"data": {"k": "v"}}, namespace="kube-system"),
        "/janus may not get configmaps 'present' in namespace kube-system",
        {},
    ),
    # Checked by the workflow, not at admission: the CEL rule is quadratic.
    "two changes of one target": (
        change("ConfigMap", "present", "Patch", {"data": {"k": "v"}}),
        "spec.changes[1] and spec.changes[2] both target v1 ConfigMap",
        {"then": [change("ConfigMap", "present", "Patch", {"data": {"k": "w"}})]},
    ),
    "missing service account": (
        change("ConfigMap", "present", "Patch", {"data": {"k": "v"}}),
        "service account ghost not found",
        {"serviceAccountName": "ghost"},
    ),
}

#: The item that must carry the error, when not the bad change (index 1, after the
#: good one); None when the Transaction as a whole is at fault.
ERROR_ON: dict[str, int | None] = {
    "two changes of one target": 2,
    "missing service account": None,
}


def existing(harness: Harness) -> None:
    harness.create_objects(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "present"},
                "data": {"k": "old"},
            },
            web_deployment("web:v1"),
        ]
    )


def inventory(harness: Harness) -> dict[str, str | None]:
    """Every ConfigMap and Secret of the namespace with its resourceVersion; Deployments
    with what a user sees of them."""
    ns = harness.namespace
    found = {
        f"ConfigMap/{o.metadata.name}": o.metadata.resource_version  # type: ignore[union-attr]
        for o in harness.core.list_namespaced_config_map(ns).items
        if o.metadata.name != "kube-root-ca.crt"  # type: ignore[union-attr]
    }
    found |= {
        f"Secret/{o.metadata.name}": o.metadata.resource_version  # type: ignore[union-attr]
        for o in harness.core.list_namespaced_secret(ns).items
    }
    # The Deployment controller writes its status (a new resourceVersion) when it
    # likes; what the user sees of a Deployment is compared instead.
    found |= {
        f"Deployment/{o.metadata.name}": json.dumps(  # type: ignore[union-attr]
            user_view(harness.api.sanitize_for_serialization(o)),  # type: ignore[no-untyped-call]
            sort_keys=True,
        )
        for o in harness.apps.list_namespaced_deployment(ns).items
    }
    return found


def refused_at_admission(
    harness: Harness, name: str, manifest: dict[str, Any], expected: str
) -> str:
    statuses = (413, 500) if name == TOO_LARGE else (422,)
    try:
        harness.create_transaction(manifest)
    except ApiException as err:
        message = str(json.loads(err.body).get("message", ""))  # type: ignore[arg-type]
        if err.status not in statuses:
            return f"HTTP {err.status}: {message}"
        return "" if expected in message else f"message lacks {expected!r}: {message}"
    return "accepted"


@pytest.mark.timeout(600)
async def test_every_bad_input_gets_a_clear_error_and_changes_nothing(harness: Harness) -> None:
    await asyncio.to_thread(existing, harness)
    before = await asyncio.to_thread(inventory, harness)
    problems: dict[str, str] = {}

    for name, (manifest, expected) in ADMISSION.items():
        problems[name] = await asyncio.to_thread(
            refused_at_admission, harness, name, manifest, expected
        )

    harness.create_transaction(transaction("fixed", PATCH))
    try:
        harness.custom.patch_namespaced_custom_object(
            API_GROUP,
            API_VERSION,
            harness.namespace,
            PLURAL,
            "fixed",
            {"spec": {"lockTimeout": "1m"}},
        )
        problems["spec changed after creation"] = "accepted"
    except ApiException as err:
        ok = err.status == 422 and "spec is immutable" in str(err.body)
        problems["spec changed after creation"] = "" if ok else f"HTTP {err.status}: {err.body}"
    harness.custom.delete_namespaced_custom_object(
        API_GROUP, API_VERSION, harness.namespace, PLURAL, "fixed"
    )

    async def run(index: int, name: str) -> str:
        bad, expected, spec = BAD_CHANGES[name]
        spec = dict(spec)
        then = spec.pop("then", [])  # changes after the bad one
        good = change("ConfigMap", f"good-{index}", "Create", {"data": {"k": "v"}})
        handle = await harness.start(transaction(f"bad-{index}", good, bad, *then, **spec))
        await asyncio.wait_for(finish(handle), timeout=180)
        status = (await asyncio.to_thread(harness.transaction, f"bad-{index}"))["status"]
        found = []
        if status["phase"] != "RolledBack":
            found.append(f"phase {status['phase']}")
        if expected not in status["message"]:
            found.append(f"message lacks {expected!r}: {status['message'][:300]}")
        item = ERROR_ON.get(name, 1)
        if item is not None:
            error = status["items"][item].get("error") or ""
            if expected not in error:
                found.append(f"item {item} lacks {expected!r}: {error[:300]}")
        if status["summary"]["committed"] != 0:
            found.append("something was committed")
        return "; ".join(found)

    names = sorted(BAD_CHANGES)
    results = await asyncio.gather(*(run(i, n) for i, n in enumerate(names)))
    problems |= dict(zip(names, results, strict=True))

    after = await asyncio.to_thread(inventory, harness)
    if after != before:
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        problems["the cluster"] = f"changed: {sorted(changed)}"
    leases = await asyncio.to_thread(harness.leases)
    if leases:
        problems["leases"] = f"left: {[lease.metadata.name for lease in leases]}"

    kinds = [n for n in problems if n not in ("the cluster", "leases")]
    unchanged = "the cluster" not in problems and "leases" not in problems
    for name in kinds:
        ok = not problems[name] and unchanged
        tally.record("bad inputs", name, ok, problems[name] or "the cluster changed")
    exact = sum(not problems[n] for n in kinds) if unchanged else 0
    print(f"\n[bad inputs] {len(kinds)} kinds, {exact} refused clearly with the cluster unchanged")
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}
