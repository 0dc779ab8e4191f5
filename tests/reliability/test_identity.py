"""Identity: a transaction does only what its service account may do.

With ``spec.serviceAccountName`` the worker reads and writes every target as
that service account of the Transaction's namespace (impersonation), so the API
server's RBAC decides. Before the first lease or write, the worker asks the API
server (SelfSubjectAccessReview, as that account) about every verb each change
needs, its undo's included; a refusal names the verb, the resource and the
account. A target in another namespace is reachable only when RBAC there
allows it. And the worker itself runs with the minimal RBAC of
``deploy/worker-rbac.yaml``: without the broad target rights, a transaction
naming a service account still commits.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client import ApiClient

from janus.contract.settings import WorkerSettings
from janus.runtime.worker import build_worker
from tests.reliability import tally
from tests.reliability.stage import Stage, config_maps
from tests.saga.harness import LEASE_NAMESPACE, Harness, change, example, transaction

ALL = ["get", "create", "update", "patch", "delete"]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def secret(stage: Stage, name: str, value: str) -> None:
    stage.h.create_objects(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name},
                "data": {"v": base64.b64encode(value.encode()).decode()},
            }
        ]
    )


def refused(status: dict[str, Any], *fragments: str) -> list[str]:
    """Problems unless the transaction rolled back before any write, saying all fragments."""
    problems = []
    if status["phase"] != "RolledBack":
        problems.append(f"phase {status['phase']}: {status['message']}")
    if status["summary"]["committed"] != 0:
        problems.append(f"{status['summary']['committed']} changes committed")
    problems += [
        f"message lacks {f!r}: {status['message']}"
        for f in fragments
        if f not in (status["message"])
    ]
    return problems


async def impersonated_commit(stage: Stage, _other: Stage) -> list[str]:
    """As the account of deploy/examples/transaction-service-account.yaml."""
    config_maps(stage.h, ["a"], {"v": "0"})
    stage.h.create_objects(example("transaction-service-account.yaml"))
    txn = await stage.h.run(
        transaction(
            "as-changer",
            change("ConfigMap", "a", "Patch", {"data": {"v": "1"}}),
            change("ConfigMap", "b", "Create", {"data": {"v": "1"}}),
            serviceAccountName="janus-changer",
        )
    )
    problems = []
    if txn["status"]["phase"] != "Committed":
        problems.append(f"phase {txn['status']['phase']}: {txn['status']['message']}")
    if stage.h.config_map("a").data != {"v": "1"} or stage.h.config_map("b") is None:
        problems.append("changes not applied")
    return problems


async def kind_without_rights(stage: Stage, _other: Stage) -> list[str]:
    config_maps(stage.h, ["a"], {"v": "0"})
    secret(stage, "s", "before")
    stage.service_account("limited")
    stage.grant("limited", ["configmaps"], ALL)
    rv = stage.h.config_map("a").metadata.resource_version
    txn = await stage.h.run(
        transaction(
            "secret-denied",
            change("ConfigMap", "a", "Patch", {"data": {"v": "1"}}),
            change("Secret", "s", "Patch", {"data": {"v": "YWZ0ZXI="}}),
            serviceAccountName="limited",
        )
    )
    problems = refused(
        txn["status"],
        f"service account {stage.namespace}/limited may not get secrets 's' "
        f"in namespace {stage.namespace}",
    )
    if stage.h.config_map("a").metadata.resource_version != rv:
        problems.append("a was written")
    return problems


async def undo_not_allowed(stage: Stage, _other: Stage) -> list[str]:
    """May patch, may not update: the patch could never be undone, so it is not made."""
    config_maps(stage.h, ["a"], {"v": "0"})
    stage.service_account("patcher")
    stage.grant("patcher", ["configmaps"], ["get", "patch"])
    rv = stage.h.config_map("a").metadata.resource_version
    txn = await stage.h.run(
        transaction(
            "no-undo",
            change("ConfigMap", "a", "Patch", {"data": {"v": "1"}}),
            serviceAccountName="patcher",
        )
    )
    problems = refused(
        txn["status"],
        f"service account {stage.namespace}/patcher may not update configmaps 'a'",
        "undo the Patch",
    )
    if stage.h.config_map("a").metadata.resource_version != rv:
        problems.append("a was written")
    return problems


async def cross_namespace(stage: Stage, other: Stage) -> list[str]:
    """Refused until RBAC in the other namespace allows it; never without an account."""
    config_maps(other.h, ["x"], {"v": "0"})
    stage.service_account("crosser")
    stage.grant("crosser", ["configmaps"], ALL)
    target = change("ConfigMap", "x", "Patch", {"data": {"v": "1"}}, namespace=other.namespace)

    denied = await stage.h.run(transaction("cross-denied", target, serviceAccountName="crosser"))
    problems = refused(
        denied["status"],
        f"service account {stage.namespace}/crosser may not get configmaps 'x' "
        f"in namespace {other.namespace}",
    )
    without = await stage.h.run(transaction("cross-as-worker", target))
    problems += refused(
        without["status"],
        f"service account {stage.namespace}/janus may not get configmaps 'x' "
        f"in namespace {other.namespace}",
    )
    if other.h.config_map("x").data != {"v": "0"}:
        problems.append(f"x changed while refused: {other.h.config_map('x').data}")

    stage.grant("crosser", ["configmaps"], ALL, namespace=other.namespace)
    allowed = await stage.h.run(transaction("cross-allowed", target, serviceAccountName="crosser"))
    if allowed["status"]["phase"] != "Committed":
        problems.append(f"allowed: {allowed['status']['phase']}: {allowed['status']['message']}")
    if other.h.config_map("x").data != {"v": "1"}:
        problems.append(f"x not patched once allowed: {other.h.config_map('x').data}")
    return problems


async def missing_service_account(stage: Stage, _other: Stage) -> list[str]:
    config_maps(stage.h, ["a"], {"v": "0"})
    txn = await stage.h.run(
        transaction(
            "as-ghost",
            change("ConfigMap", "a", "Patch", {"data": {"v": "1"}}),
            serviceAccountName="ghost",
        )
    )
    problems = refused(
        txn["status"], f"service account ghost not found in namespace {stage.namespace}"
    )
    if stage.h.config_map("a").data != {"v": "0"}:
        problems.append("a changed")
    return problems


SCENARIOS: dict[str, Callable[[Stage, Stage], Awaitable[list[str]]]] = {
    "impersonated commit": impersonated_commit,
    "kind without rights": kind_without_rights,
    "undo not allowed": undo_not_allowed,
    "cross-namespace": cross_namespace,
    "missing service account": missing_service_account,
}


async def test_a_transaction_acts_only_as_its_service_account(harness: Harness) -> None:
    stages = {name: (Stage(harness, "id"), Stage(harness, "other")) for name in SCENARIOS}
    try:
        results = await asyncio.gather(
            *(scenario(*stages[name]) for name, scenario in SCENARIOS.items())
        )
        leases = [lease.metadata.name for s, _ in stages.values() for lease in s.h.leases()]
    finally:
        for pair in stages.values():
            for stage in pair:
                stage.cleanup()
    problems = dict(zip(SCENARIOS, results, strict=True))
    if leases:
        problems["leases"] = [f"left: {leases}"]
    for name, found in problems.items():
        tally.record("identity checks", name, not found, "; ".join(found))
    exact = sum(not p for p in problems.values())
    print(f"\n[identity checks] {len(problems)} scenarios, {exact} exactly as expected")
    assert not any(problems.values()), problems


# -- the worker's own rights -------------------------------------------------------


Created = list[tuple[str, str | None, str]]


def minimal_worker_rbac(api: ApiClient, suffix: str) -> tuple[str, Created]:
    """deploy/worker-rbac.yaml under names of this test's own: (the account, what was made)."""
    account = f"janus-worker-{suffix}"
    docs = [d for d in yaml.safe_load_all((DEPLOY / "worker-rbac.yaml").read_text()) if d]
    rbac, core = k8s.RbacAuthorizationV1Api(api), k8s.CoreV1Api(api)
    create = {
        "ServiceAccount": lambda ns, doc: core.create_namespaced_service_account(ns, doc),
        "ClusterRole": lambda _ns, doc: rbac.create_cluster_role(doc),
        "ClusterRoleBinding": lambda _ns, doc: rbac.create_cluster_role_binding(doc),
        "Role": lambda ns, doc: rbac.create_namespaced_role(ns, doc),
        "RoleBinding": lambda ns, doc: rbac.create_namespaced_role_binding(ns, doc),
    }
    created: Created = []
    for doc in docs:
        doc["metadata"]["name"] = f"{doc['metadata']['name']}-{suffix}"
        for subject in doc.get("subjects", []):
            subject["name"] = account
        if "roleRef" in doc:
            doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{suffix}"
        namespace = doc["metadata"].get("namespace")
        create[doc["kind"]](namespace, doc)  # type: ignore[no-untyped-call]
        created.append((doc["kind"], namespace, doc["metadata"]["name"]))
    return account, created


