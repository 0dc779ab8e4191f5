"""``python -m tests.chaos``: the fault explorer (``make chaos SEED=… MINUTES=… TRIALS=…``).

Runs on a control plane of its own (``--state-dir``, default
``$JANUS_STATE_DIR`` or ``~/.local/state/janus/chaos``), since it restarts its
servers; it stops it at the end (``--keep`` leaves it up for a look).
Exit status 1 when any trial broke an invariant.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from pathlib import Path

from tests.chaos.audit import parse
from tests.chaos.campaign import report, run_campaign
from tests.chaos.checker import check
from tests.chaos.record import TrialRecord
from tests.chaos.world import World


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    parser.add_argument("--trials", type=int, default=1000, help="at most this many trials")
    parser.add_argument("--minutes", type=float, default=5.0, help="start no trial after this")
    parser.add_argument("--trial", type=int, default=None, help="replay only this trial")
    default_dir = os.environ.get("JANUS_STATE_DIR") or "~/.local/state/janus/chaos"
    parser.add_argument("--state-dir", type=Path, default=Path(default_dir))
    parser.add_argument(
        "--short-hangs",
        action="store_true",
        help="no request hangs past a lease's duration (as the CI campaign)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the control plane running")
    parser.add_argument(
        "--check",
        type=Path,
        metavar="TRIAL.json",
        help="check a kept trial again (its .audit.jsonl beside it), no servers",
    )
    args = parser.parse_args()
    if args.check is not None:
        sys.exit(_check_again(args.check))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    summary = asyncio.run(_run(args, seed))
    sys.exit(1 if summary.violations else 0)


def _check_again(path: Path) -> int:
    record = TrialRecord.model_validate_json(path.read_text())
    lines = path.with_suffix(".audit.jsonl").read_text().splitlines()
    verdict = check(record, parse(lines))
    print(report(record, verdict.violations) if verdict.violations else "no violations")
    return 1 if verdict.violations else 0


async def _run(args: argparse.Namespace, seed: int):  # type: ignore[no-untyped-def]
    state_dir = args.state_dir.expanduser().absolute()
    world = World(state_dir)
    await world.up()
    try:
        return await run_campaign(
            world,
            seed=seed,
            trials=args.trials,
            minutes=args.minutes,
            only=args.trial,
            records=state_dir / "chaos" / "trials",
            long_hangs=not args.short_hangs,
        )
    finally:
        if not args.keep:
            await world.down(purge=False)


if __name__ == "__main__":
    main()
