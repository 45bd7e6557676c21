"""Figures of an evaluation, sized for a paper column (headless: the Agg backend, files only).

Every figure is :data:`COLUMN_WIDTH_IN` wide with 7-8 pt fonts and is saved three times by
:func:`save_figure`: PDF and SVG (vector, fonts embedded as TrueType) and PNG (300 dpi). Values
are means over evaluation seeds with 95 % confidence intervals as error bars (the ``*_ci95``
half-widths of :func:`agents.results.seed_table` rows; none with one seed). Energy is shown
next to throughput in its own panel as the share of the budget's allowance spent (``E/budget``,
with the budget at 1 drawn), so a throughput bought by overspending the budget is visible on
the same figure. Points with error bars, never bars: a bar must start at zero, which hides a
tight range, and a bar cut off above zero misleads; two quantities get two panels, never twin
axes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, PercentFormatter

from agents.evaluation import AgentRun
from agents.results import CI

#: sweep results: agent label -> [(swept value, table row: metrics and their ``*_ci95``)]
Sweep = Mapping[str, Sequence[tuple[float, Mapping[str, float]]]]

#: one column of a two-column paper (IEEE, ACM), inches
COLUMN_WIDTH_IN = 3.5
#: raster resolution of the PNG copy
PNG_DPI = 300
#: the formats every figure is saved in
FORMATS = ("pdf", "svg", "png")
#: the budget line's style, and the share-of-budget axis label
BUDGET_LINE: dict[str, Any] = {"color": "0.3", "linestyle": "--", "linewidth": 0.8}
BUDGET_LABEL = "energy / budget"
#: a share-of-budget axis is logarithmic when its values span more than this factor
LOG_RATIO_SPAN = 5.0
#: agents without an energy budget (device-only decoding) in the comparison
NO_BUDGET_MARKER: dict[str, Any] = {"marker": "s", "color": "0.5"}

_STYLE: dict[str, Any] = {
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.0,
    "lines.markersize": 4,
    "errorbar.capsize": 2,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "pdf.fonttype": 42,  # TrueType: text stays text (editable, searchable) in PDF
    "ps.fonttype": 42,
    "svg.fonttype": "none",
}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
# the PDF backend's font subsetting logs every glyph at INFO (Hydra's root level)
logging.getLogger("fontTools").setLevel(logging.WARNING)


@contextmanager
def paper_style() -> Iterator[None]:
    """The figures' matplotlib settings (fonts, line widths, grid), for a ``with`` block."""
    with plt.rc_context(cast(Any, _STYLE)):  # matplotlib types keys as a Literal of names
        yield


