"""What the benchmark asks for: the seed example, ConfigMap fleets, and the plain script.

The plain script is the baseline Janus is compared with: the same mutations,
with the same Kubernetes client, done the way a careful script does them
(sequential get, then patch or delete), with no leases, snapshots, status or
rollback.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import utils as k8s_utils
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource

from janus.contract.models import manifest

EXAMPLES = Path(__file__).resolve().parents[1] / "deploy" / "examples"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def seed_objects() -> list[dict[str, Any]]:
    """The objects the seed Transaction changes (deploy/examples/seed-objects.yaml);
    not the account it acts as, which every benchmark namespace has already."""
    return [
        doc
        for doc in _documents("seed-objects.yaml")
        if doc["kind"] not in ("ServiceAccount", "RoleBinding")
    ]


def seed_transaction(name: str = "deploy-v2") -> dict[str, Any]:
    """The seed example (deploy/examples/deploy-v2.yaml), verbatim but for its name."""
    (doc,) = _documents("deploy-v2.yaml")
    doc = copy.deepcopy(doc)
    doc["metadata"]["name"] = name
    return doc


def failing_seed_transaction(name: str = "deploy-v2-bad") -> dict[str, Any]:
    """The seed example with a Deployment patch the API server rejects (replicas: -1):
    deploy/examples/deploy-v2-bad.yaml."""
    if (EXAMPLES / "deploy-v2-bad.yaml").exists():
        (doc,) = _documents("deploy-v2-bad.yaml")
        doc["metadata"]["name"] = name
        return doc
    doc = seed_transaction(name)
    doc["spec"]["changes"][1]["content"]["spec"]["replicas"] = -1
    return doc


def create_objects(api: Any, namespace: str, docs: Sequence[dict[str, Any]]) -> None:
    for doc in docs:
        k8s_utils.create_from_dict(api, copy.deepcopy(doc), namespace=namespace)  # type: ignore[no-untyped-call]


def patch_config_map(name: str, value: str) -> dict[str, Any]:
    return {
        "target": {"apiVersion": "v1", "kind": "ConfigMap", "name": name},
        "type": "Patch",
        "content": {"data": {"version": value}},
    }


def config_map_transaction(
    name: str, config_maps: Sequence[str], *, value: str = "2", lock_timeout: str = "5m"
) -> dict[str, Any]:
    """One Transaction patching every listed ConfigMap, in the order given."""
    return manifest(
        name,
        {
            "lockTimeout": lock_timeout,
            "changes": [patch_config_map(cm, value) for cm in config_maps],
        },
    )


class PlainScript:
    """The seed mutations without Janus: per change, get then patch / delete / create."""

    def __init__(self, dynamic: DynamicClient) -> None:
        self.dyn: Any = dynamic  # the dynamic client carries no annotations
        self._resources: dict[tuple[str, str], Resource] = {}

    def resource(self, api_version: str, kind: str) -> Resource:
        """Discovery happens once, before any timing (the worker caches it too)."""
        key = (api_version, kind)
        if key not in self._resources:
            found: Resource = self.dyn.resources.get(api_version=api_version, kind=kind)
            self._resources[key] = found
        return self._resources[key]

    def warm(self, transaction: dict[str, Any]) -> None:
        for change in transaction["spec"]["changes"]:
            self.resource(change["target"]["apiVersion"], change["target"]["kind"])

    def run(self, transaction: dict[str, Any], namespace: str) -> float:
        """Apply the Transaction's changes directly; return the seconds taken."""
        self.warm(transaction)
        start = time.perf_counter()
        for change in transaction["spec"]["changes"]:
            target = change["target"]
            res = self.resource(target["apiVersion"], target["kind"])
            name, kind = target["name"], change["type"]
            ns = target.get("namespace") or namespace
            current = None if kind == "Create" else self.dyn.get(res, name=name, namespace=ns)
            if kind == "Patch":
                self.dyn.patch(
                    res,
                    body=change["content"],
                    name=name,
                    namespace=ns,
                    content_type=STRATEGIC_MERGE_PATCH,
                )
            elif kind == "Delete":
                self.dyn.delete(res, name=name, namespace=ns)
            elif kind == "Update" and current is not None:
                body = copy.deepcopy(change["content"])
                body.setdefault("metadata", {})["resourceVersion"] = (
                    current.metadata.resourceVersion
                )
                self.dyn.replace(res, body=body, name=name, namespace=ns)
            else:
                self.dyn.create(res, body=change["content"], namespace=ns)
        return time.perf_counter() - start
