"""A namespace of its own for one scenario, sharing the test's worker."""

from __future__ import annotations

import asyncio
import uuid

from kubernetes import client as k8s

from tests.accounts import open_namespace
from tests.reliability.scenario import TEST_LABEL
from tests.saga.harness import Harness


def config_maps(harness: Harness, names: list[str], data: dict[str, str]) -> None:
    harness.create_objects(
        [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": data}
            for n in names
        ]
    )


class Stage:
    """One scenario, in a namespace of its own (deleted by ``cleanup``)."""

    def __init__(self, harness: Harness, label: str) -> None:
        self.namespace = f"rel-{label}-{uuid.uuid4().hex[:6]}"
        self.h = Harness(harness.api, harness.temporal, harness.task_queue, self.namespace)
        self.h.core.create_namespace(
            k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=self.namespace, labels=TEST_LABEL))
        )
        open_namespace(harness.api, self.namespace)

    def patch(self, name: str, data: dict[str, str]) -> None:
        """Another writer (kubectl patch, as the admin)."""
        self.h.core.patch_namespaced_config_map(name, self.namespace, {"data": data})

    async def wait_committed(self, name: str, index: int) -> None:
        for _ in range(600):
            txn = await asyncio.to_thread(self.h.transaction, name)
            items = txn.get("status", {}).get("items") or []
            if len(items) > index and items[index].get("committed"):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{name}: change {index} never committed")

    def cleanup(self) -> None:
        self.h.core.delete_namespace(self.namespace, propagation_policy="Background")

    def service_account(self, name: str) -> None:
        self.h.core.create_namespaced_service_account(self.namespace, {"metadata": {"name": name}})  # type: ignore[arg-type]

    def grant(
        self,
        service_account: str,
        resources: list[str],
        verbs: list[str],
        *,
        namespace: str | None = None,
    ) -> None:
        """A Role (in ``namespace``, default this one) for this namespace's account."""
        where = namespace or self.namespace
        name = f"{self.namespace}-{service_account}"[:63]
        rbac = k8s.RbacAuthorizationV1Api(self.h.api)
        rbac.create_namespaced_role(
            where,
            {  # type: ignore[arg-type]
                "metadata": {"name": name},
                "rules": [{"apiGroups": [""], "resources": resources, "verbs": verbs}],
            },
        )
        rbac.create_namespaced_role_binding(
            where,
            {  # type: ignore[arg-type]
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [
                    {"kind": "ServiceAccount", "name": service_account, "namespace": self.namespace}
                ],
            },
        )
