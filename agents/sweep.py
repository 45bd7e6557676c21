r"""Evaluation sweeps: a grid of (agent x env setting) points, fanned out as Ray tasks.

Each grid point is one :func:`~agents.evaluation.run_agent` call -- the same loop, seeds and
channel draws as ``scripts/evaluate.py`` -- run as a Ray task (``backend="ray"``) or in this
process (``backend="local"``, the reference). Results merge into the evaluation table
(:func:`~agents.evaluation.results_table`, ``write_results``), one row per point, with the
grid's values as extra columns; rows are in grid order whatever the backend.

    python -m agents.sweep --trace PATH --agents gelato static \\
        --grid budget_value=0.1,0.2,0.3 --episodes 4 --out sweep_out [--local] [--address auto]
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.evaluation import AgentRun, results_table, run_agent, write_results
from agents.registry import load_preset

SWEEP_BACKENDS = ("ray", "local")


@dataclass(frozen=True)
class SweepPoint:
    """One evaluation of the grid.

    Attributes:
        agent: registry name of the agent.
        env_overrides: env settings of this point (on top of the shared ones).
        agent_params: the agent's constructor parameters.
        label: row label: the agent name plus the overridden settings.
    """

    agent: str
    env_overrides: Mapping[str, Any] = field(default_factory=dict)
    agent_params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""


def sweep_grid(
    agents: Sequence[str],
    grid: Mapping[str, Sequence[Any]],
    agent_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[SweepPoint]:
    """The Cartesian product of agents and env settings.

    Args:
        agents: agent presets (``conf/agent/<preset>.yaml``, e.g. ``static_topp``; see
            :func:`agents.registry.load_preset`).
        grid: env keyword -> values, e.g. ``{"budget_value": [0.1, 0.2]}``.
        agent_params: per-preset-label constructor parameters, over the preset's own.

    >>> [p.label for p in sweep_grid(["static_topp"], {"budget_value": [0.1, 0.2]})]
    ['static_topp[budget_value=0.1]', 'static_topp[budget_value=0.2]']
    """
    if not agents:
        raise ValueError("agents must not be empty")
    for key, values in grid.items():
        if not values:
            raise ValueError(f"grid[{key!r}] must not be empty")
    keys = list(grid)
    points = []
    for agent in agents:
        preset = load_preset(agent, agent_params)
        for values in itertools.product(*(grid[k] for k in keys)):
            overrides = dict(zip(keys, values, strict=True))
            suffix = ",".join(f"{k}={v}" for k, v in overrides.items())
            points.append(
                SweepPoint(
                    agent=preset.name,
                    env_overrides=overrides,
                    agent_params=preset.params,
                    label=f"{preset.label}[{suffix}]" if suffix else preset.label,
                )
            )
    return points


def evaluate_point(
    point: SweepPoint, env_kwargs: Mapping[str, Any], n_episodes: int, seed: int
) -> AgentRun:
    """Run one grid point (a Ray task body; also the local backend)."""
    from agents.registry import make_agent
    from gelato_env.env import GelatoEnv

    settings = {**env_kwargs, **point.env_overrides}

    def make_env(kwargs: Mapping[str, Any]) -> GelatoEnv:
        return GelatoEnv(**{**settings, **kwargs})

    policy = make_agent(point.agent, **point.agent_params)
    return run_agent(
        policy, make_env, label=point.label or point.agent, agent=point.agent,
        n_episodes=n_episodes, seed=seed,
    )  # fmt: skip


def run_sweep(
    points: Sequence[SweepPoint],
    env_kwargs: Mapping[str, Any],
    *,
    n_episodes: int,
    seed: int = 0,
    backend: str = "ray",
) -> list[AgentRun]:
    """Evaluate every point; with ``backend="ray"`` as Ray tasks (needs ``ray.init`` or starts Ray).

    Returns:
        One :class:`~agents.evaluation.AgentRun` per point, in ``points`` order.
    """
    if backend not in SWEEP_BACKENDS:
        raise ValueError(f"backend must be one of {list(SWEEP_BACKENDS)}, got {backend!r}")
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    if backend == "local":
        return [evaluate_point(p, env_kwargs, n_episodes, seed) for p in points]
    from gelato_env.traces.distributed import import_ray

    ray = import_ray()
    task = ray.remote(num_cpus=1)(evaluate_point)
    env_ref = ray.put(dict(env_kwargs))
    runs: list[AgentRun] = ray.get([task.remote(p, env_ref, n_episodes, seed) for p in points])
    return runs


def sweep_table(points: Sequence[SweepPoint], runs: Sequence[AgentRun]) -> list[dict[str, Any]]:
    """``results_table`` rows plus the grid values (and the agent name) as columns.

    Gains are against the best static baseline over the whole sweep.
    """
    rows = results_table(runs)
    for row, point in zip(rows, points, strict=True):
        row["agent_name"] = point.agent
        row.update({k: v for k, v in point.env_overrides.items() if k not in row})
    return rows


def _parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ValueError(f"grid entries look like key=v1,v2; got {item!r}")
        grid[key] = [_number(v) for v in values.split(",")]
    return grid


def _number(text: str) -> Any:
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        if not (isinstance(value, float) and math.isnan(value)):
            return value
    return text


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """CLI: run a sweep and write ``results.csv`` / ``results.md`` into ``--out``."""
    parser = argparse.ArgumentParser(description="gelato evaluation sweep (Ray-fanned)")
    parser.add_argument("--trace", default=None, help="trace directory (default: built-in)")
    parser.add_argument("--agents", nargs="+", default=["gelato", "static_topp", "dssd"])
    parser.add_argument("--grid", nargs="*", default=[], help="env key=v1,v2 ...")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("sweep_out"))
    parser.add_argument("--local", action="store_true", help="no Ray: run in this process")
    parser.add_argument("--address", default=None, help="Ray cluster address (e.g. auto)")
    parser.add_argument("--num-cpus", type=int, default=None, help="local Ray CPUs")
    args = parser.parse_args(argv)

    trace = args.trace
    if trace is None:
        from gelato_env.traces.default import default_trace_path

        trace = str(default_trace_path())
    points = sweep_grid(args.agents, _parse_grid(args.grid))
    env_kwargs = {"trace_path": trace}
    if args.local:
        runs = run_sweep(
            points, env_kwargs, n_episodes=args.episodes, seed=args.seed, backend="local"
        )
    else:
        from gelato_env.traces.distributed import ray_session

        with ray_session(args.address, args.num_cpus):
            runs = run_sweep(points, env_kwargs, n_episodes=args.episodes, seed=args.seed)
    rows = sweep_table(points, runs)
    csv_path, md_path = write_results(rows, args.out)
    print(md_path.read_text())
    print(f"wrote {csv_path} and {md_path}")
    return rows


if __name__ == "__main__":
    main()
