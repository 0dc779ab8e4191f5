"""Two Janus installations in one cluster and one Temporal: each handles its own.

Installation *alpha* takes the Transactions labelled for it and the unlabelled
ones; *beta* (``--pinned-only``) only those labelled for it. Each is a bridge
and a worker on a task queue of its own, the bridges as the ``janus-bridge``
service account with the election Leases of both installations granted (as
the README tells an admin adding one). A Transaction pinned to an installation
nobody runs gets a Warning Event from exactly one of them and no workflow.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bridge.installations import INSTALLATION_LABEL, Directory, Leader, finalizer
from janus.contract.settings import BridgeSettings
from janus.contract.versioning import generation_queue
from tests.bridge.support import SYSTEM_NAMESPACE, Janus, config_map_transaction, kubectl

WAIT = "--timeout=90s"
EVENT_TIMEOUT = 60.0


@pytest.fixture
def names(task_queue: str) -> dict[str, str]:
    """The two installations' names, unique to this test."""
    suffix = task_queue.rsplit("-", 1)[-1]
    return {"alpha": f"alpha-{suffix}", "beta": f"beta-{suffix}"}


@pytest.fixture
def election_rights(names: dict[str, str]) -> Any:
    """What an admin adds for a second installation: its election Lease for the bridge."""
    role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": f"election-{names['alpha']}", "namespace": SYSTEM_NAMESPACE},
        "rules": [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": [f"{name}-bridge" for name in names.values()],
                "verbs": ["get", "update"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": role["metadata"]["name"], "namespace": SYSTEM_NAMESPACE},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": "janus-bridge", "namespace": SYSTEM_NAMESPACE}
        ],
    }
    manifests = yaml.safe_dump_all([role, binding])
    kubectl("apply", "-f", "-", stdin=manifests)
    yield
    kubectl("delete", "-f", "-", "--ignore-not-found", stdin=manifests, check=False)


def pinned(name: str, installation: str | None) -> dict[str, Any]:
    manifest = config_map_transaction(name, f"{name}-cm")
    if installation is not None:
        manifest["metadata"]["labels"] = {INSTALLATION_LABEL: installation}
    return manifest


async def test_two_installations_each_handle_exactly_their_own(
    election_rights: None,
    janus: Janus,
    namespace: str,
    names: dict[str, str],
    temporal_client: Client,
) -> None:
    alpha, beta = names["alpha"], names["beta"]
    bridges = {}
    for installation, extra in ((alpha, ()), (beta, ("--pinned-only",))):
        env = {"JANUS_TASK_QUEUE": installation, "JANUS_INSTALLATION": installation}
        janus.worker(env=env)
        bridges[installation] = janus.bridge(*extra, env=env)
    for bridge in bridges.values():
        bridge.wait_for("janus_bridge_leader", 1)

    manifests = [
        pinned("for-alpha", alpha),
        pinned("for-beta", beta),
        pinned("unlabelled", None),
        pinned("for-nobody", "gamma"),
    ]
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
    for name in ("for-alpha", "for-beta", "unlabelled"):
        kubectl(
            "-n", namespace, "wait", "--for=jsonpath={.status.phase}=Committed", f"txn/{name}", WAIT
        )
    event = wait_for_event(namespace, "for-nobody", "NoInstallation")

    expected = {"for-alpha": alpha, "for-beta": beta, "unlabelled": alpha}
    for name, installation in expected.items():
        txn = get_txn(namespace, name)
        workflow = await temporal_client.get_workflow_handle(workflow_id(txn)).describe()
        assert workflow.task_queue == generation_queue(installation), name
        assert txn["metadata"]["finalizers"] == [finalizer(installation)], name
        assert kubectl("-n", namespace, "get", "cm", f"{name}-cm", check=False).returncode == 0

    nobody = get_txn(namespace, "for-nobody")
    assert "status" not in nobody or not nobody["status"].get("phase")
    assert not nobody["metadata"].get("finalizers")
    with pytest.raises(RPCError) as missing:
        await temporal_client.get_workflow_handle(workflow_id(nobody)).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert "pinned to installation 'gamma'" in event["message"]
    assert event["type"] == "Warning" and event.get("count", 1) == 1
    assert len(events_of(namespace, "for-nobody")) == 1
    assert kubectl("-n", namespace, "get", "cm", "for-nobody-cm", check=False).returncode != 0

    assert f"another Janus installation, {beta!r}, leads" in bridges[alpha].tail(200)
    assert f"another Janus installation, {alpha!r}, leads" in bridges[beta].tail(200)
    kubectl("-n", namespace, "delete", "txn", "for-nobody", "--timeout=30s")


def get_txn(namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        kubectl("-n", namespace, "get", "txn", name, "-o", "json").stdout
    )
    return found


def workflow_id(txn: dict[str, Any]) -> str:
    meta = txn["metadata"]
    return f"txn/{meta['namespace']}/{meta['name']}/{meta['uid']}"


def events_of(namespace: str, name: str) -> list[dict[str, Any]]:
    selector = f"involvedObject.name={name},reason=NoInstallation"
    found = kubectl("-n", namespace, "get", "events", "--field-selector", selector, "-o", "json")
    items: list[dict[str, Any]] = json.loads(found.stdout)["items"]
    return items


def wait_for_event(namespace: str, name: str, reason: str) -> dict[str, Any]:
    deadline = time.monotonic() + EVENT_TIMEOUT
    while not (found := events_of(namespace, name)):
        assert time.monotonic() < deadline, f"no {reason} Event on {name}"
        time.sleep(0.5)
    return found[0]


def leader(installation: str, since_minutes: int, *, takes_unpinned: bool = True) -> Leader:
    since = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=since_minutes)
    return Leader(installation, f"{installation}-bridge", "pod", takes_unpinned, since)


def test_unlabelled_transactions_go_to_the_installation_leading_longest() -> None:
    mine = Directory(ApiClient(), BridgeSettings(installation="new"))
    mine.own = leader("new", 10)
    mine.leaders = {"old": leader("old", 0)}

    assert mine.owner({}) == "old" and not mine.handles({})
    assert mine.handles({INSTALLATION_LABEL: "new"})
    assert mine.owner({INSTALLATION_LABEL: "gone"}) is None

    assert mine.handles({}, ["other.io/x", finalizer("new")]), "taken: it stays"
    assert mine.owner({}, [finalizer("janus")]) == "janus"

    mine.leaders = {"old": leader("old", 0, takes_unpinned=False)}
    assert mine.handles({})

    pinned_only = Directory(ApiClient(), BridgeSettings(installation="new", pinned_only=True))
    pinned_only.leaders = {"old": leader("old", 0, takes_unpinned=False)}
    assert pinned_only.owner({}) is None
    assert pinned_only.reports()  # "new" sorts before "old": it posts the Event
    last = Directory(ApiClient(), BridgeSettings(installation="zed"))
    last.leaders = {"old": leader("old", 0)}
    assert not last.reports()
