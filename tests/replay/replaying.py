"""Replay recorded workflow histories with today's workflow code, no server needed.

Each fixture is a history a real run of a released Janus recorded
(``tests/replay/record.py``). Replaying it with the current
``TransactionWorkflow`` is what a worker does when it takes over a transaction
that an older worker started (an upgrade mid-flight), and what ``janus retry``
does when it resets a transaction an older version failed. If the workflow code
issues other commands than the history holds, the replay fails; the message
names the history and the rule to follow.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from janus.runtime.worker import workflow_runner
from tests.replay.releases import HISTORIES, ROOT
from workflows import TransactionWorkflow

#: Where a contributor reads what to do when a replay fails.
RULE = (
    "follow the rule for changing workflow code in workflows/__init__.py (README "
    "'Upgrading Janus' and CONTRIBUTING.md): guard the new commands with "
    "workflow.patched('<id>') and keep the old path, keep activity models in "
    "janus/contract/operations.py backward compatible; never re-record a released history "
    "to make this pass"
)


@dataclass(frozen=True)
class RecordedHistory:
    release: str
    name: str
    path: Path
    workflow_id: str
    phase: str
    shows: str

    def __str__(self) -> str:
        return f"{self.release}/{self.name}"


def recorded_histories(root: Path = HISTORIES) -> list[RecordedHistory]:
    """Every fixture of every release, as listed in each release's index.json."""
    found = []
    for index_file in sorted(root.glob("*/index.json")):
        index = json.loads(index_file.read_text())
        for name, entry in index["histories"].items():
            found.append(
                RecordedHistory(
                    release=index["release"],
                    name=name,
                    path=index_file.parent / f"{name}.json",
                    workflow_id=entry["workflowId"],
                    phase=entry["phase"],
                    shows=entry["shows"],
                )
            )
    return found


async def replay_problem(
    recorded: RecordedHistory, workflow_class: type = TransactionWorkflow
) -> str | None:
    """None when the history replays with ``workflow_class``; else what to tell the developer."""
    history = WorkflowHistory.from_json(recorded.workflow_id, recorded.path.read_text())
    replayer = Replayer(
        workflows=[workflow_class],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is None:
        return None
    return (
        f"history {recorded.path.relative_to(ROOT)} (recorded by Janus {recorded.release}: "
        f"{recorded.shows}; ended {recorded.phase}) no longer replays with the current "
        f"{workflow_class.__name__}: a worker upgraded while such a transaction is in "
        f"flight, or `janus retry` of one, would fail it. "
        f"{type(result.replay_failure).__name__}: {_gist(result.replay_failure)}. "
        f"To fix: {RULE}."
    )


def _gist(failure: Exception) -> str:
    """The failure's messages without the stack traces core wraps them in."""
    text = str(failure)
    messages = re.findall(r'message: "((?:[^"\\]|\\.)*)"', text)
    gist = " / ".join(m.split("\\n")[0] for m in messages if m) if messages else text
    return gist[:600]