def save_figure(fig: Figure, stem: Path) -> tuple[Path, ...]:
    """Save ``fig`` as ``stem``.pdf, .svg and .png (:data:`PNG_DPI`), close it; return the paths.

    The figure keeps its size (no tight bounding box), so it is exactly as wide as made.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = tuple(stem.with_suffix(f".{fmt}") for fmt in FORMATS)
    for path in paths:
        fig.savefig(path, dpi=PNG_DPI)
    plt.close(fig)
    return paths


def _number(value: Any) -> float:
    """A table cell as a float: NaN when empty (a CSV cell that does not apply) or missing."""
    return math.nan if value is None or value == "" else float(value)


def _mean_ci(row: Mapping[str, Any], key: str) -> tuple[float, float]:
    """``row[key]`` and its CI half-width (0 when it has none: one seed)."""
    mean, half = _number(row.get(key)), _number(row.get(key + CI))
    return mean, half if math.isfinite(half) else 0.0


def _dodge(xs: Sequence[float], k: int, n: int, logx: bool) -> list[float]:
    """Shift series k of n sideways by a little, so error bars at one x do not overlap."""
    if n < 2 or len(xs) < 1:
        return list(xs)
    step = (k - (n - 1) / 2.0) * 0.015
    if logx:
        return [x * 10.0 ** (step * max(math.log10(max(xs) / min(xs)), 1.0)) for x in xs]
    span = (max(xs) - min(xs)) or abs(xs[0]) or 1.0
    return [x + step * span for x in xs]


def _series(ax: Axes, sweep: Sweep, key: str, *, logx: bool, scale: float = 1.0) -> None:
    """One error-bar series per label of ``sweep``: ``key`` (x ``scale``) against the x value."""
    for k, (label, points) in enumerate(sweep.items()):
        xs = [x for x, _ in points]
        stats = [_mean_ci(row, key) for _, row in points]
        ax.errorbar(
            _dodge(xs, k, len(sweep), logx), [m * scale for m, _ in stats],
            yerr=[h * scale for _, h in stats], marker=_MARKERS[k % len(_MARKERS)],
            color=f"C{k % 10}", label=label,
        )  # fmt: skip
    if logx:
        ax.set_xscale("log")
        _plain_log(ax.xaxis, [x for points in sweep.values() for x, _ in points])


def _wide(ratios: Sequence[float]) -> bool:
    """Whether shares of the budget (and the budget, 1) span more than :data:`LOG_RATIO_SPAN`."""
    values = [v for v in ratios if math.isfinite(v) and v > 0] + [1.0]
    return max(values) / min(values) > LOG_RATIO_SPAN


def _plain_log(axis: Any, values: Sequence[float]) -> None:
    """Plain tick labels (0.5, 1, 2) on a logarithmic axis spanning ``values``.

    Ticks at 1, 2, 5 x 10^k over up to 1.5 decades, 1, 3 x 10^k up to 3, powers of ten beyond:
    labels that fit a column.
    """
    finite = [v for v in values if math.isfinite(v) and v > 0] or [1.0]
    decades = math.log10(max(finite) / min(finite))
    subs = (1.0, 2.0, 5.0) if decades <= 1.5 else (1.0, 3.0) if decades <= 3.0 else (1.0,)
    axis.set_major_locator(LogLocator(base=10.0, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _budget_axis(ax: Axes, values: Sequence[float]) -> None:
    """A share-of-budget axis: the budget at 1 drawn; logarithmic over a wide span."""
    ax.axhline(1.0, **BUDGET_LINE, label="budget", zorder=1)
    if _wide(values):
        ax.set_yscale("log")
        _plain_log(ax.yaxis, [*values, 1.0])
    ax.set_ylabel(BUDGET_LABEL)


def _no_offset(ax: Axes) -> None:
    """Plain tick labels (no '+1.83e1' offset) on a tight linear y range."""
    if ax.get_yscale() == "linear":
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")


def plot_sweep(
    sweep: Sweep, xlabel: str, stem: Path, *, logx: bool = False, title: str | None = None
) -> tuple[Path, ...]:
    """Throughput (top) and energy over the budget (bottom) per agent against a swept value.

    Args:
        sweep: agent label -> [(x, row)]; rows carry ``throughput_tps`` and ``budget_ratio``
            (and their ``*_ci95``).
        xlabel: the swept quantity, with its unit.
        stem: output path without suffix.
        logx: logarithmic x axis.
        title: optional figure title.
    """
    with paper_style():
        fig, (top, bottom) = plt.subplots(
            2, 1, sharex=True, figsize=(COLUMN_WIDTH_IN, 3.6), layout="constrained"
        )
        _series(top, sweep, "throughput_tps", logx=logx)
        top.set_ylabel("throughput (tokens/s)")
        _no_offset(top)
        _series(bottom, sweep, "budget_ratio", logx=logx)
        ratios = [_number(row.get("budget_ratio")) for p in sweep.values() for _, row in p]
        _budget_axis(bottom, ratios)
        bottom.set_xlabel(xlabel)
        handles, labels = bottom.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=3, frameon=False)
        if title:
            top.set_title(title)
        return save_figure(fig, stem)


def plot_gains(sweep: Sweep, xlabel: str, stem: Path, *, logx: bool = False) -> tuple[Path, ...]:
    """GELATO's throughput gain (top) and energy-per-token change (bottom) per reference.

    Args:
        sweep: series label (e.g. ``GELATO vs dssd``) -> [(x, row)]; rows carry ``gain`` and
            ``gain_j`` (shares; and their ``*_ci95``).
        xlabel: the swept quantity, with its unit.
        stem: output path without suffix.
        logx: logarithmic x axis.
    """
    with paper_style():
        fig, (top, bottom) = plt.subplots(
            2, 1, sharex=True, figsize=(COLUMN_WIDTH_IN, 3.4), layout="constrained"
        )
        for ax, key, ylabel in (
            (top, "gain", "throughput gain"),
            (bottom, "gain_j", "energy/token change"),
        ):
            ax.axhline(0.0, color="0.3", linewidth=0.8, zorder=1)
            _series(ax, sweep, key, logx=logx, scale=100.0)
            ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
            ax.set_ylabel(ylabel)
        bottom.set_xlabel(xlabel)
        handles, labels = top.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=2, frameon=False)
        return save_figure(fig, stem)


def plot_v_tradeoff(
    points: Sequence[tuple[float, Mapping[str, float]]], stem: Path
) -> tuple[Path, ...]:
    """GELATO's throughput, energy over the budget and mean backlog Q against V.

    Three panels sharing the V axis (no twin axes); the throughput axis spans the data, however
    tight, with error bars showing what the spread over seeds is.
    """
    sweep = {"gelato": points}
    with paper_style():
        fig, axes = plt.subplots(
            3, 1, sharex=True, figsize=(COLUMN_WIDTH_IN, 4.2), layout="constrained"
        )
        _series(axes[0], sweep, "throughput_tps", logx=True)
        axes[0].set_ylabel("throughput\n(tokens/s)")
        _no_offset(axes[0])
        _series(axes[1], sweep, "budget_ratio", logx=True)
        _budget_axis(axes[1], [_number(m.get("budget_ratio")) for _, m in points])
        axes[1].legend(loc="best", frameon=False)
        _series(axes[2], sweep, "backlog_mean_j", logx=True)
        axes[2].set_ylabel("mean backlog\nQ (J)")
        axes[2].set_xlabel("V (J² s/token)")
        return save_figure(fig, stem)


def plot_comparison(rows: Sequence[Mapping[str, Any]], stem: Path) -> tuple[Path, ...]:
    """Every agent's throughput (left) and energy over the budget (right), mean ± 95 % CI.

    Filled markers meet the budget (within :data:`agents.results.BUDGET_TOLERANCE`), hollow
    ones do not; agents the budget does not apply to (device-only decoding) show throughput only,
    in gray squares. ``rows`` are :func:`agents.results.seed_table` rows or the same read back
    from ``results.csv``.
    """
    labels = [str(r["agent"]) for r in rows]
    ys = list(range(len(rows)))[::-1]  # the table's order, top to bottom
    with paper_style():
        fig, (left, right) = plt.subplots(
            1, 2, sharey=True, figsize=(COLUMN_WIDTH_IN, 0.9 + 0.17 * len(rows)),
            layout="constrained",
        )  # fmt: skip
        for y, row in zip(ys, rows, strict=True):
            ratio, ratio_ci = _mean_ci(row, "budget_ratio")
            meets = row.get("meets_budget") in (True, "True")  # a table row or a CSV row
            style = {"marker": "o", "color": "C0", "mfc": "C0" if meets else "white"}
            if not math.isfinite(ratio):
                style = NO_BUDGET_MARKER
            tput, tput_ci = _mean_ci(row, "throughput_tps")
            left.errorbar([tput], [y], xerr=[tput_ci], **style)
            if math.isfinite(ratio):
                right.errorbar([ratio], [y], xerr=[ratio_ci], **style)
        left.set_yticks(ys, labels)
        left.set_xlabel("throughput (tokens/s)")
        left.set_xlim(left=0.0)
        right.axvline(1.0, **BUDGET_LINE, label="budget")
        ratios = [_number(r.get("budget_ratio")) for r in rows]
        if _wide(ratios):
            right.set_xscale("log")
            _plain_log(right.xaxis, [*ratios, 1.0])
        right.set_xlabel(BUDGET_LABEL)
        right.plot([], [], "o", color="C0", label="meets budget")
        right.plot([], [], "o", color="C0", mfc="white", label="over budget")
        if not all(math.isfinite(r) for r in ratios):
            right.plot([], [], linestyle="none", **NO_BUDGET_MARKER, label="no energy budget")
        handles, names = right.get_legend_handles_labels()
        fig.legend(handles, names, loc="outside upper center", ncols=2, frameon=False)
        return save_figure(fig, stem)


def plot_timeline(run: AgentRun, stem: Path, max_rounds: int = 300) -> tuple[Path, ...]:
    """Per-round planned budget gamma~ and realized gamma (top), queue Q (bottom) of one run."""
    r = run.rounds
    n = min(max_rounds, len(r["budget"]))
    k = range(n)
    with paper_style():
        fig, (top, bottom) = plt.subplots(
            2, 1, sharex=True, figsize=(COLUMN_WIDTH_IN, 3.0), layout="constrained"
        )
        top.step(k, r["n_drafted"][:n], where="post", color="C1", label="realized γ")
        top.step(k, r["budget"][:n], where="post", color="k", linewidth=0.7, linestyle="--",
                 label="planned γ~")  # fmt: skip
        top.set_ylabel("draft tokens")
        top.legend(loc="upper right", ncols=2, frameon=False)
        top.set_title(f"{run.label}, seed {run.seed}: first {n} rounds")
        bottom.plot(k, r["queue"][:n], color="C3")
        bottom.set_ylabel("queue Q (J)")
        bottom.set_xlabel("round k")
        return save_figure(fig, stem)
