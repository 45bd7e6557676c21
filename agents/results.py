"""The results tables over evaluation seeds: means with 95 % CIs, gains, Markdown and CSV.

:func:`seed_table` turns the runs of :func:`agents.evaluation.run_agent_seeds` (one group of
:class:`~agents.evaluation.AgentRun` per evaluation seed) into one row per agent: each metric of
:meth:`~agents.evaluation.AgentRun.metrics` as its mean over seeds with the half-width of its
95 % Student-t confidence interval (:func:`t_interval`, ``n - 1`` dof; key suffix :data:`CI`).
Gains (throughput, energy per token) are computed per seed against the reference's run of the
same seed (same prompts and channel draws), then summarized the same way; the references are
``dssd`` (the paper's named one), the strongest baseline that meets the energy budget, and the
best static distributed SD baseline. :func:`results_table` is the one-seed case;
:func:`per_seed_rows` gives every run's own metrics. :func:`markdown_table` (with
:func:`table_caption`) and :func:`write_results` (``results.csv``, ``results.md``,
``results_per_seed.csv``) write the tables; :func:`headline` states GELATO's gains in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation import AgentRun
from gelato_env.storage import write_csv_atomic

#: the static distributed SD baselines a gain is reported against
STATIC_AGENTS = ("static", "dssd")

#: the paper's named reference: DSSD (arXiv 2507.12000), the state-of-the-art distributed SD
REFERENCE_AGENT = "dssd"
#: GELATO and its variants (the ablation without early exit, the first build's estimator): reported
#: in their own rows, never the "strongest baseline" GELATO is compared against
GELATO_FAMILY = frozenset({"gelato", "gelato_ema", "lyapunov_only"})
#: a run meets the energy budget when its average spend is at most this share above it
BUDGET_TOLERANCE = 0.01


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and confidence-interval half-width of ``values`` (Student t, ``n - 1`` dof).

    The half-width is ``t_{(1 + level) / 2, n - 1} * s / sqrt(n)`` with ``s`` the sample
    standard deviation: NaN for fewer than two values, 0 when they are all equal.

    >>> mean, half = t_interval([1.0, 2.0, 3.0])
    >>> round(mean, 3), round(half, 3)  # t_{0.975, 2} = 4.303, s = 1
    (2.0, 2.484)
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan
    from scipy.stats import t

    return mean, float(t.ppf((1.0 + level) / 2.0, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


#: suffix of a metric's 95 % confidence-interval half-width in the table rows
CI = "_ci95"


def _summarize(row: dict[str, Any], key: str, values: Sequence[float]) -> None:
    row[key], row[key + CI] = t_interval(values)


def _ratio_gains(
    row: dict[str, Any], per_seed: Sequence[Mapping[str, float]],
    ref: Sequence[Mapping[str, float]] | None, names: tuple[str, str],
) -> None:  # fmt: skip
    """Per-seed gains vs ``ref``'s same-seed run (throughput, energy per token), summarized."""
    for key, metric in zip(names, ("throughput_tps", "energy_per_token_j"), strict=True):
        if ref is None:
            row[key] = row[key + CI] = math.nan
            continue
        gains = [m[metric] / r[metric] - 1.0 for m, r in zip(per_seed, ref, strict=True)]
        _summarize(row, key, gains)


