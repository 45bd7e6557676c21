"""Raw replay-env step throughput vs CartPole-v1, in the same process.

Both envs are unwrapped (no checker/TimeLimit wrappers), stepped with pre-drawn random actions,
reset on episode end. The replay env runs on a micro trace recorded here from random-initialised
micro models (synthetic statistics: only the speed is measured), or on ``--trace PATH``.

    python benchmarks/bench_env.py [--steps 20000] [--repeats 5] [--trace PATH]

Prints a table and writes benchmarks/results/env.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import gelato_env  # noqa: F401  (registers the ids)
from gelato_env.registration import ENV_ID

RESULTS = Path(__file__).resolve().parent / "results" / "env.json"
#: ``--clock``: wall time, or this process's CPU time (robust to other jobs on a shared machine)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def bench_trace(arg: str | None, tmp: Path) -> tuple[str, str]:
    """The trace to step on and its label: ``arg``, else the shipped default trace (real models),
    else a freshly recorded micro trace (synthetic statistics; only the speed is meaningful)."""
    if arg is not None:
        return arg, arg
    from gelato_env.traces.default import default_trace_path
    from gelato_env.traces.store import TraceError

    try:
        default = default_trace_path()
    except TraceError:
        return micro_trace_path(tmp / "trace"), "micro (synthetic statistics)"
    return str(default), f"default trace {default.name}"


def micro_trace_path(out: Path) -> str:
    """Record a synthetic micro trace (random-init GPT-2 pair, vocab 64): 6 prompts x 40 tokens."""
    from gelato_env.sd.synthetic import synthetic_pair
    from gelato_env.traces.prompts import PromptTokens
    from gelato_env.traces.recorder import RecordConfig, record_trace

    pair = synthetic_pair(n_positions=256)
    gen = np.random.default_rng(7)
    prompts = [PromptTokens(f"p{i}", tuple(gen.integers(2, 64, size=8).tolist())) for i in range(6)]
    cfg = RecordConfig(gamma_max=8, max_new_tokens=40, batch_positions=16)
    trace, _ = record_trace(pair, prompts, out, cfg, prompt_set="bench", progress=False)
    return str(trace.path)


def timed_run(env: gym.Env[Any, Any], actions: list[Any], seed: int) -> float:
    """Steps per second of one run of ``actions`` from ``reset(seed=seed)`` (resets included)."""
    env.reset(seed=seed)
    start = clock()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return len(actions) / (clock() - start)


def best_rates(envs: dict[str, gym.Env[Any, Any]], n_steps: int, repeats: int) -> dict[str, float]:
    """Best of ``repeats`` timed runs per env, the envs taking turns within each repeat (so that
    a change in machine load hits every env alike); random actions drawn before timing."""
    actions = {}
    for name, env in envs.items():
        env.action_space.seed(0)
        actions[name] = [env.action_space.sample() for _ in range(n_steps)]
    best = dict.fromkeys(envs, 0.0)
    for repeat in range(repeats):
        for name, env in envs.items():
            best[name] = max(best[name], timed_run(env, actions[name], seed=repeat))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trace", default=None, help="trace directory (default: a micro trace)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]

    with tempfile.TemporaryDirectory() as tmp:
        trace, trace_label = bench_trace(args.trace, Path(tmp))
        envs: dict[str, gym.Env[Any, Any]] = {"CartPole-v1": gym.make("CartPole-v1").unwrapped}
        for mode in ("budget", "budget_threshold", "per_token"):
            env = gym.make(ENV_ID, trace_path=trace, action_mode=mode).unwrapped
            envs[f"{ENV_ID} [{mode}]"] = env
        rows = best_rates(envs, args.steps, args.repeats)

    cartpole = rows["CartPole-v1"]
    print(f"{'env':<44} {'steps/s':>12} {'us/step':>8} {'vs CartPole':>12}")
    for name, rate in rows.items():
        print(f"{name:<44} {rate:>12,.0f} {1e6 / rate:>8.2f} {rate / cartpole:>12.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "steps": args.steps,
        "repeats": args.repeats,
        "trace": trace_label,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "steps_per_s": rows,
        "ratio_vs_cartpole": {k: v / cartpole for k, v in rows.items()},
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
