"""How tightly GELATO meets binding energy budgets over long runs (issue #13, docs/design.md §5).

For each budget mode (``per_round`` J/round, ``per_token`` J/token, ``per_second`` W) the script
measures two spends on the trace, in the mode's unit, over ``--calib-rounds`` rounds:

* the floor: the least any fixed budget gamma = 0..gamma_max spends (no policy that drafts a
  fixed amount can meet a budget below it);
* the ceiling: what GELATO spends with no budget (Q stays 0).

Budgets at ``floor + f (ceiling - floor)`` for f in ``--fractions`` (default 0.25, 0.5, 0.75)
therefore bind. GELATO then runs ``--rounds`` rounds (default 20,000) across prompts (one long
episode, the energy queue never reset) at each V of ``--v`` (default: GELATO's default V of the
budget mode, ``agents.gelato.DEFAULT_V``), and the table reports the time-average spend over the
budget (``ratio``; goal: within +-1 %), the final backlog Q and the throughput.

    python benchmarks/budget_satisfaction.py [--trace PATH] [--system paper] [--rounds 20000]
        [--v 1.0 0.3] [--fractions 0.25 0.5 0.75] [--json PATH]

Without ``--trace`` it runs on the default trace shipped in the package.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym

from agents.evaluation import AgentRun, run_agent
from agents.registry import load_preset, make_agent
from gelato_env.env import GelatoEnv

RESULTS = Path(__file__).resolve().parent / "results" / "budget_satisfaction.json"
MODES = ("per_round", "per_token", "per_second")
UNITS = {"per_round": "J/round", "per_token": "J/token", "per_second": "W"}


def default_trace() -> str:
    """The default trace's directory (the one shipped in the package)."""
    from gelato_env.traces.default import default_trace_path

    try:
        return str(default_trace_path())
    except ValueError as err:  # TraceError: no finalized default trace
        raise SystemExit(f"no default trace ({err}): pass --trace PATH") from None


def long_run(policy: Any, env_kwargs: dict[str, Any], rounds: int, label: str) -> AgentRun:
    """One episode of ``rounds`` rounds across prompts (TimeLimit truncates it)."""

    def make_env(kwargs: Any) -> gym.Env[Any, Any]:
        env = GelatoEnv(**{**env_kwargs, **kwargs, "horizon": rounds})
        return gym.wrappers.TimeLimit(env, rounds)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_agent(policy, make_env, label=label, agent=label, n_episodes=1, seed=0)


def spend(run: AgentRun) -> float:
    """The run's average spend in its budget mode's unit."""
    return run.metrics()["energy_avg"]


def main() -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default=None, help="trace directory (default: built-in)")
    parser.add_argument("--system", default="paper")
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--calib-rounds", type=int, default=3_000)
    parser.add_argument("--v", type=float, nargs="+", default=None, help="GELATO's V values")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()

    trace = args.trace or default_trace()
    preset = load_preset("gelato")
    v_values: list[float | None] = list(args.v) if args.v else [None]  # None: GELATO's default
    base = {"trace_path": trace, "system": args.system, "prompt_order": "sequential",
            "system_overrides": {"vocab_size": 151_936}}  # fmt: skip
    rows: list[dict[str, Any]] = []
    start = time.time()
    for mode in args.modes:
        free = {**base, "budget_mode": mode, "budget_value": math.inf}
        statics = [
            spend(long_run(make_agent("fixed", gamma=g, protocol="topp"),
                           {**free, "budget_value": 1e9}, args.calib_rounds, "fixed"))
            for g in range(9)
        ]  # fmt: skip
        floor = min(statics)
        ceiling = spend(long_run(make_agent("gelato", **preset.params), free,
                                 args.calib_rounds, "gelato"))  # fmt: skip
        if not ceiling > floor:
            print(f"{mode}: GELATO's free spend {ceiling:.4f} <= floor {floor:.4f}; skipped")
            continue
        for fraction in args.fractions:
            budget = floor + fraction * (ceiling - floor)
            for v in v_values:
                policy = make_agent("gelato", **{**preset.params, "v": v})
                run = long_run(policy, {**base, "budget_mode": mode, "budget_value": budget},
                               args.rounds, "gelato")  # fmt: skip
                v = policy.v  # type: ignore[attr-defined]
                m = run.metrics()
                rows.append({
                    "mode": mode, "unit": UNITS[mode], "fraction": fraction, "floor": floor,
                    "ceiling": ceiling, "budget": budget, "v": v, "spend": m["energy_avg"],
                    "ratio": m["budget_ratio"], "within_1pct": abs(m["budget_ratio"] - 1) <= 0.01,
                    "queue_final_j": m["backlog_final_j"], "queue_mean_j": m["backlog_mean_j"],
                    "throughput_tps": m["throughput_tps"], "n_rounds": m["n_rounds"],
                })  # fmt: skip
    print_table(rows)
    n_ok = sum(r["within_1pct"] for r in rows)
    print(f"\n{n_ok}/{len(rows)} within +-1 % over {args.rounds} rounds "
          f"({time.time() - start:.0f} s; trace {trace}, system {args.system})")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"trace": trace, "system": args.system,
                                     "rounds": args.rounds, "rows": rows}, indent=1))  # fmt: skip
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    header = "| mode | budget | f | V | spend | ratio | ±1 % | Q final J | Q mean J | tok/s |"
    print(header)
    print("|" + "---|" * 10)
    for r in rows:
        print(f"| {r['mode']} | {r['budget']:.4f} {r['unit']} | {r['fraction']:.2f} | {r['v']:g} "
              f"| {r['spend']:.4f} | {r['ratio']:.4f} | {'yes' if r['within_1pct'] else 'no'} "
              f"| {r['queue_final_j']:.2f} | {r['queue_mean_j']:.2f} "
              f"| {r['throughput_tps']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
