"""What ``purse bench`` writes: the JSON file, the PNG chart, and the comparison of two runs.

The chart needs matplotlib, the optional ``bench`` extra (``pip install 'purse[bench]'``;
the development environment has it). Without it the JSON is still written and the bench
says why there is no chart: a benchmark's figures must not depend on a plotting library.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

# Figures whose change is reported: rates and ratios (higher is better), latencies (lower).
_HIGHER_IS_BETTER: Final = ("per_second", "ratio", "ratios")
_LOWER_IS_BETTER: Final = ("_ms",)
# Parts of a report that describe the run rather than measure it.
_NOT_FIGURES: Final = frozenset({"parameters", "environment", "warmup", "chart"})


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", "utf-8")


def write_http_chart(report: dict[str, Any], path: Path) -> str | None:
    """Throughput and p99 against clients, purse beside the floor; the reason if not drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display on a server
        from matplotlib import pyplot, ticker
    except ImportError:
        return "no chart: matplotlib is not installed (pip install 'purse[bench]')"
    levels = [int(level) for level in report["purse"]]
    figure, (rate, latency) = pyplot.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for side, style in (("floor", "s--"), ("purse", "o-")):
        rows = [report[side][str(level)] for level in levels]
        rate.plot(levels, [row["ok_per_second"] for row in rows], style, label=side)
        latency.plot(levels, [row["p99_ms"] for row in rows], style, label=side)
    rate.set(title="2xx answers per second", xlabel="clients", yscale="log", xscale="log")
    latency.set(title="p99 of 2xx answers, ms", xlabel="clients", yscale="log", xscale="log")
    for axes in (rate, latency):
        axes.set_xticks(levels, [str(level) for level in levels])
        axes.yaxis.set_major_formatter(ticker.ScalarFormatter())
        axes.xaxis.set_minor_locator(ticker.NullLocator())
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    figure.suptitle(f"purse bench http ({report.get('backend', '?')}): sends against a no-op POST")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return None


def write_memory_chart(report: dict[str, Any], path: Path) -> str | None:
    """Resident memory against time under load; the reason if not drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return "no chart: matplotlib is not installed (pip install 'purse[bench]')"
    samples = report["samples"]
    figure, axes = pyplot.subplots(figsize=(8, 4), constrained_layout=True)
    axes.plot([s["seconds"] for s in samples], [s["rss_mb"] for s in samples], "o-")
    axes.axvline(60, linestyle=":", color="grey", label="first minute")
    highest = max((s["rss_mb"] for s in samples), default=1.0)
    axes.set(title="RSS of purse serve, MB", xlabel="seconds of load", ylim=(0, highest * 1.15))
    axes.grid(True, alpha=0.3)
    axes.legend()
    parameters = report["parameters"]
    figure.suptitle(
        f"purse bench memory ({report.get('backend', '?')}): "
        f"{parameters['clients']} clients sending for {parameters['seconds']:.0f} s"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return None


def figures(report: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every number of a report, by its dotted path (``purse.16.p99_ms``), run details left out."""
    for key, value in report.items():
        name = f"{prefix}{key}"
        if not prefix and key in _NOT_FIGURES:
            continue
        if isinstance(value, dict):
            yield from figures(value, f"{name}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield name, float(value)


def direction(name: str) -> int:
    """+1 when a larger figure is better, -1 when smaller is, 0 when neither (counts)."""
    last = name.rpartition(".")[2]
    parts = name.split(".")
    if any(last.endswith(end) for end in _LOWER_IS_BETTER):
        return -1
    if any(last.endswith(end) for end in _HIGHER_IS_BETTER) or parts[0] in _HIGHER_IS_BETTER:
        return 1
    return 0


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The change of every figure in either report: old, new, change in percent, and whether
    that is better, worse or neither (``better`` is None for counts)."""
    before, after = dict(figures(old)), dict(figures(new))
    rows = []
    for name in [*before, *(n for n in after if n not in before)]:
        old_value, new_value = before.get(name), after.get(name)
        change = None
        if old_value is not None and new_value is not None and old_value != 0:
            change = round(100 * (new_value - old_value) / abs(old_value), 1)
        sense = direction(name)
        better = None
        if sense and change is not None and not math.isclose(change, 0.0):
            better = (change > 0) == (sense > 0)
        rows.append(
            {
                "figure": name,
                "old": old_value,
                "new": new_value,
                "change_percent": change,
                "better": better,
            }
        )
    return rows
