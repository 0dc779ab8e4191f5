"""Counts for the closing note: what was tried, and how much ended exactly as expected.

Each test records every trial (a failure point, a crash, a transaction of the
contention run, a bad input); the session prints the totals at its end
(``tests/reliability/conftest.py``), and each test prints its own line (``-s``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

#: The categories of the closing note, in the order it lists them.
CATEGORIES = (
    "failure points",
    "failure points (activities repeated)",
    "crashes injected",
    "server restarts",
    "concurrent transactions",
    "interference scenarios",
    "identity checks",
    "secret-leak checks",
    "bad inputs",
)


@dataclass
class Count:
    tried: int = 0
    as_expected: int = 0
    misses: list[str] = field(default_factory=list)


COUNTS: dict[str, Count] = defaultdict(Count)


def record(category: str, case: str, ok: bool, problem: str = "") -> None:
    count = COUNTS[category]
    count.tried += 1
    if ok:
        count.as_expected += 1
    else:
        count.misses.append(f"{case}: {problem}")


def lines() -> list[str]:
    ordered = [c for c in CATEGORIES if c in COUNTS] + sorted(set(COUNTS) - set(CATEGORIES))
    out = []
    for category in ordered:
        count = COUNTS[category]
        exact = f"{count.as_expected} ended exactly as expected"
        out.append(f"{category}: {count.tried} tried, {exact}")
        out.extend(f"    MISS {m}" for m in count.misses)
    return out
