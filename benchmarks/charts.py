# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PNG charts of a benchmark run, drawn only from the sections' structured `metrics` (see benchmarks/README.md).

A chart whose metrics no section filled is not drawn; a throughput bar appears only for the sections that ran.
matplotlib runs headless (Agg backend), so no display is needed.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot, ticker  # noqa: E402  (after the backend is chosen)

MIB = 1024 * 1024
LOG_SCALE_SPAN = 20  # max/min rate of the throughput chart beyond which its axis is logarithmic
JOINED_METRICS = ("throughput", "wait_latency")  # lists every section may append to
COLOURS = {"collection": "#1f77b4", "floor": "#555555", "uri": "#ff7f0e", "peer": "#2ca02c"}
DPI = 110


@dataclass
class Chart:
    """A written chart: its file name (in the charts directory) and a one-line description for the report."""

    title: str
    filename: str


def write_charts(results: list, directory: Path) -> list:
    """Draw every chart the results have metrics for into `directory`; the list of Charts written."""
    directory.mkdir(parents=True, exist_ok=True)
    merged = merged_metrics(results)
    charts = []
    if "bulk_scaling" in merged:
        charts.append(bulk_scaling_chart(merged["bulk_scaling"], directory / "bulk-scaling.png"))
    if merged.get("throughput"):
        charts.append(throughput_chart(merged["throughput"], directory / "throughput.png"))
    if "listing" in merged:
        charts.append(listing_chart(merged["listing"], directory / "listing.png"))
    if merged.get("wait_latency"):
        charts.append(wait_latency_chart(merged["wait_latency"], directory / "wait-latency.png"))
    return charts


def merged_metrics(results: list) -> dict:
    """One dict of every section's metrics; the lists under JOINED_METRICS are joined in section order."""
    merged = {key: [] for key in JOINED_METRICS}
    for result in results:
        for key, value in result.metrics.items():
            if key in JOINED_METRICS:
                merged[key].extend(value)
            else:
                merged[key] = value
    return merged


def save(figure, path: Path, title: str) -> Chart:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)
    return Chart(title=title, filename=path.name)


# ------------------------------------------------------------------------------------------ bulk
def bulk_scaling_chart(metrics: dict, path: Path) -> Chart:
    """Log-log: seconds against allocations, one panel per operation; the uri loop measured (solid) and its
    straight-line fit beyond the measured sizes (dashed)."""
    counts = metrics["counts"]
    operations = metrics["operations"]
    uri = metrics["uri"]
    figure, axes = pyplot.subplots(1, len(operations), figsize=(4.2 * len(operations), 4.2), sharey=True,
                                   squeeze=False)
    for axis, (operation, series) in zip(axes[0], operations.items()):
        axis.plot(counts, series["collection"], "o-", color=COLOURS["collection"], label=f"nomad_alloc_{operation} task")
        axis.plot(counts, series["floor"], "s-", color=COLOURS["floor"], label="floor: requests, 10 threads")
        axis.plot(uri["counts"], uri["seconds"], "^-", color=COLOURS["uri"], label="uri loop (measured)")
        beyond = [uri["counts"][-1]] + [count for count in counts if count > uri["counts"][-1]]
        if len(beyond) > 1:
            axis.plot(beyond, [uri["fixed"] + uri["per_item"] * count for count in beyond], "--",
                      color=COLOURS["uri"], label="uri loop (extrapolated)")
        plain_log_axes(axis, sorted(set(counts) | set(uri["counts"])))
        axis.set_title(operation)
        axis.set_xlabel("allocations")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("whole playbook / process, seconds (median)")
    axes[0][0].legend(fontsize="small")
    figure.suptitle("Stop / signal / restart: time against the number of allocations")
    return save(figure, path, "Bulk stop / signal / restart against the number of allocations (log–log)")


def plain_log_axes(axis, x_values: list) -> None:
    """Log scales labelled with plain numbers: the measured sizes on x, 1-2-5 steps of seconds on y."""
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.xaxis.set_major_locator(ticker.FixedLocator(x_values))
    axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _position: f"{value:,.0f}"))
    axis.xaxis.set_minor_formatter(ticker.NullFormatter())
    axis.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _position: f"{value:g} s"))
    axis.yaxis.set_minor_formatter(ticker.NullFormatter())


