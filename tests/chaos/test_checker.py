"""The checker fails on planted violations (and passes the clean trace they are planted in).

No server: each test builds a trial and its audit writes by hand, the way the
API server would have recorded them, plants one violation, and asserts the
checker names that invariant and nothing else.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.chaos.audit import Write, parse_line
from tests.chaos.checker import Verdict, check, contains
from tests.chaos.record import ChangeRecord, TargetRef, TrialRecord, TxnRecord

NS = "trial"
CM = TargetRef(api_version="v1", kind="ConfigMap", name="cm", namespace=NS)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cm(value: str, rv: int, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": NS, "resourceVersion": str(rv), **meta},
        "data": {"k": value},
    }


def beside(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with another writer's key added beside ours."""
    return {**obj, "data": {**obj["data"], "other": "x"}}


class Trace:
    """Audit writes in API-server order, one second apart."""

    def __init__(self) -> None:
        self.writes: list[Write] = []

    def add(
        self,
        resource: str,
        name: str,
        verb: str,
        *,
        user: str = "janus-admin",
        group: str = "",
        response: dict[str, Any] | None = None,
        request: dict[str, Any] | None = None,
        subresource: str = "",
        namespace: str = NS,
    ) -> Trace:
        seq = len(self.writes)
        at = T0 + timedelta(seconds=seq)
        self.writes.append(
            Write(
                seq=seq,
                received=at,
                completed=at,
                user=user,
                verb=verb,
                group=group,
                resource=resource,
                namespace=namespace,
                name=name,
                subresource=subresource,
                code=200,
                request=request,
                response=response,
            )
        )
        return self

    def lease(
        self,
        txn: TxnRecord,
        *,
        verb: str = "create",
        seconds: int = 30,
        holder: str | None = None,
        user: str = "janus-admin",
    ) -> Trace:
        at = T0 + timedelta(seconds=len(self.writes))
        spec = {
            "holderIdentity": holder or txn.holder,
            "leaseDurationSeconds": seconds,
            "renewTime": at.isoformat(),
        }
        body = None if verb == "delete" else {"metadata": {"name": CM.lease}, "spec": spec}
        return self.add(
            "leases",
            CM.lease,
            verb,
            user=user,
            group="coordination.k8s.io",
            response=body,
            namespace="janus-system",
        )

    def snapshot(self, txn: TxnRecord, obj: dict[str, Any]) -> Trace:
        labels = {"backup.janus.io/transaction-uid": txn.uid}
        body = {
            "metadata": {"name": f"janus-snap-{txn.uid}-0", "labels": labels},
            "data": {"0.json": json.dumps(obj)},
        }
        return self.add(
            "configmaps", f"janus-snap-{txn.uid}-0", "create", request=body, response=body
        )

    def write(self, obj: dict[str, Any] | None, *, user: str, verb: str = "patch") -> Trace:
        return self.add("configmaps", "cm", verb, user=user, response=obj)

    def phase(self, txn: TxnRecord, phase: str, *, namespace: str = NS) -> Trace:
        body = {"metadata": {"name": txn.name, "uid": txn.uid}, "status": {"phase": phase}}
        return self.add(
            "transactions",
            txn.name,
            "patch",
            group="backup.janus.io",
            response=body,
            subresource="status",
            namespace=namespace,
        )

    def end(self, txn: TxnRecord, phase: str) -> Trace:
        """The transaction's terminal status, then its lease released."""
        return self.phase(txn, phase).lease(txn, verb="delete")


def one_change(
    name: str, phase: str, type: str, content: dict[str, Any] | None = None, **status: Any
) -> TxnRecord:
    return TxnRecord(
        name=name,
        namespace=NS,
        uid=f"uid-{name}",
        service_account=f"sa-{name}",
        phase=phase,
        changes=[ChangeRecord(index=0, target=CM, type=type, content=content)],
        status=status,
    )


def txn(name: str, phase: str, value: str = "2", **status: Any) -> TxnRecord:
    """A Patch of the ConfigMap's key to ``value``."""
    return one_change(name, phase, "Patch", {"data": {"k": value}}, **status)


def trial(*txns: TxnRecord, absent: bool = False, **extra: Any) -> TrialRecord:
    return TrialRecord(
        seed=1,
        trial=0,
        namespace=NS,
        targets=[CM],
        initial={CM.key: None if absent else cm("1", 10)},
        txns=list(txns),
        **extra,
    )


