"""Combined faults: a crash, a lost lease, a foreign writer, a cancel, a retry, together.

Each test replays one way the all-or-nothing promise broke under review (issue
11, defects 1-5), on the real servers, and asserts what a user checks with
kubectl: every target's end state, the phase, the conditions and items, and that
no lease of the transaction and no snapshot (once the Transaction is deleted)
is left.

1. A crash after change 3 of five, then change 0's lease taken by another
   holder: the retried batch stops at change 0, and the undos of changes 1-3
   (applied by the crashed attempt, results never recorded) must still run.
2. A crash after change 1; ``kubectl patch`` adds a key while the worker is down
   (kubectl keeps our marker); a later change fails: the retry must not adopt
   the edited object as ours, and the rollback must leave the edit and say so.
3. Patch, Patch, Delete; the Delete's target deleted with kubectl while the
   transaction waits; a cancel: the object someone else deleted stays deleted.
4. A Failed transaction whose lease another transaction then holds: ``janus
   retry`` must not write the target while the other holds it, and must finish
   the rollback once it is free.
5. A rollback keeps what others own: a finalizer added mid-transaction, the
   status of a custom resource without a status subresource, and the replicas an
   autoscaler set through the scale subresource (which is no conflict).
   So does an Update's own write: a finalizer someone adds between the snapshot
   and the write stays (chaos seed 11, trial 17).
   An Update of an object someone else is deleting (a finalizer holds it) is
   refused, before the first write or at it, rather than complete the deletion
   by dropping the finalizer (chaos seed 11, trial 62).
6. Patch, Delete of an object another writer's finalizer holds (so it is only
   marked for deletion), a failing change: the rollback must not call the held
   object "already as before"; it ends Failed naming it, and ``janus retry``
   re-creates it once it is gone.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from activities.seams import Fault, Seams
from bridge.snapshots import delete_snapshots
from janus.contract.operations import CHANGE_MARKER, TRANSACTION_UID_LABEL
from tests.bridge.support import kubectl
from tests.reliability.bench import Bench
from tests.reliability.leases import OTHER_HOLDER, free_lease, lease_holder, take_lease
from tests.reliability.scenario import web_deployment
from tests.reliability.stage import config_maps
from tests.reliability.worker_process import WorkerProcess
from tests.saga.harness import LEASE_NAMESPACE, Harness, change, finish, transaction

JANUS = Path(sys.executable).parent / "janus"
CRASH_TIMEOUT = 120.0
FINISH_TIMEOUT = 180.0


def patch(name: str, **data: str) -> dict[str, Any]:
    return change("ConfigMap", name, "Patch", {"data": data})


def marker(obj: Any) -> str | None:
    annotations = (obj.metadata.annotations or {}) if obj is not None else {}
    return annotations.get(CHANGE_MARKER)


async def nothing_left(harness: Harness, name: str) -> None:
    """No lease of the transaction; once it is deleted as the bridge deletes it (its
    labelled snapshots in the system namespace first: no owner reference crosses
    namespaces), nothing of it stays: no ConfigMap or Secret labelled with its uid
    or named after it (a snapshot shard, a deletion note), there or beside it."""
    assert harness.leases() == [], [lease.metadata.name for lease in harness.leases()]
    uid = harness.transaction(name)["metadata"]["uid"]
    await delete_snapshots(harness.core.api_client, LEASE_NAMESPACE, uid)
    harness.custom.delete_namespaced_custom_object(
        "backup.janus.io", "v1alpha1", harness.namespace, "transactions", name
    )
    left: list[str] = []
    for _ in range(300):
        left = _kept_for(harness, uid)
        if not left:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"left after deleting the Transaction: {left}")


def _kept_for(harness: Harness, uid: str) -> list[str]:
    found = []
    for where in (LEASE_NAMESPACE, harness.namespace):
        shelves = {
            "ConfigMap": [c.metadata for c in harness.core.list_namespaced_config_map(where).items],
            "Secret": [s.metadata for s in harness.core.list_namespaced_secret(where).items],
        }
        for kind, metas in shelves.items():
            found += [f"{where}/{kind}/{m.name}" for m in metas if m and _of(m, uid)]
    return found


def _of(meta: k8s.V1ObjectMeta, uid: str) -> bool:
    return uid in (meta.name or "") or (meta.labels or {}).get(TRANSACTION_UID_LABEL) == uid


async def wait_committed(harness: Harness, name: str, count: int) -> None:
    """Until the status shows the first ``count`` changes committed."""
    for _ in range(600):
        items = harness.transaction(name).get("status", {}).get("items") or []
        if len(items) >= count and all(i.get("committed") for i in items[:count]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name}: changes 0..{count - 1} never showed committed")


def item(status: dict[str, Any], index: int) -> dict[str, Any]:
    found: dict[str, Any] = status["items"][index]
    return found


async def crashed(worker: WorkerProcess) -> None:
    """The worker SIGKILLed itself at its crash point."""
    assert await asyncio.to_thread(worker.wait_exit, CRASH_TIMEOUT) == -9, worker.tail()


def janus_retry(namespace: str, name: str) -> str:
    done = subprocess.run(
        [str(JANUS), "retry", f"{namespace}/{name}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# -- 1 ----------------------------------------------------------------------------


async def test_undos_of_a_crashed_attempt_survive_a_retry_that_gets_less_far(
    bench: Bench,
) -> None:
    harness, namespace = bench.harness, bench.harness.namespace
    names = [f"c{i}" for i in range(5)]
    config_maps(harness, names, {"v": "1"})
    first = await bench.ready_worker("crashing", JANUS_CRASH_AT="apply:3:after")
    handle = await harness.start(
        transaction("five", *(patch(n, v="2") for n in names), lockTimeout="3s")
    )
    await crashed(first)
    assert [harness.config_map(n).data["v"] for n in names] == ["2", "2", "2", "2", "1"]
    take_lease(harness.api, namespace, "c0")  # while no worker runs

    await bench.finish_on_a_new_worker(handle, FINISH_TIMEOUT)

    status = harness.transaction("five")["status"]
    print(f"\n[combined] defect 1: {status['phase']}: {status['message']}")
    # Changes 1-3 are undone although the retry never recorded them.
    for n in names[1:]:
        cm = harness.config_map(n)
        assert cm.data == {"v": "1"} and marker(cm) is None, (n, cm.data, marker(cm))
    for index in (1, 2, 3):
        assert item(status, index)["rolledBack"], item(status, index)
    # Change 0 is not written while another transaction holds its lease; that is
    # what the status says, so the phase is Failed, not RolledBack.
    assert harness.config_map("c0").data == {"v": "2"}
    assert status["phase"] == "Failed", status
    assert "undo of change 0" in status["message"] and OTHER_HOLDER in status["message"]
    assert OTHER_HOLDER in item(status, 0)["error"]
    assert not item(status, 0)["rolledBack"]
    assert lease_holder(harness.api, namespace, "c0") == OTHER_HOLDER
    free_lease(harness.api, namespace, "c0")
    await nothing_left(harness, "five")


# -- 2 ----------------------------------------------------------------------------


async def test_a_retried_apply_does_not_adopt_a_foreign_edit_that_kept_our_marker(
    bench: Bench,
) -> None:
    harness, namespace = bench.harness, bench.harness.namespace
    config_maps(harness, ["a", "b", "c"], {"v": "1"})
    first = await bench.ready_worker(
        "crashing", JANUS_CRASH_AT="apply:1:after", JANUS_FAULTS="apply:2:before"
    )
    handle = await harness.start(
        transaction("adopt", patch("a", v="2"), patch("b", v="2"), patch("c", v="2"))
    )
    await crashed(first)
    kubectl("-n", namespace, "patch", "configmap", "b", "-p", '{"data":{"theirs":"kept"}}')
    edited = harness.config_map("b")
    assert marker(edited) is not None  # kubectl kept our marker
    edited_rv = edited.metadata.resource_version

    await bench.finish_on_a_new_worker(handle, FINISH_TIMEOUT, JANUS_FAULTS="apply:2:before")

    status = harness.transaction("adopt")["status"]
    print(f"\n[combined] defect 2: {status['phase']}: {status['message']}")
    b = harness.config_map("b")
    assert b.data == {"v": "2", "theirs": "kept"}, b.data  # the foreign edit survives
    assert b.metadata.resource_version == edited_rv  # and was not written over
    assert harness.config_map("a").data == {"v": "1"}
    assert harness.config_map("c").data == {"v": "1"}
    assert status["phase"] == "Failed", status
    assert "kubectl-patch" in item(status, 1)["error"], item(status, 1)
    skipped = {c["type"]: c for c in status["conditions"]}["UndoSkipped"]
    assert skipped["reason"] == "ModifiedByOthers" and "change 1" in skipped["message"]
    await nothing_left(harness, "adopt")


# -- 3 ----------------------------------------------------------------------------


@pytest.mark.worker(delays=(Fault.parse("apply:1:before:8s"),))
async def test_a_delete_that_never_ran_does_not_recreate_what_someone_else_deleted(
    harness: Harness,
) -> None:
    config_maps(harness, ["a", "b", "fx"], {"v": "1"})
    handle = await harness.start(
        transaction(
            "gone",
            patch("a", v="2"),
            patch("b", v="2"),
            change("ConfigMap", "fx", "Delete"),
        )
    )
    await wait_committed(harness, "gone", 1)  # change 1 now waits 8 s before its write
    kubectl("-n", harness.namespace, "delete", "configmap", "fx")
    await handle.cancel()
    await asyncio.wait_for(finish(handle), timeout=FINISH_TIMEOUT)

    status = harness.transaction("gone")["status"]
    print(f"\n[combined] defect 3: {status['phase']}: {status['message']}")
    assert harness.config_map("fx") is None  # someone else deleted it; it stays deleted
    assert harness.config_map("a").data == {"v": "1"}
    assert harness.config_map("b").data == {"v": "1"}
    assert status["phase"] == "RolledBack", status
    fx = item(status, 2)
    assert not fx["committed"] and not fx["rolledBack"], fx
    assert "deleted by someone else" in fx["error"], fx
    await nothing_left(harness, "gone")


async def test_a_retried_delete_leaves_what_someone_else_created_again_meanwhile(
    bench: Bench,
) -> None:
    """A crash right after our Delete's request, and while the worker is down someone
    else creates the object again: the retried attempt finds an object of that name
    with another uid than the one its note says it deleted. Ours is applied; theirs
    stays, untouched, and the Transaction commits."""
    harness, namespace = bench.harness, bench.harness.namespace
    config_maps(harness, ["a", "fx"], {"v": "1"})
    first = await bench.ready_worker("crashing", JANUS_CRASH_AT="apply:0:after")
    handle = await harness.start(
        transaction("again", change("ConfigMap", "fx", "Delete"), patch("a", v="2"))
    )
    await crashed(first)
    assert harness.config_map("fx") is None
    kubectl("-n", namespace, "create", "configmap", "fx", "--from-literal=theirs=new")
    theirs = harness.config_map("fx")

    await bench.finish_on_a_new_worker(handle, FINISH_TIMEOUT)

    status = harness.transaction("again")["status"]
    print(f"\n[combined] delete, crash, re-created by another: {status['phase']}")
    fx = harness.config_map("fx")
    assert fx is not None and fx.data == {"theirs": "new"}, "their object was deleted"
    assert fx.metadata.uid == theirs.metadata.uid
    assert fx.metadata.resource_version == theirs.metadata.resource_version
    assert harness.config_map("a").data == {"v": "2"}
    assert status["phase"] == "Committed", status
    assert item(status, 0)["committed"], item(status, 0)
    await nothing_left(harness, "again")


async def test_a_retried_create_does_not_bring_back_what_someone_else_deleted(
    bench: Bench,
) -> None:
    """Seed 20261203, trial 2 of the fault explorer: a crash right after our Create's
    request, and while the worker is down someone else deletes the new object. The
    retried attempt found it absent and created it again, over their delete. The
    target's history (a watch from the snapshot's resourceVersion) shows our object
    was there: a conflict, and the rollback leaves their delete standing."""
    harness, namespace = bench.harness, bench.harness.namespace
    config_maps(harness, ["a"], {"v": "1"})
    first = await bench.ready_worker("crashing", JANUS_CRASH_AT="apply:1:after")
    handle = await harness.start(
        transaction(
            "new", patch("a", v="2"), change("ConfigMap", "fresh", "Create", {"data": {"v": "n"}})
        )
    )
    await crashed(first)
    assert marker(harness.config_map("fresh")) is not None  # our Create landed
    kubectl("-n", namespace, "delete", "configmap", "fresh")

    await bench.finish_on_a_new_worker(handle, FINISH_TIMEOUT)

    status = harness.transaction("new")["status"]
    print(f"\n[combined] create, crash, deleted by another: {status['phase']}: {status['message']}")
    assert harness.config_map("fresh") is None, "created again over their delete"
    assert harness.config_map("a").data == {"v": "1"}
    assert status["phase"] == "RolledBack", status
    fresh = item(status, 1)
    assert not fresh["committed"] and "deleted by someone else since" in fresh["error"], fresh
    await nothing_left(harness, "new")


# -- 4 ----------------------------------------------------------------------------


async def test_janus_retry_never_writes_a_target_another_transaction_holds(
    bench: Bench,
) -> None:
    harness, namespace = bench.harness, bench.harness.namespace
    config_maps(harness, ["first", "second"], {"v": "1"})
    manifest = transaction(
        "fenced", patch("first", v="2"), patch("second", v="2"), lockTimeout="3s"
    )
    # The first run: undo 0 fails for good, so the transaction ends Failed.
    faulty = Seams(faults=(Fault.parse("undo:0:before"), Fault.parse("apply:1:before")))
    handle = await harness.start(manifest)
    await bench.run_worker_until(faulty, finish(handle))
    assert harness.transaction("fenced")["status"]["phase"] == "Failed"
    assert harness.leases() == []
    healthy = Seams()

    take_lease(harness.api, namespace, "first")
    before = harness.config_map("first")
    janus_retry(namespace, "fenced")
    retried = harness.temporal.get_workflow_handle(handle.id)
    await bench.run_worker_until(healthy, asyncio.wait_for(finish(retried), 120))
    status = harness.transaction("fenced")["status"]
    print(f"\n[combined] defect 4 (lease held): {status['phase']}: {status['message']}")
    after = harness.config_map("first")
    assert after.metadata.resource_version == before.metadata.resource_version
    assert after.metadata.managed_fields == before.metadata.managed_fields
    assert after.data == {"v": "2"}
    assert status["phase"] == "Failed", status
    assert OTHER_HOLDER in status["message"] and "not writing" in status["message"]
    assert lease_holder(harness.api, namespace, "first") == OTHER_HOLDER
    assert harness.leases() == []  # nothing of ours: the retry released what it took

    free_lease(harness.api, namespace, "first")  # the other transaction is done
    janus_retry(namespace, "fenced")
    retried = harness.temporal.get_workflow_handle(handle.id)
    await bench.run_worker_until(healthy, asyncio.wait_for(finish(retried), 120))
    status = harness.transaction("fenced")["status"]
    print(f"[combined] defect 4 (lease free): {status['phase']}: {status['message']}")
    assert status["phase"] == "RolledBack", status
    assert harness.config_map("first").data == {"v": "1"}
    assert harness.config_map("second").data == {"v": "1"}
    await nothing_left(harness, "fenced")


# -- 5 ----------------------------------------------------------------------------

GADGET_GROUP = "combined.janus.dev"
GADGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"gadgets.{GADGET_GROUP}"},
    "spec": {
        "group": GADGET_GROUP,
        "scope": "Namespaced",
        "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                # No status subresource: its controller writes status with the object.
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def gadget_kind(kube_api: ApiClient) -> Any:
    ext = k8s.ApiextensionsV1Api(kube_api)
    try:
        ext.create_custom_resource_definition(GADGET_CRD)  # type: ignore[arg-type]
    except ApiException as err:
        if err.status != 409:
            raise
    dyn = DynamicClient(kube_api)  # type: ignore[no-untyped-call]
    for _ in range(200):
        try:
            return dyn.resources.get(api_version=f"{GADGET_GROUP}/v1", kind="Gadget"), dyn
        except Exception:
            dyn.resources.invalidate_cache()
            time.sleep(0.1)
    raise AssertionError("the Gadget kind never became served")


KEEP = "example.com/keep"
"""Another writer's finalizer."""


