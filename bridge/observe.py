"""Metrics from status changes: what happened between two views of a Transaction.

The workflow mirrors the whole status to the custom resource after every step,
so consecutive views of one Transaction tell the story: a phase moved, an item
became prepared, committed or rolled back, an error appeared, a lease was taken,
a wait began. The functions here compare two views and name those facts; the
``Observer`` feeds them to the counters of ``janus.contract.metrics``.

A watch may skip intermediate states (a re-list after a dropped connection shows
only the latest), so phase changes along the forward path are filled in: from
Preparing to Committing means Prepared was passed too. Item facts are flags that
only ever turn on, so comparing any two views counts each exactly once.

A Transaction first seen with a status (it ran before this process started) is
recorded but not counted: its history was someone else's to count.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from janus.contract import metrics
from janus.contract.models import ItemStatus, Phase, TransactionStatus

logger = logging.getLogger(__name__)

FORWARD = (Phase.PENDING, Phase.PREPARING, Phase.PREPARED, Phase.COMMITTING, Phase.COMMITTED)
WAITING_PREFIX = "Waiting:"
LOCK_TIMEOUT_MARK = "gave up after lockTimeout"

Transition = tuple[str, str]
"""(from, to) phase names; from is "" for a Transaction that had no status."""

Operation = tuple[str, str]
"""(operation, outcome) as the counters label them."""


def phase_path(old: Phase | None, new: Phase) -> list[Transition]:
    """The transitions from ``old`` to ``new``, with skipped forward phases filled in."""
    if old == new:
        return []
    if new in FORWARD and (old is None or old in FORWARD):
        start = FORWARD.index(old) if old is not None else -1
        stop = FORWARD.index(new)
        if start < stop:
            steps: list[Phase | None] = [old, *FORWARD[start + 1 : stop + 1]]
            return [(_name(a), _name(b)) for a, b in itertools.pairwise(steps)]
    if new == Phase.ROLLED_BACK and old != Phase.ROLLING_BACK:
        # Only the workflow's rollback ends in RolledBack, and it starts RollingBack.
        return [(_name(old), Phase.ROLLING_BACK.value), (Phase.ROLLING_BACK.value, new.value)]
    return [(_name(old), new.value)]


def _name(phase: Phase | None) -> str:
    return phase.value if phase is not None else ""


def item_operations(old: list[ItemStatus], new: list[ItemStatus]) -> list[Operation]:
    """Steps that finished between two views: each flag that turned on, each new error."""
    before = {item.index: item for item in old}
    found: list[Operation] = []
    for item in new:
        prev = before.get(item.index)
        was = prev if prev is not None else item.model_copy(update=_BLANK_ITEM)
        for flag, operation in (("prepared", "prepare"), ("committed", "commit")):
            if getattr(item, flag) and not getattr(was, flag):
                found.append((operation, "succeeded"))
        if item.rolled_back and not was.rolled_back:
            found.append(("undo", "succeeded"))
        if item.error and item.error != was.error:
            found.append((_failed_step(item), "failed"))
    return found


_BLANK_ITEM = {"prepared": False, "committed": False, "rolled_back": False, "error": None}


def _failed_step(item: ItemStatus) -> str:
    """An error on a committed change is its undo's; before that, the step it was at."""
    if item.committed:
        return "undo"
    return "commit" if item.prepared else "prepare"


def lock_operations(old: TransactionStatus | None, new: TransactionStatus) -> list[Operation]:
    """Leases taken, waits begun, lockTimeouts run out, and leases released at the end."""
    was = old if old is not None else TransactionStatus()
    held_before = {i.index for i in was.items if i.lease}
    found: list[Operation] = [
        ("acquire", "acquired") for i in new.items if i.lease and i.index not in held_before
    ]
    if new.message.startswith(WAITING_PREFIX) and new.message != was.message:
        found.append(("acquire", "contended"))
    if LOCK_TIMEOUT_MARK in new.message and LOCK_TIMEOUT_MARK not in was.message:
        found.append(("acquire", "timeout"))
    if new.phase.terminal and not was.phase.terminal:
        leases = {i.lease for i in new.items if i.lease}
        found.extend(("release", "released") for _ in leases)
    return found


def duration_seconds(status: TransactionStatus) -> float | None:
    """startedAt → completedAt, once both are known."""
    if status.started_at is None or status.completed_at is None:
        return None
    return max(0.0, (status.completed_at - status.started_at).total_seconds())


def parse_status(raw: object) -> TransactionStatus | None:
    """The status of a watched object; None when it has none (yet) or it is unreadable."""
    if not isinstance(raw, dict) or not raw.get("phase"):
        return None
    try:
        return TransactionStatus.model_validate(raw)
    except ValidationError as err:
        logger.warning("ignoring a status the models do not accept: %s", err)
        return None


@dataclass
class _Seen:
    status: TransactionStatus | None


class Observer:
    """Remembers each Transaction's last status and counts what changed since."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}

    def observe(self, uid: str, status: TransactionStatus | None) -> None:
        """Record one view of a Transaction (status None: not started yet)."""
        seen = self._seen.get(uid)
        self._seen[uid] = _Seen(status)
        if seen is not None or status is None:
            self._count(seen.status if seen else None, status)
        self._update_gauges()

    def forget(self, uid: str) -> None:
        """The Transaction is gone from the API server."""
        self._seen.pop(uid, None)
        self._update_gauges()

    def _count(self, old: TransactionStatus | None, new: TransactionStatus | None) -> None:
        if new is None:
            return
        for source, target in phase_path(old.phase if old else None, new.phase):
            metrics.PHASE_TRANSITIONS.labels(source, target).inc()
        for operation, outcome in item_operations(old.items if old else [], new.items):
            metrics.ITEM_OPERATIONS.labels(operation, outcome).inc()
        for operation, outcome in lock_operations(old, new):
            metrics.LOCK_OPERATIONS.labels(operation, outcome).inc()
        ended = new.phase.terminal and (old is None or not old.phase.terminal)
        seconds = duration_seconds(new)
        if ended and seconds is not None:
            metrics.TRANSACTION_DURATION.labels(new.phase.value).observe(seconds)

    def _update_gauges(self) -> None:
        phases = [s.status.phase if s.status else Phase.PENDING for s in self._seen.values()]
        for phase in Phase:
            metrics.TRANSACTIONS_BY_PHASE.labels(phase.value).set(phases.count(phase))
        metrics.TRANSACTIONS_ACTIVE.set(sum(not p.terminal for p in phases))
