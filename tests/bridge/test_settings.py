"""Settings and start-up checks: bad configuration is one clear line, no stack trace."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig

from janus.clients.temporal import connect_config
from janus.contract.settings import (
    BridgeSettings,
    ClusterSettings,
    TemporalSettings,
    installation_for,
    split_namespaces,
)
from tests.bridge.support import JANUS


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
