"""Read a transaction's workflow history: where the time went, lease waits, sizes.

Temporal stamps every event, so the history says, for each activity, how long
it waited for a worker (scheduled → started: Temporal's scheduling) and how
long it ran (started → completed: the work), and how long each workflow task
took. ``breakdown`` attributes every instant of the workflow's life to exactly
one bucket, so the buckets add up to the wall time even when activities overlap
(snapshot batches run concurrently): an instant where some activity runs counts
as that activity's work; otherwise one where an activity waits for a worker
counts as activity scheduling; otherwise a workflow task being handed to the
worker (dispatch) or run by it; otherwise a lease-wait timer.

Local activities run inside a workflow task and leave only a marker with their
completion time (the worker's clock, on the same machine here). Each is taken to
have run from the previous one's completion (or the task's start) to its own, so
a task's time is split between its local activities and the workflow code.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from janus.contract import operations as ops

#: Activity type → what it is for.
CATEGORY = {
    ops.RESOLVE_TARGETS: "resolve (discovery)",
    ops.ACQUIRE_LEASES: "leases",
    ops.RELEASE_LEASES: "leases",
    ops.SNAPSHOT_TARGETS: "snapshots + dry-run",
    ops.APPLY_CHANGES: "mutations",
    ops.UNDO_CHANGES: "mutations",
    ops.MIRROR_STATUS: "status writes",
}
ACTIVITY_QUEUE = "Temporal: activity scheduling"
WORKFLOW_DISPATCH = "Temporal: workflow task dispatch"
WORKFLOW_TASKS = "workflow tasks (worker: workflow code, SDK, completion RPC)"
LEASE_WAIT = "lease waits (timers)"
OTHER = "other"
#: Order of the buckets in tables and plots.
BUCKETS = (
    "resolve (discovery)",
    "leases",
    "snapshots + dry-run",
    "mutations",
    "status writes",
    ACTIVITY_QUEUE,
    WORKFLOW_DISPATCH,
    WORKFLOW_TASKS,
    LEASE_WAIT,
    OTHER,
)

_E = EventType


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


@dataclass
class ActivitySpan:
    type: str
    scheduled: float
    started: float | None = None
    closed: float | None = None
    outcome: str | None = None
    attempt: int = 1
    result: Payloads | None = None
    local: bool = False


@dataclass
class History:
    workflow_id: str
    start: float
    close: float | None
    close_type: str | None
    events: int
    size_bytes: int
    """Sum of the events' serialized sizes."""
    largest_event_bytes: int
    largest_event_type: str
    activities: list[ActivitySpan] = field(default_factory=list)
    workflow_tasks: list[tuple[float, float, float]] = field(default_factory=list)
    """(scheduled, started, completed) of every workflow task."""
    timers: list[tuple[float, float]] = field(default_factory=list)

    def activity_counts(self) -> dict[str, int]:
        return dict(Counter(a.type for a in self.activities))

    def retried(self) -> int:
        return sum(1 for a in self.activities if a.attempt > 1)


_CLOSE_TYPES = {
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued as new",
}


def parse(workflow_id: str, events: list[HistoryEvent]) -> History:
    spans: dict[int, ActivitySpan] = {}
    wt_scheduled: float | None = None
    wt_started: float | None = None
    timers: dict[int, float] = {}
    largest = max(events, key=lambda e: e.ByteSize())
    history = History(
        workflow_id=workflow_id,
        start=_seconds(events[0].event_time),
        close=None,
        close_type=None,
        events=len(events),
        size_bytes=sum(e.ByteSize() for e in events),
        largest_event_bytes=largest.ByteSize(),
        largest_event_type=_E.Name(largest.event_type).removeprefix("EVENT_TYPE_"),
    )
    for event in events:
        at, kind = _seconds(event.event_time), event.event_type
        if kind == _E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            spans[event.event_id] = ActivitySpan(type=attrs.activity_type.name, scheduled=at)
        elif kind == _E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            span = spans[started.scheduled_event_id]
            span.started, span.attempt = at, started.attempt
        elif kind == _E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            span = spans[done.scheduled_event_id]
            span.closed, span.outcome, span.result = at, "completed", done.result
        elif kind == _E.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            span = spans[event.activity_task_failed_event_attributes.scheduled_event_id]
            span.closed, span.outcome = at, "failed"
        elif kind == _E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            span = spans[event.activity_task_timed_out_event_attributes.scheduled_event_id]
            span.closed, span.outcome = at, "timed out"
        elif kind == _E.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
            span = spans[event.activity_task_canceled_event_attributes.scheduled_event_id]
            span.closed, span.outcome = at, "canceled"
        elif kind == _E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            wt_scheduled = wt_started = at
        elif kind == _E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            wt_started = at
        elif kind in (
            _E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            _E.EVENT_TYPE_WORKFLOW_TASK_FAILED,
            _E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
        ):
            if wt_scheduled is not None:
                history.workflow_tasks.append((wt_scheduled, wt_started or wt_scheduled, at))
                wt_scheduled = wt_started = None
        elif kind == _E.EVENT_TYPE_MARKER_RECORDED:
            local = _local_activity(event, history)
            if local is not None:
                spans[event.event_id] = local
        elif kind == _E.EVENT_TYPE_TIMER_STARTED:
            timers[event.event_id] = at
        elif kind == _E.EVENT_TYPE_TIMER_FIRED:
            started_id = event.timer_fired_event_attributes.started_event_id
            history.timers.append((timers.pop(started_id, at), at))
        elif kind in _CLOSE_TYPES:
            history.close, history.close_type = at, _CLOSE_TYPES[kind]
    history.activities = sorted(spans.values(), key=lambda s: s.scheduled)
    return history


