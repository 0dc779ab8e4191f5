"""The Temporal client every Janus process uses, connected and checked before use.

A worker pointed at the wrong Temporal address would otherwise retry quietly
forever. ``temporal_client`` either returns a client whose namespace exists or
raises ``StartupError`` naming the address, what failed and what to check.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from janus.contract.errors import StartupError
from janus.contract.settings import TemporalSettings

CONNECT_TIMEOUT = 15.0


async def temporal_client(settings: TemporalSettings, *, identity: str | None = None) -> Client:
    """A connected client (pydantic data converter), its namespace checked to exist."""
    try:
        client = await asyncio.wait_for(
            Client.connect(
                settings.address,
                namespace=settings.namespace,
                api_key=settings.api_key.get_secret_value() if settings.api_key else None,
                tls=_tls(settings),
                data_converter=pydantic_data_converter,
                connect_timeout=timedelta(seconds=CONNECT_TIMEOUT),
                identity=identity,
            ),
            timeout=CONNECT_TIMEOUT,
        )
    except (RuntimeError, TimeoutError, RPCError, OSError) as err:
        raise StartupError(_unreachable(settings, err)) from err
    await _check_namespace(client, settings)
    return client


def _tls(settings: TemporalSettings) -> bool | TLSConfig:
    if not settings.uses_tls:
        return False
    if not (settings.tls_cert or settings.tls_ca or settings.tls_server_name):
        return True
    return TLSConfig(
        client_cert=settings.tls_cert.read_bytes() if settings.tls_cert else None,
        client_private_key=settings.tls_key.read_bytes() if settings.tls_key else None,
        server_root_ca_cert=settings.tls_ca.read_bytes() if settings.tls_ca else None,
        domain=settings.tls_server_name,
    )


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