def drop(api: ApiClient, created: Created) -> None:
    rbac, core = k8s.RbacAuthorizationV1Api(api), k8s.CoreV1Api(api)
    delete = {
        "ServiceAccount": lambda ns, name: core.delete_namespaced_service_account(name, ns),
        "ClusterRole": lambda _ns, name: rbac.delete_cluster_role(name),
        "ClusterRoleBinding": lambda _ns, name: rbac.delete_cluster_role_binding(name),
        "Role": lambda ns, name: rbac.delete_namespaced_role(name, ns),
        "RoleBinding": lambda ns, name: rbac.delete_namespaced_role_binding(name, ns),
    }
    for kind, namespace, name in created:
        try:
            delete[kind](namespace, name)  # type: ignore[no-untyped-call]
        except k8s.ApiException as err:
            if err.status != 404:
                raise


def client_as(api: ApiClient, namespace: str, account: str) -> ApiClient:
    """An API client authenticated with a fresh token of a service account."""
    token = k8s.CoreV1Api(api).create_namespaced_service_account_token(
        account,
        namespace,
        k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[])),
    )
    admin = api.configuration
    configuration = k8s.Configuration()
    configuration.host = admin.host
    configuration.ssl_ca_cert = admin.ssl_ca_cert
    configuration.verify_ssl = admin.verify_ssl
    configuration.api_key = {"authorization": token.status.token}  # type: ignore[dict-item,union-attr]
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return ApiClient(configuration)


