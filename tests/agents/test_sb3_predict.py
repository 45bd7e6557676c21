"""Analytic agents under SB3's predict contract: batched observations, evaluate_policy."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from agents.callbacks import ThroughputMeter
from agents.registry import AGENTS, make_agent
from gelato_env.registration import ENV_ID
from tests.conftest import MICRO_VOCAB

ROOT = Path(__file__).resolve().parents[2]
MICRO = {"system_overrides": {"vocab_size": MICRO_VOCAB}}
ANALYTIC = sorted(name for name in AGENTS if name not in ("learned", "device_only"))


def _bound(name: str, trace_path: str, **env_kwargs: Any) -> tuple[Any, Any]:
    policy = make_agent(name)
    kwargs = {"trace_path": trace_path, **MICRO, **env_kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GELATO's calibration notice before the env follows it
        policy.bind(gym.make(ENV_ID, **kwargs))
    kwargs.update(policy.env_overrides().env_kwargs())
    env = gym.make(ENV_ID, **kwargs)
    policy.bind(env)
    return policy, env


def _observations(env: Any, n: int) -> np.ndarray:
    obs, _ = env.reset(seed=0)
    rows = [obs]
    for _ in range(n - 1):
        obs, *_ = env.step(env.action_space.sample())
        rows.append(obs)
    return np.stack(rows)  # (n, obs_dim)


@pytest.mark.filterwarnings("ignore:GelatoPolicy.update")  # no rounds played: no feedback
@pytest.mark.parametrize(
    ("name", "action_mode"),
    [(name, "budget") for name in ANALYTIC] + [("gelato", "budget_threshold")],
)
def test_batched_predict_matches_row_by_row(micro_trace: Any, name: str, action_mode: str) -> None:
    policy, env = _bound(name, str(micro_trace.path), action_mode=action_mode)
    obs = _observations(env, 3)
    single = [policy.predict(row, episode_start=np.ones(1, bool))[0] for row in obs]
    batched, state = policy.predict(obs, episode_start=np.ones(3, dtype=bool))
    assert state is None
    shape = (3,) if action_mode == "budget" else (3, 2)
    assert batched.shape == shape
    assert single[0].shape == shape[1:]
    assert np.array_equal(batched, np.stack(single))
    one, _ = policy.predict(obs[:1])  # (1, obs_dim) -> (1,) actions, as SB3 with one env
    assert one.shape == (1, *shape[1:])
    assert np.array_equal(one[0], single[0])


def test_batched_envs_keep_their_own_episode_state(micro_trace: Any) -> None:
    policy, env = _bound("hf_heuristic", str(micro_trace.path))
    obs = _observations(env, 6)
    # env 0 and env 1 see different histories; each must act as a fresh policy fed its own
    history = np.stack([obs[[0, 1, 2]], obs[[3, 4, 5]]], axis=1)  # (time, n_env, obs_dim)
    alone = [make_agent("hf_heuristic").bind(env) for _ in range(2)]
    starts = np.ones(2, dtype=bool)
    for t, batch in enumerate(history):
        actions, _ = policy.predict(batch, episode_start=starts)
        expected = [p.predict(batch[i], episode_start=starts[i : i + 1])[0] for i, p in
                    enumerate(alone)]  # fmt: skip
        assert actions.tolist() == [int(a) for a in expected], t
        starts = np.zeros(2, dtype=bool)


@pytest.mark.parametrize("shape", [(2, 3, 9), (4,)])
def test_predict_rejects_other_shapes(micro_trace: Any, shape: tuple[int, ...]) -> None:
    policy, _ = _bound("static", str(micro_trace.path))
    with pytest.raises(ValueError, match="observation must have shape"):
        policy.predict(np.zeros(shape, dtype=np.float32))


@pytest.mark.parametrize("n_envs", [1, 2])
def test_evaluate_policy_scores_gelato_with_throughput(micro_trace: Any, n_envs: int) -> None:
    policy, _ = _bound("gelato", str(micro_trace.path))
    kwargs = {"trace_path": str(micro_trace.path), "horizon": 12, **MICRO,
              **policy.env_overrides().env_kwargs()}  # fmt: skip
    venv = make_vec_env(ENV_ID, n_envs=n_envs, seed=3, env_kwargs=kwargs)
    policy.bind(venv.envs[0])
    meter = ThroughputMeter()

    def callback(locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        meter(locals_, globals_)
        policy.evaluate_policy_callback(locals_, globals_)

    rewards, lengths = evaluate_policy(policy, venv, n_eval_episodes=4, callback=callback,
                                       return_episode_rewards=True)  # fmt: skip
    assert lengths == [12, 12, 12, 12]
    assert all(r > 0 for r in rewards)  # type: ignore[union-attr]
    # sum(tokens) / sum(time): a rate, unlike the return (a sum of 12 per-round rates)
    assert 0 < meter.throughput_tps < max(rewards) / 2  # type: ignore[type-var]


def test_example_scores_gelato_and_ppo_in_one_script(micro_trace: Any) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sb3_evaluate_policy.py"), "--trace-path",
         str(micro_trace.path), "--vocab-size", str(MICRO_VOCAB), "--ppo-steps", "256",
         "--episodes", "2", "--horizon", "16"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines[-2:]] == ["gelato", "ppo"]
    for line in lines[-2:]:
        assert "mean_reward=" in line
        assert float(line.split("throughput=")[1].split()[0]) > 0
