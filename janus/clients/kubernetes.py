"""Every request to the API server has a timeout, and none is sent past its attempt's deadline.

Without a timeout one hung request (a stalled connection, an overloaded API
server) blocks an activity, and with it the leases it should have renewed, for
as long as the TCP connection lives. So every request made through
``TimedApiClient`` (the worker's and the bridge's clients, typed or dynamic)
gets:

- a client-side timeout: ``CONNECT_TIMEOUT`` to connect, at most
  ``REQUEST_TIMEOUT`` for the rest, and never more than the current attempt has
  left (``deadline``);
- the API server's own ``timeout`` query parameter, the same number of seconds
  rounded up, so the server too abandons a request the client has given up on,
  instead of finishing it later behind our back.

An activity attempt that may write runs inside ``writes_until(...)``: past that
moment no request is sent at all (``AttemptExpired``, retried by Temporal as a
fresh attempt), and a request sent before it is cut off when it arrives. A
request already accepted by the API server can still land up to
``SERVER_SLACK`` after the deadline (the server checks its deadline between
steps, not inside etcd's write); the workflow waits that out before it undoes
what a timed-out attempt may still write (``workflows.transaction``).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from urllib3.util.retry import Retry

from janus.contract.operations import API_SERVER_SLACK

#: Seconds to open a connection to the API server.
CONNECT_TIMEOUT = 5.0

#: The longest any one request may take, connect included.
REQUEST_TIMEOUT = 15.0

#: A request is not sent with less than this left before its attempt's deadline:
#: it could not finish in time anyway.
MIN_REQUEST_SECONDS = 0.5

#: How long after its deadline a request the API server accepted may still be
#: stored (``janus.contract.operations.API_SERVER_SLACK``).
SERVER_SLACK = API_SERVER_SLACK.total_seconds()


#: urllib3's retries: one more try to connect (nothing was sent yet), never a
#: repeat of a request that was sent: that is the activity's decision, which
#: knows whether its write landed.
RETRIES = Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)


class AttemptExpired(TimeoutError):
    """The activity attempt has no time left to send a request; a new attempt must."""


@dataclass(frozen=True)
class Deadline:
    """A moment on the monotonic clock after which the current attempt sends nothing."""

    at: float
    why: str
    stopped: Callable[[], bool] | None = None

    def remaining(self) -> float:
        return self.at - time.monotonic()


_deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "janus_request_deadline", default=None
)


@contextlib.contextmanager
def writes_until(
    at: float, why: str, *, stop: Callable[[], bool] | None = None
) -> Iterator[Deadline]:
    """Run the body with requests fenced by ``at`` (monotonic), or an earlier deadline,
    and by ``stop`` (nothing is sent once it says so)."""
    current = _deadline.get()
    deadline = current if current is not None and current.at <= at else Deadline(at, why, stop)
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def current_deadline() -> Deadline | None:
    return _deadline.get()


def request_seconds() -> float:
    """The timeout for a request sent now: REQUEST_TIMEOUT, or what the attempt has left.

    Raises:
        AttemptExpired: the attempt is (nearly) out of time; nothing may be sent.
    """
    deadline = _deadline.get()
    if deadline is None:
        return REQUEST_TIMEOUT
    if deadline.stopped is not None and deadline.stopped():
        raise AttemptExpired(f"{deadline.why} was cancelled; not sending the request")
    left = deadline.remaining()
    if left < MIN_REQUEST_SECONDS:
        raise AttemptExpired(f"{deadline.why} is out of time; not sending the request")
    return min(REQUEST_TIMEOUT, left)


def _with_server_timeout(url: str, seconds: float) -> str:
    """Add the API server's ``timeout`` parameter unless the request names one."""
    query = urlsplit(url).query
    if any(part.split("=", 1)[0] in ("timeout", "watch") for part in query.split("&") if part):
        return url
    return f"{url}{'&' if query else '?'}timeout={math.ceil(seconds)}s"


class TimedApiClient(ApiClient):
    """An ``ApiClient`` whose every request is bounded (see the module's docstring).

    Typed APIs and the dynamic client both send through ``call_api``. A caller's
    own ``_request_timeout`` is kept when shorter than what the deadline allows.
    """

    def call_api(
        self,
        method: Any,
        url: Any,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        seconds = request_seconds()
        if isinstance(_request_timeout, int | float) and _request_timeout > 0:
            seconds = min(seconds, float(_request_timeout))
        # (connect, read): a hung API server sends nothing, so the read timeout
        # fires; a connection retry (RETRIES) is sent while the attempt has time.
        timeout = (min(CONNECT_TIMEOUT, seconds / 3), seconds)
        return super().call_api(
            method,
            _with_server_timeout(str(url), seconds),
            header_params,
            body,
            post_params,
            _request_timeout=timeout,
        )


#: Connections kept open to the API server by one process.
API_CONNECTIONS = 64


def kubernetes_client(kubeconfig: str | None = None) -> ApiClient:
    """A client from a kubeconfig (flag, then KUBECONFIG), or the in-cluster account;
    every request it sends has a timeout (``janus.clients.kubernetes``)."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    configuration = Configuration()
    if path:
        kube_config.load_kube_config(config_file=path, client_configuration=configuration)
    else:
        kube_config.load_incluster_config(client_configuration=configuration)
    # Activities run in threads, and some send several requests at once: without
    # room for all of them, connections are dropped and made again.
    configuration.connection_pool_maxsize = API_CONNECTIONS
    configuration.retries = RETRIES
    # Every request bounded in time, on the client and on the server (janus.clients.kubernetes).
    return TimedApiClient(configuration)
