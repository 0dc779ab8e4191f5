"""User-facing failures: one hierarchy, each message fit for a Transaction's status.

An activity raises one of these; ``activities`` turns it into a non-retryable
Temporal ``ApplicationError`` whose ``type`` is the class name, so the workflow
can tell a bad Transaction from a lost lease without parsing messages, and the
message reaches ``status.message`` and the item's ``error`` unchanged.
``StartupError`` is the one failure of a process rather than of a Transaction.
"""

import contextlib


class StartupError(Exception):
    """A process cannot start (a server unreachable, the CRD missing): the message
    says what to fix. Not a ``JanusError``: no Transaction is involved."""


class JanusError(Exception):
    """A failure the user can act on."""

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The change (position in spec.changes) the failure belongs to, if one.
        self.index = index


class InvalidTransaction(JanusError):
    """The Transaction cannot run as written: unknown kind, missing object, rejected content."""


class Forbidden(JanusError):
    """The API server refused a request for lack of rights."""


class TargetConflict(JanusError):
    """Someone else changed a target between our snapshot and our write."""


class SnapshotLost(JanusError):
    """A change already applied by an earlier run, whose snapshot is gone: the state
    to restore is unknown, so the transaction ends Failed naming the target."""


class LeaseLost(JanusError):
    """A lease we held is now held by another transaction (fencing)."""


class LockTimeout(JanusError):
    """A lease stayed held by another transaction for longer than lockTimeout."""


class ChangeRejected(JanusError):
    """The API server rejected a change while committing."""


class about_change(contextlib.ContextDecorator):
    """Attribute a JanusError raised inside to one change, so its item shows the error."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, err: BaseException | None, tb: object) -> None:
        if isinstance(err, JanusError) and err.index is None:
            err.index = self.index


ERROR_TYPES: tuple[type[JanusError], ...] = (
    InvalidTransaction,
    Forbidden,
    TargetConflict,
    LeaseLost,
    LockTimeout,
    ChangeRejected,
)

#: Names the workflow passes as ``non_retryable_error_types`` (the activities also
#: raise every JanusError as non-retryable). 0.1.0 listed a test seam's
#: ``InjectedFault`` here too; the seams now raise ``ChangeRejected``, and a retry
#: policy is no part of what a replay compares.
NON_RETRYABLE = [cls.__name__ for cls in ERROR_TYPES]
