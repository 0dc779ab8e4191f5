"""The invariants of the all-or-nothing promise, checked against what the API server recorded.

Input: a trial (``tests.chaos.record``) and the writes of its audit log
(``tests.chaos.audit``). Every target write is attributed by the user the API
server authenticated: each Transaction of a trial runs as a service account of
its own (``spec.serviceAccountName``; the worker impersonates it), so a write
by ``system:serviceaccount:<ns>:<txn's account>`` is that transaction's, and a
write by anyone else is a *foreign* write. The invariants:

``committed``
    every change's effect was in place at the commit point, where the workflow
    decided to commit: after its last target write, at its first lease release
    (it releases before it reports Committed, and a crash in between can let
    another transaction change the targets first), or at the first status write
    reporting Committed if it released none before.
``rolled-back``
    every target the transaction wrote was last written back to its snapshot;
    what another writer wrote after our snapshot survives (no write of ours
    follows it). Another writer is anyone outside Janus, or another transaction
    whose write a later run of ours found (a reset's run takes the lease again).
``failed``
    the status names every target not restored, with why, and each of them
    carries another writer's change made after our snapshot.
``fencing``
    no write of a transaction to a target unless it holds the target's lease,
    unexpired, when the API server receives the write, but for the write in flight
    when someone took it by hand from the transaction while its term ran (the
    check and the write are two requests): before that term ends, within an
    attempt's write window, and no further write to that target;
    none from a base older
    than a foreign write: no write takes away what another writer wrote after
    our snapshot (overwrites it, restores the snapshot over it, re-creates what
    it deleted; a patch of other keys leaves it, and is no violation); none
    after the transaction's terminal status.
``leftovers``
    no lease, snapshot or Transaction finalizer left; every Transaction reached
    a terminal phase.
``serial``
    committed transactions over shared targets are equivalent to a serial
    order: their writes to a target do not interleave, each saw (in its
    snapshot) the result of the one before, and the order has no cycle. A
    reset runs a transaction again: its last run (from its last take of the
    target's lease) is the one placed in the order.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise
from typing import Any

from janus.contract.operations import API_SERVER_SLACK, ATTEMPT_WRITE_WINDOW, CHANGE_MARKER
from tests.chaos.audit import Write
from tests.chaos.record import TERMINAL, ChangeRecord, TargetRef, TrialRecord, TxnRecord

INVARIANTS = ("committed", "rolled-back", "failed", "fencing", "leftovers", "serial")
LEASES = ("coordination.k8s.io", "leases")
SNAPSHOT_LABEL = "backup.janus.io/transaction-uid"
IGNORED_ANNOTATIONS = ("deployment.kubernetes.io/", "kubectl.kubernetes.io/")


@dataclass(frozen=True)
class Violation:
    invariant: str
    txn: str
    message: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.txn}: {self.message}"


@dataclass
class Verdict:
    checked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INVARIANTS, 0))
    violations: list[Violation] = field(default_factory=list)

    def count(self, invariant: str) -> None:
        self.checked[invariant] += 1

    def fail(self, invariant: str, txn: str, message: str) -> None:
        self.violations.append(Violation(invariant, txn, message))


# -- what a user compares --------------------------------------------------------


def view(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """An object as a user compares it: its body, labels, annotations, finalizers."""
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    annotations = {
        k: (v.rsplit("/", 1)[-1] if k == CHANGE_MARKER else v)
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith(IGNORED_ANNOTATIONS)
    }
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    return {
        **body,
        "labels": meta.get("labels") or {},
        "annotations": annotations,
        "finalizers": sorted(meta.get("finalizers") or []),
    }


def contains(wanted: Any, found: Any) -> bool:
    """Whether ``found`` shows ``wanted`` as a merge patch would leave it.

    A None in ``wanted`` means "absent"; lists of objects with a ``name`` are
    matched by name (a strategic merge patch's containers), other lists exactly.
    """
    if isinstance(wanted, dict):
        if not isinstance(found, dict):
            return False
        return all(
            (k not in found or found[k] is None) if v is None else contains(v, found.get(k))
            for k, v in wanted.items()
        )
    if isinstance(wanted, list) and all(isinstance(i, dict) and "name" in i for i in wanted):
        if not isinstance(found, list):
            return False
        by_name = {i.get("name"): i for i in found if isinstance(i, dict)}
        return all(contains(i, by_name.get(i["name"])) for i in wanted)
    return bool(wanted == found)


def has_effect(change: ChangeRecord, obj: dict[str, Any] | None) -> bool:
    if change.type == "Delete":  # gone, or going (another's finalizer holds it)
        return obj is None or bool((obj.get("metadata") or {}).get("deletionTimestamp"))
    if obj is None:
        return False
    content = change.content or {}
    if change.type in ("Create", "Update"):
        content = {k: v for k, v in content.items() if k not in ("apiVersion", "kind")}
    return contains(content, obj)


# -- the trial's history, from the audit log -----------------------------------------


class History:
    """Per target, the writes that changed it, and who made them."""

    def __init__(self, trial: TrialRecord, writes: Iterable[Write]) -> None:
        self.trial = trial
        self.writes = sorted(writes, key=lambda w: w.seq)
        keys = {t.key for t in trial.targets}
        self.by_target: dict[str, list[Write]] = {k: [] for k in keys}
        self.leases: dict[str, list[Write]] = {}
        #: by (namespace, name): an earlier trial's workflows may still be writing the
        #: status of its own t0, t1, ... in another namespace
        self.status: dict[tuple[str, str], list[Write]] = {}
        self.shards: dict[str, list[Write]] = {}
        lease_names = {t.lease for t in trial.targets}
        for w in self.writes:
            if w.key in keys and w.effect()[0]:
                self.by_target[w.key].append(w)
            elif (w.group, w.resource) == LEASES and w.name in lease_names and w.succeeded:
                self.leases.setdefault(w.name, []).append(w)
            elif w.resource == "transactions" and w.subresource == "status" and w.succeeded:
                self.status.setdefault((w.namespace, w.name), []).append(w)
            elif w.resource in ("configmaps", "secrets") and w.succeeded and w.verb != "delete":
                request = w.request if isinstance(w.request, dict) else {}
                uid = ((request.get("metadata") or {}).get("labels") or {}).get(SNAPSHOT_LABEL)
                if uid:
                    self.shards.setdefault(uid, []).append(w)
        self.users = {txn.user: txn for txn in trial.txns}

    def state_at(self, target: TargetRef, seq: int) -> dict[str, Any] | None:
        """The target after every write before position ``seq``."""
        state = self.trial.initial.get(target.key)
        for w in self.by_target[target.key]:
            if w.seq >= seq:
                break
            state = w.effect()[1]
        return state

    def own(self, txn: TxnRecord, target: TargetRef) -> list[Write]:
        return [w for w in self.by_target[target.key] if w.user == txn.user]

    def foreign(self, target: TargetRef) -> list[Write]:
        return [w for w in self.by_target[target.key] if w.user not in self.users]

    def snapshot(
        self, txn: TxnRecord, index: int, *, since: int | None = None
    ) -> tuple[bool, dict[str, Any] | None]:
        """(taken?, the object as the transaction's snapshot recorded it).

        A snapshot retaken by a retried attempt replaces the first one, but only
        until the transaction's first target write: what it records after that
        is no longer the state before the transaction. ``since``: only what was
        recorded after that position (a later run's, after a reset).
        """
        after = since if since is not None else -1
        first = min(
            (w.seq for w in self.writes if w.user == txn.user and w.seq > after), default=None
        )
        shards = [
            s
            for s in self.shards.get(txn.uid, [])
            if s.seq > after and (first is None or s.seq < first)
        ]
        for shard in reversed(shards):
            data = (shard.request or {}).get("data") or {}
            text = data.get(f"{index}.json")
            if text is None:
                continue
            if shard.resource == "secrets":
                text = base64.b64decode(text).decode()
            loaded: dict[str, Any] = json.loads(text)
            return True, loaded
        if shards or self.lease_taken(txn) is not None:
            return True, None  # absent targets have no shard
        return False, None

    def lease_taken(self, txn: TxnRecord, lease: str | None = None) -> int | None:
        """Where the transaction first held a lease (of ``lease``, or any)."""
        names = [lease] if lease else list(self.leases)
        seqs = [
            w.seq for name in names for w in self.leases.get(name, []) if _holder(w) == txn.holder
        ]
        return min(seqs) if seqs else None

    def last_taken(self, txn: TxnRecord, lease: str) -> int | None:
        """Where the transaction last took the lease (it was absent or another's before)."""
        taken = None
        for w in self.leases.get(lease, []):
            before = self.lease_state(lease, w.seq)
            ours_now = w.verb != "delete" and _holder(w) == txn.holder
            if ours_now and (before is None or _holder(before) != txn.holder):
                taken = w.seq
        return taken

    def snapshot_base(self, txn: TxnRecord, change: ChangeRecord, since: int | None = None) -> int:
        """The position of the write that made the state the snapshot recorded (-1: before
        the trial): foreign writes after it came after our snapshot. ``since``: of the
        snapshot taken after that position, when there is one (a later run's)."""
        _taken, obj = self.snapshot(txn, change.index, since=since)
        if obj is None and since is not None:
            _taken, obj = self.snapshot(txn, change.index)
        writes = self.by_target[change.target.key]
        if obj is not None:
            rv = int(obj["metadata"]["resourceVersion"])
            older = [w for w in writes if _rv(w) is not None and (_rv(w) or 0) <= rv]
            return older[-1].seq if older else -1
        bound = self.lease_taken(txn, change.target.lease)
        if bound is None:
            mine = self.own(txn, change.target)
            bound = mine[0].seq if mine else None
        if bound is None:
            return -1
        before = [w for w in writes if w.seq < bound]
        return before[-1].seq if before else -1

    def phase_points(self, txn: TxnRecord) -> dict[str, int]:
        """The first status write reporting each phase (of the transaction's final run)."""
        points: dict[str, int] = {}
        for w in self.status.get((txn.namespace, txn.name), []):
            if ((w.response or {}).get("metadata") or {}).get("uid") not in (None, txn.uid):
                continue
            phase = ((w.response or {}).get("status") or {}).get("phase")
            if phase and phase not in points:
                points[phase] = w.seq
        return points

    def commit_point(self, txn: TxnRecord) -> int | None:
        """Where the transaction decided to commit: the first release of a lease it
        held after its last target write, else its first status write saying Committed."""
        reported = self.phase_points(txn).get("Committed")
        if reported is None:
            return None
        last = max(
            (w.seq for c in txn.changes for w in self.own(txn, c.target) if w.seq < reported),
            default=-1,
        )
        releases = [
            w.seq
            for name in {c.target.lease for c in txn.changes}
            for w in self.leases.get(name, [])
            if w.verb == "delete" and last < w.seq < reported and self._held_by(txn, name, w.seq)
        ]
        return min(releases, default=reported)

    def _held_by(self, txn: TxnRecord, lease: str, seq: int) -> bool:
        held = self.lease_state(lease, seq)
        return held is not None and _holder(held) == txn.holder

    def final_point(self, txn: TxnRecord) -> int | None:
        """Where the final phase was last entered (a retry goes Failed -> ... -> RolledBack)."""
        entered: int | None = None
        last: str | None = None
        for w in self.status.get((txn.namespace, txn.name), []):
            phase = ((w.response or {}).get("status") or {}).get("phase")
            if phase != last:
                last, entered = phase, w.seq
        return entered if last == txn.phase else None

    def term_taken_by_hand(self, txn: TxnRecord, lease: str, seq: int) -> datetime | None:
        """When the transaction's term of ``lease`` would have ended, if someone other
        than Janus took the lease from it while that term ran (before position ``seq``).

        No transaction takes a live lease, so a fence reads a batch's leases once,
        before its first write: one taken by hand after that read is seen at the
        next batch, and the batch in flight still writes. The audit log records no
        reads, so the checker allows such writes until the term ends. A live lease
        taken by Janus itself (the same user as ours), or a write after the term,
        is a violation."""
        ours: Write | None = None
        taken: Write | None = None
        for w in self.leases.get(lease, []):
            if w.seq >= seq:
                break
            if w.verb == "delete":
                ours = taken = None
            elif _holder(w) == txn.holder:
                ours, taken = w, None
            elif ours is not None and taken is None:
                taken = w
        if ours is None or taken is None or taken.user == ours.user:
            return None
        term = _expiry(ours)
        return term if term is not None and taken.received < term else None

    def in_flight_when_taken(self, txn: TxnRecord, target: TargetRef, ours: Write) -> bool:
        """Whether ``ours``, a write after someone took the target's lease from us by hand
        (``term_taken_by_hand``), can be the batch's write in flight: what must hold is
        that we notice at the next check and write the target no more. So only our
        first write to it since the takeover, and only within the write window of an
        attempt that began before it (an attempt sends nothing after
        ``ATTEMPT_WRITE_WINDOW``, the API server stores nothing of it after
        ``API_SERVER_SLACK`` more)."""
        leases = [w for w in self.leases.get(target.lease, []) if w.seq < ours.seq]
        held = max((w.seq for w in leases if _holder(w) == txn.holder), default=-1)
        taken = next((w for w in leases if w.seq > held), None)
        if taken is None:
            return False
        again = any(taken.seq < w.seq < ours.seq for w in self.own(txn, target))
        return (
            not again and ours.received < taken.received + ATTEMPT_WRITE_WINDOW + API_SERVER_SLACK
        )

    def lease_state(self, lease: str, seq: int) -> Write | None:
        """The last write to a lease before position ``seq`` (None: none, or deleted)."""
        state = None
        for w in self.leases.get(lease, []):
            if w.seq >= seq:
                break
            state = None if w.verb == "delete" else w
        return state


def _holder(w: Write) -> str | None:
    spec = (w.response or {}).get("spec") or {}
    holder = spec.get("holderIdentity")
    return holder if isinstance(holder, str) else None


def _rv(w: Write) -> int | None:
    rv = ((w.response or {}).get("metadata") or {}).get("resourceVersion")
    return int(rv) if rv and w.verb != "delete" else None


def _uid(obj: dict[str, Any]) -> str | None:
    uid = (obj.get("metadata") or {}).get("uid")
    return uid if isinstance(uid, str) else None


def _expiry(w: Write) -> datetime | None:
    spec = (w.response or {}).get("spec") or {}
    stamp = spec.get("renewTime") or spec.get("acquireTime")
    if not stamp:
        return None
    return datetime.fromisoformat(stamp) + timedelta(seconds=spec.get("leaseDurationSeconds") or 0)


# -- the invariants --------------------------------------------------------------------


def check(trial: TrialRecord, writes: Iterable[Write]) -> Verdict:
    history = History(trial, writes)
    verdict = Verdict()
    for txn in trial.txns:
        if txn.phase == "Committed":
            check_committed(history, txn, verdict)
        elif txn.phase == "RolledBack":
            check_rolled_back(history, txn, verdict)
        elif txn.phase == "Failed":
            check_failed(history, txn, verdict)
        check_fencing(history, txn, verdict)
    check_leftovers(history, verdict)
    check_serial(history, verdict)
    return verdict


def check_committed(history: History, txn: TxnRecord, verdict: Verdict) -> None:
    verdict.count("committed")
    commit = history.commit_point(txn)
    if commit is None:
        verdict.fail("committed", txn.name, "Committed, but no status write says so in the audit")
        return
    for change in txn.changes:
        mine = [w for w in history.own(txn, change.target) if w.seq < commit]
        later = [
            w for w in history.foreign(change.target) if mine and mine[-1].seq < w.seq < commit
        ]
        state = mine[-1].effect()[1] if later else history.state_at(change.target, commit)
        if not has_effect(change, state):
            verdict.fail(
                "committed",
                txn.name,
                f"change {change.index} ({change.type} {change.target.key}) is not in place "
                f"at the commit point: found {view(state)!r}",
            )


def _not_restored(history: History, txn: TxnRecord) -> list[tuple[ChangeRecord, Write]]:
    """Changes whose target we wrote and did not write back to its snapshot last,
    unless another writer has since replaced all of what we wrote (then the target
    is what they made it, which is what a rollback leaves)."""
    left = []
    end = history.final_point(txn)
    for change in txn.changes:
        mine = history.own(txn, change.target)
        if not mine:
            continue
        _taken, snapshot = history.snapshot(txn, change.index)
        if view(mine[-1].effect()[1]) == view(snapshot):
            continue
        if not _superseded(history, txn, change.target, mine[-1], end):
            left.append((change, mine[-1]))
    return left


def _superseded(
    history: History, txn: TxnRecord, target: TargetRef, ours: Write, end: int | None
) -> bool:
    """Whether other writers after ``ours`` (up to ``end``) left nothing of it in place:
    they deleted the object, replaced it with one of their own (another uid), or
    changed every path we changed.

    Another writer is anyone outside Janus, at any time, or another transaction
    before our last take of the target's lease: after a reset, the new run takes
    the lease again and starts from what the other transaction left (a later
    write of another transaction, while we held the lease, replaces nothing of
    ours that a rollback may leave: it is that transaction's fencing violation).
    """
    until = end if end is not None else len(history.writes) + 1_000_000
    retaken = history.last_taken(txn, target.lease)
    others = [
        w
        for w in history.by_target[target.key]
        if w.user != txn.user and ours.seq < w.seq < until
        if w.user not in history.users or (retaken is not None and w.seq < retaken)
    ]
    if not others:
        return False
    now = history.state_at(target, until)
    written = ours.effect()[1]
    if written is None or now is None:
        return (written is None) != (now is None)
    if None not in (_uid(now), _uid(written)) and _uid(now) != _uid(written):
        return True  # deleted and made anew by another: not the object we wrote
    before, after, current = (
        _leaves(history.state_at(target, ours.seq)),
        _leaves(written),
        _leaves(now),
    )
    marker = f"/annotations/{CHANGE_MARKER}"
    changed = [p for p in after if p != marker and before.get(p, _MISSING) != after[p]]
    return all(current.get(p, _MISSING) != after[p] for p in changed)


def check_rolled_back(history: History, txn: TxnRecord, verdict: Verdict) -> None:
    verdict.count("rolled-back")
    for change, last in _not_restored(history, txn):
        _taken, snapshot = history.snapshot(txn, change.index)
        verdict.fail(
            "rolled-back",
            txn.name,
            f"RolledBack, but our last write to {change.target.key} (change {change.index}, "
            f"audit #{last.seq}) left {view(last.effect()[1])!r}, not the snapshot "
            f"{view(snapshot)!r}",
        )


def check_failed(history: History, txn: TxnRecord, verdict: Verdict) -> None:
    verdict.count("failed")
    items = {item.get("index"): item for item in txn.status.get("items") or []}
    for change, _last in _not_restored(history, txn):
        item = items.get(change.index) or {}
        if item.get("rolledBack") or not item.get("error"):
            verdict.fail(
                "failed",
                txn.name,
                f"{change.target.key} (change {change.index}) is not restored, and the "
                f"status does not say so with a reason: {item!r}",
            )
        base = history.snapshot_base(txn, change)
        if not any(w.seq > base for w in history.foreign(change.target)):
            verdict.fail(
                "failed",
                txn.name,
                f"{change.target.key} (change {change.index}) is not restored, and no "
                "other writer changed it after our snapshot",
            )


def check_fencing(history: History, txn: TxnRecord, verdict: Verdict) -> None:
    verdict.count("fencing")
    end = history.final_point(txn)
    for change in txn.changes:
        base = history.snapshot_base(txn, change)
        foreign = [w for w in history.foreign(change.target) if w.seq > base]
        for w in history.own(txn, change.target):
            what = f"write #{w.seq} ({w.verb}) to {change.target.key}"
            lease = history.lease_state(change.target.lease, w.seq)
            expiry = _expiry(lease) if lease is not None else None
            holder = _holder(lease) if lease is not None else None
            if holder != txn.holder:
                term = history.term_taken_by_hand(txn, change.target.lease, w.seq)
                taken_in_flight = term is not None and w.received < term
                if not (taken_in_flight and history.in_flight_when_taken(txn, change.target, w)):
                    verdict.fail(
                        "fencing", txn.name, f"{what} while its lease was held by {holder!r}"
                    )
            elif expiry is None or expiry <= w.received:
                verdict.fail("fencing", txn.name, f"{what} after its lease expired at {expiry}")
            lost = _lost(history, change.target, [f for f in foreign if f.seq < w.seq], w)
            if lost is not None:
                verdict.fail(
                    "fencing",
                    txn.name,
                    f"{what} undid what another writer wrote after our snapshot (#{lost[0].seq} "
                    f"by {lost[0].user}: {lost[1]})",
                )
            if end is not None and w.seq > end:
                verdict.fail("fencing", txn.name, f"{what} after the terminal status (#{end})")


_MISSING = "<absent>"
_EXISTS = "<exists>"


def _leaves(obj: dict[str, Any] | None) -> dict[str, Any]:
    """A view flattened to path -> value (lists whole), plus whether the object exists."""
    flat: dict[str, Any] = {_EXISTS: obj is not None}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}/{k}", v)
        else:
            flat[prefix] = value

    walk("", view(obj) or {})
    return flat


def _lost(
    history: History, target: TargetRef, foreign: list[Write], ours: Write
) -> tuple[Write, str] | None:
    """A foreign change, made after our snapshot and still in place before our write,
    that our write took away: (the foreign write, the path), or None.

    Another writer's change that our write leaves alone (a patch of other keys, a
    finalizer a patch keeps) is not lost; one it overwrites, a restore over it, a
    re-creation of what it deleted, are.
    """
    before_ours = _leaves(history.state_at(target, ours.seq))
    after_ours = _leaves(ours.effect()[1])
    for f in reversed(foreign):
        before, after = _leaves(history.state_at(target, f.seq)), _leaves(f.effect()[1])
        for path in sorted(set(before) | set(after)):
            value = after.get(path, _MISSING)
            if before.get(path, _MISSING) == value:
                continue
            if before_ours.get(path, _MISSING) != value:
                continue  # changed again since, by someone
            if after_ours.get(path, _MISSING) != value:
                return f, path
    return None


def check_leftovers(history: History, verdict: Verdict) -> None:
    trial = history.trial
    for txn in trial.txns:
        verdict.count("leftovers")
        wrote = any(history.own(txn, c.target) for c in txn.changes)
        if txn.deleted and txn.phase not in TERMINAL and not wrote:
            continue  # deleted before any worker started it: released at once, nothing done
        if txn.phase not in TERMINAL or txn.name in trial.stuck:
            verdict.fail("leftovers", txn.name, f"never reached a terminal phase ({txn.phase})")
    for what, left in (
        ("lease", trial.leases_left),
        ("snapshot", trial.snapshots_left),
        ("finalizer", trial.finalizers_left),
    ):
        for name in left:
            verdict.fail("leftovers", trial.namespace, f"{what} left: {name}")


def check_serial(history: History, verdict: Verdict) -> None:
    committed = [t for t in history.trial.txns if t.phase == "Committed"]
    graph: dict[str, set[str]] = {t.name: set() for t in committed}
    for target in history.trial.targets:
        writers = []
        for txn in committed:
            change = next((c for c in txn.changes if c.target.key == target.key), None)
            # A reset runs the Transaction again: its last run (from its last take of
            # the lease) is the unit that committed, after what others committed since.
            taken = history.last_taken(txn, target.lease)
            mine = [w for w in history.own(txn, target) if taken is None or w.seq > taken]
            mine = mine or history.own(txn, target)
            if change is not None and mine:
                base = history.snapshot_base(txn, change, since=taken)
                writers.append((mine[0].seq, mine[-1].seq, base, txn))
        if len(writers) < 2:
            continue
        verdict.count("serial")
        writers.sort(key=lambda w: w[0])
        for (_f1, last1, _b1, t1), (first2, _l2, base2, t2) in pairwise(writers):
            graph[t2.name].add(t1.name)
            if first2 < last1:
                verdict.fail(
                    "serial", t2.name, f"its writes to {target.key} interleave with {t1.name}'s"
                )
            elif base2 < last1:
                verdict.fail(
                    "serial",
                    t2.name,
                    f"wrote {target.key} from a snapshot taken before {t1.name}'s write #{last1}",
                )
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as err:
        verdict.fail("serial", "", f"the committed transactions' order has a cycle: {err.args[1]}")