def set_finalizers(
    namespace: str, kind: str, name: str, finalizers: list[str] | None, *, check: bool = True
) -> None:
    """Another writer sets the object's finalizers (None: clears them), with kubectl."""
    body = json.dumps({"metadata": {"finalizers": finalizers}}, separators=(",", ":"))
    kubectl("-n", namespace, "patch", kind, name, "--type=merge", "-p", body, check=check)


@pytest.mark.worker(
    delays=(Fault.parse("apply:3:before:10s"),), faults=(Fault.parse("apply:3:before"),)
)
async def test_a_rollback_keeps_what_others_own_and_controllers_are_no_conflict(
    harness: Harness, kube_api: ApiClient
) -> None:
    ns = harness.namespace
    gadgets, dyn = gadget_kind(kube_api)
    config_maps(harness, ["guarded", "last"], {"v": "1"})
    harness.create_objects([web_deployment("example/web:v1")])
    dyn.create(
        gadgets,
        namespace=ns,
        body={
            "apiVersion": f"{GADGET_GROUP}/v1",
            "kind": "Gadget",
            "metadata": {"name": "gear"},
            "spec": {"size": 1},
        },
    )
    name = "keep"
    container = {"name": "web", "image": "example/web:v2"}
    handle = await harness.start(
        transaction(
            name,
            patch("guarded", v="2"),
            change(
                "Gadget", "gear", "Patch", {"spec": {"size": 3}}, api_version=f"{GADGET_GROUP}/v1"
            ),
            change(
                "Deployment",
                "web",
                "Patch",
                {"spec": {"template": {"spec": {"containers": [container]}}}},
                api_version="apps/v1",
            ),
            patch("last", v="2"),
        )
    )
    await wait_committed(harness, name, 3)  # change 3 waits 10 s, then fails
    set_finalizers(ns, "configmap", "guarded", [KEEP])
    kubectl(
        "-n", ns, "patch", "gadget", "gear", "--type=merge", "--field-manager=gadget-controller",
        "-p", '{"status":{"ready":true}}',
    )  # fmt: skip
    # What the HPA controller does: write the replicas through the scale subresource.
    k8s.AppsV1Api(kube_api).patch_namespaced_deployment_scale(
        "web", ns, {"spec": {"replicas": 3}}, field_manager="kube-controller-manager"
    )
    await asyncio.wait_for(finish(handle), timeout=FINISH_TIMEOUT)

    status = harness.transaction(name)["status"]
    print(f"\n[combined] defect 5: {status['phase']}: {status['message']}")
    try:
        guarded = harness.config_map("guarded")
        assert guarded.data == {"v": "1"} and marker(guarded) is None, guarded.data
        assert guarded.metadata.finalizers == ["example.com/keep"]
        gear = dyn.get(gadgets, name="gear", namespace=ns).to_dict()
        assert gear["spec"] == {"size": 1}, gear
        assert gear.get("status") == {"ready": True}, gear
        web = harness.deployment("web")
        assert web.spec.template.spec.containers[0].image == "example/web:v1"
        assert web.spec.replicas == 3  # the autoscaler's, kept
        assert status["phase"] == "RolledBack", status
        assert all(item(status, i)["rolledBack"] for i in range(3)), status["items"]
        assert "UndoSkipped" not in {c["type"] for c in status["conditions"]}
        await nothing_left(harness, name)
    finally:
        set_finalizers(ns, "configmap", "guarded", None)


