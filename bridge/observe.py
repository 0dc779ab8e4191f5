"""What the bridge sees of the Transactions it watches: their phases, and who waits.

The workflow mirrors the status to the custom resource as it goes, so
consecutive views of one Transaction show its phase moving. The functions here
compare two views and name the phase changes; the ``Observer`` feeds them to
the counters of ``janus.contract.metrics`` and keeps the gauges (Transactions by phase,
active, waiting for a lease: ``status.waiting``) up to date.

Only what the bridge sees is counted here. What the worker does (changes
applied and undone, lease operations, snapshots) and how each Transaction ended
(its outcome and duration) are counted by the worker, where they happen
(``janus.contract.metrics``): a large Transaction's status lists only its failed items,
and a watch may skip views, so no count of operations can be derived from here.

A watch may skip intermediate states (a re-list after a dropped connection shows
only the latest), so phase changes along the forward path are filled in: from
Preparing to Committing means Prepared was passed too.

A Transaction first seen with a status (it ran before this process started) is
recorded but not counted: its history was someone else's to count.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from janus.contract import metrics
from janus.contract.models import Phase, TransactionStatus

logger = logging.getLogger(__name__)

FORWARD = (Phase.PENDING, Phase.PREPARING, Phase.PREPARED, Phase.COMMITTING, Phase.COMMITTED)

Transition = tuple[str, str]
"""(from, to) phase names; from is "" for a Transaction that had no status."""


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


def is_waiting(status: TransactionStatus | None) -> bool:
    """Whether the status says the Transaction waits for a lease right now."""
    return (
        status is not None
        and not status.phase.terminal
        and status.waiting is not None
        and not status.waiting.gave_up
    )


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
    """Remembers each Transaction's last status and counts the phase changes since."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}

    def observe(self, uid: str, status: TransactionStatus | None) -> None:
        """Record one view of a Transaction (status None: not started yet)."""
        seen = self._seen.get(uid)
        self._seen[uid] = _Seen(status)
        if seen is not None and status is not None:
            old = seen.status.phase if seen.status else None
            for source, target in phase_path(old, status.phase):
                metrics.PHASE_TRANSITIONS.labels(source, target).inc()
        self._update_gauges()

    def forget(self, uid: str) -> None:
        """The Transaction is gone from the API server."""
        self._seen.pop(uid, None)
        self._update_gauges()

    def _update_gauges(self) -> None:
        statuses = [s.status for s in self._seen.values()]
        phases = [s.phase if s else Phase.PENDING for s in statuses]
        for phase in Phase:
            metrics.TRANSACTIONS_BY_PHASE.labels(phase.value).set(phases.count(phase))
        metrics.TRANSACTIONS_ACTIVE.set(sum(not p.terminal for p in phases))
        metrics.TRANSACTIONS_WAITING.set(sum(is_waiting(s) for s in statuses))
