"""Reading managedFields as evidence of who wrote a target since its snapshot."""

from __future__ import annotations

from typing import Any

from activities import ownership


def obj(*entries: dict[str, Any], finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x", "managedFields": list(entries)}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"metadata": meta}


def entry(manager: str, time: str, fields: dict[str, Any], subresource: str = "") -> dict[str, Any]:
    found = {"manager": manager, "operation": "Update", "time": time, "fieldsV1": fields}
    if subresource:
        found["subresource"] = subresource
    return found


CREATED = entry("kubectl-create", "T0", {"f:data": {"f:a": {}, "f:b": {}}})
OURS = entry("janus", "T1", {"f:data": {"f:a": {}}})


def test_our_write_taking_fields_from_their_creator_is_no_foreign_write() -> None:
    before = ownership.signatures(obj(CREATED))
    shrunk = entry("kubectl-create", "T0", {"f:data": {"f:b": {}}})
    writes = ownership.since(before, obj(shrunk, OURS))
    assert writes.known and not writes.conflicting and not writes.bookkeeping


def test_a_foreign_edit_after_ours_is_named_even_in_the_same_second() -> None:
    before = ownership.signatures(obj(CREATED))
    later = ownership.since(
        before, obj(CREATED, OURS, entry("kubectl-patch", "T2", {"f:data": {"f:c": {}}}))
    )
    assert later.conflicting == ["kubectl-patch"]
    grown = entry("kubectl-create", "T0", {"f:data": {"f:a": {}, "f:b": {}, "f:c": {}}})
    assert ownership.since(before, obj(grown, OURS)).conflicting == ["kubectl-create"]


def test_controllers_and_bookkeeping_are_told_apart_from_conflicts() -> None:
    before = ownership.signatures(obj(CREATED))
    current = obj(
        CREATED,
        OURS,
        entry("kube-controller-manager", "T2", {"f:spec": {"f:replicas": {}}}, "scale"),
        entry("kube-controller-manager", "T2", {"f:status": {"f:ready": {}}}, "status"),
        entry(
            "guard", "T2", {"f:metadata": {"f:finalizers": {".": {}, 'v:"example.com/keep"': {}}}}
        ),
        entry("gadget-controller", "T2", {"f:status": {"f:ready": {}}}),
        finalizers=["example.com/keep"],
    )
    writes = ownership.since(before, current)
    assert writes.scaled and not writes.conflicting
    assert sorted(writes.bookkeeping) == ["gadget-controller", "guard"]
    assert ownership.foreign_finalizers(current) == ["example.com/keep"]


def test_without_managed_fields_nothing_is_known() -> None:
    assert not ownership.since(None, obj(CREATED)).known  # a snapshot from 0.1.0
    assert not ownership.since({}, {"metadata": {"name": "x"}}).known  # cleared by a client


def test_the_restore_keeps_foreign_finalizers_status_and_scaled_replicas() -> None:
    from activities.kinds.base import restoration

    stored = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "resourceVersion": "1", "finalizers": ["mine/before"]},
        "spec": {"replicas": 1, "image": "v1"},
        "status": {"old": True},
    }
    current = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "x",
            "resourceVersion": "9",
            "finalizers": ["mine/before", "ours/added", "example.com/keep"],
            "managedFields": [
                entry("janus", "T1", {"f:metadata": {"f:finalizers": {'v:"ours/added"': {}}}}),
                entry(
                    "guard", "T2", {"f:metadata": {"f:finalizers": {'v:"example.com/keep"': {}}}}
                ),
            ],
        },
        "spec": {"replicas": 4, "image": "v2"},
        "status": {"new": True},
    }
    body = restoration(stored, current, ownership.Writes(scaled=True))
    assert body["metadata"]["finalizers"] == ["mine/before", "example.com/keep"]
    assert body["metadata"]["resourceVersion"] == "9"
    assert body["spec"] == {"replicas": 4, "image": "v1"}
    assert body["status"] == {"new": True}
    unscaled = restoration(stored, current, ownership.Writes())
    assert unscaled["spec"]["replicas"] == 1


def test_an_update_carries_over_only_the_finalizers_added_since_its_snapshot() -> None:
    from activities.kinds.update import keeping_finalizers_added

    current = {"metadata": {"finalizers": ["was/there", "example.com/keep", "asked/for"]}}
    stored = {"metadata": {"finalizers": ["was/there"]}}
    body = {"metadata": {"name": "x", "finalizers": ["asked/for"]}, "spec": {"v": 2}}
    kept = keeping_finalizers_added(body, current, lambda: stored)
    # the content's own, then the one added since; the snapshot's is the content's to drop
    assert kept["metadata"]["finalizers"] == ["asked/for", "example.com/keep"]
    untouched = keeping_finalizers_added({"metadata": {}}, {"metadata": {}}, lambda: stored)
    assert "finalizers" not in untouched["metadata"]
    as_before = keeping_finalizers_added(
        {"metadata": {}}, {"metadata": stored["metadata"]}, lambda: stored
    )
    assert "finalizers" not in as_before["metadata"]


def test_a_patch_keeps_finalizers_unless_a_json_merge_patch_replaces_their_list() -> None:
    from types import SimpleNamespace
    from typing import cast

    from activities.kinds import TargetAccess
    from activities.kinds.patch import Patch

    current = {"metadata": {"finalizers": ["was/there", "example.com/keep"]}}
    stored = {"metadata": {"finalizers": ["was/there"]}}

    def over(builtin: bool, meta: dict[str, Any]) -> dict[str, Any]:
        access = SimpleNamespace(target=SimpleNamespace(builtin=builtin), stored=lambda: stored)
        body = {"metadata": dict(meta), "spec": {"v": 2}}
        return cast(
            dict[str, Any],
            Patch().over_bookkeeping(cast(TargetAccess, access), body, current)["metadata"],
        )

    assert "finalizers" not in over(False, {"name": "x"})  # the patch leaves them all
    assert over(True, {"finalizers": ["asked/for"]})["finalizers"] == ["asked/for"]  # merged
    replaced = over(False, {"finalizers": ["asked/for"]})["finalizers"]
    assert replaced == ["asked/for", "example.com/keep"]
