"""Test namespaces opt in: Transactions without an account act as ``janus`` there.

The account gets every right inside its namespace (what the worker's own rights
gave such Transactions before accounts were required), never beyond it.
"""

from __future__ import annotations

from kubernetes.client import ApiClient

from janus.dev import accounts

#: Every verb on every resource, bound per namespace (a RoleBinding).
TARGETS_ROLE = "janus-test-targets"


def open_namespace(api: ApiClient, namespace: str) -> None:
    accounts.ensure_cluster_role(
        api, TARGETS_ROLE, [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    )
    accounts.provide(api, namespace, cluster_role=TARGETS_ROLE)
