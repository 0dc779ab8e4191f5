"""Opt a namespace in to Transactions that name no service account.

Such a Transaction acts as the account ``janus`` of its namespace
(``DEFAULT_SERVICE_ACCOUNT``), and its creator must be allowed to impersonate
that account (``deploy/admission-policy.yaml``). Until the account exists,
those Transactions are refused before their first lease. ``provide`` makes it
and binds it, in that namespace only, to a ClusterRole naming the rights:
``edit`` for most uses. Everything it does is idempotent.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from janus.contract.models import DEFAULT_SERVICE_ACCOUNT


def provide(
    api: ApiClient,
    namespace: str,
    *,
    cluster_role: str = "edit",
    account: str = DEFAULT_SERVICE_ACCOUNT,
) -> None:
    """The account ``account`` in ``namespace``, with ``cluster_role``'s rights there."""
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    service_account: Any = {"metadata": {"name": account}}
    _created(lambda: core.create_namespaced_service_account(namespace, service_account))
    binding: Any = {
        "metadata": {"name": f"{account}-{cluster_role}"[:253]},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": cluster_role,
        },
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }
    _created(lambda: rbac.create_namespaced_role_binding(namespace, binding))


def ensure_cluster_role(api: ApiClient, name: str, rules: list[dict[str, Any]]) -> None:
    """A ClusterRole to bind with ``provide`` (left as it is when it exists)."""
    rbac = k8s.RbacAuthorizationV1Api(api)
    role: Any = {"metadata": {"name": name}, "rules": rules}
    _created(lambda: rbac.create_cluster_role(role))


def _created(create: Any) -> None:
    try:
        create()
    except ApiException as err:
        if err.status != 409:
            raise
