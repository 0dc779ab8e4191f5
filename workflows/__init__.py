"""Deterministic saga code: the Transaction workflow. No I/O here.

The rule for changing this code (a transaction may be in flight across an upgrade)
---------------------------------------------------------------------------------

A Transaction's workflow can run for minutes, and a worker of the next release
takes over the ones a worker of the previous release started: it *replays* their
history with its own code. ``janus retry`` does the same with a Failed one, however
old. Replay requires the code to issue, up to the end of the history, exactly the
commands the history records. So:

1. A change that alters the commands the workflow issues (which activities, local
   activities or timers, their order, their names, how many, what starts a batch)
   must be guarded: ``if workflow.patched("<short-descriptive-id>"): new path
   else: old path``. The old path stays until no history recorded without the patch
   can still be replayed (no workflow of a release before it open, none retryable:
   Failed ones can be retried at any age); then ``workflow.deprecate_patch(id)`` for
   one release, then the old path and the call go. Patch ids are listed in the
   README's "Upgrading Janus" section.
2. Activity input and result models (``janus/contract/operations.py``) and the workflow's
   input (``janus.contract.models.TransactionInput``) stay backward compatible both ways:
   add fields with defaults; never remove, rename or retype one; a release must
   read what the previous one wrote, and what it writes must not break the
   previous one (a rolled-back deploy). Activity names (``ops.*`` constants) never
   change.
3. Pure changes need no guard: status text, the status book, logging, anything
   computed from history without issuing a command.
4. ``tests/replay/test_replay.py`` replays the histories recorded by every release
   (``tests/replay/histories/<release>/``) with this code; run it after every change
   here (``.venv/bin/pytest tests/replay -q``; a second, no server). When it fails,
   fix the code, never the fixtures. A new path gets a recorded history of its
   own (``tests/replay/record.py --release unreleased``, CONTRIBUTING.md).
5. A release that changes what the workflow issues bumps ``GENERATION`` in
   ``janus/contract/versioning.py``, so a rolled-back deploy's older workers never take its
   workflows' tasks.
"""

from workflows.transaction import TransactionWorkflow

__all__ = ["TransactionWorkflow"]
