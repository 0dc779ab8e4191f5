"""The one way every Janus process, test and benchmark connects to Temporal.

A client must speak the project's pydantic models (``pydantic_data_converter``)
or the workflow's input and the activities' results do not round-trip; and it
must authenticate the way the settings say (an API key, mTLS, a private CA).
Both are decided here, from ``TemporalSettings``, through the SDK's own
environment configuration types (``temporalio.envconfig``): the settings become
a ``ClientConfigProfile``, and the profile the keyword arguments of
``Client.connect``, so TLS follows the same rules as the Temporal CLI's
(an API key implies TLS; ``tls`` false turns it off).

Checking that the namespace exists and reporting an unreachable server as one
line is the start-up check's job (``janus.runtime.preflight.temporal_client``).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS, ClientConnectConfig

from janus.contract.settings import TemporalSettings


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
