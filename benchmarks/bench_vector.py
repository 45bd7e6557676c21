"""Native vector env vs N single envs (SyncVectorEnv): env-steps per second, same process.

The single env's figure is benchmarks/bench_env.py's (its ``best_rates``, reused); the
vector env runs at N = 1, 64, 1024 with both randomness modes (``batched``: one generator,
``per_env``: exact single-env streams), against ``gymnasium.vector.SyncVectorEnv`` of N single
envs. Actions are pre-drawn uniformly; episodes autoreset. The trace is bench_env's micro trace
(synthetic statistics: only the speed is measured) or ``--trace PATH``.

    python benchmarks/bench_vector.py [--sizes 1 64 1024] [--env-steps 200000] [--trace PATH]

Every step returns the full ``info`` (all of ``STEP_INFO_KEYS``, fresh arrays each step, with
``final_obs`` / ``final_info`` on autoreset), as SyncVectorEnv does. Prints a table (env-steps/s,
microseconds per ``step`` call, speed-up over the single env) and writes
benchmarks/results/vector.json. Goal: N = 1024 (batched) >= 50x the single env's steps/s.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_env
from bench_env import CLOCKS, bench_trace, best_rates

from gelato_env.env import GelatoEnv
from gelato_env.vector import GelatoVectorEnv

RESULTS = Path(__file__).resolve().parent / "results" / "vector.json"


def vector_steps_per_second(env: Any, env_steps: int, seed: int = 0) -> float:
    """Best of 3 timed runs; env-steps per second (vector steps x N)."""
    n = env.num_envs
    n_calls = min(max(env_steps // n, 10), 5_000)  # N = 1: a few thousand steps suffice
    gen = np.random.default_rng(seed)
    high = env.single_action_space.n
    actions = [gen.integers(0, high, size=n) for _ in range(n_calls)]
    best = 0.0
    for repeat in range(3):
        env.reset(seed=seed + repeat)
        start = bench_env.clock()
        for action in actions:
            env.step(action)
        best = max(best, n_calls * n / (bench_env.clock() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--env-steps", type=int, default=200_000)
    parser.add_argument("--sync-env-steps", type=int, default=20_000)
    parser.add_argument("--trace", default=None, help="trace directory (default: a micro trace)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args()
    bench_env.clock = CLOCKS[args.clock]

    rows: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trace, trace_label = bench_trace(args.trace, Path(tmp))
        single = best_rates({"single": GelatoEnv(trace_path=trace)}, args.sync_env_steps, 3)[
            "single"
        ]
        rows["single GelatoEnv"] = single
        print(f"{'single GelatoEnv':<40} {single:>14,.0f}", flush=True)
        for n in args.sizes:
            for rng in ("batched", "per_env"):
                venv = GelatoVectorEnv(n, trace_path=trace, rng=rng)
                name = f"GelatoVectorEnv N={n} [{rng}]"
                rows[name] = vector_steps_per_second(venv, args.env_steps)
                print(f"{name:<40} {rows[name]:>14,.0f}", flush=True)
            sync = gym.vector.SyncVectorEnv(
                [lambda: GelatoEnv(trace_path=trace)] * n,
                autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
            )
            name = f"SyncVectorEnv N={n} x GelatoEnv"
            rows[name] = vector_steps_per_second(sync, args.sync_env_steps)
            print(f"{name:<40} {rows[name]:>14,.0f}", flush=True)

    sizes = {name: int(name.split("N=")[1].split()[0]) if "N=" in name else 1 for name in rows}
    print(f"{'env':<40} {'env-steps/s':>14} {'us/step':>10} {'vs single':>10}")
    for name, rate in rows.items():
        us = sizes[name] / rate * 1e6
        print(f"{name:<40} {rate:>14,.0f} {us:>10.1f} {rate / single:>10.1f}")
    goal = "GelatoVectorEnv N=1024 [batched]"
    if goal in rows:
        ratio = rows[goal] / single
        print(f"goal: {goal} at {ratio:.1f}x the single env (>= 50x: {ratio >= 50})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "env_steps": args.env_steps,
        "trace": trace_label,
        "info": "full (all STEP_INFO_KEYS, fresh arrays every step)",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "env_steps_per_s": rows,
        "speedup_vs_single": {k: v / single for k, v in rows.items()},
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
