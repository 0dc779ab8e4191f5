"""Settings and start-up checks: bad configuration is one clear line, no stack trace."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig

from janus.clients.temporal import connect_config
from janus.contract.settings import (
    BridgeSettings,
    ClusterSettings,
    ProcessSettings,
    TemporalSettings,
    declared,
    installation_for,
    split_namespaces,
)
from janus.runtime.settings import load
from tests.bridge.support import JANUS, ROOT


def test_tls_follows_credentials_unless_told(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("x")
    key.write_text("y")

    assert not TemporalSettings().uses_tls
    assert TemporalSettings(api_key="k").uses_tls
    assert TemporalSettings(tls_cert=cert, tls_key=key).uses_tls
    assert TemporalSettings(tls=True).uses_tls


def test_the_client_connects_as_the_settings_say(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("x")
    key.write_text("y")

    plain = connect_config(TemporalSettings(address="t:7233", namespace="n"))
    assert plain == {"target_host": "t:7233", "namespace": "n"}
    assert connect_config(TemporalSettings(api_key="k"))["tls"] is True
    assert connect_config(TemporalSettings(tls=False))["tls"] is False
    mtls = connect_config(TemporalSettings(tls_cert=cert, tls_key=key, tls_server_name="s"))["tls"]
    assert mtls == TLSConfig(client_cert=b"x", client_private_key=b"y", domain="s")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"address": "localhost"}, "is not host:port"),
        ({"tls_cert": Path("/nonexistent.crt")}, "is not a readable file"),
        ({"tls": False, "api_key": "k"}, "--no-tls contradicts"),
    ],
)
def test_bad_temporal_settings_say_what_to_fix(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TemporalSettings(**fields)


def test_a_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "tls.crt"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="give --tls-cert and --tls-key"):
        TemporalSettings(tls_cert=cert)


def test_no_kubeconfig_outside_a_cluster_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ValidationError, match="pass --kubeconfig or set KUBECONFIG"):
        ClusterSettings()
    with pytest.raises(ValidationError, match="does not exist"):
        ClusterSettings(kubeconfig="/nonexistent/kubeconfig")


def test_election_timings_must_leave_room_to_renew() -> None:
    with pytest.raises(ValidationError, match="at least twice the renew interval"):
        BridgeSettings(lease_seconds=4, renew_seconds=3)


def test_namespaces_split_on_commas_and_spaces() -> None:
    assert split_namespaces("a,b  c") == ("a", "b", "c")
    assert split_namespaces(None) == ()


def test_workflow_links_escape_the_id() -> None:
    settings = TemporalSettings(ui_url="http://ui:8233/")
    assert settings.workflow_url("txn/ns/name/uid") == (
        "http://ui:8233/namespaces/default/workflows/txn%2Fns%2Fname%2Fuid"
    )
    assert TemporalSettings().workflow_url("txn/ns/name/uid") is None


def janus(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JANUS), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_bad_flags_exit_2_naming_the_flag(tmp_path: Path) -> None:
    done = janus("worker", "--temporal-address", "nohost", "--kubeconfig", "/nope", env={})

    assert done.returncode == 2
    assert "--temporal-address: " in done.stderr and "is not host:port" in done.stderr
    assert "kubeconfig /nope does not exist" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_temporal_exits_1_naming_the_address(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    env = {"TEMPORAL_ADDRESS": "127.0.0.1:1", "KUBECONFIG": str(kubeconfig)}

    done = janus("bridge", "--metrics-port", "0", env=env)

    assert done.returncode == 1, done.stderr
    assert "cannot reach Temporal at 127.0.0.1:1 (without TLS)" in done.stderr
    assert "TEMPORAL_ADDRESS" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_namespace_pattern_is_refused_at_start_saying_what_works() -> None:
    done = janus("bridge", "-n", "team-*", "--kubeconfig", "/nope", env={})

    assert done.returncode == 2
    assert "--namespace 'team-*' is a pattern" in done.stderr
    assert "repeat -n for each (-n team-a -n team-b), or omit -n" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_installation_comes_from_the_task_queue_and_names_the_election_lease() -> None:
    assert installation_for("janus") == "janus"
    assert installation_for("Team_A.v2") == "team-a-v2"
    assert BridgeSettings().election_lease == "janus-bridge"
    assert BridgeSettings(installation="team-a").election_lease == "team-a-bridge"
    assert BridgeSettings(installation="team-a", election_name="x").election_lease == "x"
    with pytest.raises(ValidationError, match="lower-case letters, digits and '-'"):
        BridgeSettings(installation="Team A")


def test_temporal_settings_start_from_the_profile_then_the_variables_then_the_flags(
    tmp_path: Path,
) -> None:
    profiles = tmp_path / "temporal.toml"
    profiles.write_text(
        '[profile.staging]\naddress = "staging:7233"\nnamespace = "team"\napi_key = "k"\n'
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    env = {"TEMPORAL_CONFIG_FILE": str(profiles), "KUBECONFIG": str(kubeconfig)}
    sections: dict[str, dict[str, object]] = {"temporal": {"profile": "staging"}, "cluster": {}}

    from_profile = load(sections, env).temporal
    assert (from_profile.address, from_profile.namespace) == ("staging:7233", "team")
    assert from_profile.uses_tls and from_profile.api_key is not None
    overridden = load(sections, {**env, "TEMPORAL_NAMESPACE": "other"}).temporal
    assert (overridden.address, overridden.namespace) == ("staging:7233", "other")
    flagged: dict[str, dict[str, object]] = {
        **sections,
        "temporal": {"profile": "staging", "namespace": "flag"},
    }
    assert load(flagged, {**env, "TEMPORAL_NAMESPACE": "other"}).temporal.namespace == "flag"
    assert load({"temporal": {}, "cluster": {}}, env).temporal.address == "localhost:7233"
    with pytest.raises(ValueError, match=r"--temporal-profile: .*'nope'"):
        load({"temporal": {"profile": "nope"}, "cluster": {}}, env)


def test_the_bridge_installation_follows_the_task_queue_and_snapshots_the_worker(
    tmp_path: Path,
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    env = {"KUBECONFIG": str(kubeconfig), "JANUS_NAMESPACES": "a,b c"}
    bridge = {"temporal": {"task_queue": "Team_A"}, "cluster": {}, "bridge": {}}

    alone = load(bridge, env).bridge
    assert alone is not None
    assert (alone.installation, alone.namespaces) == ("team-a", ("a", "b", "c"))
    beside = load({**bridge, "worker": {"lease_namespace": "leases"}}, env).bridge
    assert beside is not None and beside.snapshot_namespace == "leases"


def test_the_readme_settings_table_names_the_declared_flags_and_variables() -> None:
    """Each variable and flag in the README's table is a settings field's (one place)."""
    fields = [
        declared(info)
        for model in ProcessSettings.sections().values()
        for info in model.model_fields.values()
    ]
    variables = {f["env"] for f in fields if f}
    flags = {f["short"] for f in fields if f and f["short"]}
    flags |= {flag for f in fields if f and f["flag"] for flag in f["flag"].split("/")}
    table = (ROOT / "README.md").read_text().split("| Variable (flag) |")[1].split("\n\n")[0]
    named = [row.split(" | ")[0] for row in table.splitlines()[2:]]
    outside = {"JANUS_BUILD_ID", "TEMPORAL_CONFIG_FILE"}
    assert {v for row in named for v in re.findall(r"`([A-Z_]+)`", row)} - outside <= variables
    assert {f for row in named for f in re.findall(r"`(-[-a-z]+)`", row)} <= flags | {
        "--lease-namespace"
    }
