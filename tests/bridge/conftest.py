"""Real processes for the bridge's end-to-end tests: ``janus worker`` and ``janus bridge``.

Each test starts its own worker and bridge as subprocesses of the installed
``janus`` command, on the test's own task queue, with the bridge watching only
the test's namespace, so tests never pick up one another's Transactions. The
processes authenticate as the service accounts of ``deploy/`` (a token from the
TokenRequest API in a kubeconfig), so every test also proves that the RBAC
shipped there is enough. The user's side is driven with ``kubectl`` only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from janus.dev import Endpoints
from tests.bridge.support import DEPLOY, SYSTEM_NAMESPACE, Janus, kubectl

#: The parts of deploy/ a test cluster needs; the Deployments would only make
#: pods that never run (the dev control plane has no nodes).
DEPLOY_FILES = (
    "namespace.yaml",
    "crd.yaml",
    "bridge-rbac.yaml",
    "worker-rbac.yaml",
    "admission-policy.yaml",
)


@pytest.fixture(scope="session")
def deployed(endpoints: Endpoints) -> None:
    """The CRD, janus-system and the RBAC of deploy/, applied as a user would."""
    for name in DEPLOY_FILES:
        kubectl("apply", "-f", str(DEPLOY / name))
    kubectl(
        "wait", "--for=condition=Established", "crd/transactions.backup.janus.io", "--timeout=60s"
    )


@pytest.fixture(scope="session")
def identities(
    deployed: None, endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Kubeconfigs of the janus-bridge and janus-worker service accounts."""
    directory = tmp_path_factory.mktemp("identities")
    admin = yaml.safe_load(Path(endpoints.kubeconfig).read_text())
    return {
        who: _service_account_kubeconfig(admin, f"janus-{who}", directory)
        for who in ("bridge", "worker")
    }


def _service_account_kubeconfig(admin: dict[str, Any], account: str, directory: Path) -> Path:
    token = kubectl(
        "create", "token", account, "-n", SYSTEM_NAMESPACE, "--duration=2h"
    ).stdout.strip()
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": cluster["name"], "user": account}}],
        "current-context": account,
    }
    path = directory / f"{account}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture
def janus(
    endpoints: Endpoints,
    identities: dict[str, Path],
    task_queue: str,
    namespace: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Janus]:
    """Start janus processes; on teardown stop them (and show their logs if the test failed)."""
    runner = Janus(endpoints, identities, task_queue, namespace, tmp_path)
    yield runner
    runner.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for process in runner.started:
            print(f"--- janus {process.role} ({process.log}) ---\n{process.tail()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
