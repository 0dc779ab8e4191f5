"""The worker's test seams: faults, crashes, delays and repeated activities.

They exist to prove the saga through a real seam: tests configure the worker
(its environment, or ``Seams`` in-process), never patch its code. All are off
unless configured, and none of this is part of the product's behaviour or its
error hierarchy: the activities apply the seams as one wrapper around each step
(``Seams.around``), and the product code inside knows nothing of them. A
permanent failure is raised as the refusal it stands for, the product's own
``ChangeRejected`` (its message says it was injected), so the saga handles
exactly what it handles when an API server refuses a step; the seams add no
error type of their own.

One syntax names a point, ``operation:index:point[:duration][@transaction]``,
for each of these effects:

- a *failure* (``JANUS_FAULTS``): ``before`` is permanent, the step fails and
  the saga rolls back; ``after`` fires once per transaction and step: the write
  has happened, the activity reports a transient error, and Temporal runs it
  again;
- a *crash* (``JANUS_CRASH_AT``): the worker process kills itself with SIGKILL
  at that point, as a machine failure would;
- a *delay* (``JANUS_DELAYS``, with a duration: ``apply:1:before:5s``): the step
  waits first, which opens a window for another writer; a delayed apply or undo
  also starts a batch of its own, so what came before it is recorded first;
- *repetition* (``JANUS_REPEAT_ACTIVITIES=1``): every activity's effect runs
  twice, the proof of idempotence.
"""

from __future__ import annotations

import contextlib
import enum
import fnmatch
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from janus.contract.errors import ChangeRejected
from janus.contract.models import TransactionRef, parse_duration
from janus.contract.settings import env_flag

T = TypeVar("T")

logger = logging.getLogger(__name__)


class FaultPoint(enum.StrEnum):
    """Where an injected fault strikes: before a step's API call, or after it
    succeeded but before its result is recorded (the crash window)."""

    BEFORE = "before"
    AFTER = "after"


#: The steps a fault can strike. ``index`` is the change's position in
#: spec.changes, except for ``acquire`` and ``release``, where it is the lease's
#: position in the canonical (sorted) order.
FaultOperation = Literal["acquire", "snapshot", "apply", "undo", "release"]


class Fault(BaseModel):
    """One seam's point, e.g. ``apply:2:before`` or ``undo:0:after@deploy-v2``."""

    model_config = ConfigDict(frozen=True)

    operation: FaultOperation
    index: int
    point: FaultPoint
    transaction: str = Field(default="*", description="A glob on the Transaction's name.")
    seconds: float = Field(default=0.0, description="How long a delay lasts.")

    @classmethod
    def parse(cls, text: str) -> Fault:
        spec, _, transaction = text.strip().partition("@")
        try:
            operation, index, point, *duration = spec.split(":")
            if len(duration) > 1:
                raise ValueError(spec)
            seconds = parse_duration(duration[0]).total_seconds() if duration else 0.0
            return cls(
                operation=operation,
                index=int(index),
                point=FaultPoint(point),
                transaction=transaction or "*",
                seconds=seconds,
            )
        except ValueError as err:
            raise ValueError(
                f"fault {text!r} is not operation:index:point[:duration][@transaction], "
                "e.g. apply:2:before, undo:0:after@deploy-v2 or apply:1:before:5s"
            ) from err

    def matches(self, operation: str, index: int, transaction: str) -> bool:
        return (
            self.operation == operation
            and self.index == index
            and fnmatch.fnmatchcase(transaction, self.transaction)
        )


def faults_from_env(
    value: str | None = None, *, variable: str = "JANUS_FAULTS"
) -> tuple[Fault, ...]:
    text = os.environ.get(variable, "") if value is None else value
    return tuple(Fault.parse(part) for part in text.split(",") if part.strip())


def _landed(result: object) -> bool:
    return True


class Seams(BaseModel):
    """The seams a worker is configured with, and the wrapper that applies them."""

    faults: tuple[Fault, ...] = Field(
        default=(), description="Points where a step fails (JANUS_FAULTS)."
    )
    crashes: tuple[Fault, ...] = Field(
        default=(),
        description="Points where the worker process SIGKILLs itself (JANUS_CRASH_AT).",
    )
    delays: tuple[Fault, ...] = Field(
        default=(), description="Points where a step waits first (JANUS_DELAYS)."
    )
    repeat_activities: bool = Field(
        default=False,
        description="Run every activity's effect twice (JANUS_REPEAT_ACTIVITIES=1): "
        "the proof of idempotence.",
    )
    #: The ``after`` failures that fired: once per transaction, operation and step.
    _fired: set[tuple[str, str, int]] = PrivateAttr(default_factory=set)
    _fired_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_env(cls) -> Seams:
        return cls(
            faults=faults_from_env(),
            crashes=faults_from_env(variable="JANUS_CRASH_AT"),
            delays=faults_from_env(variable="JANUS_DELAYS"),
            repeat_activities=env_flag("JANUS_REPEAT_ACTIVITIES"),
        )

    def around(
        self,
        operation: FaultOperation,
        ref: TransactionRef,
        index: int,
        step: Callable[[], T],
        *,
        landed: Callable[[T], bool] = _landed,
    ) -> T:
        """Run one step inside its seams: ``before`` ones, the step, and, if its
        effect ``landed`` (a lease taken, not found held), the ``after`` ones."""
        self.before(operation, ref, index)
        result = step()
        if landed(result):
            self.after(operation, ref, index)
        return result

    def before(self, operation: FaultOperation, ref: TransactionRef, index: int) -> None:
        self._strike(operation, ref, index, FaultPoint.BEFORE)

    def after(self, operation: FaultOperation, ref: TransactionRef, index: int) -> None:
        self._strike(operation, ref, index, FaultPoint.AFTER)

    def delays_before(self, operation: FaultOperation, ref: TransactionRef, index: int) -> bool:
        """Whether a step waits first: a batch ends before it, so the workflow records
        (and mirrors) what came before the window its delay opens."""
        return bool(_matching(self.delays, operation, ref, index, FaultPoint.BEFORE))

    def repeated(self, work: Callable[[], T]) -> T:
        """An activity's work, run twice when configured: the second run must find
        the first's effect and change nothing."""
        result = work()
        if self.repeat_activities:
            result = work()
        return result

    def _strike(
        self, operation: FaultOperation, ref: TransactionRef, index: int, point: FaultPoint
    ) -> None:
        """Delay, then crash, then fail."""
        for delay in _matching(self.delays, operation, ref, index, point):
            time.sleep(delay.seconds)
        for _crash in _matching(self.crashes, operation, ref, index, point):
            logger.warning("injected crash: SIGKILL %s %s of change %s", point, operation, index)
            for handler in logging.getLogger().handlers:
                with contextlib.suppress(Exception):
                    handler.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        for _fault in _matching(self.faults, operation, ref, index, point):
            if point == FaultPoint.BEFORE:
                raise ChangeRejected(f"injected fault: {operation} of change {index} failed")
            with self._fired_lock:
                key = (ref.uid, operation, index)
                if key in self._fired:
                    continue
                self._fired.add(key)
            raise RuntimeError(f"injected crash after {operation} of change {index}")


def _matching(
    faults: tuple[Fault, ...], operation: str, ref: TransactionRef, index: int, point: FaultPoint
) -> list[Fault]:
    return [f for f in faults if f.point == point and f.matches(operation, index, ref.name)]