@pytest.mark.worker(delays=(Fault.parse("apply:0:before:8s"),))
async def test_an_update_keeps_a_finalizer_added_between_its_snapshot_and_its_write(
    harness: Harness, kube_api: ApiClient
) -> None:
    ns, name = harness.namespace, "carry"
    gadgets, dyn = gadget_kind(kube_api)
    body: dict[str, Any] = {
        "apiVersion": f"{GADGET_GROUP}/v1",
        "kind": "Gadget",
        "metadata": {"name": "spring"},
    }
    dyn.create(gadgets, namespace=ns, body={**body, "spec": {"size": 1}})
    update = change(
        "Gadget", "spring", "Update", {"spec": {"size": 2}}, api_version=body["apiVersion"]
    )
    handle = await harness.start(transaction(name, update))
    await harness.wait_phase(name, {"Committing"})  # snapshot taken; the write waits 8 s
    set_finalizers(ns, "gadget", "spring", [KEEP])
    await asyncio.wait_for(finish(handle), timeout=FINISH_TIMEOUT)

    txn = harness.transaction(name)
    status = txn["status"]
    print(f"\n[combined] finalizer before an Update: {status['phase']}: {status['message']}")
    try:
        spring = dyn.get(gadgets, name="spring", namespace=ns).to_dict()
        assert spring["spec"] == {"size": 2}, spring
        assert spring["metadata"]["annotations"][CHANGE_MARKER] == f"{txn['metadata']['uid']}/0"
        assert spring["metadata"].get("finalizers") == ["example.com/keep"], spring
        assert status["phase"] == "Committed", status
        assert item(status, 0)["committed"], status["items"]
        await nothing_left(harness, name)
    finally:
        set_finalizers(ns, "gadget", "spring", None)


