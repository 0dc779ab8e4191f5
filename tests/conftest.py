"""Fixtures that connect tests to one real control plane per session: its own.

The session is hermetic: it starts a control plane of its own in
``$JANUS_TEST_STATE_DIR`` (else ``$JANUS_STATE_DIR``, else
``~/.local/state/janus/test``), on a clean slate (an earlier session's objects
and histories are wiped first, see ``_test_owned``), stops it at the end, and
runs every Janus process it needs itself. Nothing the user runs (``make demo`` and its detached
``janus run``, their own worker, a cluster in ``KUBECONFIG``) can pick up a
test's Transaction or workflow, and the tests never touch those. Before any
test, the Janus and Temporal settings inherited from the shell (``JANUS_*``
other than the directories, ``TEMPORAL_*``, ``KUBECONFIG``) are removed, so
the processes the tests start read only what the tests give them.

If a control plane already runs in that directory (another test session, or a
``janus dev up`` with the same ``JANUS_STATE_DIR``), the session refuses to
start rather than share or stop it. ``JANUS_TEST_REUSE=1`` opts in to running
on existing servers instead: those ``KUBECONFIG`` and ``TEMPORAL_ADDRESS`` name
(the unprivileged user's kubeconfig then comes from
``JANUS_TESTER_KUBECONFIG``; tests needing it are skipped without it); then
anything else on those servers polling the tests' queues or watching all
namespaces can change the outcome.

The session exports ``KUBECONFIG`` and ``TEMPORAL_ADDRESS`` so subprocesses
(kubectl, the temporal CLI) talk to the same servers as the Python clients.
"""

import contextlib
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from temporalio.client import Client

from janus.clients.temporal import connect_to
from janus.dev import ControlPlane, Endpoints
from janus.dev.paths import CACHE_ENV, STATE_ENV, TEST_STATE_ENV, testing_state_dir
from tests.accounts import open_namespace

REUSE_ENV = "JANUS_TEST_REUSE"
KEPT_SETTINGS = frozenset({CACHE_ENV, STATE_ENV, TEST_STATE_ENV, REUSE_ENV})
"""Inherited JANUS_* variables the session keeps: where things live, and the opt-in."""
SESSION_MARKER = ".janus-test-session"
"""Left in a state directory a test session used: the next session may wipe it."""

NAMESPACE_READY_TIMEOUT = 30.0


_REUSED: list[Endpoints] = []
"""The servers named by the environment, read before it is cleaned (JANUS_TEST_REUSE=1)."""


def pytest_configure(config: pytest.Config) -> None:
    """Read the opt-in servers, then drop every inherited Janus and Temporal setting."""
    if os.environ.get(REUSE_ENV) == "1":
        _REUSED.append(_endpoints_from_env())
    for name in list(os.environ):
        janus_setting = name.startswith("JANUS_") and name not in KEPT_SETTINGS
        if janus_setting or name.startswith("TEMPORAL_") or name == "KUBECONFIG":
            del os.environ[name]


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    """The control plane of this session: started here (or, opted in, the environment's)."""
    if _REUSED:
        yield from _exported(_REUSED[0])
        return
    plane = ControlPlane(testing_state_dir(), echo=print)
    if plane.endpoints() is not None:
        pytest.exit(_ALREADY_RUNNING.format(root=plane.layout.root), returncode=2)
    if _test_owned(plane.layout.root):
        plane.down(purge=True)
    started = plane.up()
    (plane.layout.root / SESSION_MARKER).touch()
    try:
        yield from _exported(started)
    finally:
        plane.down()


def _test_owned(root: Path) -> bool:
    """Whether ``root`` holds only test sessions' data, which a new session wipes first:
    objects left by an earlier session (RBAC an older checkout applied, say) must not
    change this one's outcome. A directory named only by JANUS_STATE_DIR and never
    used by a test session may be someone's own, and is kept."""
    named_for_tests = bool(os.environ.get(TEST_STATE_ENV)) or not os.environ.get(STATE_ENV)
    return named_for_tests or (root / SESSION_MARKER).exists()


_ALREADY_RUNNING = (
    "a control plane already runs in {root} (another test session, or `janus dev up` "
    "with this JANUS_STATE_DIR); the tests start their own and will not share or stop "
    "it: stop it with `JANUS_STATE_DIR={root} janus dev down`, set JANUS_TEST_STATE_DIR "
    "to another directory, or run on existing servers with JANUS_TEST_REUSE=1 "
    "(KUBECONFIG and TEMPORAL_ADDRESS)"
)


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
    yield await connect_to(endpoints.temporal_address, endpoints.temporal_namespace)


@pytest.fixture
def task_queue(request: pytest.FixtureRequest) -> str:
    """A task queue no other test polls."""
    return _unique_name(request.node.name)


def _endpoints_from_env() -> Endpoints:
    """Endpoints from KUBECONFIG and TEMPORAL_ADDRESS; the session ends if they do not answer."""
    kubeconfig, address = os.environ.get("KUBECONFIG"), os.environ.get("TEMPORAL_ADDRESS")
    if not kubeconfig or not address:
        pytest.exit(f"{REUSE_ENV}=1 needs KUBECONFIG and TEMPORAL_ADDRESS", returncode=2)
    problem = _kube_problem(kubeconfig) or _temporal_problem(address)
    if problem is not None:
        pytest.exit(f"{REUSE_ENV}=1, but the servers do not answer: {problem}", returncode=2)
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
