"""Pure logic of the API: no server needed."""

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from activities.fingerprint import KEYED, fingerprint, same
from janus.contract.crd import crd_yaml
from janus.contract.models import (
    DEFAULT_SERVICE_ACCOUNT,
    WITHHOLD_CONTENT_ABOVE,
    Target,
    TransactionInput,
    TransactionSpec,
    api_version_problem,
    holds_secret,
    manifest,
    parse_duration,
)
from janus.contract.operations import lease_name

ROOT = Path(__file__).resolve().parents[2]


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


def test_lease_names_of_canonical_spellings_are_those_of_0_1_0() -> None:
    """Old and new workers must exclude each other during an upgrade: 0.1.0 hashed
    the spelling, which for ``v1`` and ``apps/v1`` is the canonical one."""
    assert lease_name("v1", "ConfigMap", "shop", "app-config") == (
        "janus-configmap-app-config-838c765cbd"  # computed by 4c551a5
    )


@pytest.mark.parametrize("spelling", ["v1", "apps/v1", "example.com/v1alpha1", "a-b.c/v2"])
def test_well_formed_api_versions(spelling: str) -> None:
    assert api_version_problem(spelling) is None


@pytest.mark.parametrize("spelling", ["/v1", "apps/", "apps//v1", "a/b/c", "V1", " v1", "/"])
def test_malformed_api_versions_say_how_to_write_them(spelling: str) -> None:
    problem = api_version_problem(spelling)
    assert problem is not None
    assert "GROUP/VERSION (e.g. apps/v1)" in problem


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("v1", "Secret"), ("/v1", "Secret"), ("v1", "secret"), (" /v1", "Secrets")],
)
def test_every_spelling_of_a_secret_is_withheld(api_version: str, kind: str) -> None:
    assert holds_secret(Target(api_version=api_version or "v1", kind=kind, name="s"))


def test_other_kinds_are_not_withheld() -> None:
    assert not holds_secret(Target(api_version="example.com/v1", kind="Secret", name="s"))
    assert not holds_secret(Target(api_version="v1", kind="ConfigMap", name="s"))


def test_no_account_named_means_janus() -> None:
    spec = TransactionSpec.model_validate({"changes": [{"target": {"apiVersion": "v1",
        "kind": "ConfigMap", "name": "a"}, "type": "Delete"}]})  # fmt: skip
    assert spec.service_account_name == DEFAULT_SERVICE_ACCOUNT == "janus"


def test_keyed_fingerprints_and_those_of_0_1_0_both_compare() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"k": "MQ=="},
    }
    key = b"k" * 32
    keyed, old = fingerprint(secret, key), fingerprint(secret)
    assert keyed.startswith(KEYED) and old and not old.startswith(KEYED)
    assert same(secret, keyed, key) and same(secret, old, key)
    assert not same({**secret, "data": {"k": "Mg=="}}, keyed, key)
    assert not same(secret, keyed, b"other-key" * 4)
    assert same(None, "", key)