# ------------------------------------------------------------------------------------------ throughput
def throughput_chart(entries: list, path: Path) -> Chart:
    """Grouped horizontal bars, MiB/s: per entry the collection, its floor and (if measured) a peer. Rates that
    span more than LOG_SCALE_SPAN (a log tail next to a 256 MiB stream) are drawn on a log axis."""
    kinds = ["collection", "floor", "peer"]
    height = 0.8 / len(kinds)
    rates = [entry[kind] / MIB for entry in entries for kind in kinds if (entry.get(kind) or 0) > 0]
    logarithmic = max(rates) / min(rates) > LOG_SCALE_SPAN
    left = min(rates) / 2 if logarithmic else 0
    figure, axis = pyplot.subplots(figsize=(9, 1.4 + 1.1 * len(entries)))
    for row, entry in enumerate(entries):
        bars = [(kind, entry[kind]) for kind in kinds if (entry.get(kind) or 0) > 0]
        for slot, (kind, rate) in enumerate(bars):
            y = row + (slot - (len(bars) - 1) / 2) * height
            label = {"collection": entry.get("collection_label", "collection"), "floor": entry.get("floor_label", "floor"),
                     "peer": entry.get("peer_label", "peer")}[kind]
            axis.barh(y, rate / MIB - left, left=left, height=height * 0.9, color=COLOURS[kind])
            axis.text(rate / MIB, y, f" {rate / MIB:.1f} MiB/s  {label}", va="center", fontsize="small")
    axis.set_yticks(range(len(entries)))
    axis.set_yticklabels([entry["label"] for entry in entries], fontsize="small")
    axis.invert_yaxis()
    if logarithmic:
        axis.set_xscale("log")
        axis.set_xlim(left, 30 * max(rates))
        axis.set_xlabel("MiB/s, log scale (median; higher is better)")
    else:
        axis.set_xlim(0, 1.45 * max(rates))
        axis.set_xlabel("MiB/s (median; higher is better)")
    axis.grid(True, axis="x", alpha=0.3)
    axis.set_title("Throughput against the floor")
    return save(figure, path, "Throughput of exec, transfers and logs against their floors")


# ------------------------------------------------------------------------------------------ listing
def listing_chart(metrics: dict, path: Path) -> Chart:
    """Two bar panels (wall seconds, peak RSS MiB) per command, with the targets as lines over the floor."""
    bars = metrics["bars"]
    floor = next(entry for entry in bars if entry["kind"] == "floor")
    labels = [entry["label"] for entry in bars]
    colours = [COLOURS[entry["kind"]] for entry in bars]
    figure, (wall_axis, rss_axis) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    panels = ((wall_axis, "wall", "wall time, seconds (median)", metrics["wall_target_ratio"], "{:.1f} s"),
              (rss_axis, "peak_rss_mib", "peak RSS, MiB (median)", metrics["rss_target_ratio"], "{:.0f} MiB"))
    for axis, key, title, target_ratio, text in panels:
        values = [entry[key] for entry in bars]
        axis.bar(range(len(bars)), values, color=colours)
        for position, value in enumerate(values):
            axis.text(position, value, text.format(value), ha="center", va="bottom", fontsize="small")
        axis.axhline(floor[key] * target_ratio, color="#d62728", linestyle="--", linewidth=1,
                     label=f"target: {target_ratio:g}x the floor (with fields)")
        axis.set_xticks(range(len(bars)))
        axis.set_xticklabels(labels, fontsize="small", linespacing=1.1)
        axis.set_title(title)
        axis.set_ylim(0, 1.15 * max(values + [floor[key] * target_ratio]))
        axis.legend(fontsize="small", loc="upper left")
        axis.grid(True, axis="y", alpha=0.3)
    figure.suptitle(f"Listing {metrics['count']:,} allocations, with and without fields")
    return save(figure, path, f"Listing {metrics['count']:,} allocations with and without `fields`")


# ------------------------------------------------------------------------------------------ wait latency
def wait_latency_chart(entries: list, path: Path) -> Chart:
    """Per wait (drain, deploy, ...): every run's delay between the event and the task's return, its median,
    and the target as a line."""
    figure, axis = pyplot.subplots(figsize=(7, 1.2 + 0.9 * len(entries)))
    for row, entry in enumerate(entries):
        seconds = entry["seconds"]
        axis.scatter(seconds, [row] * len(seconds), color=COLOURS["collection"], alpha=0.7, zorder=3)
        middle = statistics.median(seconds)
        axis.plot([middle, middle], [row - 0.3, row + 0.3], color="#000000", linewidth=2, zorder=4)
        axis.plot([entry["target"], entry["target"]], [row - 0.4, row + 0.4], color="#d62728", linestyle="--",
                  linewidth=1, label="target" if row == 0 else None)
    axis.set_yticks(range(len(entries)))
    axis.set_yticklabels([entry["label"] for entry in entries], fontsize="small")
    axis.set_ylim(-0.6, len(entries) - 0.4)
    axis.set_xlim(left=0)
    axis.set_xlabel("seconds from the event to the task's return (dots: runs, bar: median)")
    axis.legend(fontsize="small", loc="lower right")
    axis.grid(True, axis="x", alpha=0.3)
    return save(figure, path, "Waits: the task's return after the event it waits for")