def snapshotted(a: TxnRecord, *, seconds: int = 30) -> Trace:
    """a takes the target's lease (for ``seconds``) and snapshots it as it was (k=1)."""
    return Trace().lease(a, seconds=seconds).snapshot(a, cm("1", 10))


def patched(a: TxnRecord, *, seconds: int = 30) -> Trace:
    """Then a writes its patch (k=2)."""
    return snapshotted(a, seconds=seconds).write(cm("2", 12), user=a.user)


def committed_trace(a: TxnRecord) -> Trace:
    return patched(a).end(a, "Committed")


def rolled_back_trace(a: TxnRecord) -> Trace:
    return patched(a).write(cm("1", 13), user=a.user).end(a, "RolledBack")


def only(verdict: Verdict, invariant: str) -> None:
    assert verdict.violations, "the planted violation was not caught"
    assert {v.invariant for v in verdict.violations} == {invariant}, verdict.violations


# -- clean traces pass -------------------------------------------------------------


def test_a_clean_commit_and_a_clean_rollback_pass() -> None:
    a = txn("a", "Committed")
    assert check(trial(a), committed_trace(a).writes).violations == []
    b = txn("b", "RolledBack")
    verdict = check(trial(b), rolled_back_trace(b).writes)
    assert verdict.violations == []
    assert verdict.checked["rolled-back"] == 1 and verdict.checked["fencing"] == 1


# -- committed -----------------------------------------------------------------------


def test_committed_fails_when_a_change_is_not_in_place_at_the_commit_point() -> None:
    a = txn("a", "Committed", value="3")  # asked for 3, the API server recorded 2
    only(check(trial(a), committed_trace(a).writes), "committed")


def test_committed_fails_without_a_recorded_commit_point() -> None:
    a = txn("a", "Committed")
    writes = patched(a).writes
    only(check(trial(a), writes), "committed")


# -- rolled back ---------------------------------------------------------------------


def test_rolled_back_fails_when_a_change_stays_applied() -> None:
    a = txn("a", "RolledBack")
    writes = patched(a).end(a, "RolledBack").writes
    only(check(trial(a), writes), "rolled-back")


# -- failed --------------------------------------------------------------------------


def test_failed_fails_when_nobody_else_changed_the_unrestored_target() -> None:
    a = txn("a", "Failed", items=[{"index": 0, "rolledBack": False, "error": "refused"}])
    writes = patched(a).end(a, "Failed").writes
    only(check(trial(a), writes), "failed")


def test_failed_fails_when_the_status_does_not_name_the_target() -> None:
    a = txn("a", "Failed", items=[{"index": 0, "rolledBack": True}])
    writes = patched(a).write(beside(cm("2", 14)), user="janus-tester").end(a, "Failed").writes
    only(check(trial(a), writes), "failed")


def test_failed_passes_when_named_and_changed_by_another_writer() -> None:
    a = txn("a", "Failed", items=[{"index": 0, "rolledBack": False, "error": "modified"}])
    writes = patched(a).write(beside(cm("2", 14)), user="janus-tester").end(a, "Failed").writes
    assert check(trial(a), writes).violations == []


# -- fencing -------------------------------------------------------------------------


def test_fencing_fails_on_a_write_under_another_transactions_lease() -> None:
    a = txn("a", "Committed")
    writes = (
        snapshotted(a)
        .lease(a, verb="update", holder="trial/b/uid-b")
        .write(cm("2", 12), user=a.user)
        .phase(a, "Committed")
        .writes
    )
    only(check(trial(a), writes), "fencing")


def stolen_by_hand(a: TxnRecord, *, term: int, then: int = 0) -> list[Write]:
    """Someone hands a's live lease to a thief by hand (chaos ``lease-steal``) just after
    the batch's fence read it; the batch's write lands after (seed 11, trial 99); then
    a writes the target ``then`` times more."""
    trace = (
        snapshotted(a, seconds=term)
        .lease(a, verb="update", holder="chaos-thief/trial", seconds=5, user="janus-tester")
        .write(cm("2", 12), user=a.user)
    )
    for rv in range(13, 13 + then):
        trace.write(cm("2", rv), user=a.user)
    return trace.phase(a, "Committed").writes


def test_a_write_in_the_term_a_lease_was_taken_by_hand_from_is_no_fencing_violation() -> None:
    a = txn("a", "Committed")
    assert check(trial(a), stolen_by_hand(a, term=30)).violations == []


