"""Leases of ConfigMap targets held, read and freed as another transaction would."""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from janus.contract.operations import lease_name
from janus.contract.wire import micro_time
from tests.saga.harness import LEASE_NAMESPACE

OTHER_HOLDER = "elsewhere/another-transaction/0000"


def take_lease(
    api: ApiClient, namespace: str, target: str, holder: str = OTHER_HOLDER, seconds: int = 600
) -> None:
    """Another transaction holds (or takes over) the lease of a ConfigMap target, live
    for ``seconds`` (10 minutes unless told)."""
    coordination = k8s.CoordinationV1Api(api)
    name = lease_name("v1", "ConfigMap", namespace, target)
    now = micro_time(datetime.now(UTC))
    spec = k8s.V1LeaseSpec(
        holder_identity=holder, lease_duration_seconds=seconds, acquire_time=now, renew_time=now
    )
    try:
        lease = coordination.read_namespaced_lease(name, LEASE_NAMESPACE)
    except ApiException as err:
        if err.status != 404:
            raise
        body = k8s.V1Lease(metadata=k8s.V1ObjectMeta(name=name), spec=spec)
        coordination.create_namespaced_lease(LEASE_NAMESPACE, body)
        return
    lease.spec = spec
    coordination.replace_namespaced_lease(name, LEASE_NAMESPACE, lease)


def lease_holder(api: ApiClient, namespace: str, target: str) -> str | None:
    name = lease_name("v1", "ConfigMap", namespace, target)
    try:
        lease = k8s.CoordinationV1Api(api).read_namespaced_lease(name, LEASE_NAMESPACE)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return lease.spec.holder_identity if lease.spec else None


def free_lease(api: ApiClient, namespace: str, target: str) -> None:
    name = lease_name("v1", "ConfigMap", namespace, target)
    try:
        k8s.CoordinationV1Api(api).delete_namespaced_lease(name, LEASE_NAMESPACE)
    except ApiException as err:
        if err.status != 404:
            raise
