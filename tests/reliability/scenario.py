"""The reliability suite's transaction: all four change types over nine targets.

One *sandbox* is a namespace holding the targets in their "before" state, a
service account (``changer``) allowed to change them, and a cluster-scoped
target (a ClusterRole) with the RBAC to change it. The transaction, as that
service account:

====  ======  ===========================================
 0    Create  ConfigMap ``fresh``
 1    Update  ConfigMap ``settings`` (drops a key, a label)
 2    Patch   Deployment ``web`` (image, label)
 3    Delete  Secret ``old-key``
 4    Patch   Secret ``token`` (value, annotation)
 5    Patch   Widget ``gear`` (a custom resource; merge patch)
 6    Create  Widget ``sprocket``
 7    Patch   ClusterRole ``rel-<namespace>`` (cluster-scoped)
 8    Patch   ConfigMap ``anchor``
====  ======  ===========================================

A *view* of a target is what a user compares: everything but status and
server-set metadata, plus labels and annotations (without the Deployment
controller's ``deployment.kubernetes.io/*`` bookkeeping). Views are compared
exactly; only the value of Janus's marker annotation is normalised, since it
names the transaction's uid.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from temporalio.client import Client

from bridge.snapshots import delete_snapshots
from janus.contract.operations import CHANGE_MARKER, TRANSACTION_UID_LABEL
from tests.accounts import open_namespace
from tests.saga.harness import LEASE_NAMESPACE, Harness

WIDGET_GROUP = "rel.janus.dev"
WIDGET_VERSION = f"{WIDGET_GROUP}/v1"
SERVICE_ACCOUNT = "changer"
TEST_LABEL = {"janus.dev/test": "true"}

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{WIDGET_GROUP}"},
    "spec": {
        "group": WIDGET_GROUP,
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                },
            }
        ],
    },
}

#: What ``changer`` may do in its sandbox (bound there by a RoleBinding).
TARGET_RULES: dict[str, Any] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "janus-rel-targets", "labels": TEST_LABEL},
    "rules": [
        {
            "apiGroups": ["", "apps", WIDGET_GROUP],
            "resources": ["configmaps", "secrets", "deployments", "widgets"],
            "verbs": ["get", "create", "update", "patch", "delete"],
        }
    ],
}

SECRET_VALUE = "old-key-value-do-not-leak"
TOKEN_BEFORE = "token-before-value"
TOKEN_AFTER = "token-after-value"

#: Who changes what: (apiVersion, kind, name) per change; None name = the ClusterRole.
TARGETS: list[tuple[str, str, str | None]] = [
    ("v1", "ConfigMap", "fresh"),
    ("v1", "ConfigMap", "settings"),
    ("apps/v1", "Deployment", "web"),
    ("v1", "Secret", "old-key"),
    ("v1", "Secret", "token"),
    (WIDGET_VERSION, "Widget", "gear"),
    (WIDGET_VERSION, "Widget", "sprocket"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", None),
    ("v1", "ConfigMap", "anchor"),
]
CHANGES = len(TARGETS)
LAST = CHANGES - 1


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def user_view(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a user compares: data, spec, rules…, labels, annotations. None when absent."""
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    annotations = {
        k: (v.split("/")[-1] if k == CHANGE_MARKER else v)
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith("deployment.kubernetes.io/")
    }
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return {**body, "labels": meta.get("labels") or {}, "annotations": annotations}


