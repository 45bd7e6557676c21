"""Learned vs GELATO on the held-out prompts: the comparison ``scripts/train.py`` ends with.

Experiment orchestration, kept apart from the policy classes it runs (:mod:`agents.learned`,
:mod:`agents.registry`): every agent plays the same held-out episodes through
:func:`agents.evaluation.run_agent`, and GELATO's throughput bounds (docs/design.md §5, Bounds)
are drawn next to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import AnalyticPolicy
from agents.bounds import bounds_from_runs
from agents.evaluation import run_agent
from agents.learned import LearnedPolicy
from agents.registry import make_agent
from agents.results import markdown_table, results_table, write_results
from agents.train_envs import build_backend
from gelato_env.backends import PromptSubset
from gelato_env.config import EnvConfig
from gelato_env.env import GelatoEnv
from gelato_env.system import EnergyBudget


@dataclass(frozen=True)
class Comparison:
    """The held-out comparison of a trained agent with GELATO, baselines and GELATO's bounds.

    Attributes:
        rows: the results table (``agents.results.results_table``), one row per agent.
        markdown: the table as Markdown, followed by the bounds.
        bounds: ``gelato_tps``, ``dpp_gap_tps`` (B_0 / V), ``dpp_upper_tps`` (R_GELATO + B_0 / V)
            and, when computed, ``clairvoyant_upper_tps``, tokens/s.
        plot: the throughput bar chart with the bounds drawn.
    """

    rows: list[dict[str, Any]]
    markdown: str
    bounds: dict[str, float]
    plot: Path


def compare_with_agents(
    run_dir: Path,
    env_config: EnvConfig,
    prompt_indices: Sequence[int],
    agents: Sequence[tuple[str, str, Mapping[str, Any]]],
    *,
    n_episodes: int,
    seed: int,
    clairvoyant: bool = True,
) -> Comparison:
    """Evaluate the run's trained agent and ``agents`` on the same held-out episodes.

    Every agent runs through :func:`agents.evaluation.run_agent` (episode i seeded ``seed + i``,
    the queue persisting across episodes) on the prompts ``prompt_indices`` of the trace. The
    DPP bound R_opt <= R_GELATO + B_0 / V needs ``gelato`` among ``agents``; the clairvoyant
    bound needs ``target_only`` (its one-token rounds give each episode's channel draws round
    by round, which are every agent's under i.i.d. block fading).

    Args:
        run_dir: the training run directory (the trained agent; results and plots go here).
        env_config: the evaluation env (replay; its trace is the training trace).
        prompt_indices: the held-out trace prompt indices.
        agents: ``(registry name, label, params)`` of the agents to compare with.
        n_episodes: episodes per agent.
        seed: seed of the first episode.
        clairvoyant: also compute the clairvoyant offline bound.
    """
    kwargs = {**env_config.to_kwargs(), "horizon": None, "reward_mode": "throughput"}

    def make_env(overrides: Mapping[str, Any]) -> GelatoEnv:
        backend = PromptSubset(build_backend(env_config), prompt_indices)
        return GelatoEnv(**{**kwargs, **overrides, "backend": backend})

    policies: list[tuple[str, str, AnalyticPolicy]] = [
        ("learned", "learned", LearnedPolicy(run_dir))
    ]
    policies += [(label, name, make_agent(name, **params)) for name, label, params in agents]
    runs = [
        run_agent(policy, make_env, label=label, agent=name, n_episodes=n_episodes, seed=seed)
        for label, name, policy in policies
    ]
    rows = results_table(runs)
    write_results(rows, run_dir)

    env = make_env({})
    gelato_policy = next((p for _, name, p in policies if name == "gelato"), None)
    bounds = bounds_from_runs(
        runs,
        v=None if gelato_policy is None else float(gelato_policy.v),  # type: ignore[attr-defined]
        system=env.params,
        budget=EnergyBudget(env.config.budget_mode, env.config.budget_value),
        trace=env.backend.trace,
        max_new_tokens=env.backend.max_new_tokens,
        prompt_indices=prompt_indices,
        clairvoyant=clairvoyant,
    )
    env.close()

    lines = [markdown_table(rows), ""]
    lines += [f"- {key}: {value:.3f}" for key, value in bounds.items()]
    markdown = "\n".join(lines)
    (run_dir / "results.md").write_text(markdown + "\n")
    plot = plot_against_bounds(rows, bounds, run_dir / "plots" / "learned_vs_gelato.png")
    return Comparison(rows=rows, markdown=markdown, bounds=bounds, plot=plot)


def plot_against_bounds(
    rows: Sequence[Mapping[str, Any]], bounds: Mapping[str, float], path: Path
) -> Path:
    """Bar chart of each agent's throughput with GELATO's bounds as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.0, 3.5))
    labels = [str(r["agent"]) for r in rows]
    colors = ["C1" if label == "learned" else "C0" for label in labels]
    ax.bar(labels, [float(r["throughput_tps"]) for r in rows], color=colors)
    styles = {
        "dpp_upper_tps": ("GELATO bound R_GELATO + B0/V", "C3", "--"),
        "clairvoyant_upper_tps": ("clairvoyant bound", "C2", ":"),
    }
    for key, (label, color, style) in styles.items():
        if key in bounds and np.isfinite(bounds[key]):
            ax.axhline(
                bounds[key], color=color, linestyle=style, label=f"{label}: {bounds[key]:.1f}"
            )
    ax.set_ylabel("throughput (tokens/s)")
    ax.set_title("held-out prompts: learned vs GELATO")
    ax.tick_params(axis="x", labelrotation=30)
    if any(key in bounds for key in styles):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
