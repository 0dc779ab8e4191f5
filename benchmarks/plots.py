"""PNG plots of the results (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

MIB = 1024 * 1024
HISTORY_LIMIT_MIB = 50  # Temporal's default history size limit
MEMORY_GOAL_MIB = 500


def draw(results: dict[str, Any], directory: Path) -> list[Path]:
    out: list[Path] = []
    if "latency" in results:
        out.append(_latency(results["latency"], directory / "latency.png"))
        out.append(_breakdown(results["latency"], directory / "breakdown.png"))
    if "throughput" in results and results["throughput"]["runs"]:
        out.append(_throughput(results["throughput"], directory / "throughput.png"))
    if results.get("scale", {}).get("runs"):
        out.append(_scale(results["scale"], directory / "scale.png"))
    return out


def _latency(latency: dict[str, Any], path: Path) -> Path:
    labels = {"commit": "seed → Committed", "rollback": "failing → RolledBack", "plain": "plain"}
    data, names = [], []
    for kind, runs in latency["runs"].items():
        values = [r["seconds"] * 1000 for r in runs if not r["warmup"]]
        if values:
            data.append(values)
            names.append(labels.get(kind, kind))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot(data, whis=(5, 95), showfliers=True)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel("ms (whiskers: p5-p95)")
    ratio = latency["overhead"]["median_ratio"]
    ax.set_title(f"Seed example latency; overhead {ratio:.2f}x plain" if ratio else "Latency")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _breakdown(latency: dict[str, Any], path: Path) -> Path:
    kinds = ["commit", "rollback"]
    keys = [
        k
        for k in latency["breakdown_mean"]["commit"]
        if any(latency["breakdown_mean"][kind].get(k, 0) > 0.0005 for kind in kinds)
    ]
    fig, ax = plt.subplots(figsize=(10, 4.6))
    cmap = plt.get_cmap("tab20")
    for row, kind in enumerate(kinds):
        left = 0.0
        for i, key in enumerate(keys):
            width = latency["breakdown_mean"][kind].get(key, 0.0) * 1000
            ax.barh(row, width, left=left, color=cmap(i % 20), label=key if row == 0 else None)
            left += width
    ax.set_yticks(range(len(kinds)), ["seed → Committed", "failing → RolledBack"])
    ax.set_xlabel("ms (mean per run)")
    ax.set_title("Where the time goes (workflow history timestamps)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3)
    return _save(fig, path)


def _throughput(throughput: dict[str, Any], path: Path) -> Path:
    runs = throughput["runs"]
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"{r['count']} {r['mode']}" for r in runs]
    values = [r["txn_per_second"] or 0 for r in runs]
    colors = ["tab:blue" if r["mode"] == "independent" else "tab:orange" for r in runs]
    bars = ax.bar(labels, values, color=colors)
    for bar, r in zip(bars, runs, strict=True):
        ax.annotate(
            f"{r['txn_per_second']:.1f}/s\n{r['lease_waits']} waits",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.margins(y=0.2)
    ax.set_ylabel("transactions per second, to all settled")
    ax.set_title("Throughput (transactions applied at once)")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _scale(scale: dict[str, Any], path: Path) -> Path:
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    (a_time, a_per), (a_hist, a_mem) = axes
    for mode, style in (("commit", "o-"), ("rollback", "s--")):
        runs = sorted(
            (r for r in scale["runs"] if r["mode"] == mode),
            key=lambda r: r["changes"],
        )
        done = [r for r in runs if r["ok"]]
        failed = [r for r in runs if not r["ok"]]
        if done:
            xs = [r["changes"] for r in done]
            a_time.plot(xs, [r["seconds"] for r in done], style, label=mode)
            a_per.plot(xs, [r["seconds"] / r["changes"] * 1000 for r in done], style, label=mode)
        for ax, key in ((a_hist, "history_size_bytes"), (a_mem, "worker_peak_rss_bytes")):
            if runs:
                ax.plot(
                    [r["changes"] for r in runs],
                    [(r[key] or 0) / MIB for r in runs],
                    style,
                    label=mode,
                )
            if failed:
                label = f"{mode}: did not finish" if ax is a_hist else None
                ys = [(r[key] or 0) / MIB for r in failed]
                ax.plot(
                    [r["changes"] for r in failed], ys, "x", color="red", markersize=10, label=label
                )
    fit = scale["fits"].get("commit")
    if fit and len(fit["sizes"]) >= 2:
        xs = fit["sizes"]
        line = [fit["fixed_seconds"] + fit["per_change_seconds_fit"] * x for x in xs]
        a_time.plot(xs, line, ":", color="gray", label="linear fit (commit)")
    for ax, limit, text in (
        (a_hist, HISTORY_LIMIT_MIB, "Temporal history limit (50 MiB)"),
        (a_mem, MEMORY_GOAL_MIB, "goal: 500 MiB"),
    ):
        ax.axhline(limit, color="red", ls=":")
        transform = ax.get_yaxis_transform()
        ax.text(0.02, limit, text, transform=transform, fontsize=7, color="red", va="bottom")
    for ax, title, ylabel in (
        (a_time, "Time to terminal phase", "s"),
        (a_per, "Per-change cost", "ms per change"),
        (a_hist, "Workflow history size", "MiB"),
        (a_mem, "Worker peak RSS", "MiB"),
    ):
        ax.set(title=title, ylabel=ylabel, xlabel="changes")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.set_xscale("log")
            ax.legend(fontsize=8)
            if ax in (a_time, a_hist):
                ax.set_yscale("log")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    """PNG for a quick look, SVG (text, diffable) for the published page."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.savefig(path.with_suffix(".svg"), metadata={"Date": None})
    plt.close(fig)
    return path
