"""Prometheus metrics of Janus, defined once so every process exports the same names.

The names are the seed operator's (``janus_transaction_phase_transitions_total``,
``janus_transaction_duration_seconds``, ``janus_transactions_active``,
``janus_item_operations_total``, ``janus_lock_operations_total``), so dashboards
and alerts written for it keep working.

The bridge derives them from what it watches: each Transaction's status, which
the workflow mirrors after every step. That keeps the workflow free of side
channels and gives one count per Transaction however many workers ran it. The
bridge replica that leads (see ``bridge.leadership``) is the one that counts;
``janus_bridge_leader`` says which one that is.

Label values:

* ``phase``, ``from``, ``to``: the phases of ``janus.contract.models.Phase``; ``from`` is
  ``""`` for a Transaction that had no status yet.
* item ``operation``: ``prepare`` (lease + snapshot + dry run), ``commit``
  (the change's action), ``undo``; ``outcome``: ``succeeded`` or ``failed``.
* lock ``operation``: ``acquire`` (``outcome`` ``acquired``, ``contended`` for
  each wait on a lease another transaction holds, ``timeout`` when
  ``lockTimeout`` ran out) and ``release`` (``released``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TRANSACTIONS_ACTIVE = Gauge(
    "janus_transactions_active",
    "Transactions not yet in a terminal phase (Committed, RolledBack, Failed).",
)

TRANSACTIONS_BY_PHASE = Gauge(
    "janus_transactions",
    "Transactions the bridge watches, by their current phase.",
    ["phase"],
)

PHASE_TRANSITIONS = Counter(
    "janus_transaction_phase_transitions_total",
    "Phase changes of Transactions, as mirrored to their status.",
    ["from", "to"],
)

TRANSACTION_DURATION = Histogram(
    "janus_transaction_duration_seconds",
    "Time from a Transaction's startedAt to its completedAt, by terminal phase.",
    ["phase"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)

ITEM_OPERATIONS = Counter(
    "janus_item_operations_total",
    "Per-change steps: prepare, commit and undo, by outcome.",
    ["operation", "outcome"],
)

LOCK_OPERATIONS = Counter(
    "janus_lock_operations_total",
    "Lease operations on targets: acquired, contended waits, timeouts, releases.",
    ["operation", "outcome"],
)

BRIDGE_LEADER = Gauge(
    "janus_bridge_leader",
    "1 while this bridge replica holds the leader-election Lease and handles Transactions.",
)

WORKFLOW_STARTS = Counter(
    "janus_bridge_workflow_starts_total",
    "Calls to start a Transaction's workflow, by result: started, existing (already "
    "running or closed: the id is the Transaction's uid) or error.",
    ["result"],
)