LOCAL_ACTIVITY_MARKER = "core_local_activity"


def _local_activity(event: HistoryEvent, history: History) -> ActivitySpan | None:
    """A local activity's span, from its marker and the workflow task that ran it."""
    attrs = event.marker_recorded_event_attributes
    if attrs.marker_name != LOCAL_ACTIVITY_MARKER or not history.workflow_tasks:
        return None
    data = json.loads(attrs.details["data"].payloads[0].data)
    done = data.get("complete_time") or {}
    closed = done.get("seconds", 0) + done.get("nanos", 0) / 1e9
    _scheduled, task_started, _completed = history.workflow_tasks[-1]
    earlier = [
        a.closed
        for a in history.activities
        if a.local and a.closed is not None and task_started <= a.closed <= closed
    ]
    # A long local activity outlives the task that started it (the worker renews
    # the task): then its start is unknown and only its end is counted here.
    began = min(max([task_started, *earlier]), closed)
    span = ActivitySpan(
        type=data.get("activity_type", "?"),
        scheduled=began,
        started=began,
        closed=closed,
        outcome="completed" if "result" in attrs.details else "failed",
        attempt=int(data.get("attempt", 1)),
        result=attrs.details.get("result"),
        local=True,
    )
    history.activities.append(span)
    return span


async def load(client: Client, workflow_id: str) -> History:
    fetched = await client.get_workflow_handle(workflow_id).fetch_history()
    return parse(workflow_id, list(fetched.events))


def breakdown(history: History) -> dict[str, float]:
    """Seconds per bucket over [start, close]; the buckets sum to the wall time."""
    end = history.close if history.close is not None else history.start
    # (time, +1/-1, bucket); a higher bucket rank wins an instant.
    edges: list[tuple[float, int, str]] = []

    def add(begin: float | None, finish: float | None, bucket: str) -> None:
        if begin is None or finish is None or finish <= begin:
            return
        edges.append((begin, 1, bucket))
        edges.append((finish, -1, bucket))

    for span in history.activities:
        add(span.scheduled, span.started, ACTIVITY_QUEUE)
        add(span.started, span.closed, CATEGORY.get(span.type, OTHER))
    for scheduled, started, finish in history.workflow_tasks:
        add(scheduled, started, WORKFLOW_DISPATCH)
        add(started, finish, WORKFLOW_TASKS)
    for begin, finish in history.timers:
        add(begin, finish, LEASE_WAIT)
    rank = {
        bucket: i
        for i, bucket in enumerate((LEASE_WAIT, WORKFLOW_DISPATCH, WORKFLOW_TASKS, ACTIVITY_QUEUE))
    }
    work_rank = len(rank)
    edges.sort(key=lambda e: (e[0], e[1]))
    active: Counter[str] = Counter()
    totals = dict.fromkeys(BUCKETS, 0.0)
    cursor = history.start
    for at, delta, bucket in edges:
        at = min(max(at, history.start), end)
        if at > cursor:
            live = [b for b, n in active.items() if n > 0]
            winner = max(live, key=lambda b: rank.get(b, work_rank)) if live else OTHER
            totals[winner] += at - cursor
            cursor = at
        active[bucket] += delta
    if end > cursor:
        totals[OTHER] += end - cursor
    return totals


def activity_times(history: History) -> dict[str, dict[str, float]]:
    """Per activity type: count, summed scheduling (queue) and summed work seconds."""
    out: dict[str, dict[str, float]] = {}
    for span in history.activities:
        row = out.setdefault(span.type, {"count": 0, "queue": 0.0, "work": 0.0})
        row["count"] += 1
        if span.started is not None:
            row["queue"] += span.started - span.scheduled
            if span.closed is not None:
                row["work"] += span.closed - span.started
    return out


@dataclass
class LeaseWait:
    workflow_id: str
    lease: str
    target: str
    holder: str
    at: float


def lease_waits(client: Client, history: History) -> list[LeaseWait]:
    """Every acquire_leases result that reported a lease held by another transaction."""
    converter = client.data_converter.payload_converter
    waits = []
    for span in history.activities:
        if span.type != ops.ACQUIRE_LEASES or span.result is None:
            continue
        (result,) = converter.from_payloads(list(span.result.payloads), [ops.AcquireLeasesResult])
        assert isinstance(result, ops.AcquireLeasesResult)
        if result.blocked_by is not None:
            blocked = result.blocked_by
            waits.append(
                LeaseWait(
                    workflow_id=history.workflow_id,
                    lease=blocked.lease.name,
                    target=blocked.lease.target,
                    holder=blocked.identity,
                    at=span.started or span.scheduled,
                )
            )
    return waits


def resolved_targets(client: Client, history: History) -> list[ops.ResolvedTarget]:
    """The targets (with their lease names) the workflow resolved, from its history."""
    converter = client.data_converter.payload_converter
    for span in history.activities:
        if span.type == ops.RESOLVE_TARGETS and span.result is not None:
            (result,) = converter.from_payloads(list(span.result.payloads), [ops.ResolveResult])
            assert isinstance(result, ops.ResolveResult)
            return result.targets
    return []


def timestamp(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at).isoformat(timespec="milliseconds")


def summary(history: History) -> dict[str, Any]:
    return {
        "events": history.events,
        "size_bytes": history.size_bytes,
        "largest_event_bytes": history.largest_event_bytes,
        "largest_event_type": history.largest_event_type,
        "close_type": history.close_type,
        "activities": history.activity_counts(),
        "retried_activities": history.retried(),
        "wall_seconds": (history.close - history.start) if history.close else None,
    }
