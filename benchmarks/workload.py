"""What the benchmark asks for: the seed example, ConfigMap fleets, and the plain script.

The plain script is the baseline Janus is compared with: the same mutations,
with the same Kubernetes client, done the way a careful script does them
(sequential get, then patch or delete), with no leases, snapshots, status or
rollback.
"""

from __future__ import annotations

import copy
import json
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


def seed_transaction(failing: bool = False) -> dict[str, Any]:
    """The seed example (deploy/examples/deploy-v2.yaml), or its failing variant, whose
    Deployment patch the API server rejects (replicas: -1, deploy-v2-bad.yaml)."""
    (doc,) = _documents("deploy-v2-bad.yaml" if failing else "deploy-v2.yaml")
    return doc


def create_objects(api: Any, namespace: str, docs: Sequence[dict[str, Any]]) -> None:
    for doc in docs:
        k8s_utils.create_from_dict(api, copy.deepcopy(doc), namespace=namespace)  # type: ignore[no-untyped-call]


def config_map_transaction(
    name: str, config_maps: Sequence[str], *, lock_timeout: str = "5m"
) -> dict[str, Any]:
    """One Transaction patching every listed ConfigMap (``version: "2"``), in the order given."""
    patch = {"type": "Patch", "content": {"data": {"version": "2"}}}
    target = {"apiVersion": "v1", "kind": "ConfigMap"}
    changes = [{**patch, "target": {**target, "name": cm}} for cm in config_maps]
    return manifest(name, {"lockTimeout": lock_timeout, "changes": changes})


def cm_names(n: int) -> list[str]:
    return [f"cm-{i:05d}" for i in range(n)]


def json_size(obj: Any) -> int:
    """Bytes of ``obj`` as compact JSON (what the API server stores, near enough)."""
    return len(json.dumps(obj, separators=(",", ":"), default=str))


class PlainScript:
    """The seed mutations without Janus: per change, get, then patch or delete."""

    def __init__(self, dynamic: DynamicClient) -> None:
        self.dyn: Any = dynamic  # the dynamic client carries no annotations
        self._resources: dict[tuple[str, str], Resource] = {}

    def warm(self, transaction: dict[str, Any]) -> None:
        """Discovery happens once, before any timing (the worker caches it too)."""
        for change in transaction["spec"]["changes"]:
            key = (change["target"]["apiVersion"], change["target"]["kind"])
            if key not in self._resources:
                self._resources[key] = self.dyn.resources.get(api_version=key[0], kind=key[1])

    def run(self, transaction: dict[str, Any], namespace: str) -> float:
        """Apply the Transaction's changes directly; return the seconds taken."""
        self.warm(transaction)
        start = time.perf_counter()
        for change in transaction["spec"]["changes"]:
            target = change["target"]
            res = self._resources[(target["apiVersion"], target["kind"])]
            name, ns = target["name"], target.get("namespace") or namespace
            self.dyn.get(res, name=name, namespace=ns)
            if change["type"] == "Patch":
                patch = {"body": change["content"], "content_type": STRATEGIC_MERGE_PATCH}
                self.dyn.patch(res, name=name, namespace=ns, **patch)
            elif change["type"] == "Delete":
                self.dyn.delete(res, name=name, namespace=ns)
            else:
                raise ValueError(f"the plain script patches and deletes, not {change['type']}")
        return time.perf_counter() - start