def seed_table(groups: Sequence[Sequence[AgentRun]]) -> list[dict[str, Any]]:
    """One row per agent over several evaluation seeds: means and 95 % CIs, and gains.

    ``groups[j]`` holds seed j's runs, the same agents in the same order in every group. Each
    metric of :meth:`AgentRun.metrics` is reported as its mean over seeds (key ``metric``) and
    the half-width of its 95 % Student-t confidence interval (key ``metric + "_ci95"``, NaN with
    one seed, :func:`t_interval`). Gains are computed per seed against the reference's run of
    the same seed (same prompts and channel draws), then summarized the same way. References,
    chosen on the means:

    * ``*_vs_dssd``: the paper's named reference, the ``dssd`` run (fixed gamma, DSSD payload);
    * ``*_vs_best``: the strongest baseline that meets the energy budget (mean energy within
      :data:`BUDGET_TOLERANCE` of it): the highest-throughput run of any agent outside
      :data:`GELATO_FAMILY` (GELATO, its ablation and its first build are not baselines of
      GELATO) that is lossless and evaluated in the env;
    * ``gain_throughput`` / ``gain_energy_per_token``: the best static distributed SD baseline
      (``static``/``dssd``), whatever its energy (the first build's comparison).

    ``gain_tput_*`` = throughput / reference's - 1; ``gain_j_*`` = energy per token /
    reference's - 1 (negative: saves energy); NaN without the reference. ``meets_budget`` flags
    the runs within the tolerance; ``best_baseline`` names the second reference; ``name`` is the
    registry agent, ``agent`` the row label; ``n_seeds`` the number of seeds.

    Raises:
        ValueError: no group, or groups whose labels differ.
    """
    if not groups:
        raise ValueError("seed_table needs the runs of at least one seed")
    first = groups[0]
    labels = [run.label for run in first]
    for group in groups[1:]:
        if [run.label for run in group] != labels:
            raise ValueError(f"every seed must run the same agents in the same order: {labels} "
                             f"vs {[run.label for run in group]}")  # fmt: skip
    # metrics[i][j]: agent i, seed j
    metrics = [[group[i].metrics() for group in groups] for i in range(len(first))]
    rows: list[dict[str, Any]] = []
    for run, per_seed in zip(first, metrics, strict=True):
        row: dict[str, Any] = {"agent": run.label, "name": run.agent, "n_seeds": len(groups)}
        for key in per_seed[0]:
            _summarize(row, key, [m[key] for m in per_seed])
        rows.append(row)
    in_env = [i for i, run in enumerate(first) if run.closed_form is None]
    for i in in_env:
        rows[i]["meets_budget"] = rows[i]["budget_ratio"] <= 1.0 + BUDGET_TOLERANCE

    def strongest(candidates: Sequence[int]) -> int | None:
        return max(candidates, key=lambda i: rows[i]["throughput_tps"]) if candidates else None

    best_static = strongest([i for i in in_env if first[i].agent in STATIC_AGENTS])
    dssd = [i for i in in_env if first[i].agent == REFERENCE_AGENT]
    reference = next((i for i in dssd if labels[i] == REFERENCE_AGENT), dssd[0] if dssd else None)
    best = strongest([i for i in in_env if first[i].agent not in GELATO_FAMILY
                      and first[i].lossless and rows[i]["meets_budget"]])  # fmt: skip
    for row, per_seed in zip(rows, metrics, strict=True):
        for ref, names in (
            (best_static, ("gain_throughput", "gain_energy_per_token")),
            (reference, ("gain_tput_vs_dssd", "gain_j_vs_dssd")),
            (best, ("gain_tput_vs_best", "gain_j_vs_best")),
        ):
            _ratio_gains(row, per_seed, None if ref is None else metrics[ref], names)
        row["best_static"] = "" if best_static is None else labels[best_static]
        row["best_baseline"] = "" if best is None else labels[best]
    return rows


def results_table(runs: Sequence[AgentRun]) -> list[dict[str, Any]]:
    """:func:`seed_table` of one seed's runs (every ``*_ci95`` is NaN)."""
    return seed_table([runs])


def per_seed_rows(groups: Sequence[Sequence[AgentRun]]) -> list[dict[str, Any]]:
    """Every run's own metrics, one row per (seed, agent): the data behind :func:`seed_table`."""
    return [{"seed": run.seed, "agent": run.label, "name": run.agent, **run.metrics()}
            for group in groups for run in group]  # fmt: skip


#: Markdown columns: row key, title, format of the mean, and whether its CI is shown
TABLE_COLUMNS = (
    ("agent", "agent", "{}", False),
    ("throughput_tps", "tok/s", "{:.2f}", True),
    ("energy_per_token_j", "J/tok", "{:.4f}", True),
    ("budget_ratio", "E/budget", "{:.3f}", True),
    ("energy_budget", "budget", "{:.4f}", False),
    ("mean_accepted", "acc/rnd", "{:.2f}", False),
    ("mean_planned_budget", "plan γ~", "{:.2f}", False),
    ("mean_drafted", "γ", "{:.2f}", False),
    ("backlog_mean_j", "Q mean J", "{:.3f}", False),
    ("gain_tput_vs_dssd", "tput vs dssd", "{:+.1%}", True),
    ("gain_j_vs_dssd", "J/tok vs dssd", "{:+.1%}", True),
    ("gain_tput_vs_best", "tput vs best", "{:+.1%}", True),
    ("gain_j_vs_best", "J/tok vs best", "{:+.1%}", True),
)


