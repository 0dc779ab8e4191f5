"""PNG plots of the results (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

MIB = 1024 * 1024


def draw(results: dict[str, Any], directory: Path) -> list[Path]:
    out: list[Path] = []
    if "latency" in results:
        out.append(_latency(results["latency"], directory / "latency.png"))
        out.append(_breakdown(results["latency"], directory / "breakdown.png"))
    if "throughput" in results and results["throughput"]["runs"]:
        out.append(_throughput(results["throughput"], directory / "throughput.png"))
    scale = results.get("scale")
    if scale and any(r.get("admitted", True) for r in scale["runs"]):
        out.append(_scale(scale, directory / "scale.png"))
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
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


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
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


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
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def _scale(scale: dict[str, Any], path: Path) -> Path:
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    (a_time, a_per), (a_hist, a_mem) = axes
    blocks = [(scale, "")]
    styles = {("commit", ""): "o-", ("rollback", ""): "s--"}
    for block, suffix in blocks:
        for mode in ("commit", "rollback"):
            runs = sorted(
                (r for r in block["runs"] if r["mode"] == mode and r.get("admitted", True)),
                key=lambda r: r["changes"],
            )
            if not runs:
                continue
            style = styles.get((mode, suffix), "^:" if mode == "commit" else "v:")
            label = mode + suffix
            done = [r for r in runs if r["ok"]]
            xs = [r["changes"] for r in done]
            if done:
                a_time.plot(xs, [r["seconds"] for r in done], style, label=label)
                a_per.plot(
                    xs, [r["seconds"] / r["changes"] * 1000 for r in done], style, label=label
                )
            all_x = [r["changes"] for r in runs]
            a_hist.plot(all_x, [r["history_size_bytes"] / MIB for r in runs], style, label=label)
            a_mem.plot(
                all_x, [(r["worker_peak_rss_bytes"] or 0) / MIB for r in runs], style, label=label
            )
            failed = [r for r in runs if not r["ok"]]
            if failed:
                fx = [r["changes"] for r in failed]
                a_hist.plot(
                    fx,
                    [r["history_size_bytes"] / MIB for r in failed],
                    "x",
                    color="red",
                    markersize=10,
                    label=f"{label}: did not finish",
                )
                a_mem.plot(
                    fx,
                    [(r["worker_peak_rss_bytes"] or 0) / MIB for r in failed],
                    "x",
                    color="red",
                    markersize=10,
                )
    fit = scale["fits"].get("commit")
    if fit and len(fit["sizes"]) >= 2:
        xs = fit["sizes"]
        a_time.plot(
            xs,
            [fit["fixed_seconds"] + fit["per_change_seconds_fit"] * x for x in xs],
            ":",
            color="gray",
            label="linear fit (commit)",
        )
    limits = scale["limits"]
    a_hist.axhline(limits["temporal_history_size_error_bytes"] / MIB, color="red", ls=":")
    a_hist.text(
        0.02,
        limits["temporal_history_size_error_bytes"] / MIB,
        "Temporal history limit (50 MiB)",
        transform=a_hist.get_yaxis_transform(),
        fontsize=7,
        color="red",
        va="bottom",
    )
    a_mem.axhline(500, color="red", ls=":")
    a_mem.text(
        0.02,
        500,
        "goal: 500 MiB",
        transform=a_mem.get_yaxis_transform(),
        fontsize=7,
        color="red",
        va="bottom",
    )
    for ax, title, ylabel in (
        (a_time, "Time to terminal phase", "s"),
        (a_per, "Per-change cost", "ms per change"),
        (a_hist, "Workflow history size", "MiB"),
        (a_mem, "Worker peak RSS", "MiB"),
    ):
        if ax.has_data():
            ax.set_xscale("log")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("changes")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8)
    for ax in (a_time, a_hist):
        if ax.has_data():
            ax.set_yscale("log")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def _save(fig: Any, path: Path) -> None:
    """PNG for a quick look, SVG (text, diffable) for the published page."""
    fig.savefig(path, dpi=110)
    fig.savefig(path.with_suffix(".svg"), metadata={"Date": None})