async def test_the_worker_needs_only_its_minimal_rbac(harness: Harness) -> None:
    """A worker with deploy/worker-rbac.yaml alone (no rights on any target) commits
    as a transaction's account (Secret content read back from the Transaction
    included), and a transaction naming none as the namespace's ``janus``."""
    suffix = uuid.uuid4().hex[:6]
    account, created = await asyncio.to_thread(minimal_worker_rbac, harness.api, suffix)
    stage = Stage(harness, "minimal")
    try:
        config_maps(stage.h, ["a"], {"v": "0"})
        secret(stage, "s", "before-value")
        stage.service_account("changer")
        stage.grant("changer", ["configmaps", "secrets"], ALL)
        worker_api = client_as(harness.api, LEASE_NAMESPACE, account)
        worker = build_worker(
            harness.temporal,
            task_queue=f"{harness.task_queue}-minimal",
            api_client=worker_api,
            settings=WorkerSettings(lease_namespace=LEASE_NAMESPACE),
        )
        minimal = Harness(harness.api, harness.temporal, worker.task_queue, stage.namespace)
        async with worker:
            as_account = await minimal.run(
                transaction(
                    "as-changer",
                    change("ConfigMap", "a", "Patch", {"data": {"v": "1"}}),
                    change("Secret", "s", "Patch", {"stringData": {"v": "after-value"}}),
                    serviceAccountName="changer",
                )
            )
            as_default = await minimal.run(
                transaction("as-janus", change("ConfigMap", "a", "Patch", {"data": {"v": "2"}}))
            )
        problems = []
        for txn in (as_account, as_default):
            if txn["status"]["phase"] != "Committed":
                problems.append(f"{txn['metadata']['name']}: {txn['status']['message']}")
        if stage.h.config_map("a").data != {"v": "2"}:
            problems.append(f"a is {stage.h.config_map('a').data}")
        if minimal.leases():
            problems.append("leases left")
    finally:
        stage.cleanup()
        await asyncio.to_thread(drop, harness.api, created)
    tally.record("identity checks", "worker with minimal RBAC", not problems, "; ".join(problems))
    assert not problems, problems
