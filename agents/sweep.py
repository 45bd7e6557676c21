"""Aggregate a Hydra multirun into one table and one plot (the sweep mechanism's second half).

Sweeps are Hydra multiruns; the joblib launcher runs the jobs in parallel processes::

    python scripts/evaluate.py -m hydra/launcher=joblib env.budget_value=0.3,0.57,1.0
    gelato-aggregate multirun/2026-12-01/12-00-00        # or: python -m agents.sweep <dir>

Each job writes ``results.csv`` into ``<multirun dir>/<job number>/`` and Hydra records the
job's overrides in ``<job>/.hydra/overrides.yaml``. :func:`aggregate` joins them: one row per
(job, agent), the job's swept values as the first columns. :func:`write_aggregate` writes
``aggregate.csv`` and ``aggregate.md`` into the multirun directory and, when a swept value is a
number, ``aggregate.{pdf,svg,png}``: throughput and energy over the budget per agent against it
(:func:`agents.plots.plot_sweep`, with the 95 % CI bars of multi-seed jobs).
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

#: the per-job results file (scripts/evaluate.py, scripts/train.py)
RESULTS = "results.csv"
#: the columns of the Markdown table after the swept values (when the rows have them)
MD_COLUMNS = ("agent", "throughput_tps", "energy_per_token_j", "budget_ratio", "meets_budget")
#: the metrics plotted per agent (:func:`agents.plots.plot_sweep`)
PLOTTED = ("throughput_tps", "budget_ratio")
#: the x axis is logarithmic when the swept values span more than this factor
LOG_X_SPAN = 20.0


def job_dirs(root: Path) -> list[Path]:
    """The job folders of multirun ``root`` that hold a results table, in job-number order.

    Raises:
        ValueError: ``root`` is not a folder, or none of its jobs wrote ``results.csv``.
    """
    if not root.is_dir():
        raise ValueError(f"multirun directory {root} not found")
    jobs = [d for d in root.iterdir() if d.is_dir() and (d / RESULTS).is_file()]
    if not jobs:
        raise ValueError(
            f"{root}: no job folder with {RESULTS} (a Hydra multirun directory looks like "
            f"multirun/<date>/<time>/<job number>/{RESULTS})"
        )
    return sorted(jobs, key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit()
                                       else 0, d.name))  # fmt: skip


def parse_overrides(lines: Sequence[str]) -> dict[str, Any]:
    """Hydra override strings as a mapping, values parsed as YAML (``+``/``~`` prefixes dropped).

    >>> parse_overrides(["env.budget_value=0.3", "+experiment=smoke", "seeds=[0,1]"])
    {'env.budget_value': 0.3, 'experiment': 'smoke', 'seeds': [0, 1]}
    """
    out: dict[str, Any] = {}
    for line in lines:
        key, _, value = str(line).partition("=")
        out[key.lstrip("+~")] = yaml.safe_load(value) if value else None
    return out


def job_overrides(job: Path) -> dict[str, Any]:
    """The job's command-line overrides (``<job>/.hydra/overrides.yaml``); {} without one."""
    path = job / ".hydra" / "overrides.yaml"
    return parse_overrides(yaml.safe_load(path.read_text()) or []) if path.is_file() else {}


def _value(text: str) -> Any:
    """A CSV cell as a number when it is one."""
    try:
        return float(text)
    except ValueError:
        return text


def aggregate(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per (job, agent row of its ``results.csv``), led by the overrides that vary.

    Returns:
        The rows, and the swept keys: overrides whose values differ between jobs (a value set
        for every job alike is a shared setting, not a column).
    """
    jobs = job_dirs(root)
    overrides = [job_overrides(job) for job in jobs]
    keys: list[str] = []
    for values in overrides:
        keys += [k for k in values if k not in keys]
    swept = [k for k in keys if len({repr(v.get(k)) for v in overrides}) > 1]
    rows: list[dict[str, Any]] = []
    for job, values in zip(jobs, overrides, strict=True):
        with (job / RESULTS).open(newline="") as f:
            for result in csv.DictReader(f):
                row: dict[str, Any] = {"job": job.name, **{k: values.get(k) for k in swept}}
                row.update({k: _value(v) for k, v in result.items() if k not in row})
                rows.append(row)
    return rows, swept


def markdown(rows: Sequence[Mapping[str, Any]], swept: Sequence[str]) -> str:
    """The aggregate as a Markdown table: swept values, then :data:`MD_COLUMNS` (and CIs)."""
    columns = [*swept, *(c for c in MD_COLUMNS if any(c in row for row in rows))]

    def cell(row: Mapping[str, Any], key: str) -> str:
        value = row.get(key, "")
        if isinstance(value, float):
            text = f"{value:.3g}" if key in swept else f"{value:.3f}"
            half = row.get(f"{key}_ci95")
            return f"{text} ± {half:.3f}" if isinstance(half, float) and half > 0 else text
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row, c) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def sweep_series(
    rows: Sequence[Mapping[str, Any]], swept: Sequence[str]
) -> tuple[str, dict[str, list[tuple[float, Mapping[str, Any]]]]] | None:
    """The plot's x key and series (label -> [(x, row)]), or None when no swept value is a number.

    x is the first numeric swept key; a series is an agent with the other swept values.
    """
    numeric = [k for k in swept if all(isinstance(r.get(k), (int, float)) for r in rows)]
    if not numeric:
        return None
    x_key, others = numeric[0], [k for k in swept if k != numeric[0]]
    series: dict[str, list[tuple[float, Mapping[str, Any]]]] = {}
    for row in rows:
        label = str(row.get("agent", "?"))
        if others:
            label += "[" + ",".join(f"{k}={row.get(k)}" for k in others) + "]"
        series.setdefault(label, []).append((float(row[x_key]), row))
    for points in series.values():
        points.sort(key=lambda p: p[0])
    return x_key, series


def write_aggregate(root: Path) -> list[Path]:
    """Write ``aggregate.csv``, ``aggregate.md`` and the plot into multirun directory ``root``.

    The plot only when a swept value is a number. Prints the table; returns the paths written.
    """
    rows, swept = aggregate(root)
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with (root / "aggregate.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    table = markdown(rows, swept)
    (root / "aggregate.md").write_text(table)
    print(table)
    written = [root / "aggregate.csv", root / "aggregate.md"]
    plot = sweep_series(rows, swept)
    if plot is not None and all(m in rows[0] for m in PLOTTED):
        from agents.plots import plot_sweep

        x_key, series = plot
        xs = [x for points in series.values() for x, _ in points]
        logx = min(xs) > 0 and max(xs) / min(xs) > LOG_X_SPAN
        written += plot_sweep(series, x_key, root / "aggregate", logx=logx)
    print("wrote " + ", ".join(str(p) for p in written))
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """``gelato-aggregate <multirun dir>`` (:func:`write_aggregate`); exit 2 on a bad directory."""
    parser = argparse.ArgumentParser(
        prog="gelato-aggregate", description="Aggregate a Hydra multirun of gelato's scripts."
    )
    parser.add_argument("dir", type=Path, help="the multirun directory (multirun/<date>/<time>)")
    args = parser.parse_args(argv)
    try:
        write_aggregate(args.dir)
    except ValueError as err:
        parser.exit(2, f"gelato-aggregate: error: {err}\n")


if __name__ == "__main__":
    main()
