"""Who wrote a target since its snapshot, read from its ``metadata.managedFields``.

The API server records, per field manager, which fields it owns and when it last
changed them. Every write of Janus uses the field manager ``janus``; so once
our write has landed, any *other* manager whose entry is new since the snapshot,
newer, or owns more fields than it did, wrote after the snapshot, and (our write
being preconditioned on the snapshot's resourceVersion) after us. That tells
"our write" from "our write plus a foreign edit that kept our marker", which the
marker alone cannot: ``kubectl patch`` keeps annotations it does not name.

An entry only ever loses fields to a later writer (our own write takes fields
from whoever set them before), never gains them without writing, and its time
moves only when its own manager changes something. What a write *did* is then
classified:

- through the ``status`` subresource: a controller's report; the main resource's
  update (our undo) cannot touch it, so it is neither a conflict nor restored;
- through the ``scale`` subresource: a controller (an HPA) owns ``spec.replicas``;
  the rollback keeps the replicas it set rather than fight it;
- to nothing but ``metadata.finalizers`` and ``status`` (a controller of a custom
  resource without a status subresource, or one guarding an object with its
  finalizer): bookkeeping the rollback keeps;
- to anything else: someone else's change; the rollback reports it and leaves it.

A manager that rewrites only values it already owned within the second of its
snapshot entry leaves no trace here (managedFields times have a resolution of
one second); the fingerprint check still catches a change to what a user sees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

FIELD_MANAGER = "janus"
STATUS, SCALE = "status", "scale"


def _entries(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    if obj is None:
        return []
    return list((obj.get("metadata") or {}).get("managedFields") or [])


def _key(entry: dict[str, Any]) -> str:
    return f"{entry.get('manager', '')}|{entry.get('operation', '')}|{entry.get('subresource', '')}"


def _leaves(fields: Any) -> int:
    if not isinstance(fields, dict) or not fields:
        return 1
    return sum(_leaves(v) for k, v in fields.items() if k != ".") or 1


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry.get('time', '')}|{_leaves(entry.get('fieldsV1'))}"


def signatures(obj: dict[str, Any] | None) -> dict[str, str]:
    """Every other manager's entry, compactly: what ``since`` compares with."""
    return {_key(e): _signature(e) for e in _entries(obj) if e.get("manager") != FIELD_MANAGER}


def _newer(before: str | None, entry: dict[str, Any]) -> bool:
    if before is None:
        return True
    time, _, leaves = before.partition("|")
    return entry.get("time", "") != time or _leaves(entry.get("fieldsV1")) > int(leaves or 0)


def _bookkeeping(fields: Any) -> bool:
    if not isinstance(fields, dict):
        return False
    for key, value in fields.items():
        if key == "." or key == "f:status":
            continue
        if key != "f:metadata" or not isinstance(value, dict):
            return False
        if not set(value) <= {"f:finalizers", "."}:
            return False
    return True


@dataclass
class Writes:
    """Other managers' writes since the snapshot, by kind."""

    conflicting: list[str] = field(default_factory=list)
    scaled: bool = False
    bookkeeping: list[str] = field(default_factory=list)
    #: Whether the object's managedFields could be read at all (a client may clear them).
    known: bool = True


def since(before: dict[str, str] | None, current: dict[str, Any] | None) -> Writes:
    """What other managers wrote to ``current`` since the snapshot's ``before``."""
    entries = _entries(current)
    if before is None or (current is not None and not entries):
        return Writes(known=False)
    writes = Writes()
    for entry in entries:
        manager = str(entry.get("manager", "?"))
        if manager == FIELD_MANAGER or not _newer(before.get(_key(entry)), entry):
            continue
        subresource = entry.get("subresource", "")
        if subresource == STATUS:
            continue
        if subresource == SCALE:
            writes.scaled = True
        elif _bookkeeping(entry.get("fieldsV1")):
            writes.bookkeeping.append(manager)
        else:
            writes.conflicting.append(manager)
    return writes


def owned_by_janus(current: dict[str, Any], top: str) -> bool:
    """Whether our own writes own anything under the top-level field ``top``."""
    return any(
        f"f:{top}" in (e.get("fieldsV1") or {})
        for e in _entries(current)
        if e.get("manager") == FIELD_MANAGER and not e.get("subresource")
    )


def foreign_finalizers(current: dict[str, Any]) -> list[str]:
    """Finalizers on ``current`` that another manager owns."""
    names: list[str] = []
    for entry in _entries(current):
        if entry.get("manager") == FIELD_MANAGER:
            continue
        owned = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get("f:finalizers") or {}
        names += [str(json.loads(k[2:])) for k in owned if k.startswith("v:")]
    return names
