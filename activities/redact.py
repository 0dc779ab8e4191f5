"""Keep Secret values out of everything but Secrets.

A Secret's value may reach an activity three ways: the change's content (read
from the Transaction, never from the workflow's input), the target as read from
the API server, and the Secret-typed snapshot. Anything an activity says back
(an error message that becomes the item's error, the status message, an Event,
the workflow's history, the worker's log) passes through ``scrub`` first: the
API server echoes rejected values in its messages ("Invalid value: ..."), and
must not become a way out for them.

Each activity call opens a ``scope``; code that sees a Secret registers its
values with ``remember_secret`` and ``remember_content``. The scope lives in a
context variable, and Temporal runs each activity in a context of its own, so
two activities never share what they remember.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any

#: Shorter values are not redacted: replacing "1" or "yes" everywhere would make
#: messages unreadable, and such values are not secrets worth the name.
MIN_LENGTH = 4
MASK = "[redacted]"

_remembered: ContextVar[set[str] | None] = ContextVar("janus_secret_values", default=None)


@contextmanager
def scope() -> Iterator[None]:
    """Remember Secret values seen inside, for ``scrub``; forget them after."""
    token = _remembered.set(set())
    try:
        yield
    finally:
        _remembered.reset(token)


def active() -> bool:
    """Whether any Secret value was seen in the current scope."""
    return bool(_remembered.get())


def _remember(value: str) -> None:
    seen = _remembered.get()
    if seen is not None and len(value) >= MIN_LENGTH:
        seen.add(value)


def _remember_encoded(value: str) -> None:
    _remember(value)
    with suppress(binascii.Error, UnicodeDecodeError, ValueError):
        _remember(base64.b64decode(value, validate=True).decode())


def remember_secret(obj: dict[str, Any] | None) -> None:
    """Remember a Secret object's values (``data`` is base64, ``stringData`` plain)."""
    if not obj:
        return
    for value in (obj.get("data") or {}).values():
        if isinstance(value, str):
            _remember_encoded(value)
    for value in (obj.get("stringData") or obj.get("string_data") or {}).values():
        if isinstance(value, str):
            _remember(value)
            _remember(base64.b64encode(value.encode()).decode())


def remember_content(content: dict[str, Any] | None) -> None:
    """Remember the values a change would write into a Secret."""
    remember_secret(content)


def scrub(text: str) -> str:
    """``text`` with every remembered Secret value masked, longest first."""
    for value in sorted(_remembered.get() or (), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