def test_fencing_fails_on_a_write_after_the_term_a_lease_was_taken_by_hand_from() -> None:
    a = txn("a", "Committed")  # a's term (3 s) ended before its write (3 s later)
    only(check(trial(a), stolen_by_hand(a, term=3)), "fencing")


def test_fencing_fails_on_a_second_write_after_a_lease_was_taken_by_hand() -> None:
    a = txn("a", "Committed")  # the next check would have seen the thief
    only(check(trial(a), stolen_by_hand(a, term=30, then=1)), "fencing")


def test_fencing_fails_on_a_write_past_the_write_window_after_a_lease_was_taken() -> None:
    a = txn("a", "Committed")  # no attempt that read the lease before still writes then
    trace = snapshotted(a, seconds=120).lease(
        a, verb="update", holder="chaos-thief/trial", seconds=5, user="janus-tester"
    )
    for _ in range(30):  # the clock moves a second a write: writes to something else
        trace.add("configmaps", "unrelated", "patch", user="janus-tester")
    trace.write(cm("2", 12), user=a.user).phase(a, "Committed")
    only(check(trial(a), trace.writes), "fencing")


def test_fencing_fails_on_a_write_after_the_lease_expired() -> None:
    a = txn("a", "Committed")
    writes = patched(a, seconds=1).end(a, "Committed").writes
    only(check(trial(a), writes), "fencing")


def test_fencing_fails_on_a_write_over_an_unseen_foreign_write() -> None:
    a = txn("a", "RolledBack")  # the undo restores the snapshot over someone's edit
    writes = (
        patched(a)
        .write(cm("7", 13), user="janus-tester")
        .write(cm("1", 14), user=a.user)
        .end(a, "RolledBack")
        .writes
    )
    only(check(trial(a), writes), "fencing")


def test_fencing_fails_on_a_recreate_of_what_someone_else_deleted() -> None:
    a = one_change("a", "RolledBack", "Delete")
    writes = (
        snapshotted(a)
        .write(None, user="janus-tester", verb="delete")
        .write(cm("1", 15), user=a.user, verb="create")
        .end(a, "RolledBack")
        .writes
    )
    only(check(trial(a), writes), "fencing")


def held_delete(phase: str, **status: Any) -> tuple[TrialRecord, list[Write]]:
    """A Delete of a ConfigMap whose finalizer was there before the snapshot: our delete
    only marks it, which then looks as before in all but its deletionTimestamp, and
    goes once the finalizer is released."""
    a = one_change("a", phase, "Delete", **status)
    guarded = cm("1", 10, finalizers=["example.com/guard"])
    going = cm("1", 11, finalizers=["example.com/guard"], deletionTimestamp=T0.isoformat())
    writes = (
        Trace()
        .lease(a)
        .snapshot(a, guarded)
        .write(going, user=a.user, verb="delete")
        .end(a, phase)
        .writes
    )
    return trial(a), writes


def test_rolled_back_fails_when_our_delete_left_the_object_held_by_a_finalizer() -> None:
    only(check(*held_delete("RolledBack")), "rolled-back")


def test_a_rollback_over_another_writers_deletion_of_a_held_object_passes() -> None:
    """Someone else deletes the object their finalizer holds after our Patch; our restore
    lands on it, being deleted: their deletion, not ours left in place."""
    a = txn("a", "RolledBack")
    going = {"finalizers": ["example.com/guard"], "deletionTimestamp": T0.isoformat()}
    writes = (
        Trace()
        .lease(a)
        .snapshot(a, cm("1", 10, finalizers=["example.com/guard"]))
        .write(cm("2", 12, finalizers=["example.com/guard"]), user=a.user)
        .write(cm("2", 13, **going), user="janus-tester", verb="delete")
        .write(cm("1", 14, **going), user=a.user, verb="update")
        .end(a, "RolledBack")
        .writes
    )
    assert check(trial(a), writes).violations == []


def test_failed_passes_when_it_names_the_object_a_finalizer_holds() -> None:
    item = {"index": 0, "rolledBack": False, "error": "undo … held by finalizers: …"}
    assert check(*held_delete("Failed", items=[item])).violations == []


def test_failed_fails_when_it_does_not_name_the_object_a_finalizer_holds() -> None:
    only(check(*held_delete("Failed", items=[{"index": 0, "rolledBack": True}])), "failed")


