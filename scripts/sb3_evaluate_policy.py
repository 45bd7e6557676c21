"""Score GELATO and a PPO model with stable-baselines3's ``evaluate_policy``, on the same envs.

    python scripts/sb3_evaluate_policy.py --trace-path PATH              # trains a small PPO
    python scripts/sb3_evaluate_policy.py --model runs/<run>/model.zip   # a trained one

Analytic agents take SB3's ``predict`` signature with batched observations, so the standard
tool scores them like any SB3 model. Both agents play envs made by id with the same settings
and reset seeds (GELATO's ``env_overrides`` applied to both). ``evaluate_policy``'s mean reward
is the mean episode return, a sum of per-round rates N_k / T_k under the ``throughput`` reward;
:class:`agents.callbacks.ThroughputMeter` adds the throughput sum(tokens) / sum(time).
"""

from __future__ import annotations

import argparse
import os
import warnings
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from agents.base import AnalyticPolicy
from agents.callbacks import ThroughputMeter
from agents.registry import make_agent
from gelato_env.registration import ENV_ID


def score(policy: Any, venv: Any, n_episodes: int) -> dict[str, float]:
    """``evaluate_policy`` plus the throughput over the same episodes.

    An analytic agent also gets each step's ``info`` (its adapt step, which ``evaluate_policy``
    does not call itself: :meth:`agents.base.AnalyticPolicy.evaluate_policy_callback`).
    """
    meter = ThroughputMeter()

    def callback(locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        meter(locals_, globals_)
        if isinstance(policy, AnalyticPolicy):
            policy.evaluate_policy_callback(locals_, globals_)

    mean, std = evaluate_policy(
        policy, venv, n_eval_episodes=n_episodes, deterministic=True, callback=callback
    )
    return {"mean_reward": float(mean), "std_reward": float(std), "tok_s": meter.throughput_tps}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace-path", default=None, help="replay trace (default: the default)")
    parser.add_argument("--model", default=None, help="a trained SB3 PPO .zip (else: train one)")
    parser.add_argument("--ppo-steps", type=int, default=4096, help="PPO steps without --model")
    parser.add_argument("--episodes", type=int, default=5, help="evaluation episodes per agent")
    parser.add_argument("--horizon", type=int, default=64, help="rounds per episode")
    parser.add_argument("--vocab-size", type=int, default=None, help="system_overrides.vocab_size")
    args = parser.parse_args(argv)

    trace_path = args.trace_path
    if trace_path is None:
        from gelato_env.traces.default import default_trace_path

        trace_path = str(default_trace_path())
    gelato = make_agent("gelato")
    env_kwargs: dict[str, Any] = {
        "trace_path": trace_path,
        "horizon": args.horizon,
        "reward_mode": "throughput",
        **gelato.env_overrides().env_kwargs(),
    }
    if args.vocab_size is not None:
        env_kwargs["system_overrides"] = {"vocab_size": args.vocab_size}

    def venv(seed: int) -> Any:
        return make_vec_env(ENV_ID, n_envs=1, seed=seed, env_kwargs=env_kwargs)

    # GELATO reads the system model and budget from the env it is bound to and calibrates its
    # exit rule on the trace; the envs of both agents then run that calibrated rule
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # this env does not run the calibrated rule yet
        gelato.bind(venv(1_000).envs[0])
    env_kwargs.update(gelato.env_overrides().env_kwargs())
    eval_env = venv(1_000)
    gelato.bind(eval_env.envs[0])
    if args.model is not None:
        ppo = PPO.load(args.model, device="cpu")
    else:
        ppo = PPO("MlpPolicy", venv(0), n_steps=256, batch_size=64, seed=0, device="cpu")
        ppo.learn(args.ppo_steps)
    results = {"gelato": score(gelato, eval_env, args.episodes)}
    results["ppo"] = score(ppo, venv(1_000), args.episodes)
    for name, row in results.items():
        print(
            f"{name}: mean_reward={row['mean_reward']:.1f} +/- {row['std_reward']:.1f} "
            f"throughput={row['tok_s']:.2f} tok/s"
        )
    return results


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
