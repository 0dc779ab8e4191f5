"""Pure logic of the API: no server needed."""

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from janus.crd import crd_yaml
from janus.models import (
    WITHHOLD_CONTENT_ABOVE,
    TransactionInput,
    TransactionSpec,
    manifest,
    parse_duration,
)
from janus.operations import lease_name

ROOT = Path(__file__).resolve().parents[1]


def test_committed_crd_is_generated_from_the_models() -> None:
    committed = (ROOT / "deploy" / "crd.yaml").read_text()
    assert committed == crd_yaml(), "deploy/crd.yaml is stale: run `janus crd > deploy/crd.yaml`"


@pytest.mark.parametrize(
    ("text", "seconds"), [("5m", 300), ("90s", 90), ("1h30m", 5400), ("250ms", 0.25)]
)
def test_durations_parse_like_go(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["5", "five minutes", "-1s", "1d", ""])
def test_bad_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 30s, 5m or 1h30m"):
        parse_duration(text)


def test_lease_names_are_valid_unique_and_readable() -> None:
    long = "x" * 250
    names = {
        lease_name("v1", "ConfigMap", "a", "app-config"),
        lease_name("v1", "ConfigMap", "b", "app-config"),
        lease_name("v1", "Secret", "a", "app-config"),
        lease_name("v1", "ConfigMap", "a", long),
        lease_name("v1", "ConfigMap", "a", long + "y"),
    }
    assert len(names) == 5
    for name in names:
        assert len(name) <= 63
        assert name.startswith("janus-")
    assert lease_name("v1", "ConfigMap", "a", "app-config").startswith(
        "janus-configmap-app-config-"
    )


def test_seed_spec_validates() -> None:
    import yaml

    doc = yaml.safe_load((ROOT / "deploy" / "examples" / "deploy-v2.yaml").read_text())
    spec = TransactionSpec.model_validate(doc["spec"])
    assert [c.type for c in spec.changes] == ["Patch", "Patch", "Delete"]
    assert spec.lock_timeout == "5m"


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="changez"):
        TransactionSpec.model_validate({"changez": []})


def test_a_large_transaction_sends_no_content_through_temporal() -> None:
    def resource(changes: int) -> dict[str, Any]:
        obj = manifest(
            "t",
            {
                "changes": [
                    {
                        "target": {"apiVersion": "v1", "kind": "ConfigMap", "name": f"c{i}"},
                        "type": "Patch",
                        "content": {"data": {"k": "v"}},
                    }
                    for i in range(changes)
                ]
            },
            namespace="ns",
        )
        obj["metadata"]["uid"] = "u"
        return obj

    small = TransactionInput.from_resource(resource(WITHHOLD_CONTENT_ABOVE))
    large = TransactionInput.from_resource(resource(WITHHOLD_CONTENT_ABOVE + 1))

    assert small.withheld == [] and small.spec.changes[0].content == {"data": {"k": "v"}}
    assert large.withheld == list(range(WITHHOLD_CONTENT_ABOVE + 1))
    assert all(change.content is None for change in large.spec.changes)
