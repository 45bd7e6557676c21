"""Train RLlib's PPO on the gelato env, registered with ``ray.tune.registry.register_env``.

    python scripts/rllib_example.py --trace-path PATH [--iterations 1] [--horizon 64]

RLlib builds envs from a name and an ``env_config`` dict in its own worker processes, so the
creator passed to ``register_env`` imports gelato itself and makes the env by its Gymnasium id;
``horizon`` ends episodes after that many rounds (``TimeLimit``), which RLlib needs to report
episode returns. Needs RLlib's extra dependencies (``pip install "ray[rllib]"``: dm_tree,
lz4, pyarrow, pandas, ormsgpack). Without ``--trace-path`` the default trace is used (built on
first use: minutes).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import gymnasium as gym

ENV_NAME = "gelato-sd"


def env_creator(env_config: dict[str, Any]) -> gym.Env[Any, Any]:
    """RLlib's env creator: ``gymnasium.make`` the gelato replay id with ``env_config``."""
    from gelato_env.registration import ENV_ID  # imports gelato_env: registers the ids here

    return gym.make(ENV_ID, **env_config)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace-path", default=None, help="replay trace (default: the default)")
    parser.add_argument("--iterations", type=int, default=1, help="PPO training iterations")
    parser.add_argument("--horizon", type=int, default=64, help="rounds per episode")
    parser.add_argument("--batch", type=int, default=256, help="env steps per iteration")
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=None,
        help="system_overrides.vocab_size (the trace's, for a micro trace)",
    )
    args = parser.parse_args(argv)

    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.tune.registry import register_env

    trace_path = args.trace_path
    if trace_path is None:
        from gelato_env.traces.default import default_trace_path

        trace_path = str(default_trace_path())
    env_config: dict[str, Any] = {"trace_path": trace_path, "horizon": args.horizon}
    if args.vocab_size is not None:
        env_config["system_overrides"] = {"vocab_size": args.vocab_size}

    register_env(ENV_NAME, env_creator)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        config = (
            PPOConfig()
            .environment(ENV_NAME, env_config=env_config)
            .env_runners(num_env_runners=0)  # sample in the driver (add runners to scale out)
            .training(train_batch_size=args.batch, minibatch_size=min(64, args.batch), num_epochs=1)
            .debugging(seed=0)
        )
        algo = config.build_algo()
        result: dict[str, Any] = {}
        for _ in range(args.iterations):
            result = algo.train()
        runners = result.get("env_runners", {})
        summary = {
            "iterations": float(args.iterations),
            "env_steps": float(runners.get("num_env_steps_sampled_lifetime", float("nan"))),
            "episode_return_mean": float(runners.get("episode_return_mean", float("nan"))),
            "episode_len_mean": float(runners.get("episode_len_mean", float("nan"))),
        }
        algo.stop()
    finally:
        ray.shutdown()
    print(" ".join(f"{key}={value:g}" for key, value in summary.items()))
    return summary


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
