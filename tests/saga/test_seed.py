"""The seed example, committed and rolled back, on the real apiserver and Temporal."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes import client as k8s

from activities.seams import Fault
from tests.saga.harness import Harness, example


def seed_transaction() -> dict[str, Any]:
    (doc,) = example("deploy-v2.yaml")
    return doc


def user_view(obj: Any) -> dict[str, Any]:
    """What 'byte-identical' means to a user: data, spec, labels and annotations.

    The Deployment controller's own bookkeeping (its revision annotation) is left
    out: the controller, not the transaction, writes it.
    """
    meta = obj.metadata
    annotations = {
        k: v
        for k, v in (meta.annotations or {}).items()
        if not k.startswith("deployment.kubernetes.io/")
    }
    return {
        "data": getattr(obj, "data", None),
        "spec": k8s.ApiClient().sanitize_for_serialization(getattr(obj, "spec", None)),  # type: ignore[no-untyped-call]
        "labels": meta.labels,
        "annotations": annotations,
    }


def containers(harness: Harness) -> dict[str, Any]:
    deployment = harness.deployment("web-server")
    return {c.name: c for c in deployment.spec.template.spec.containers}


async def test_seed_example_commits(harness: Harness) -> None:
    harness.seed()
    before = containers(harness)

    txn = await harness.run(seed_transaction())

    status = txn["status"]
    assert status["phase"] == "Committed", status
    assert status["summary"] == {"total": 3, "prepared": 3, "committed": 3, "rolledBack": 0}
    assert harness.config_map("app-config").data == {"version": "2.0", "log-level": "info"}
    after = containers(harness)
    assert after["web"].image == "myapp:v2.0"
    assert after["web"].ports == before["web"].ports
    assert after["web"].env == before["web"].env
    assert after["web"].resources == before["web"].resources
    assert after["sidecar"] == before["sidecar"]
    assert harness.secret("old-api-key") is None
    assert harness.leases() == []
    assert status["workflowId"].startswith(f"txn/{harness.namespace}/deploy-v2/")
    assert all(item["committed"] for item in status["items"])
    reasons = {e.reason for e in harness.core.list_namespaced_event(harness.namespace).items}
    assert {"Preparing", "Prepared", "Committing", "Committed"} <= reasons


async def test_rejected_deployment_patch_changes_nothing(harness: Harness) -> None:
    harness.seed()
    config_before = user_view(harness.config_map("app-config"))
    secret_before = harness.secret("old-api-key")
    bad = seed_transaction()
    bad["metadata"]["name"] = "deploy-v2-bad"
    bad["spec"]["changes"][1]["content"]["spec"]["replicas"] = -1

    txn = await harness.run(bad)

    status = txn["status"]
    assert status["phase"] == "RolledBack", status
    assert user_view(harness.config_map("app-config")) == config_before
    secret_after = harness.secret("old-api-key")
    assert secret_after.metadata.resource_version == secret_before.metadata.resource_version
    failing = status["items"][1]
    assert "apps/v1 Deployment" in failing["error"] and "web-server" in failing["error"]
    assert "replicas" in failing["error"] and "greater than or equal to 0" in failing["error"]
    assert "replicas" in status["message"]
    assert harness.leases() == []


@pytest.mark.worker(faults=[Fault.parse("apply:1:before")])
async def test_failure_after_a_committed_patch_restores_it(harness: Harness) -> None:
    """The Deployment step fails during commit (fault hook): the ConfigMap patch is undone."""
    harness.seed()
    config_before = user_view(harness.config_map("app-config"))
    deployment_before = user_view(harness.deployment("web-server"))
    txn = seed_transaction()
    txn["metadata"]["name"] = "seed-fails-at-1"

    done = await harness.run(copy.deepcopy(txn))

    status = done["status"]
    assert status["phase"] == "RolledBack", status
    assert status["items"][0]["committed"] and status["items"][0]["rolledBack"]
    assert "injected fault" in status["items"][1]["error"]
    assert user_view(harness.config_map("app-config")) == config_before
    assert user_view(harness.deployment("web-server")) == deployment_before
    assert harness.secret("old-api-key") is not None
    assert harness.leases() == []
