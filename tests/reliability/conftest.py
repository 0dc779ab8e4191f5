"""Fixtures of the reliability suite: the saga fixtures, a test CRD, and the tally.

The saga's fixtures (the Transaction CRD, a worker on the test's queue, the
harness) are reused as they are; this suite adds a custom resource kind of its
own (``Widget``), a dynamic client to read any target as a user would, and the
counts printed at the end of the session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter
from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from temporalio.client import Client

from janus.dev import Endpoints
from tests.reliability import tally
from tests.reliability.bench import Bench
from tests.reliability.scenario import TARGET_RULES, TARGETS, WIDGET_CRD
from tests.reliability.worker_process import Zygote
from tests.saga.conftest import crd_installed, harness, start_worker
from tests.saga.harness import Harness

__all__ = ["crd_installed", "harness", "start_worker"]


@pytest.fixture(scope="session")
def widget_crd(kube_api: ApiClient, crd_installed: None) -> None:
    """The test's own custom resource kind, and the ClusterRole targets are changed with."""
    ext = k8s.ApiextensionsV1Api(kube_api)
    try:
        ext.create_custom_resource_definition(WIDGET_CRD)  # type: ignore[arg-type]
    except ApiException as err:
        if err.status != 409:
            raise
    for _ in range(200):
        crd = ext.read_custom_resource_definition(WIDGET_CRD["metadata"]["name"])
        conditions = crd.status.conditions or [] if crd.status else []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            break
        time.sleep(0.1)
    rbac = k8s.RbacAuthorizationV1Api(kube_api)
    try:
        rbac.create_cluster_role(TARGET_RULES)  # type: ignore[arg-type]
    except ApiException as err:
        if err.status != 409:
            raise
        rbac.replace_cluster_role(TARGET_RULES["metadata"]["name"], TARGET_RULES)  # type: ignore[arg-type]


PRIMED_KINDS = sorted({(api_version, kind) for api_version, kind, _ in TARGETS})
"""The kinds of the reliability scenario (``tests.reliability.scenario``)."""


@pytest.fixture(scope="session")
def dyn(kube_api: ApiClient, widget_crd: None) -> Iterator[DynamicClient]:
    """A dynamic client as the admin: reads any target the way ``kubectl get`` does.

    Its discovery cache is filled here, Widget included: the suites use it from
    several threads at once, and a cache miss there rebuilds the cache under the
    other threads' feet (``KeyError: 'resources'`` in kubernetes.dynamic).
    """
    client = DynamicClient(kube_api)  # type: ignore[no-untyped-call]
    for api_version, kind in PRIMED_KINDS:
        client.resources.get(api_version=api_version, kind=kind)
    yield client


@pytest.fixture(scope="session")
def zygote(endpoints: Endpoints) -> Iterator[Zygote]:
    """Forks worker processes (each one a worker a test may SIGKILL)."""
    server = Zygote()
    yield server
    server.close()


@pytest.fixture
def bench(
    crd_installed: None,
    kube_api: ApiClient,
    temporal_client: Client,
    task_queue: str,
    namespace: str,
    zygote: Zygote,
    endpoints: Endpoints,
    tmp_path: Path,
) -> Bench:
    """The harness on the test's queue and namespace, with no worker: the test starts its own."""
    harness = Harness(kube_api, temporal_client, task_queue, namespace)
    return Bench(harness, zygote, str(endpoints.kubeconfig), tmp_path)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if not tally.COUNTS:
        return
    terminalreporter.section("reliability counts")
    for line in tally.lines():
        terminalreporter.write_line(line)
