"""Who may act as whom: a Transaction never does what its creator could not.

Each test plays one way of borrowing rights (issue 12), as a user with narrow
rights (``kubectl --as``, the admin kubeconfig impersonating them), and checks
what that user would see: the API server's refusal, the Transaction's status,
the targets untouched, no lease left.

1. ``spec.serviceAccountName`` naming an account the creator may not
   impersonate: refused at admission. A creator who may impersonate it
   succeeds.
2. No account named: the Transaction acts as ``janus`` of its namespace, so
   the same rule applies; the worker's own rights are never used.
3. Another spelling of a target (``/v1``; two served versions of one kind):
   refused at admission and again by the workflow, one lease and one
   duplicate check per object, and no Secret value escapes under it.
4. Snapshots: in the system namespace, so a user who may read ConfigMaps
   beside the Transaction but not the target cannot read its snapshot.
5. Fingerprints in the history are keyed: the unkeyed digest a guesser would
   compute is not there.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import uuid
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from temporalio.api.history.v1 import History

from activities.fingerprint import KEYED, fingerprint
from bridge.runs import start_transaction
from janus.contract.models import TransactionInput
from janus.contract.operations import TRANSACTION_UID_LABEL, lease_name
from tests.bridge.support import kubectl
from tests.reliability import tally
from tests.reliability.stage import Stage, config_maps
from tests.saga.harness import LEASE_NAMESPACE, Harness, change, finish, transaction

ALL = ["get", "create", "update", "patch", "delete"]


def user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def role(stage: Stage, who: str, rules: list[dict[str, Any]]) -> None:
    """A Role in the stage's namespace for the user ``who``."""
    rbac = k8s.RbacAuthorizationV1Api(stage.h.api)
    name = f"role-{who}"
    rbac.create_namespaced_role(stage.namespace, {"metadata": {"name": name}, "rules": rules})  # type: ignore[arg-type]
    rbac.create_namespaced_role_binding(
        stage.namespace,
        {  # type: ignore[arg-type]
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "User", "name": who, "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )


#: What the issue's attacker may do: Transactions, nothing else.
TRANSACTIONS_ONLY = [
    {
        "apiGroups": ["backup.janus.io"],
        "resources": ["transactions"],
        "verbs": ["create", "get", "list", "watch"],
    }
]


def create_as(who: str | None, namespace: str, manifest: dict[str, Any]) -> tuple[int, str]:
    """``kubectl create`` as ``who`` (None: the admin): (exit code, what kubectl printed)."""
    identity = [f"--as={who}"] if who else []
    done = kubectl(
        *identity, "-n", namespace, "create", "-o", "json", "-f", "-",
        stdin=yaml.safe_dump(manifest), check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


async def run_created(h: Harness, created: dict[str, Any]) -> dict[str, Any]:
    """Start the workflow of a Transaction someone created, as the bridge would."""
    txn = TransactionInput.from_resource(created)
    return await run_input(h, txn)


async def run_input(h: Harness, txn: TransactionInput) -> dict[str, Any]:
    handle = await start_transaction(h.temporal, txn, task_queue=h.task_queue)
    await finish(handle)
    return await asyncio.to_thread(h.transaction, txn.ref.name)


def report(name: str, problems: list[str]) -> None:
    tally.record("identity checks", name, not problems, "; ".join(problems))
    print(f"\n[identity checks] {name}: {problems or 'as expected'}")
    assert not problems, problems


# -- 1 and 2: accounts ------------------------------------------------------------


async def test_an_account_is_usable_only_by_who_may_impersonate_it(harness: Harness) -> None:
    """Problem 1: ``deployer`` of A may edit B; a user who may only create Transactions
    in A names it and is refused; a user who may impersonate it commits."""
    a, b = Stage(harness, "auth-a"), Stage(harness, "auth-b")
    try:
        config_maps(b.h, ["x"], {"v": "0"})
        a.service_account("deployer")
        a.grant("deployer", ["configmaps"], ALL, namespace=b.namespace)
        mallory, bob = user("mallory"), user("bob")
        role(a, mallory, TRANSACTIONS_ONLY)
        may_impersonate = {
            "apiGroups": [""],
            "resources": ["serviceaccounts"],
            "resourceNames": ["deployer"],
            "verbs": ["impersonate"],
        }
        role(a, bob, [*TRANSACTIONS_ONLY, may_impersonate])
        manifest = transaction(
            "via-deployer",
            change("ConfigMap", "x", "Patch", {"data": {"v": "1"}}, namespace=b.namespace),
            change("ConfigMap", "made", "Create", {"data": {"v": "1"}}, namespace=b.namespace),
            serviceAccountName="deployer",
        )
        problems = []
        code, said = create_as(mallory, a.namespace, manifest)
        expected = f"{mallory} may not impersonate service account {a.namespace}/deployer"
        if code == 0:
            problems.append("mallory's Transaction was admitted")
            await run_created(a.h, json.loads(said))
        elif expected not in said:
            problems.append(f"refusal lacks {expected!r}: {said}")
        if b.h.config_map("x").data != {"v": "0"} or b.h.config_map("made") is not None:
            problems.append("mallory changed namespace B")

        code, said = create_as(bob, a.namespace, manifest)
        if code != 0:
            problems.append(f"bob, who may impersonate deployer, was refused: {said}")
        else:
            txn = await run_created(a.h, json.loads(said))
            if txn["status"]["phase"] != "Committed":
                problems.append(f"bob's: {txn['status']['phase']}: {txn['status']['message']}")
            if b.h.config_map("x").data != {"v": "1"} or b.h.config_map("made") is None:
                problems.append("bob's changes not applied")
        if a.h.leases():
            problems.append("leases left")
    finally:
        a.cleanup()
        b.cleanup()
    report("account needs impersonation", problems)


async def test_without_an_account_the_worker_lends_no_rights(harness: Harness) -> None:
    """Problem 2: no serviceAccountName. The Transaction acts as ``janus`` of its
    namespace, which its creator must be allowed to impersonate; a user who may only
    create Transactions cannot make a Role giving themselves the namespace's Secrets."""
    a = Stage(harness, "auth-own")
    try:
        mallory = user("mallory")
        role(a, mallory, TRANSACTIONS_ONLY)
        reader = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "peek"},
            "subjects": [
                {"kind": "User", "name": mallory, "apiGroup": "rbac.authorization.k8s.io"}
            ],
        }
        rbac_v1 = "rbac.authorization.k8s.io/v1"
        manifest = transaction(
            "grab-secrets",
            change("Role", "peek", "Create", reader, api_version=rbac_v1),
            change("RoleBinding", "peek", "Create", binding, api_version=rbac_v1),
        )
        problems = []
        code, said = create_as(mallory, a.namespace, manifest)
        expected = f"{mallory} may not impersonate service account {a.namespace}/janus"
        if code == 0:
            problems.append("admitted")
            await run_created(a.h, json.loads(said))
        elif expected not in said or "janus when it names none" not in said:
            problems.append(f"refusal lacks {expected!r}: {said}")
        rbac = k8s.RbacAuthorizationV1Api(a.h.api)
        if [r.metadata.name for r in rbac.list_namespaced_role(a.namespace).items] != [  # type: ignore[union-attr]
            f"role-{mallory}"
        ]:
            problems.append("a Role was created")
        can = kubectl(
            f"--as={mallory}", "-n", a.namespace, "auth", "can-i", "list", "secrets", check=False
        )
        if can.stdout.strip() != "no":
            problems.append("mallory may now list Secrets")
    finally:
        a.cleanup()
    report("no account, no worker rights", problems)


# -- 3: canonical targets ------------------------------------------------------------


def hold(h: Harness, name: str, holder: str) -> None:
    now = dt.datetime.now(dt.UTC)
    k8s.CoordinationV1Api(h.api).create_namespaced_lease(
        LEASE_NAMESPACE,
        k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(name=name),
            spec=k8s.V1LeaseSpec(
                holder_identity=holder,
                lease_duration_seconds=300,
                acquire_time=now,
                renew_time=now,
            ),
        ),
    )