def held_and_deleted(namespace: str, name: str) -> None:
    """Someone else deletes the Gadget, which their finalizer holds: it stays, being deleted."""
    set_finalizers(namespace, "gadget", name, [KEEP])
    kubectl("-n", namespace, "delete", "gadget", name, "--wait=false")


@pytest.mark.worker(delays=(Fault.parse("apply:0:before:8s"),))
async def test_an_update_never_completes_a_deletion_someone_else_began(
    harness: Harness, kube_api: ApiClient
) -> None:
    ns = harness.namespace
    gadgets, dyn = gadget_kind(kube_api)
    api_version = f"{GADGET_GROUP}/v1"
    for name in ("going", "later"):
        body = {"apiVersion": api_version, "kind": "Gadget", "metadata": {"name": name}}
        dyn.create(gadgets, namespace=ns, body={**body, "spec": {"size": 1}})
    held_and_deleted(ns, "going")  # before the transaction: refused at prepare

    def update(txn: str, name: str) -> dict[str, Any]:
        return transaction(
            txn, change("Gadget", name, "Update", {"spec": {"size": 2}}, api_version)
        )

    refused = await harness.start(update("before", "going"))
    await asyncio.wait_for(finish(refused), timeout=FINISH_TIMEOUT)
    later = await harness.start(update("during", "later"))
    await harness.wait_phase("during", {"Committing"})  # snapshot taken; the write waits 8 s
    held_and_deleted(ns, "later")  # after the snapshot: a conflict at the write
    await asyncio.wait_for(finish(later), timeout=FINISH_TIMEOUT)

    try:
        for txn, name, says in (
            ("before", "going", "Update needs an object that is not being deleted"),
            ("during", "later", "was deleted by someone else after the snapshot"),
        ):
            status = harness.transaction(txn)["status"]
            print(f"\n[combined] Update of a Gadget being deleted ({txn}): {status['message']}")
            try:
                gadget = dyn.get(gadgets, name=name, namespace=ns).to_dict()
            except NotFoundError:
                raise AssertionError(f"{name} is gone: our Update dropped the finalizer") from None
            assert gadget["metadata"].get("deletionTimestamp"), gadget  # still held
            assert gadget["metadata"].get("finalizers") == ["example.com/keep"], gadget
            assert gadget["spec"] == {"size": 1} and marker_of_dict(gadget) is None, gadget
            assert status["phase"] == "RolledBack", status
            assert says in status["message"] + str(status["items"]), status
            await nothing_left(harness, txn)
    finally:
        for name in ("going", "later"):
            set_finalizers(ns, "gadget", name, None)


