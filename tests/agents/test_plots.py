"""Figures: three formats at column width, error bars, the budget next to throughput, honest
axes (synthetic table rows; no env)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from PIL import Image

from agents import plots
from agents.evaluation import AgentRun
from agents.results import CI


def _row(tput: float, tput_ci: float, ratio: float, ratio_ci: float, **extra: Any) -> dict:
    return {"throughput_tps": tput, "throughput_tps" + CI: tput_ci, "budget_ratio": ratio,
            "budget_ratio" + CI: ratio_ci, "backlog_mean_j": 5.0, "backlog_mean_j" + CI: 0.5,
            **extra}  # fmt: skip


SWEEP = {
    "gelato": [(0.25, _row(30.0, 0.4, 1.02, 0.01)), (0.57, _row(39.3, 0.2, 1.1, 0.01))],
    "dssd": [(0.25, _row(26.0, 0.3, 6.2, 0.02)), (0.57, _row(26.1, 0.3, 2.06, 0.01))],
}


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure a plot function saves (inspected after it returns)."""
    saved: list[Figure] = []
    save = plots.save_figure

    def keep(fig: Figure, stem: Path) -> tuple[Path, ...]:
        saved.append(fig)
        return save(fig, stem)

    monkeypatch.setattr(plots, "save_figure", keep)
    return saved


def _error_bars(ax: Any) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def _has_budget_line(ax: Any, horizontal: bool = True) -> bool:
    return any(
        line.get_label() == "budget"
        and np.allclose(line.get_ydata() if horizontal else line.get_xdata(), 1.0)
        for line in ax.get_lines()
    )


def _check_files(paths: tuple[Path, ...], stem: Path) -> None:
    assert paths == tuple(stem.with_suffix(f".{fmt}") for fmt in ("pdf", "svg", "png"))
    width_px, _ = Image.open(stem.with_suffix(".png")).size
    assert width_px == round(plots.COLUMN_WIDTH_IN * plots.PNG_DPI)
    box = re.search(rb"/MediaBox \[ ?0 0 ([\d.]+)", stem.with_suffix(".pdf").read_bytes())
    assert box is not None
    assert float(box.group(1)) == pytest.approx(plots.COLUMN_WIDTH_IN * 72)  # points
    svg = stem.with_suffix(".svg").read_text()
    assert 'width="252pt"' in svg
    assert "<text" in svg  # text stays text (svg.fonttype none)


def test_sweep_shows_throughput_and_budget_use_with_error_bars(
    tmp_path: Path, figures: list[Figure]
) -> None:
    paths = plots.plot_sweep(SWEEP, "energy budget (J/round)", tmp_path / "sweep")
    _check_files(paths, tmp_path / "sweep")
    (fig,) = figures
    top, bottom = fig.axes  # two panels, no twin axes
    assert top.get_ylabel() == "throughput (tokens/s)"
    assert bottom.get_ylabel() == plots.BUDGET_LABEL
    for ax in (top, bottom):
        bars = _error_bars(ax)
        assert len(bars) == 2  # one series per agent
        segments = bars[0].lines[2][0].get_segments()
        assert segments[0][1][1] - segments[0][0][1] == pytest.approx(2 * 0.4 if ax is top
                                                                      else 2 * 0.01)  # fmt: skip
    assert _has_budget_line(bottom)
    assert bottom.get_yscale() == "log"  # 1.02 .. 6.2 x the budget: wide
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert set(labels) == {"gelato", "dssd", "budget"}


def test_tight_ranges_get_points_on_a_zoomed_axis(tmp_path: Path, figures: list[Figure]) -> None:
    # V trade-off: 18.31 .. 18.37 tokens/s must not sit on a 0-based axis
    points = [(v, _row(18.31 + 0.015 * i, 0.01, 1.0 + 0.01 * i, 0.002))
              for i, v in enumerate([0.1, 0.3, 1.0, 3.0, 10.0])]  # fmt: skip
    paths = plots.plot_v_tradeoff(points, tmp_path / "v")
    _check_files(paths, tmp_path / "v")
    (fig,) = figures
    tput, ratio, backlog = fig.axes
    low, high = tput.get_ylim()
    assert 18.0 < low < 18.31
    assert 18.37 < high < 18.7
    assert not tput.yaxis.get_major_formatter().get_useOffset()
    assert _has_budget_line(ratio)
    assert ratio.get_yscale() == "linear"
    assert all(_error_bars(ax) for ax in (tput, ratio, backlog))
    assert tput.get_xscale() == "log"


