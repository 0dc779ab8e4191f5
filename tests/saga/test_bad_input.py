"""Bad Transactions: refused at admission, or failing before the first write; nothing changes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from janus.contract.models import API_GROUP, API_VERSION, PLURAL
from tests.saga.harness import Harness, change, transaction

PATCH = change("ConfigMap", "present", "Patch", {"data": {"k": "v"}})

ADMISSION_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "content on Delete": (
        transaction("x", change("ConfigMap", "present", "Delete", {"data": {}})),
        "content is forbidden for Delete",
    ),
    "no content on Patch": (
        transaction("x", change("ConfigMap", "present", "Patch")),
        "content is required for Create, Update and Patch",
    ),
    "invalid lockTimeout": (transaction("x", PATCH, lockTimeout="5 minutes"), "lockTimeout"),
    "missing name": (
        transaction("x", {"target": {"apiVersion": "v1", "kind": "ConfigMap"}, "type": "Delete"}),
        "spec.changes[0].target.name: Required value",
    ),
    "unknown change type": (
        transaction("x", change("ConfigMap", "present", "Upsert", {"data": {}})),
        'Unsupported value: "Upsert"',
    ),
    "no changes": (transaction("x"), "spec.changes: Invalid value"),
    "apiVersion with an empty group": (
        transaction("x", change("ConfigMap", "present", "Delete", api_version="/v1")),
        'spec.changes[0].target.apiVersion: Invalid value: "/v1": target.apiVersion is '
        "malformed: write it as VERSION for the core group (v1) or GROUP/VERSION",
    ),
    "too many changes": (
        transaction("x", *[change("ConfigMap", f"c{i}", "Delete") for i in range(5001)]),
        "must have at most 5000 items",
    ),
}


@pytest.mark.parametrize("case", sorted(ADMISSION_CASES))
def test_admission_refuses_with_a_clear_message(harness: Harness, case: str) -> None:
    manifest, expected = ADMISSION_CASES[case]
    with pytest.raises(ApiException) as refused:
        harness.create_transaction(manifest)
    assert refused.value.status == 422
    assert expected in json.loads(refused.value.body)["message"]


def test_spec_is_immutable_after_creation(harness: Harness) -> None:
    harness.create_transaction(transaction("fixed", PATCH))
    with pytest.raises(ApiException) as refused:
        harness.custom.patch_namespaced_custom_object(
            API_GROUP,
            API_VERSION,
            harness.namespace,
            PLURAL,
            "fixed",
            {"spec": {"lockTimeout": "1m"}},
        )
    assert refused.value.status == 422
    assert "spec is immutable" in str(refused.value.body)


WORKFLOW_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown kind": (
        change("Gizmo", "g", "Create", {"spec": {}}, api_version="example.com/v1"),
        "kind Gizmo in example.com/v1 is not served by the API server",
    ),
    "Patch of a missing object": (
        change("ConfigMap", "absent", "Patch", {"data": {"k": "v"}}),
        "not found; Patch needs an existing object",
    ),
    "Create of an existing object": (
        change("ConfigMap", "present", "Create", {"data": {"k": "v"}}),
        "already exists; use Update or Patch",
    ),
    "target in another namespace": (
        change("ConfigMap", "present", "Patch", {"data": {"k": "v"}}, namespace="kube-system"),
        "/janus may not get configmaps 'present' in namespace kube-system",
    ),
    "duplicate targets": (
        change("ConfigMap", "present-too", "Patch", {"data": {"k": "v"}}),
        "spec.changes[0] and spec.changes[1] both target v1 ConfigMap",
    ),
    "content the apiserver rejects": (
        change("ConfigMap", "present", "Patch", {"data": {"bad key!": "v"}}),
        "a valid config key",
    ),
}


@pytest.mark.parametrize("case", sorted(WORKFLOW_CASES))
async def test_fails_before_the_first_write(harness: Harness, case: str) -> None:
    bad_change, expected = WORKFLOW_CASES[case]
    harness.create_objects(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "present"},
                "data": {"k": "old"},
            }
        ]
    )
    before = harness.config_map("present").metadata.resource_version
    # A good change first: it must not be applied either.
    good = change("ConfigMap", "present-too", "Create", {"data": {"k": "v"}})

    txn = await harness.run(transaction("bad", good, bad_change))

    status = txn["status"]
    assert status["phase"] == "RolledBack", status
    assert expected in status["message"]
    assert expected in status["items"][1]["error"]
    assert status["summary"]["committed"] == 0
    assert harness.config_map("present").metadata.resource_version == before
    assert harness.config_map("present-too") is None
    assert harness.leases() == []


async def test_missing_service_account_fails_before_any_write(harness: Harness) -> None:
    txn = await harness.run(transaction("as-ghost", PATCH, serviceAccountName="ghost"))

    status = txn["status"]
    assert status["phase"] == "RolledBack", status
    assert "service account ghost not found" in status["message"]
