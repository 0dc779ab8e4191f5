"""Which workers may run a workflow: generations of workflow code, as task queues.

Upgrades rely on patching (``workflow.patched``, the rule at the top of
``workflows/__init__.py``): a worker of release N replays and finishes every
workflow an older release started. The reverse is not true: a worker of release
N-1 knows nothing of N's patches or of the fields N added to the activity models
(0.1.0's models even refuse unknown fields), so after a deploy is rolled back it
must not touch a workflow N started. Worker Deployment versioning would route
that, but 0.1.0's workers are unversioned and cannot take part in it. Task
queues can, on any Temporal server, and 0.1.0 already polls one:

- every workflow is started (by the bridge) on the queue of this release's
  **generation**, ``<queue>`` for generation 1 (0.1.0) and ``<queue>-g<N>`` after;
  its activities follow it there, and a reset (``janus retry``) keeps it there;
- a worker polls the queues of every generation it can still replay, from
  ``OLDEST_SERVED`` to ``GENERATION``.

So an older worker never sees a newer generation's tasks: those workflows wait,
untouched, until a worker that knows them is back (rolled forward again), and the
generations an upgrade inherits are finished by the new worker. Bump
``GENERATION`` in a release whose workflows an older worker cannot run (a new
patch id, a new field in ``janus/contract/operations.py``); raise ``OLDEST_SERVED`` only
when no workflow of the older generations can be open or retried any more.
"""

from __future__ import annotations

import os
import socket
from importlib import metadata

#: The generation workflows started by this release belong to.
GENERATION = 2
#: The oldest generation whose workflows this release's worker still runs.
OLDEST_SERVED = 1


def generation_queue(task_queue: str, generation: int = GENERATION) -> str:
    """The task queue of one generation; generation 1 (0.1.0) used the plain name."""
    return task_queue if generation == 1 else f"{task_queue}-g{generation}"


def served_queues(task_queue: str) -> list[str]:
    """Every task queue this release's worker polls, newest first."""
    return [generation_queue(task_queue, g) for g in range(GENERATION, OLDEST_SERVED - 1, -1)]


def build_id() -> str:
    """What this build is, in worker identities (and so in every workflow history):
    ``JANUS_BUILD_ID`` (an image tag, a commit) or the package version."""
    try:
        version = metadata.version("janus")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return os.environ.get("JANUS_BUILD_ID") or f"janus-{version}"


def worker_identity(task_queue: str) -> str:
    """``pid@host build gN queue``: the UI and the history say which build ran each task."""
    return f"{os.getpid()}@{socket.gethostname()} {build_id()} g{GENERATION} {task_queue}"