def test_fencing_fails_on_a_write_after_the_terminal_status() -> None:
    a = txn("a", "RolledBack")
    writes = (
        patched(a)
        .write(cm("1", 13), user=a.user)
        .phase(a, "RolledBack")
        .write(cm("1", 14), user=a.user)
        .lease(a, verb="delete")
        .writes
    )
    only(check(trial(a), writes), "fencing")


# -- leftovers -----------------------------------------------------------------------


@pytest.mark.parametrize("left", ["leases_left", "snapshots_left", "finalizers_left", "stuck"])
def test_leftovers_fail_on_a_lease_snapshot_finalizer_or_a_stuck_transaction(left: str) -> None:
    a = txn("a", "Committed")
    only(check(trial(a, **{left: ["a"]}), committed_trace(a).writes), "leftovers")  # type: ignore[arg-type]


# -- serial order ----------------------------------------------------------------------


def test_serial_fails_when_a_commit_is_based_on_a_state_before_the_previous_commit() -> None:
    a, b = txn("a", "Committed"), txn("b", "Committed", value="3")
    writes = (
        snapshotted(a)
        .snapshot(b, cm("1", 10))
        .write(cm("2", 12), user=a.user)
        .phase(a, "Committed")
        .lease(a, verb="update", holder=b.holder)
        .write(cm("3", 13), user=b.user)
        .end(b, "Committed")
        .writes
    )
    only(check(trial(a, b), writes), "serial")


def test_serial_passes_when_each_saw_the_previous_commit() -> None:
    a, b = txn("a", "Committed"), txn("b", "Committed", value="3")
    writes = (
        patched(a)
        .phase(a, "Committed")
        .lease(a, verb="update", holder=b.holder)
        .snapshot(b, cm("2", 12))
        .write(cm("3", 13), user=b.user)
        .end(b, "Committed")
        .writes
    )
    assert check(trial(a, b), writes).violations == []


# -- pieces ----------------------------------------------------------------------------


def test_contains_reads_patches_as_the_api_server_merges_them() -> None:
    containers = [{"name": "web", "image": "v1"}, {"name": "side", "image": "p"}]
    assert contains(
        {"spec": {"containers": [{"name": "web", "image": "v1"}]}},
        {"spec": {"containers": containers}},
    )
    assert not contains({"data": {"k": None}}, {"data": {"k": "1"}})
    assert contains({"data": {"k": None}}, {"data": {}})


