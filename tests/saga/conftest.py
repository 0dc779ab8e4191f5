"""Fixtures for saga tests: the CRD installed, and a real worker on the test's queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client

from activities.seams import Seams
from janus.contract.crd import custom_resource_definition
from janus.contract.settings import WorkerSettings
from janus.runtime.worker import build_worker
from tests.saga.harness import LEASE_NAMESPACE, Harness

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(scope="session")
def crd_installed(kube_api: ApiClient) -> None:
    """Install the Transaction CRD (and the lease namespace) once per session."""
    ext = k8s.ApiextensionsV1Api(kube_api)
    body = custom_resource_definition()
    try:
        ext.create_custom_resource_definition(body)  # type: ignore[arg-type]
    except ApiException as err:
        if err.status != 409:
            raise
        current = ext.read_custom_resource_definition(body["metadata"]["name"])
        body["metadata"]["resourceVersion"] = current.metadata.resource_version  # type: ignore[union-attr]
        ext.replace_custom_resource_definition(body["metadata"]["name"], body)  # type: ignore[arg-type]
    _wait_established(ext, body["metadata"]["name"])
    try:
        k8s.CoreV1Api(kube_api).create_namespace({"metadata": {"name": LEASE_NAMESPACE}})  # type: ignore[arg-type]
    except ApiException as err:
        if err.status != 409:
            raise
    install_admission_policy(kube_api)


def install_admission_policy(api: ApiClient) -> None:
    """deploy/admission-policy.yaml, as `janus install` applies it (create or replace)."""
    admission = k8s.AdmissionregistrationV1Api(api)
    for doc in load_yaml_documents(DEPLOY / "admission-policy.yaml"):
        create, read, replace = (
            (
                admission.create_validating_admission_policy,
                admission.read_validating_admission_policy,
                admission.replace_validating_admission_policy,
            )
            if doc["kind"] == "ValidatingAdmissionPolicy"
            else (
                admission.create_validating_admission_policy_binding,
                admission.read_validating_admission_policy_binding,
                admission.replace_validating_admission_policy_binding,
            )
        )
        name = str(doc["metadata"]["name"])  # type: ignore[index]
        try:
            create(doc)  # type: ignore[arg-type]
        except ApiException as err:
            if err.status != 409:
                raise
            doc["metadata"]["resourceVersion"] = read(name).metadata.resource_version  # type: ignore[index,union-attr]
            replace(name, doc)  # type: ignore[arg-type]


def _wait_established(ext: k8s.ApiextensionsV1Api, name: str) -> None:
    import time

    for _ in range(100):
        crd = ext.read_custom_resource_definition(name)
        conditions = crd.status.conditions or [] if crd.status else []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise AssertionError(f"CRD {name} did not become Established")


StartWorker = Callable[..., Awaitable[None]]


@pytest.fixture
async def start_worker(
    temporal_client: Client, task_queue: str, endpoints: object
) -> AsyncIterator[StartWorker]:
    """Start a worker on the test's task queue, with the given test seams."""
    from janus.clients.kubernetes import kubernetes_client

    running: list[tuple[object, asyncio.Task[None]]] = []

    async def start(**seams: object) -> None:
        worker = build_worker(
            temporal_client,
            task_queue=task_queue,
            api_client=kubernetes_client(str(endpoints.kubeconfig)),  # type: ignore[attr-defined]
            settings=WorkerSettings(lease_namespace=LEASE_NAMESPACE),
            seams=Seams(**seams),
        )
        running.append((worker, asyncio.create_task(worker.run())))

    yield start
    for worker, task in running:
        await worker.shutdown()  # type: ignore[attr-defined]
        await task


@pytest.fixture
async def harness(
    crd_installed: None,
    kube_api: ApiClient,
    temporal_client: Client,
    task_queue: str,
    namespace: str,
    start_worker: StartWorker,
    request: pytest.FixtureRequest,
) -> Harness:
    """A worker and the helpers to drive transactions.

    The worker's test seams come from the test's ``@pytest.mark.worker(**seams)``.
    """
    marker = request.node.get_closest_marker("worker")
    await start_worker(**(marker.kwargs if marker else {}))
    return Harness(kube_api, temporal_client, task_queue, namespace)


def load_yaml_documents(path: Path) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
