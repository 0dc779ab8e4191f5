"""The change kinds, one module each, and the registry the rest of the code picks them from.

Every other module reaches a kind through ``kind_of`` and the ``ChangeKind``
interface (``activities.kinds.base``); this is the one place that maps the
Transaction's ``type`` to its kind. A new kind is a module beside these and a
line here.
"""

from __future__ import annotations

from activities.kinds.base import (
    ChangeKind,
    Found,
    Request,
    UndoDecision,
    UndoFacts,
    UndoWrite,
    Verbs,
)
from activities.kinds.create import Create
from activities.kinds.delete import Delete
from activities.kinds.patch import Patch
from activities.kinds.target import TargetAccess
from activities.kinds.update import Update
from janus.contract.models import ChangeType

KINDS: dict[ChangeType, ChangeKind] = {
    ChangeType.CREATE: Create(),
    ChangeType.UPDATE: Update(),
    ChangeType.PATCH: Patch(),
    ChangeType.DELETE: Delete(),
}


def kind_of(change_type: ChangeType) -> ChangeKind:
    """The kind of a change (its ``type``)."""
    return KINDS[change_type]


__all__ = [
    "KINDS",
    "ChangeKind",
    "Found",
    "Request",
    "TargetAccess",
    "UndoDecision",
    "UndoFacts",
    "UndoWrite",
    "Verbs",
    "kind_of",
]