def test_an_audit_line_becomes_a_write_under_the_impersonated_user() -> None:
    event = {
        "stage": "ResponseComplete",
        "verb": "patch",
        "user": {"username": "janus-admin"},
        "impersonatedUser": {"username": "system:serviceaccount:trial:sa-a"},
        "objectRef": {"resource": "configmaps", "namespace": NS, "name": "cm", "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2026-01-01T00:00:00.000001Z",
        "stageTimestamp": "2026-01-01T00:00:00.000002Z",
        "responseObject": cm("2", 12),
    }
    write = parse_line(0, json.dumps(event))
    assert write is not None and write.user == "system:serviceaccount:trial:sa-a"
    assert write.key == CM.key and write.effect() == (True, cm("2", 12))
    assert parse_line(1, json.dumps({**event, "verb": "get"})) is None
    assert parse_line(2, '{"cut short') is None
    dry_run = {**event, "requestURI": "/api/v1/namespaces/trial/configmaps/cm?dryRun=All"}
    assert parse_line(3, json.dumps(dry_run)) is None


def test_a_snapshot_retaken_before_the_first_write_is_the_base() -> None:
    a = txn("a", "Committed")  # a crash after the snapshot; the retry snapshots again
    writes = (
        snapshotted(a)
        .write(cm("7", 11), user="janus-tester")
        .snapshot(a, cm("7", 11))
        .write(cm("2", 12), user=a.user)
        .end(a, "Committed")
        .writes
    )
    assert check(trial(a), writes).violations == []


def test_a_patch_that_keeps_another_writers_change_is_not_a_violation() -> None:
    a = txn("a", "Committed")  # someone adds a finalizer; our patch of data keeps it
    held = {"finalizers": ["x/hold"]}
    writes = (
        snapshotted(a)
        .write(cm("1", 11, **held), user="janus-tester")
        .write(cm("2", 12, **held), user=a.user)
        .end(a, "Committed")
        .writes
    )
    assert check(trial(a), writes).violations == []


def test_fencing_fails_on_a_restore_that_drops_another_writers_finalizer() -> None:
    a = txn("a", "Failed", items=[{"index": 0, "rolledBack": False, "error": "modified"}])
    held = {"finalizers": ["x/hold"]}
    writes = (
        patched(a)
        .write(cm("2", 13, **held), user="janus-tester")
        .write(cm("1", 14), user=a.user)
        .end(a, "RolledBack")
        .writes
    )
    a.phase = "RolledBack"
    only(check(trial(a), writes), "fencing")


def test_a_transaction_deleted_before_it_started_is_no_leftover_but_one_that_wrote_is() -> None:
    a = txn("a", "Pending")
    a.deleted = True
    assert check(trial(a), Trace().phase(a, "Pending").writes).violations == []
    writes = Trace().phase(a, "Pending").lease(a).write(cm("2", 12), user=a.user).writes
    assert "leftovers" in {v.invariant for v in check(trial(a), writes).violations}


def test_a_change_someone_else_deleted_since_is_not_left_behind() -> None:
    a = txn("a", "RolledBack")  # our patch applied, then the object deleted by another
    writes = patched(a).write(None, user="janus-tester", verb="delete").end(a, "RolledBack").writes
    assert check(trial(a), writes).violations == []


def test_a_change_someone_else_edited_beside_is_still_left_behind() -> None:
    a = txn("a", "RolledBack")  # another key added beside ours: ours is still there
    writes = patched(a).write(beside(cm("2", 13)), user="janus-tester").end(a, "RolledBack").writes
    only(check(trial(a), writes), "rolled-back")


# -- the commit point: where the workflow decided, before it released its leases -----


def deleted_by_the_next(a: TxnRecord, b: TxnRecord, *, released: bool) -> list[Write]:
    """a patches; b takes the lease (a released it, or it lapsed and b took it over)
    and deletes the target; both report Committed, a last."""
    trace = patched(a)
    if released:
        trace.lease(a, verb="delete").lease(b)
    else:
        trace.lease(a, verb="update", holder=b.holder)
    return (
        trace.snapshot(b, cm("2", 12))
        .write(None, user=b.user, verb="delete")
        .lease(b, verb="delete")
        .phase(b, "Committed")
        .phase(a, "Committed")
        .writes
    )


def test_a_change_another_transaction_deleted_after_our_release_was_committed() -> None:
    # seed 7 trial 4: a crash after the release; before the status said Committed,
    # another transaction took the lease and deleted the target
    a, b = txn("a", "Committed"), one_change("b", "Committed", "Delete")
    assert check(trial(a, b), deleted_by_the_next(a, b, released=True)).violations == []


def test_committed_fails_when_another_transaction_took_the_lease_before_the_commit() -> None:
    # our lease lapsed and was taken over before we released it: no decision to
    # commit while we held it, and by the status write our change is gone
    a, b = txn("a", "Committed"), one_change("b", "Committed", "Delete")
    only(check(trial(a, b), deleted_by_the_next(a, b, released=False)), "committed")


# -- a Create, then another writer's delete and re-create ----------------------------


CREATED = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "2"}}


def created_then_rewritten(a: TxnRecord, *, recreated: bool) -> list[Write]:
    """Our Create; another writer deletes it and makes its own (another uid), or
    edits ours in place; the rollback finds nothing of ours and writes nothing."""
    marker = {"annotations": {"backup.janus.io/change": f"{a.uid}/0"}}
    trace = Trace().lease(a).write(cm("2", 12, uid="ours", **marker), user=a.user, verb="create")
    if recreated:
        trace.write(None, user="janus-tester", verb="delete")
        trace.write(cm("9", 14, uid="theirs"), user="janus-tester", verb="create")
    else:
        trace.write(cm("9", 14, uid="ours", **marker), user="janus-tester")
    return trace.phase(a, "RolledBack").lease(a, verb="delete").writes


def test_an_object_someone_else_re_created_after_our_create_is_not_left_behind() -> None:
    # seed 7 trial 69: the new object's paths (it exists, no labels, no finalizers)
    # matched what our Create had set, and were read as ours still in place
    a = one_change("a", "RolledBack", "Create", CREATED)
    assert check(trial(a, absent=True), created_then_rewritten(a, recreated=True)).violations == []


def test_rolled_back_fails_when_our_created_object_stays_though_edited_by_another() -> None:
    # the same object (our uid), edited: a rollback must not claim it is gone
    a = one_change("a", "RolledBack", "Create", CREATED)
    only(check(trial(a, absent=True), created_then_rewritten(a, recreated=False)), "rolled-back")


