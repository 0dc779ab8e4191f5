"""Fixtures that connect tests to one real control plane per session.

If ``KUBECONFIG`` and ``TEMPORAL_ADDRESS`` are set and reachable (for example
after ``eval "$(janus dev env)"``), the tests use those servers; the unprivileged
user's kubeconfig then comes from ``JANUS_TESTER_KUBECONFIG`` (tests needing it
are skipped without it). Otherwise the session starts its own control plane in
``$JANUS_STATE_DIR`` or ``~/.local/state/janus/test`` and stops it at the end, if
it was this session that started it.

The session exports ``KUBECONFIG`` and ``TEMPORAL_ADDRESS`` so subprocesses
(kubectl, the temporal CLI) talk to the same servers as the Python clients.
"""

import contextlib
import os
import re
import socket
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from janus.dev import ControlPlane, Endpoints
from janus.dev.paths import testing_state_dir
from tests.accounts import open_namespace

NAMESPACE_READY_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    """The control plane of this session: from the environment, or started here."""
    reused = _endpoints_from_env()
    if reused is not None:
        yield from _exported(reused)
        return
    plane = ControlPlane(testing_state_dir(), echo=print)
    started_here = plane.endpoints() is None
    started = plane.up()
    try:
        yield from _exported(started)
    finally:
        if started_here:
            plane.down()


@pytest.fixture(scope="session")
def kube_api(endpoints: Endpoints) -> Iterator[k8s.ApiClient]:
    """An API client authenticated as ``janus-admin`` (group ``system:masters``)."""
    with _api_client(endpoints.kubeconfig) as api:
        yield api


@pytest.fixture(scope="session")
def tester_api(endpoints: Endpoints) -> Iterator[k8s.ApiClient]:
    """An API client authenticated as ``janus-tester``, a user RBAC grants nothing."""
    if endpoints.tester_kubeconfig is None:
        pytest.skip("set JANUS_TESTER_KUBECONFIG to a kubeconfig of an unprivileged user")
    with _api_client(endpoints.tester_kubeconfig) as api:
        yield api


@pytest.fixture
def namespace(kube_api: k8s.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace with its ``default`` ServiceAccount; deleted (not awaited) after."""
    core = k8s.CoreV1Api(kube_api)
    name = _unique_name(request.node.name)
    meta = k8s.V1ObjectMeta(name=name, labels={"janus.dev/test": "true"})
    core.create_namespace(k8s.V1Namespace(metadata=meta))
    _wait_for_default_service_account(core, name)
    open_namespace(kube_api, name)
    yield name
    with contextlib.suppress(k8s.ApiException):
        core.delete_namespace(name, propagation_policy="Background")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_client(endpoints: Endpoints) -> AsyncIterator[Client]:
    """A Temporal client with the pydantic data converter, as every Janus process uses."""
    yield await Client.connect(
        endpoints.temporal_address,
        namespace=endpoints.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


@pytest.fixture
def task_queue(request: pytest.FixtureRequest) -> str:
    """A task queue no other test polls."""
    return _unique_name(request.node.name)


def _endpoints_from_env() -> Endpoints | None:
    """Endpoints from KUBECONFIG and TEMPORAL_ADDRESS, if both are set and answer."""
    kubeconfig, address = os.environ.get("KUBECONFIG"), os.environ.get("TEMPORAL_ADDRESS")
    if not kubeconfig or not address:
        return None
    problem = _kube_problem(kubeconfig) or _temporal_problem(address)
    if problem is not None:
        warnings.warn(f"not reusing the servers from the environment: {problem}", stacklevel=2)
        return None
    tester = os.environ.get("JANUS_TESTER_KUBECONFIG")
    return Endpoints(
        kubeconfig=Path(kubeconfig),
        tester_kubeconfig=Path(tester) if tester else None,
        temporal_address=address,
        temporal_namespace=os.environ.get("TEMPORAL_NAMESPACE") or "default",
    )


def _kube_problem(kubeconfig: str) -> str | None:
    try:
        with _api_client(Path(kubeconfig)) as api:
            k8s.VersionApi(api).get_code(_request_timeout=5)
    except Exception as error:
        return f"KUBECONFIG={kubeconfig}: {error}"
    return None


def _api_client(kubeconfig: Path) -> k8s.ApiClient:
    """A client of its own per kubeconfig; the global default configuration stays untouched."""
    api: k8s.ApiClient = k8s_config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return api


def _temporal_problem(address: str) -> str | None:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as error:
        return f"TEMPORAL_ADDRESS={address}: {error}"
    return None


def _exported(endpoints: Endpoints) -> Iterator[Endpoints]:
    """Yield ``endpoints`` with the environment pointing at them, restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(endpoints.kubeconfig))
        patch.setenv("TEMPORAL_ADDRESS", endpoints.temporal_address)
        patch.setenv("TEMPORAL_NAMESPACE", endpoints.temporal_namespace)
        if endpoints.tester_kubeconfig is not None:
            patch.setenv("JANUS_TESTER_KUBECONFIG", str(endpoints.tester_kubeconfig))
        yield endpoints


def _unique_name(test_name: str) -> str:
    """A DNS-1123 label from the test's name plus a random suffix."""
    stem = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].rstrip("-")
    return f"{stem or 't'}-{uuid.uuid4().hex[:8]}"


def _wait_for_default_service_account(core: k8s.CoreV1Api, namespace: str) -> None:
    """The serviceaccount controller creates it shortly after the namespace; pods need it."""
    deadline = time.monotonic() + NAMESPACE_READY_TIMEOUT
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except k8s.ApiException as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)
