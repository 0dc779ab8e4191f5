"""The control plane ``janus dev`` runs is a real one: what a user of it would see.

Each test talks to the servers the session fixtures provide: objects are stored
and served, RBAC refuses an unprivileged user, the garbage collector removes
owned objects, service-account tokens authenticate, and a workflow run on
Temporal shows up in the ``temporal`` CLI.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import pytest
    from kubernetes import client as k8s
    from temporalio.client import Client
    from temporalio.worker import Worker

    from janus.dev import Endpoints
    from janus.dev.build import module_dir, read_versions
    from janus.dev.servers import temporal_cli

GC_TIMEOUT = 60.0


@workflow.defn
class Greeting:
    """The smallest workflow: proves a worker and the server exchange tasks."""

    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"


def test_configmap_is_stored_and_served(kube_api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(kube_api)
    body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="greeting"), data={"hello": "world"})
    core.create_namespaced_config_map(namespace, body)

    assert core.read_namespaced_config_map("greeting", namespace).data == {"hello": "world"}

    core.delete_namespaced_config_map("greeting", namespace)
    with pytest.raises(k8s.ApiException) as gone:
        core.read_namespaced_config_map("greeting", namespace)
    assert gone.value.status == 404


def test_rbac_refuses_a_user_without_grants(tester_api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(tester_api)
    body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="denied"))

    with pytest.raises(k8s.ApiException) as refused:
        core.create_namespaced_config_map(namespace, body)

    assert refused.value.status == 403
    assert 'User "janus-tester" cannot create resource "configmaps"' in _message(refused.value)


def test_owned_configmap_is_garbage_collected(kube_api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="owner"))
    )
    assert owner.metadata is not None
    reference = k8s.V1OwnerReference(
        api_version="v1",
        kind="ConfigMap",
        name="owner",
        uid=owner.metadata.uid,
        block_owner_deletion=False,
    )
    dependent = k8s.V1ObjectMeta(name="dependent", owner_references=[reference])
    core.create_namespaced_config_map(namespace, k8s.V1ConfigMap(metadata=dependent))
    time.sleep(1)  # the collector would remove a dependent of a missing owner by now
    assert not _absent(core, "dependent", namespace)

    core.delete_namespaced_config_map("owner", namespace)

    assert _eventually(lambda: _absent(core, "dependent", namespace), GC_TIMEOUT)


def test_deleted_namespace_is_finalized(kube_api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(kube_api)
    core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="content"))
    )

    core.delete_namespace(namespace)

    assert _eventually(lambda: _namespace_gone(core, namespace), GC_TIMEOUT)


def test_service_account_token_authenticates(kube_api: k8s.ApiClient, namespace: str) -> None:
    request = k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[]))
    token = k8s.CoreV1Api(kube_api).create_namespaced_service_account_token(
        "default", namespace, request
    )
    assert token.status is not None and token.status.token
    as_account = _bearer_client(kube_api, token.status.token)

    with pytest.raises(k8s.ApiException) as refused:
        k8s.CoreV1Api(as_account).list_namespaced_config_map(namespace)

    assert refused.value.status == 403
    assert f'User "system:serviceaccount:{namespace}:default"' in _message(refused.value)


def test_apiserver_reports_the_pinned_version(kube_api: k8s.ApiClient) -> None:
    pinned = read_versions(module_dir() / "go.mod").kubernetes

    assert k8s.VersionApi(kube_api).get_code().git_version == pinned


async def test_workflow_completes_and_is_listed(
    temporal_client: Client, task_queue: str, endpoints: Endpoints
) -> None:
    workflow_id = f"greeting-{uuid.uuid4()}"
    async with Worker(temporal_client, task_queue=task_queue, workflows=[Greeting]):
        result = await temporal_client.execute_workflow(
            Greeting.run, "janus", id=workflow_id, task_queue=task_queue
        )
    assert result == "hello janus"

    listed = await _listed_by_cli(endpoints, workflow_id)

    assert [(row["execution"]["workflowId"], row["status"]) for row in listed] == [
        (workflow_id, "WORKFLOW_EXECUTION_STATUS_COMPLETED")
    ]


async def _listed_by_cli(endpoints: Endpoints, workflow_id: str) -> list[dict[str, Any]]:
    """``temporal workflow list`` rows for ``workflow_id``; visibility may lag a moment."""
    argv = [str(temporal_cli()), "workflow", "list", "--output=json"]
    argv += [f"--address={endpoints.temporal_address}", f"--query=WorkflowId='{workflow_id}'"]
    for _ in range(50):
        process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
        stdout, _ = await process.communicate()
        assert process.returncode == 0
        rows: list[dict[str, Any]] = json.loads(stdout or b"[]")
        if rows:
            return rows
        await asyncio.sleep(0.2)
    return []


def _message(error: k8s.ApiException) -> str:
    """The ``message`` of the Status the API server answered with, as kubectl prints it."""
    status: dict[str, str] = json.loads(error.body or "{}")
    return status["message"]


def _bearer_client(admin: k8s.ApiClient, token: str) -> k8s.ApiClient:
    """A client for the same server as ``admin`` that authenticates with ``token`` only."""
    config = k8s.Configuration()
    config.host = admin.configuration.host
    config.ssl_ca_cert = admin.configuration.ssl_ca_cert
    config.api_key = {"authorization": f"Bearer {token}"}
    return k8s.ApiClient(config)


def _absent(core: k8s.CoreV1Api, name: str, namespace: str) -> bool:
    try:
        core.read_namespaced_config_map(name, namespace)
    except k8s.ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def _namespace_gone(core: k8s.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except k8s.ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def _eventually(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True