def marker_of_dict(obj: dict[str, Any]) -> str | None:
    annotations: dict[str, str] = obj["metadata"].get("annotations") or {}
    return annotations.get(CHANGE_MARKER)


# -- 6 ----------------------------------------------------------------------------


def release(namespace: str, name: str) -> None:
    """The finalizer's owner lets the ConfigMap go."""
    set_finalizers(namespace, "configmap", name, None, check=False)


async def test_the_undo_of_a_delete_a_foreign_finalizer_holds_is_never_rolled_back(
    bench: Bench,
) -> None:
    """Our Delete only marks an object another writer's finalizer holds. The rollback
    cannot un-delete it, so it must not call it 'already as before': while it stays
    held the Transaction ends Failed naming it; once it is gone, ``janus retry``
    re-creates it from the snapshot and the Transaction is RolledBack."""
    harness, namespace = bench.harness, bench.harness.namespace
    config_maps(harness, ["p", "p2"], {"v": "1"})
    guarded: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"v": "1"}}
    guarded["metadata"] = {"name": "guarded", "finalizers": ["example.com/guard"]}
    harness.create_objects([guarded])
    manifest = transaction(
        "held",
        patch("p", v="2"),
        change("ConfigMap", "guarded", "Delete"),
        patch("p2", v="2"),  # fails: the injected fault
    )
    faulty = Seams(faults=(Fault.parse("apply:2:before"),))
    try:
        handle = await harness.start(manifest)
        await bench.run_worker_until(faulty, finish(handle))
        status = harness.transaction("held")["status"]
        print(f"\n[combined] Delete held by a finalizer: {status['phase']}: {status['message']}")
        still = harness.config_map("guarded")
        assert still is not None and still.metadata.deletion_timestamp is not None, still
        assert still.metadata.finalizers == ["example.com/guard"], still
        assert harness.config_map("p").data == {"v": "1"}  # the other undos ran
        assert status["phase"] == "Failed", status
        for says in ("guarded", "held by finalizers: example.com/guard", "janus retry"):
            assert says in status["message"], status
        assert item(status, 1)["committed"] and not item(status, 1)["rolledBack"], status
        assert harness.leases() == []

        release(namespace, "guarded")  # the other writer is done: the object goes
        janus_retry(namespace, "held")
        retried = harness.temporal.get_workflow_handle(handle.id)
        healthy = Seams()
        await bench.run_worker_until(healthy, asyncio.wait_for(finish(retried), 120))
        status = harness.transaction("held")["status"]
        print(f"[combined] after janus retry: {status['phase']}: {status['message']}")
        back = harness.config_map("guarded")
        assert back is not None and back.metadata.uid != still.metadata.uid, back
        assert back.data == {"v": "1"} and back.metadata.deletion_timestamp is None, back
        assert back.metadata.finalizers == ["example.com/guard"], back  # as the snapshot had
        assert harness.config_map("p").data == {"v": "1"}
        assert status["phase"] == "RolledBack", status
        assert item(status, 1)["rolledBack"], status["items"]
        await nothing_left(harness, "held")
    finally:
        release(namespace, "guarded")
