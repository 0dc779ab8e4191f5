"""A campaign: trials until the trial count or the time is up, then the summary.

One ``random.Random(seed)`` drives every choice: it draws each trial's own
seed, and that seed draws the trial (``tests.chaos.plan``). ``only`` replays
one trial of a seed without running the others.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.checker import INVARIANTS, Violation
from tests.chaos.plan import draw
from tests.chaos.record import TrialRecord
from tests.chaos.trial import Trial
from tests.chaos.world import World


@dataclass
class Summary:
    seed: int
    trials: int = 0
    transactions: int = 0
    phases: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    checked: Counter[str] = field(default_factory=Counter)
    violations: list[tuple[TrialRecord, Violation]] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        phases = ", ".join(f"{k} {v}" for k, v in sorted(self.phases.items()))
        checked = ", ".join(f"{k} {self.checked[k]}" for k in INVARIANTS)
        return [
            f"chaos: seed {self.seed}, {self.trials} trials, {self.transactions} transactions "
            f"in {self.seconds:.0f}s",
            f"chaos: phases: {phases}",
            f"chaos: faults by kind: {faults} (total {sum(self.faults.values())})",
            f"chaos: invariants checked: {checked}",
            f"chaos: violations: {len(self.violations)}",
        ]


def trial_seeds(seed: int, count: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.getrandbits(48) for _ in range(count)]


def report(record: TrialRecord, violations: list[Violation]) -> str:
    lines = [
        f"VIOLATION in trial {record.trial} of seed {record.seed} "
        f"(replay: make chaos SEED={record.seed} TRIAL={record.trial})",
        *(f"  {v}" for v in violations),
        "  phases: " + ", ".join(f"{t.name}={t.phase}" for t in record.txns),
        "  trace:",
        *(f"    {e.at:8.3f}s {e.kind:<18} {e.detail}" for e in record.trace),
    ]
    return "\n".join(lines)


async def run_campaign(
    world: World,
    *,
    seed: int,
    trials: int,
    minutes: float,
    only: int | None = None,
    echo: Callable[[str], None] = print,
    records: Path | None = None,
    long_hangs: bool = False,
) -> Summary:
    summary = Summary(seed=seed)
    started = time.monotonic()
    deadline = started + minutes * 60
    echo(f"chaos: seed {seed}, at most {trials} trials or {minutes:g} minutes")
    count = (only + 1) if only is not None else trials
    for index, trial_seed in enumerate(trial_seeds(seed, count)):
        if only is not None and index != only:
            continue
        if only is None and time.monotonic() >= deadline:
            break
        namespace = f"chaos-{index}-{uuid.uuid4().hex[:6]}"
        plan = draw(random.Random(trial_seed), index, namespace, long_hangs=long_hangs)
        trial = Trial(world, plan, seed)
        record, verdict = await trial.run()
        summary.trials += 1
        summary.transactions += len(record.txns)
        summary.phases.update(t.phase or "none" for t in record.txns)
        summary.faults.update(trial.faults)
        summary.checked.update(verdict.checked)
        summary.violations.extend((record, v) for v in verdict.violations)
        phases = " ".join(f"{t.name}={t.phase}" for t in record.txns)
        kinds = ",".join(sorted(trial.faults)) or "-"
        echo(
            f"chaos: trial {index} [{kinds}] {phases}: "
            f"{len(verdict.violations) or 'no'} violations ({time.monotonic() - started:.0f}s)"
        )
        if records is not None:
            lines = trial.audit_lines if verdict.violations else []
            _keep(records / f"trial-{seed}-{index}", record, lines)
        if verdict.violations:
            echo(report(record, verdict.violations))
    summary.seconds = time.monotonic() - started
    for line in summary.lines():
        echo(line)
    return summary


def _keep(stem: Path, record: TrialRecord, audit_lines: list[str]) -> None:
    """The trial's record, and a violating trial's audit lines, to check again or read."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(record.model_dump_json(indent=1))
    if audit_lines:
        stem.with_suffix(".audit.jsonl").write_text("\n".join(audit_lines) + "\n")
