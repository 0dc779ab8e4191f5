"""``python -m benchmarks``: run the benchmarks and print the targets table."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks import report
from benchmarks.context import SCENARIOS, BenchConfig, run
from benchmarks.environment import BenchError, stop_all_children
from janus.clients.launcher import LaunchError
from janus.contract.models import MAX_CHANGES


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of numbers, e.g. 10,100"
        ) from None
    if not values or min(values) < 1 or max(values) > MAX_CHANGES:
        raise argparse.ArgumentTypeError(f"give numbers from 1 to {MAX_CHANGES} (MAX_CHANGES)")
    return values


VIA_BRIDGE = (
    "start `janus bridge` and let it start the workflows, so the clock runs from the create "
    "through the bridge; only on a control plane of your own: the bridge watches every namespace"
)
RENDER = (
    "run nothing: print the tables and rewrite report.md and the plots from this results.json "
    "(into --results, default: beside it)"
)
#: (flag, the BenchConfig field it sets, type or action, help); sizes are lists like 10,100.
OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--quick", "quick", "store_true", "a short run with small sizes"),
    ("--runs", "latency_runs", int, "latency runs per kind (20; quick 5)"),
    ("--warmup", "warmup_runs", int, "uncounted warm-up rounds (1)"),
    ("--throughput", "throughput_counts", _sizes, "concurrent transactions (50,200)"),
    ("--no-overlap", "overlap", "store_false", "skip the overlapping-target runs"),
    ("--overlap-groups", "overlap_groups", int, "shared ConfigMaps when overlapping (10)"),
    ("--overlap-shared", "overlap_shared", int, "shared ConfigMaps per transaction (1; 2: a ring)"),
    ("--scale", "scale_sizes", _sizes, "changes per transaction (10,100,1000,5000)"),
    ("--no-rollback", "scale_rollback", "store_false", "scale: commit runs only"),
    ("--writes", "write_sizes", _sizes, "writes: changes per object (10,100,1000,5000)"),
    ("--results", "results_dir", Path, "results directory (results/)"),
    ("--no-plots", "plots", "store_false", "no PNG and SVG plots"),
    ("--via-bridge", "via_bridge", "store_true", VIA_BRIDGE),
    ("--bridge-arg", "bridge_args", "append", "extra argument for `janus bridge`"),
    ("--apply-with", "apply_with", ["api", "kubectl"], "create with the API client or kubectl"),
    ("--keep-namespaces", "keep_namespaces", "store_true", "leave bench namespaces"),
    ("--render", "render", Path, RENDER),
]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark Janus on the local control plane (janus dev up): latency and "
        "overhead, throughput, scale, writes. Prints the targets table; writes results.json, "
        "report.md and PNG plots to the results directory.",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument(
        "scenarios",
        nargs="*",
        choices=[*SCENARIOS, []],
        default=[],
        metavar="SCENARIO",
        help=f"which to run: {', '.join(SCENARIOS)} (default: all)",
    )
    for flag, dest, kind, text in OPTIONS:
        if isinstance(kind, str):
            p.add_argument(flag, dest=dest, action=kind, help=text)
        elif isinstance(kind, list):
            p.add_argument(flag, dest=dest, choices=kind, help=text)
        else:
            metavar = {_sizes: "N,N", int: "N", Path: "PATH"}[kind]
            p.add_argument(flag, dest=dest, type=kind, metavar=metavar, help=text)
    return p


def config_from(args: argparse.Namespace) -> BenchConfig:
    options = vars(args)
    base = BenchConfig.quick() if options.pop("quick", False) else BenchConfig()
    if scenarios := options.pop("scenarios"):
        options["scenarios"] = tuple(dict.fromkeys(scenarios))
    fields = {f.name for f in dataclasses.fields(BenchConfig)}
    overrides: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in options.items() if k in fields
    }
    return dataclasses.replace(base, **overrides)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if "render" in args:
        results = json.loads(args.render.read_text())
        directory = getattr(args, "results_dir", args.render.parent)
        report.write(results, directory, plots=getattr(args, "plots", True))
        print(report.text_report(results))
        return 0
    config = config_from(args)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        results = asyncio.run(run(config))
    except (BenchError, LaunchError) as err:
        print(f"benchmarks: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("benchmarks: interrupted; stopping the worker and bridge", file=sys.stderr)
        stop_all_children()
        # Threads blocked in API calls must not hold the exit; the servers clean up.
        os._exit(130)
    print(report.text_report(results))
    print(f"\nResults: {config.results_dir}/ (results.json, report.md, *.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