@dataclass
class Sandbox:
    """One namespace with the scenario's targets in their 'before' state."""

    api: ApiClient
    dyn: DynamicClient
    temporal: Client
    task_queue: str
    label: str
    namespace: str = ""
    created: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.namespace:
            self.namespace = f"rel-{self.label}-{uuid.uuid4().hex[:6]}"[:63]
        self.harness = Harness(self.api, self.temporal, self.task_queue, self.namespace)

    @property
    def cluster_role(self) -> str:
        return f"rel-target-{self.namespace}"

    # -- setup -----------------------------------------------------------------

    def setup(self, *, service_account: bool = True) -> None:
        core = k8s.CoreV1Api(self.api)
        core.create_namespace(
            k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=self.namespace, labels=TEST_LABEL))
        )
        open_namespace(self.api, self.namespace)
        if service_account:
            self.grant_service_account()
        self.harness.create_objects(self.objects())
        self._create_cluster_scoped(
            "ClusterRole",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": self.cluster_role, "labels": {"owner": "rel", **TEST_LABEL}},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
            },
        )

    def grant_service_account(self) -> None:
        """``changer`` may change the sandbox's targets, and its ClusterRole by name."""
        core = k8s.CoreV1Api(self.api)
        core.create_namespaced_service_account(
            self.namespace,
            {"metadata": {"name": SERVICE_ACCOUNT}},  # type: ignore[arg-type]
        )
        rbac = k8s.RbacAuthorizationV1Api(self.api)
        subject = {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": self.namespace}
        rbac.create_namespaced_role_binding(
            self.namespace,
            {  # type: ignore[arg-type]
                "metadata": {"name": "changer-targets"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": TARGET_RULES["metadata"]["name"],
                },
                "subjects": [subject],
            },
        )
        editor = f"rel-editor-{self.namespace}"
        self._create_cluster_scoped(
            "ClusterRole",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": editor, "labels": TEST_LABEL},
                "rules": [
                    {
                        "apiGroups": ["rbac.authorization.k8s.io"],
                        "resources": ["clusterroles"],
                        "resourceNames": [self.cluster_role],
                        # escalate: the patch grants rules changer does not hold.
                        "verbs": ["get", "update", "patch", "escalate"],
                    }
                ],
            },
        )
        self._create_cluster_scoped(
            "ClusterRoleBinding",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": editor, "labels": TEST_LABEL},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": editor,
                },
                "subjects": [subject],
            },
        )

    def _create_cluster_scoped(self, kind: str, body: dict[str, Any]) -> None:
        rbac = k8s.RbacAuthorizationV1Api(self.api)
        if kind == "ClusterRole":
            rbac.create_cluster_role(body)  # type: ignore[arg-type]
        else:
            rbac.create_cluster_role_binding(body)  # type: ignore[arg-type]
        self.created.append((kind, body["metadata"]["name"], ""))

    def objects(self) -> list[dict[str, Any]]:
        labels = {"app": "web"}
        container = {"name": "web", "image": "registry.example/web:v1"}
        sidecar = {"name": "sidecar", "image": "registry.example/proxy:v3"}
        return [
            _obj(
                "v1",
                "ConfigMap",
                "settings",
                data={"mode": "old", "keep": "me"},
                labels={"tier": "silver", "team": "a"},
                annotations={"note": "original"},
            ),
            _obj(
                "apps/v1",
                "Deployment",
                "web",
                labels=labels,
                spec={
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [container, sidecar]},
                    },
                },
            ),
            _obj(
                "v1",
                "Secret",
                "old-key",
                data={"key": b64(SECRET_VALUE)},
                labels={"rotation": "2024"},
            ),
            _obj("v1", "Secret", "token", data={"token": b64(TOKEN_BEFORE)}),
            _obj("v1", "ConfigMap", "anchor", data={"k": "v"}),
        ]

    def create_widgets(self) -> None:
        """Custom resources (created through the dynamic client)."""
        res = self.dyn.resources.get(api_version=WIDGET_VERSION, kind="Widget")
        self.dyn.create(  # type: ignore[no-untyped-call]
            res,
            body=_obj(WIDGET_VERSION, "Widget", "gear", spec={"size": 1, "color": "red"}),
            namespace=self.namespace,
        )

    def prepare(self) -> dict[str, Any]:
        """Set everything up; return the 'before' views."""
        self.setup()
        self.create_widgets()
        return self.views()

    # -- the transaction -------------------------------------------------------

    def changes(self) -> list[dict[str, Any]]:
        def change(i: int, type_: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
            api_version, kind, name = TARGETS[i]
            target = {"apiVersion": api_version, "kind": kind, "name": name or self.cluster_role}
            item: dict[str, Any] = {"target": target, "type": type_}
            if content is not None:
                item["content"] = content
            return item

        return [
            change(0, "Create", {"metadata": {"labels": {"by": "janus"}}, "data": {"hi": "1"}}),
            change(1, "Update", {"metadata": {"labels": {"tier": "gold"}}, "data": {"mode": "2"}}),
            change(
                2,
                "Patch",
                {
                    "metadata": {"labels": {"version": "v2"}},
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [{"name": "web", "image": "registry.example/web:v2"}]
                            }
                        }
                    },
                },
            ),
            change(3, "Delete"),
            change(
                4,
                "Patch",
                {"metadata": {"annotations": {"new": "yes"}}, "data": {"token": b64(TOKEN_AFTER)}},
            ),
            change(5, "Patch", {"spec": {"size": 3, "color": None}}),
            change(6, "Create", {"spec": {"teeth": 12}}),
            change(
                7,
                "Patch",
                {
                    "metadata": {"labels": {"reviewed": "yes"}},
                    "rules": [
                        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
                    ],
                },
            ),
            change(8, "Patch", {"data": {"touched": "yes"}}),
        ]

    def manifest(self, name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "backup.janus.io/v1alpha1",
            "kind": "Transaction",
            "metadata": {"name": name},
            "spec": {
                "changes": self.changes(),
                "serviceAccountName": SERVICE_ACCOUNT,
                "lockTimeout": "2m",
                **spec,
            },
        }

    # -- reading ---------------------------------------------------------------

    def read(self, index: int) -> dict[str, Any] | None:
        api_version, kind, name = TARGETS[index]
        res = self.dyn.resources.get(api_version=api_version, kind=kind)
        namespace = None if kind == "ClusterRole" else self.namespace
        try:
            obj: dict[str, Any] = self.dyn.get(  # type: ignore[no-untyped-call]
                res, name=name or self.cluster_role, namespace=namespace
            ).to_dict()
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return obj

    def views(self) -> dict[str, Any]:
        return {str(i): user_view(self.read(i)) for i in range(CHANGES)}

    def snapshots(self, uid: str) -> list[str]:
        """Snapshot shards of a transaction still in the cluster (in the system
        namespace, or, as 0.1.0 kept them, beside the Transaction)."""
        core = k8s.CoreV1Api(self.api)
        selector = f"{TRANSACTION_UID_LABEL}={uid}"
        found = []
        for where in (LEASE_NAMESPACE, self.namespace):
            cms = core.list_namespaced_config_map(where, label_selector=selector).items
            secrets = core.list_namespaced_secret(where, label_selector=selector).items
            found += [f"ConfigMap/{c.metadata.name}" for c in cms]  # type: ignore[union-attr]
            found += [f"Secret/{s.metadata.name}" for s in secrets]  # type: ignore[union-attr]
        return found

    async def delete_and_wait_for_gc(self, name: str, uid: str, seconds: float = 90) -> list[str]:
        """Delete the Transaction, with what the bridge does when it releases the
        finalizer (no bridge runs here; tests/bridge/test_delete.py has the real one);
        return the snapshots left once GC had its chance."""
        await delete_snapshots(self.api, LEASE_NAMESPACE, uid)
        await asyncio.to_thread(
            self.harness.custom.delete_namespaced_custom_object,
            "backup.janus.io",
            "v1alpha1",
            self.namespace,
            "transactions",
            name,
        )
        deadline = time.monotonic() + seconds
        while True:
            left = await asyncio.to_thread(self.snapshots, uid)
            if not left or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.5)

    def cleanup(self) -> None:
        rbac = k8s.RbacAuthorizationV1Api(self.api)
        for kind, name, _ in self.created:
            try:
                if kind == "ClusterRole":
                    rbac.delete_cluster_role(name)
                else:
                    rbac.delete_cluster_role_binding(name)
            except ApiException as err:
                if err.status != 404:
                    raise
        try:
            k8s.CoreV1Api(self.api).delete_namespace(
                self.namespace, propagation_policy="Background"
            )
        except ApiException as err:
            if err.status != 404:
                raise


def _obj(
    api_version: str,
    kind: str,
    name: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **body: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **copy.deepcopy(body)}


def web_deployment(image: str) -> dict[str, Any]:
    """Deployment ``web`` (label ``app: web``, one replica) of one container running ``image``."""
    labels = {"app": "web"}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }
    spec = {"replicas": 1, "selector": {"matchLabels": labels}, "template": template}
    return _obj("apps/v1", "Deployment", "web", labels=labels, spec=spec)


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """The targets whose views differ, each with what was expected and what was found."""
    return [
        f"change {k} target: expected {expected[k]!r}, found {actual.get(k)!r}"
        for k in expected
        if expected[k] != actual.get(k)
    ]
