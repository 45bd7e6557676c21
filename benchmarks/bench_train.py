"""SB3 PPO training throughput: the native vector env vs SubprocVecEnv of single envs.

Both run PPO (MlpPolicy, same hyperparameters, N envs) for the same number of timesteps on the
same trace; the figure is environment timesteps per second of ``model.learn`` (rollouts and
gradient updates together, as a user sees it). The trace is bench_env's micro trace (synthetic
statistics: only the speed is measured) or ``--trace PATH``.

    python benchmarks/bench_train.py [--envs 8] [--timesteps 16384] [--trace PATH]

Prints a table and writes benchmarks/results/train.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_env import bench_trace

from gelato_env.env import GelatoEnv
from gelato_env.vector import GelatoVectorEnv, make_sb3_vec_env

RESULTS = Path(__file__).resolve().parent / "results" / "train.json"


def train_steps_per_second(venv: Any, timesteps: int, n_steps: int) -> float:
    """Timesteps per second of PPO ``learn`` (one untimed warm-up update first)."""
    import torch
    from stable_baselines3 import PPO

    torch.manual_seed(0)
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=256, n_epochs=4, seed=0, verbose=0)
    model.learn(total_timesteps=n_steps * venv.num_envs)  # warm-up
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps, reset_num_timesteps=False)
    return timesteps / (time.perf_counter() - start)


def main() -> None:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--timesteps", type=int, default=16_384)
    parser.add_argument("--n-steps", type=int, default=256)
    parser.add_argument("--trace", default=None, help="trace directory (default: a micro trace)")
    args = parser.parse_args()

    rows: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trace, trace_label = bench_trace(args.trace, Path(tmp))
        vector = make_sb3_vec_env(GelatoVectorEnv(args.envs, trace_path=trace))
        rows[f"PPO on GelatoVectorEnv N={args.envs}"] = train_steps_per_second(
            vector, args.timesteps, args.n_steps
        )
        subproc = SubprocVecEnv([lambda: GelatoEnv(trace_path=trace)] * args.envs)
        rows[f"PPO on SubprocVecEnv N={args.envs}"] = train_steps_per_second(
            subproc, args.timesteps, args.n_steps
        )
        subproc.close()

    base = rows[f"PPO on SubprocVecEnv N={args.envs}"]
    print(f"{'training run':<40} {'timesteps/s':>12} {'vs Subproc':>11}")
    for name, rate in rows.items():
        print(f"{name:<40} {rate:>12,.0f} {rate / base:>11.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "envs": args.envs,
        "timesteps": args.timesteps,
        "trace": trace_label,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "timesteps_per_s": rows,
        "ratio_vs_subproc": {k: v / base for k, v in rows.items()},
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
