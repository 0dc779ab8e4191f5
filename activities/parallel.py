"""Blocking API calls side by side, for the steps whose requests do not depend on
one another (snapshot reads and dry runs, fencing reads, access reviews, lease
releases).

Each call runs in a copy of the caller's context, so it shares the caller's
redaction scope (every Secret value it sees is scrubbed from any message), and
an error is raised as if the calls had run in order: the first by position.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

A = TypeVar("A")
R = TypeVar("R")

#: Requests in flight at once for one activity.
MAX_PARALLEL = 8


def side_by_side(call: Callable[[A], R], items: Sequence[A]) -> list[R]:
    """``[call(item) for item in items]``, up to MAX_PARALLEL at a time."""
    if len(items) < 2:
        return [call(item) for item in items]
    contexts = [contextvars.copy_context() for _ in items]
    with ThreadPoolExecutor(max_workers=min(len(items), MAX_PARALLEL)) as pool:
        futures = [
            pool.submit(context.run, call, item)
            for context, item in zip(contexts, items, strict=True)
        ]
        return [future.result() for future in futures]
