"""SB3 PPO training throughput: gelato's vector env vs SubprocVecEnv vs DummyVecEnv, one run.

Every row runs PPO (MlpPolicy, the same hyperparameters, the same N envs and ``n_steps``) for the
same number of timesteps on the same trace and prompts; the figure is environment timesteps per
second of ``model.learn`` (rollouts and gradient updates together, as a user sees it). The envs
are built as ``scripts/train.py`` builds them (:func:`agents.train_envs.make_training_env` with
``vec_env`` = ``gelato``, ``subproc``, ``dummy``); one more row runs PPO on the bare SB3 adapter
of the vector env (no per-step infos, no episode statistics), to show what the training
wrappers cost. Torch runs on one thread, so the rows differ only in how the envs are stepped.
The rows run in turn ``--repeats`` times (a busy machine's load drifts; rotating spreads it over
the rows) and each row reports its best run. A second column times the envs alone (random
actions, no policy): milliseconds per step of all N envs. The trace is the shipped default
trace, else bench_env's micro trace (synthetic statistics: only the speed is measured), or
``--trace PATH``.

    python benchmarks/bench_train.py [--envs 8] [--timesteps 16384] [--n-steps 256] [--repeats 2]

Prints a table (timesteps/s, the ratio to SubprocVecEnv and to DummyVecEnv, env-only ms/step)
and writes benchmarks/results/train.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_env import bench_trace

from agents.train_envs import make_training_env
from gelato_env.config import EnvConfig
from gelato_env.traces.store import read_header
from gelato_env.vector import GelatoVectorEnv, make_sb3_vec_env

RESULTS = Path(__file__).resolve().parent / "results" / "train.json"


def train_steps_per_second(venv: Any, timesteps: int, n_steps: int) -> float:
    """Timesteps per second of PPO ``learn`` (one untimed warm-up rollout and update first)."""
    import torch
    from stable_baselines3 import PPO

    torch.manual_seed(0)
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=256, n_epochs=4, seed=0, verbose=0,
                device="cpu")  # fmt: skip
    model.learn(total_timesteps=n_steps * venv.num_envs)  # warm-up
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps, reset_num_timesteps=False)
    rate = timesteps / (time.perf_counter() - start)
    venv.close()
    return rate


def env_ms_per_step(venv: Any, n_steps: int = 300) -> float:
    """Milliseconds per ``step`` of all the envs, random actions (no policy, no learning)."""
    actions = np.random.default_rng(0).integers(
        0, venv.action_space.n, size=(n_steps, venv.num_envs)
    )
    venv.reset()
    start = time.perf_counter()
    for action in actions:
        venv.step(action)
    elapsed = time.perf_counter() - start
    venv.close()
    return 1e3 * elapsed / n_steps


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--timesteps", type=int, default=16_384)
    parser.add_argument("--n-steps", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--trace", default=None, help="trace directory (default: the default trace)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    n = args.envs
    with tempfile.TemporaryDirectory() as tmp:
        trace, trace_label = bench_trace(args.trace, Path(tmp))
        config = EnvConfig(trace_path=str(trace))
        prompts = range(len(read_header(trace).prompt_ids))

        def training(kind: str) -> Callable[[], Any]:
            return lambda: make_training_env(config, prompts, n_envs=n, kind=kind, seed=0)

        builders: dict[str, Callable[[], Any]] = {
            f"gelato vector env N={n} (train.py)": training("gelato"),
            f"gelato vector env N={n} (bare adapter)": lambda: make_sb3_vec_env(
                GelatoVectorEnv(n, **config.to_kwargs())
            ),
            f"SubprocVecEnv N={n} (train.py)": training("subproc"),
            f"DummyVecEnv N={n} (train.py)": training("dummy"),
        }
        runs: dict[str, list[float]] = {name: [] for name in builders}
        for _ in range(args.repeats):
            for name, build in builders.items():
                runs[name].append(train_steps_per_second(build(), args.timesteps, args.n_steps))
        rows = {name: max(rates) for name, rates in runs.items()}
        env_ms = {name: env_ms_per_step(build()) for name, build in builders.items()}

    subproc, dummy = rows[f"SubprocVecEnv N={n} (train.py)"], rows[f"DummyVecEnv N={n} (train.py)"]
    print(f"PPO, n_steps={args.n_steps}, {args.timesteps} timesteps, {os.cpu_count()} CPUs, "
          f"trace {trace_label}")  # fmt: skip
    print(
        f"{'envs':<40} {'timesteps/s':>12} {'vs Subproc':>11} {'vs Dummy':>9} {'env ms/step':>12}"
    )
    for name, rate in rows.items():
        print(f"{name:<40} {rate:>12,.0f} {rate / subproc:>11.2f} {rate / dummy:>9.2f} "
              f"{env_ms[name]:>12.3f}")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "envs": n,
        "n_steps": args.n_steps,
        "timesteps": args.timesteps,
        "trace": trace_label,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "repeats": args.repeats,
        "timesteps_per_s": rows,
        "timesteps_per_s_runs": runs,
        "env_ms_per_step": env_ms,
        "ratio_vs_subproc": {k: v / subproc for k, v in rows.items()},
        "ratio_vs_dummy": {k: v / dummy for k, v in rows.items()},
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