# -- an earlier trial's workflows, still running, write their own t0's status -------------


def test_a_same_named_transaction_of_another_namespace_is_not_ours() -> None:
    # seed 7 trial 4 replayed beside an interrupted run's workflows: their "a" said
    # Committed (another namespace, another uid) before ours wrote a target
    a = txn("a", "Committed")
    earlier = TxnRecord(**{**a.model_dump(), "namespace": "trial-before", "uid": "uid-old"})
    writes = (
        snapshotted(a)
        .phase(earlier, "Committed", namespace=earlier.namespace)
        .write(cm("2", 12), user=a.user)
        .lease(a, verb="delete")
        .phase(a, "Committed")
    )
    assert check(trial(a), writes.writes).violations == []
    writes.write(cm("2", 13), user=a.user)  # ours, after our own terminal status
    only(check(trial(a), writes.writes), "fencing")


# -- a reset after another transaction wrote the target ---------------------------------


def committed_then_overwritten(a: TxnRecord, b: TxnRecord, by_b: dict[str, Any] | None) -> Trace:
    """a commits its patch and releases the lease; b takes it, writes ``by_b`` (None:
    deletes the target) and commits."""
    return (
        committed_trace(a)
        .lease(b)
        .snapshot(b, cm("2", 12))
        .write(by_b, user=b.user, verb="delete" if by_b is None else "patch")
        .end(b, "Committed")
    )


def reset_after_another_commit(a: TxnRecord, b: TxnRecord, *, retaken: bool) -> list[Write]:
    """Then a ends RolledBack: after a reset whose new run took the lease again and
    found nothing to do (``retaken``), or without running again (a rollback that
    never undid its write)."""
    trace = committed_then_overwritten(a, b, None)
    if retaken:
        trace.lease(a).lease(a, verb="delete")
    return trace.phase(a, "RolledBack").writes


def test_a_reset_run_finding_another_transactions_later_write_is_rolled_back() -> None:
    a, b = txn("a", "RolledBack"), one_change("b", "Committed", "Delete")  # seed 7, trial 33
    assert check(trial(a, b), reset_after_another_commit(a, b, retaken=True)).violations == []


def test_a_rollback_that_left_our_write_for_another_transaction_still_fails() -> None:
    a, b = txn("a", "RolledBack"), one_change("b", "Committed", "Delete")
    only(check(trial(a, b), reset_after_another_commit(a, b, retaken=False)), "rolled-back")


def reapplied_by_a_reset(a: TxnRecord, b: TxnRecord, *, seen: dict[str, Any]) -> list[Write]:
    """Then a reset runs a again: it takes the lease, snapshots the target (``seen``)
    and writes its change again, Committed."""
    return (
        committed_then_overwritten(a, b, cm("3", 13))
        .lease(a)
        .snapshot(a, seen)
        .phase(a, "Committing")
        .write(cm("2", 14), user=a.user)
        .end(a, "Committed")
        .writes
    )


def test_a_reset_that_runs_a_committed_transaction_again_is_a_later_serial_step() -> None:
    # seed 11 trials 100 and 106: the reset's run came after b, from b's result
    a, b = txn("a", "Committed"), txn("b", "Committed", value="3")
    writes = reapplied_by_a_reset(a, b, seen=cm("3", 13))
    assert check(trial(a, b), writes).violations == []


def test_serial_fails_when_the_reset_run_wrote_from_a_state_before_the_other_commit() -> None:
    a, b = txn("a", "Committed"), txn("b", "Committed", value="3")
    writes = reapplied_by_a_reset(a, b, seen=cm("1", 10))  # its snapshot misses b's write
    only(check(trial(a, b), writes), "serial")


def test_serial_fails_when_a_lease_that_lapsed_under_a_run_is_taken_back() -> None:
    a, b = txn("a", "Committed"), txn("b", "Committed", value="3")
    trace = patched(a, seconds=3)
    trace.lease(b, verb="update").snapshot(b, cm("2", 12)).write(cm("3", 13), user=b.user)
    trace.phase(b, "Committed").lease(b, verb="delete")
    trace.lease(a).write(cm("2", 14), user=a.user)  # the same run: it never released it
    trace.phase(a, "Committed").lease(a, verb="delete")
    only(check(trial(a, b), trace.writes), "serial")