def table_caption(rows: Sequence[Mapping[str, Any]]) -> str:
    """What the table's numbers are: the number of seeds and what ``±`` means."""
    n = int(rows[0].get("n_seeds", 1)) if rows else 1
    if n < 2:
        return "One evaluation seed: no confidence intervals (set several `seeds`)."
    return (
        f"Mean ± 95 % CI half-width over {n} evaluation seeds (Student t, {n - 1} dof); gains "
        "are computed per seed against the reference's run of the same seed. E/budget: the "
        "energy spent over the budget's allowance (1 meets it)."
    )


def headline(rows: Sequence[Mapping[str, Any]], agent: str = "gelato") -> list[str]:
    """The first ``agent`` row's gains vs ``dssd`` and the strongest budget-meeting baseline.

    Text lines; means ± 95 % CI half-widths when there are several seeds.
    """
    row = next((r for r in rows if r.get("name", r["agent"]) == agent), None)
    if row is None:
        return []
    label = row["agent"]
    lines = [
        f"{label}: {_cell(row, 'throughput_tps', '{:.2f}')} tok/s, "
        f"{_cell(row, 'energy_per_token_j', '{:.4f}')} J/token, energy "
        f"{_cell(row, 'budget_ratio', '{:.3f}')} x the budget "
        f"({'meets it within 1 %' if row.get('meets_budget') else 'OVER it by more than 1 %'})"
    ]
    best = row["best_baseline"] or "-"
    for suffix, what in (
        ("vs_dssd", "dssd (the paper's named reference)"),
        ("vs_best", f"{best} (the strongest baseline meeting the budget)"),
    ):
        lines.append(
            f"{label} vs {what}: throughput {_cell(row, f'gain_tput_{suffix}', '{:+.1%}')}, "
            f"energy per token {_cell(row, f'gain_j_{suffix}', '{:+.1%}')}"
        )
    if not row.get("meets_budget"):
        lines.append(
            f"{label} spent more than the budget over this run (a short run is dominated by the "
            "queue's transient; the budget is a long-term average): the comparison with "
            "budget-meeting baselines is not like for like"
        )
    return lines


def _fmt(fmt: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def _cell(row: Mapping[str, Any], key: str, fmt: str, ci: bool = True) -> str:
    """``row[key]`` formatted, with `` ± `` its CI half-width when it has a finite one."""
    text = _fmt(fmt, row.get(key))
    half = row.get(key + CI)
    if not ci or text == "-" or half is None or not math.isfinite(half):
        return text
    return f"{text} ± {_fmt(fmt.replace('+', ''), half)}"


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The caption (:func:`table_caption`) and the results as a Markdown table.

    Device-only rows show '-' where not applicable.
    """
    header = "| " + " | ".join(title for _, title, _, _ in TABLE_COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|"
    lines = [table_caption(rows), "", header, rule]
    for row in rows:
        cells = [_cell(row, key, fmt, ci) for key, _, fmt, ci in TABLE_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(
    rows: Sequence[Mapping[str, Any]], directory: Path,
    per_seed: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[Path, Path]:  # fmt: skip
    """Write ``results.csv`` (means, ``*_ci95`` half-widths) and ``results.md`` to ``directory``.

    Also ``results_per_seed.csv`` when ``per_seed`` rows (:func:`per_seed_rows`) are given.
    Returns the paths of the first two.
    """
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv_atomic(directory / "results.csv", rows)
    if per_seed is not None:
        write_csv_atomic(directory / "results_per_seed.csv", per_seed)
    md_path = directory / "results.md"
    md_path.write_text(markdown_table(rows) + "\n")
    return csv_path, md_path
