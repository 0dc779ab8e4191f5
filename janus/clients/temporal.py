"""The one way every Janus process, test and benchmark connects to Temporal.

A client must speak the project's pydantic models (``pydantic_data_converter``)
or the workflow's input and the activities' results do not round-trip; and it
must authenticate the way the settings say (an API key, mTLS, a private CA).
Both are decided here, from ``TemporalSettings``, through the SDK's own
environment configuration (``temporalio.envconfig``), both ways:

- in: ``temporal_values`` reads what the Temporal CLI reads, the profile file
  (``TEMPORAL_CONFIG_FILE``, ``TEMPORAL_PROFILE``) overridden by the
  ``TEMPORAL_*`` variables, and lays the flags over it;
- out: the settings become a ``ClientConfigProfile``, and the profile the
  keyword arguments of ``Client.connect``, so TLS follows the same rules as the
  Temporal CLI's (an API key implies TLS; ``tls`` false turns it off).

``temporal_client`` is what long-running processes use: it also checks that the
namespace exists, and reports an unreachable server as a ``StartupError`` naming
the address, what failed and what to check (a worker pointed at the wrong address
would otherwise retry quietly forever).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import (
    ClientConfigProfile,
    ClientConfigTLS,
    ClientConnectConfig,
    DataSource,
)
from temporalio.service import RPCError, RPCStatusCode

from janus.contract.errors import StartupError
from janus.contract.settings import TemporalSettings, values_from_env


def temporal_values(
    flags: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The Temporal settings' values: ``flags`` over the environment's client profile.

    Args:
        flags: Fields of ``TemporalSettings`` given on the command line.
        env: The environment (default: this process's).

    Raises:
        ValueError: the profile file cannot be read, or names no such profile.
    """
    environ = dict(os.environ if env is None else env)
    profile = flags.get("profile") or environ.get("TEMPORAL_PROFILE") or None
    try:
        loaded = ClientConfigProfile.load(profile, override_env_vars=environ)
    except RuntimeError as err:  # the SDK's ConfigError
        raise ValueError(
            f"--temporal-profile: cannot load Temporal profile {profile or 'default'!r} "
            f"(TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE): {err}"
        ) from err
    values = {**_values_of(loaded), "profile": profile, **flags}
    return values_from_env(TemporalSettings, values, environ)


def _values_of(profile: ClientConfigProfile) -> dict[str, Any]:
    """The fields of ``TemporalSettings`` a loaded profile sets."""
    values: dict[str, Any] = {
        "address": profile.address,
        "namespace": profile.namespace,
        "api_key": profile.api_key,
    }
    tls = profile.tls
    if tls is not None:
        values["tls"] = None if tls.disabled is None else not tls.disabled
        values["tls_server_name"] = tls.server_name
        values["tls_ca"] = _path(tls.server_root_ca_cert, "TEMPORAL_TLS_SERVER_CA_CERT")
        values["tls_cert"] = _path(tls.client_cert, "TEMPORAL_TLS_CLIENT_CERT")
        values["tls_key"] = _path(tls.client_private_key, "TEMPORAL_TLS_CLIENT_KEY")
    return {name: value for name, value in values.items() if value is not None}


def _path(source: DataSource | None, variable: str) -> Path | None:
    if source is None or isinstance(source, Path):
        return source
    raise ValueError(
        f"{variable}_DATA (inline TLS data) is not supported: give the file, "
        f"{variable}_PATH (or path = in the profile)"
    )


#: Seconds to wait for Temporal when a process starts.
CONNECT_TIMEOUT = 15.0


def profile_of(settings: TemporalSettings) -> ClientConfigProfile:
    """The settings as the SDK's client profile (address, namespace, credentials, TLS)."""
    tls: ClientConfigTLS | None = None
    if settings.tls is False:
        tls = ClientConfigTLS(disabled=True)
    elif settings.tls or settings.tls_cert or settings.tls_ca or settings.tls_server_name:
        tls = ClientConfigTLS(
            disabled=False,
            server_name=settings.tls_server_name,
            server_root_ca_cert=settings.tls_ca,
            client_cert=settings.tls_cert,
            client_private_key=settings.tls_key,
        )
    # else an API key alone: the profile turns on TLS with the default options.
    return ClientConfigProfile(
        address=settings.address,
        namespace=settings.namespace,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        tls=tls,
    )


def connect_config(settings: TemporalSettings) -> ClientConnectConfig:
    """The keyword arguments of ``Client.connect`` for these settings."""
    return profile_of(settings).to_client_connect_config()


async def connect(
    settings: TemporalSettings,
    *,
    identity: str | None = None,
    connect_timeout: float | None = None,
) -> Client:
    """A connected client with the pydantic data converter.

    Args:
        settings: Where Temporal is and how to authenticate there.
        identity: The client's identity in workflow histories (default: the SDK's,
            ``pid@host``).
        connect_timeout: Seconds to wait for the first connection (default: the SDK's).
    """
    return await Client.connect(
        **connect_config(settings),
        data_converter=pydantic_data_converter,
        identity=identity,
        connect_timeout=timedelta(seconds=connect_timeout) if connect_timeout else None,
    )


async def connect_to(address: str, namespace: str = "default") -> Client:
    """A client of a server without credentials (a test's or a benchmark's dev server)."""
    return await connect(TemporalSettings(address=address, namespace=namespace))


async def temporal_client(settings: TemporalSettings, *, identity: str | None = None) -> Client:
    """A connected client (pydantic data converter), its namespace checked to exist."""
    try:
        client = await asyncio.wait_for(
            connect(settings, identity=identity, connect_timeout=CONNECT_TIMEOUT),
            timeout=CONNECT_TIMEOUT,
        )
    except (RuntimeError, TimeoutError, RPCError, OSError) as err:
        raise StartupError(_unreachable(settings, err)) from err
    await _check_namespace(client, settings)
    return client


def _unreachable(settings: TemporalSettings, err: BaseException) -> str:
    reason = str(err) or type(err).__name__
    tls = "with TLS" if settings.uses_tls else "without TLS"
    return (
        f"cannot reach Temporal at {settings.address} ({tls}): {reason}\n"
        "check: the address (--temporal-address or TEMPORAL_ADDRESS; the frontend's gRPC "
        "port, usually 7233), that the server runs and this host can reach it, and for "
        "Temporal Cloud an API key (TEMPORAL_API_KEY) or a client certificate and key "
        "(TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH)"
    )


async def _check_namespace(client: Client, settings: TemporalSettings) -> None:
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.namespace),
            timeout=timedelta(seconds=CONNECT_TIMEOUT),
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise StartupError(
                f"Temporal at {settings.address} has no namespace {settings.namespace!r}: "
                "create it (temporal operator namespace create) or fix --temporal-namespace "
                "(TEMPORAL_NAMESPACE)"
            ) from err
        if err.status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
            raise StartupError(
                f"Temporal at {settings.address} refused access to namespace "
                f"{settings.namespace!r}: {err.message}; check the API key or the client "
                "certificate, and that it is allowed in this namespace"
            ) from err
        raise StartupError(_unreachable(settings, err)) from err
