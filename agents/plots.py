"""Matplotlib figures of an evaluation (headless: the Agg backend, files only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from agents.evaluation import AgentRun

#: sweep results: agent label -> [(swept value, metrics)]
Sweep = Mapping[str, Sequence[tuple[float, Mapping[str, float]]]]


def plot_sweep(
    sweep: Sweep, metric: str, xlabel: str, ylabel: str, path: Path, *, logx: bool = False
) -> Path:
    """One line per agent: ``metric`` against the swept value."""
    fig, ax = plt.subplots(figsize=(5.0, 3.5))
    for label, points in sweep.items():
        xs = [x for x, _ in points]
        ys = [m[metric] for _, m in points]
        ax.plot(xs, ys, marker="o", label=label)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_v_tradeoff(points: Sequence[tuple[float, Mapping[str, float]]], path: Path) -> Path:
    """GELATO's throughput and mean backlog Q against V (two y axes)."""
    fig, ax = plt.subplots(figsize=(5.0, 3.5))
    vs = [v for v, _ in points]
    ax.plot(vs, [m["throughput_tps"] for _, m in points], marker="o", color="C0")
    ax.set_xscale("log")
    ax.set_xlabel("V (J² s/token)")
    ax.set_ylabel("throughput (tokens/s)", color="C0")
    twin = ax.twinx()
    twin.plot(vs, [m["backlog_mean_j"] for _, m in points], marker="s", color="C3")
    twin.set_ylabel("mean backlog Q (J)", color="C3")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_timeline(run: AgentRun, path: Path, max_rounds: int = 300) -> Path:
    """Per-round planned budget gamma~, realized gamma and queue Q of one run."""
    r = run.rounds
    n = min(max_rounds, len(r["budget"]))
    k = range(n)
    fig, ax = plt.subplots(figsize=(7.0, 3.5))
    ax.step(k, r["budget"][:n], where="post", label="planned γ~")
    ax.step(k, r["n_drafted"][:n], where="post", label="realized γ", alpha=0.7)
    ax.set_xlabel("round k")
    ax.set_ylabel("tokens")
    twin = ax.twinx()
    twin.plot(k, r["queue"][:n], color="C3", label="Q")
    twin.set_ylabel("queue Q (J)", color="C3")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{run.label}: per-round timeline")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
