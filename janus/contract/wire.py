"""Wire formats the API server is strict about."""

from __future__ import annotations

from datetime import UTC, datetime

_MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def micro_time(moment: datetime | None = None) -> str:
    """A MicroTime (Lease acquire/renew times) with the six fractional digits it needs.

    ``datetime.isoformat()`` drops the fraction when the microseconds are 0, and the
    API server then rejects the Lease with a 400.
    """
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime(_MICRO_TIME)