def test_comparison_marks_budget_violations(tmp_path: Path, figures: list[Figure]) -> None:
    rows = [
        {"agent": "gelato", "meets_budget": True, **_row(39.3, 0.2, 0.99, 0.01)},
        {"agent": "dssd", "meets_budget": False, **_row(26.1, 0.3, 2.06, 0.01)},
        {"agent": "device_only", **_row(73.1, 0.0, float("nan"), float("nan"))},
    ]
    paths = plots.plot_comparison(rows, tmp_path / "comparison")
    _check_files(paths, tmp_path / "comparison")
    (fig,) = figures
    left, right = fig.axes
    ticks = sorted(left.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in ticks] == ["gelato", "dssd", "device_only"]  # table order
    assert left.get_xlim()[0] == 0.0  # the throughput axis starts at zero
    assert len(_error_bars(left)) == 3
    assert len(_error_bars(right)) == 2  # device-only has no budget figure
    assert _has_budget_line(right, horizontal=False)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["budget", "meets budget", "over budget", "no energy budget"]
    faces = [bar.lines[0].get_markerfacecolor() for bar in _error_bars(right)]
    assert faces[1] == "white"  # dssd overspends: a hollow marker
    assert _error_bars(left)[2].lines[0].get_marker() == "s"  # device-only: no budget
    # the same figure from results.csv cells (strings; '' where a metric does not apply)
    cells = [{k: "" if v != v else str(v) for k, v in row.items()} for row in rows]
    plots.plot_comparison(cells, tmp_path / "from_csv")
    faces = [bar.lines[0].get_markerfacecolor() for bar in _error_bars(figures[1].axes[1])]
    assert faces[1] == "white"


def test_gains_are_percent_with_error_bars(tmp_path: Path, figures: list[Figure]) -> None:
    gain = {"gain": 0.5, "gain" + CI: 0.01, "gain_j": -0.2, "gain_j" + CI: 0.001}
    sweep = {"GELATO vs dssd": [(0.5, gain), (1.0, gain)]}
    plots.plot_gains(sweep, "uplink bandwidth (MHz)", tmp_path / "gain", logx=True)
    (fig,) = figures
    top, bottom = fig.axes
    assert bottom.get_ylabel() == "energy/token change"
    ys = _error_bars(top)[0].lines[0].get_ydata()
    assert list(ys) == [50.0, 50.0]  # percent
    assert top.yaxis.get_major_formatter()(50.0, 0) == "50%"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["GELATO vs dssd"]


def test_one_seed_draws_no_error_bar(tmp_path: Path, figures: list[Figure]) -> None:
    rows = [{"agent": "gelato", "throughput_tps": 39.0, "budget_ratio": 1.0,
             "throughput_tps" + CI: float("nan"), "budget_ratio" + CI: float("nan")}]  # fmt: skip
    plots.plot_comparison(rows, tmp_path / "one")
    (fig,) = figures
    segments = _error_bars(fig.axes[0])[0].lines[2][0].get_segments()
    assert segments[0][0][0] == segments[0][1][0]  # zero length


def test_timeline_has_two_panels_and_a_legend(tmp_path: Path, figures: list[Figure]) -> None:
    rounds = {"budget": np.array([2.0, 3.0, 0.0]), "n_drafted": np.array([2.0, 1.0, 0.0]),
              "queue": np.array([0.0, 0.5, 0.2])}  # fmt: skip
    run = AgentRun("gelato", "gelato", rounds, (), (), "per_round", 0.5, seed=3)
    paths = plots.plot_timeline(run, tmp_path / "timeline")
    _check_files(paths, tmp_path / "timeline")
    (fig,) = figures
    top, bottom = fig.axes
    assert [t.get_text() for t in top.get_legend().get_texts()] == ["realized γ", "planned γ~"]
    assert bottom.get_ylabel() == "queue Q (J)"
    assert "seed 3" in top.get_title()