def hpa(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 3,
        },
    }


async def test_every_spelling_of_a_target_is_one_object(harness: Harness) -> None:
    """Problem 3 (locks): ``/v1`` is refused by the workflow when a Transaction from an
    older CRD spells it so (admission refuses it and the other malformed spellings:
    the bad-input catalog); two served versions of one kind share one lease and one
    duplicate check."""
    s = Stage(harness, "auth-spell")
    h = s.h
    problems: list[str] = []
    try:
        config_maps(h, ["a"], {"v": "0"})
        h.create_objects([hpa("scale")])
        # From a CRD without the rule (0.1.0's): the workflow refuses before any lease.
        created = h.create_transaction(
            transaction("legacy", change("ConfigMap", "a", "Patch", {"data": {"v": "1"}}))
        )
        created["spec"]["changes"][0]["target"]["apiVersion"] = "/v1"
        legacy = await run_created(h, created)
        if "target.apiVersion '/v1' is malformed" not in legacy["status"]["message"]:
            problems.append(
                f"legacy /v1: {legacy['status']['phase']} {legacy['status']['message']}"
            )
        if h.config_map("a").data != {"v": "0"}:
            problems.append("a patched under /v1")

        v1, v2 = "autoscaling/v1", "autoscaling/v2"
        both = await h.run(
            transaction(
                "twice",
                change("HorizontalPodAutoscaler", "scale", "Patch", {"spec": {"maxReplicas": 4}},
                       api_version=v1),
                change("HorizontalPodAutoscaler", "scale", "Patch", {"spec": {"maxReplicas": 5}},
                       api_version=v2),
            )
        )  # fmt: skip
        if "spec.changes[0] and spec.changes[1] both target" not in both["status"]["message"]:
            problems.append(f"two versions of one HPA: {both['status']['message']}")

        holder = f"{s.namespace}/other-txn/1"
        hold(h, lease_name(v2, "HorizontalPodAutoscaler", s.namespace, "scale"), holder)
        blocked = await h.run(
            transaction(
                "other-version",
                change("HorizontalPodAutoscaler", "scale", "Patch", {"spec": {"maxReplicas": 6}},
                       api_version=v1),
                lockTimeout="1s",
            )
        )  # fmt: skip
        if holder not in blocked["status"]["message"]:
            problems.append(
                f"autoscaling/v1 took another lease than autoscaling/v2: "
                f"{blocked['status']['phase']} {blocked['status']['message']}"
            )
        scale = k8s.AutoscalingV2Api(h.api).read_namespaced_horizontal_pod_autoscaler(
            "scale", s.namespace
        )
        if scale.spec.max_replicas != 3:
            problems.append(f"HPA changed: maxReplicas {scale.spec.max_replicas}")
        k8s.CoordinationV1Api(h.api).delete_namespaced_lease(
            lease_name(v2, "HorizontalPodAutoscaler", s.namespace, "scale"), LEASE_NAMESPACE
        )
        if h.leases():
            problems.append(f"leases left: {[x.metadata.name for x in h.leases()]}")
    finally:
        s.cleanup()
    report("one object, one lease", problems)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_a_secret_under_another_spelling_stays_in_secrets(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Problem 3 (Secrets): a Secret patched as ``/v1`` by a Transaction from an older
    CRD: its new value never reaches the workflow's input or history, its old value no
    ConfigMap; nothing in Events, status or the worker's log (this process's) either."""
    caplog.set_level(logging.DEBUG)
    s = Stage(harness, "auth-secret")
    h = s.h
    tag = uuid.uuid4().hex[:10]
    old, new = f"old-value-{tag}", f"new-value-{tag}"
    problems: list[str] = []
    try:
        h.create_objects(
            [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"v": b64(old)}}]
        )  # fmt: skip
        created = h.create_transaction(
            transaction("odd", change("Secret", "s", "Patch", {"stringData": {"v": new}}))
        )
        created["spec"]["changes"][0]["target"]["apiVersion"] = "/v1"
        txn = await run_created(h, created)
        if txn["status"]["phase"] != "RolledBack":
            problems.append(f"phase {txn['status']['phase']}: {txn['status']['message']}")
        history = await h.temporal.get_workflow_handle(txn["status"]["workflowId"]).fetch_history()
        raw = History(events=history.events).SerializeToString()
        core = k8s.CoreV1Api(h.api)
        events = [e.message for e in core.list_namespaced_event(s.namespace).items]
        places: dict[str, str | bytes] = {
            "history": raw,
            "status": json.dumps(txn["status"]),
            "events": json.dumps(events),
            "worker's log": caplog.text,
        }
        for where in (s.namespace, LEASE_NAMESPACE):
            maps = core.list_namespaced_config_map(where).items
            places[f"ConfigMaps of {where}"] = json.dumps([c.data for c in maps])
        for where, text in places.items():
            for label, value in (("old", old), ("new", new)):
                for form in (value, b64(value), b64(b64(value))):
                    needle: str | bytes = form.encode() if isinstance(text, bytes) else form
                    if needle in text:  # type: ignore[operator]
                        problems.append(f"the {label} value is in the {where}")
        if b"odd" not in raw:
            problems.append("the history search is blind")
        if "is malformed" not in caplog.text:
            problems.append("the log search is blind: the worker's refusal is not in it")
        if h.secret("s").data != {"v": b64(old)}:
            problems.append("the Secret changed")
    finally:
        s.cleanup()
    report("Secret under another spelling", problems)


# -- 4 and 5: snapshots and fingerprints ------------------------------------------------


async def test_a_snapshot_is_no_easier_to_read_than_its_target(harness: Harness) -> None:
    """Problem 4: carol may read ConfigMaps and Transactions in A, nothing in B. A
    Transaction in A patches a ConfigMap of B (its snapshot is kept until the
    Transaction is deleted): carol finds no copy of it anywhere she may read."""
    a, b = Stage(harness, "auth-snap-a"), Stage(harness, "auth-snap-b")
    tag = uuid.uuid4().hex[:10]
    problems: list[str] = []
    try:
        b.h.create_objects(
            [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hidden"},
              "data": {"v": f"hidden-{tag}"}}]
        )  # fmt: skip
        a.service_account("crosser")
        a.grant("crosser", ["configmaps"], ALL, namespace=b.namespace)
        carol = user("carol")
        role(
            a,
            carol,
            [
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
                {"apiGroups": ["backup.janus.io"], "resources": ["transactions"],
                 "verbs": ["get", "list"]},
            ],
        )  # fmt: skip
        txn = await a.h.run(
            transaction(
                "peek",
                change("ConfigMap", "hidden", "Patch", {"data": {"w": "1"}}, namespace=b.namespace),
                serviceAccountName="crosser",
            )
        )
        uid = txn["metadata"]["uid"]
        # The snapshot exists (the positive control), where only Janus's operators read.
        selector = f"{TRANSACTION_UID_LABEL}={uid}"
        stored = k8s.CoreV1Api(a.h.api).list_namespaced_config_map(
            LEASE_NAMESPACE, label_selector=selector
        )
        if not any(f"hidden-{tag}" in json.dumps(c.data) for c in stored.items):
            problems.append("no snapshot of 'hidden' in the system namespace (search blind?)")
        for where in (a.namespace, LEASE_NAMESPACE, b.namespace):
            seen = kubectl(
                f"--as={carol}", "-n", where, "get", "configmaps", "-o", "json", check=False
            )
            if f"hidden-{tag}" in seen.stdout:
                problems.append(f"carol reads a copy of 'hidden' in {where}")
            if where != a.namespace and seen.returncode == 0:
                problems.append(f"carol may list ConfigMaps in {where}")
    finally:
        a.cleanup()
        b.cleanup()
    report("snapshot readers", problems)


def history_bytes(history: Any) -> bytes:
    """The history as stored: payloads are the JSON the data converter wrote."""
    return bytes(History(events=history.events).SerializeToString())


async def test_fingerprints_in_history_are_keyed(harness: Harness) -> None:
    """Problem 5: the history holds no digest of a Secret anyone could recompute; the
    keyed one is there (the positive control)."""
    s = Stage(harness, "auth-fp")
    h = s.h
    problems: list[str] = []
    try:
        weak = "1234"
        h.create_objects(
            [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pin"},
              "data": {"pin": b64(weak)}}]
        )  # fmt: skip
        before: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(h.secret("pin"))  # type: ignore[no-untyped-call]
        txn = await h.run(
            transaction("rotate", change("Secret", "pin", "Patch", {"stringData": {"pin": "9876"}}))
        )
        if txn["status"]["phase"] != "Committed":
            problems.append(f"phase {txn['status']['phase']}: {txn['status']['message']}")
        raw = history_bytes(
            await h.temporal.get_workflow_handle(txn["status"]["workflowId"]).fetch_history()
        )
        unkeyed = fingerprint(before)  # 0.1.0's: a guesser recomputes it for "1234"
        if unkeyed.encode() in raw:
            problems.append("the history holds the Secret's unkeyed fingerprint")
        if KEYED.encode() not in raw:
            problems.append("no keyed fingerprint in the history (search blind?)")
    finally:
        s.cleanup()
    report("keyed fingerprints", problems)
