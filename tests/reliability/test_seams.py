"""The suite's seams and safeguards as pure logic: no server needed, milliseconds each."""

from __future__ import annotations

import base64

import pytest

from activities import redact
from activities.access import needed
from activities.seams import Fault, FaultPoint, Seams
from janus.contract.models import ChangeType, TransactionInput
from janus.contract.operations import ResolvedTarget
from janus.contract.settings import WorkerSettings


def test_a_fault_names_a_point_an_optional_delay_and_transaction() -> None:
    fault = Fault.parse("apply:1:before:5s@conflict-*")
    assert (fault.operation, fault.index, fault.point) == ("apply", 1, FaultPoint.BEFORE)
    assert fault.seconds == 5.0
    assert fault.matches("apply", 1, "conflict-7") and not fault.matches("apply", 1, "other")
    assert Fault.parse("release:8:after").transaction == "*"


@pytest.mark.parametrize("text", ["apply:1", "apply:x:before", "mirror:0:before", "apply:0:soon"])
def test_a_bad_fault_says_the_syntax(text: str) -> None:
    with pytest.raises(ValueError, match="operation:index:point"):
        Fault.parse(text)


def test_worker_seams_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JANUS_FAULTS", "undo:0:before")
    monkeypatch.setenv("JANUS_CRASH_AT", "apply:2:after@t1,snapshot:0:before")
    monkeypatch.setenv("JANUS_DELAYS", "apply:1:before:250ms")
    monkeypatch.setenv("JANUS_REQUIRE_SERVICE_ACCOUNT", "1")
    seams = Seams.from_env()
    assert [f.operation for f in seams.crashes] == ["apply", "snapshot"]
    assert seams.delays[0].seconds == 0.25
    assert seams.faults[0].point == FaultPoint.BEFORE
    assert not seams.repeat_activities
    assert WorkerSettings.from_env().require_service_account


def test_secret_content_is_withheld_from_the_workflow_input() -> None:
    resource = {
        "metadata": {"namespace": "ns", "name": "t", "uid": "u"},
        "spec": {
            "changes": [
                {
                    "target": {"apiVersion": "v1", "kind": "Secret", "name": "s"},
                    "type": "Patch",
                    "content": {"stringData": {"password": "hunter2-hunter2"}},
                },
                {
                    "target": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"},
                    "type": "Patch",
                    "content": {"data": {"k": "v"}},
                },
            ]
        },
    }
    txn = TransactionInput.from_resource(resource)
    assert txn.withheld == [0]
    assert "hunter2" not in txn.model_dump_json()
    assert txn.spec.changes[1].content == {"data": {"k": "v"}}


def test_scrub_masks_remembered_values_plain_and_base64() -> None:
    with redact.scope():
        redact.remember_secret({"data": {"k": base64.b64encode(b"s3cret-value").decode()}})
        redact.remember_content({"stringData": {"p": "another-secret"}, "data": {"x": "1"}})
        text = redact.scrub(
            'Invalid value: "s3cret-value" and "another-secret" and '
            f"{base64.b64encode(b'another-secret').decode()}, but not 1"
        )
        assert "s3cret" not in text and "another-secret" not in text
        assert text.count(redact.MASK) == 3 and text.endswith("not 1")
    assert not redact.active()


@pytest.mark.parametrize(
    ("change_type", "verbs"),
    [
        (ChangeType.CREATE, ["get", "create", "delete"]),
        (ChangeType.UPDATE, ["get", "update"]),
        (ChangeType.PATCH, ["get", "patch", "update"]),
        (ChangeType.DELETE, ["get", "delete", "create"]),
    ],
)
def test_each_change_needs_the_verbs_of_its_action_and_its_undo(
    change_type: ChangeType, verbs: list[str]
) -> None:
    target = ResolvedTarget(
        index=0,
        change_type=change_type,
        api_version="v1",
        kind="ConfigMap",
        resource="configmaps",
        name="c",
        namespace="ns",
        lease_name="l",
        lease_namespace="janus-system",
    )
    assert [verb for verb, _why in needed(target)] == verbs
