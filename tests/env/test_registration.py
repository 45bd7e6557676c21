"""gymnasium.make and SB3's make_vec_env by id: episode limit from horizon, render modes,
subprocess workers."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from gelato_env.registration import ENV_ID
from gelato_env.vector import GelatoVectorEnv

MICRO = {"system_overrides": {"vocab_size": 64}}  # the micro trace's vocabulary: no notice


def _episode_lengths(env: Any, n: int, seed: int = 0) -> list[int]:
    lengths, length = [], 0
    env.reset(seed=seed)
    while len(lengths) < n:
        _, _, terminated, truncated, _ = env.step(0)
        length += 1
        if terminated or truncated:
            assert truncated
            assert not terminated
            lengths.append(length)
            length = 0
            env.reset()
    return lengths


def test_horizon_sets_the_episode_limit_as_the_vector_env_does(trace_path: str) -> None:
    env = gym.make(ENV_ID, trace_path=trace_path, horizon=7, **MICRO)
    assert env.spec is not None
    assert env.spec.max_episode_steps == 7
    assert env.spec.kwargs["horizon"] == 7
    assert _episode_lengths(env, 3) == [7, 7, 7]

    venv = GelatoVectorEnv(1, trace_path=trace_path, horizon=7, **MICRO)
    venv.reset(seed=0)
    truncated_at = [step for step in range(1, 22) if venv.step(np.zeros(1, dtype=np.int64))[3][0]]
    assert truncated_at == [7, 14, 21]

    again = gym.make(env.spec)  # recreated from its spec: the same limit
    assert again.spec is not None
    assert again.spec.max_episode_steps == 7


def test_without_horizon_an_episode_is_one_prompt(trace_path: str) -> None:
    env = gym.make(ENV_ID, trace_path=trace_path, **MICRO)
    assert env.spec is not None
    assert env.spec.max_episode_steps is None
    env.reset(seed=0)
    for _ in range(1000):
        _, _, terminated, truncated, _ = env.step(4)
        if terminated:
            break
    assert terminated
    assert not truncated


@pytest.mark.parametrize("render_mode", [None, "ansi"])
def test_render_modes_accepted(trace_path: str, render_mode: str | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(ENV_ID, trace_path=trace_path, render_mode=render_mode, **MICRO)
        env.reset(seed=0)
        env.step(2)
        frame = env.render()
    assert env.unwrapped.render_mode == render_mode
    if render_mode == "ansi":
        assert isinstance(frame, str)
        assert "Q " in frame
    else:
        assert frame is None


@pytest.mark.parametrize("render_mode", ["human", "rgb_array", 1])
def test_other_render_modes_refused_naming_the_valid_ones(
    trace_path: str, render_mode: Any
) -> None:
    with pytest.raises(TypeError, match=r"render_mode must be None or one of \['ansi'\]"):
        gym.make(ENV_ID, trace_path=trace_path, render_mode=render_mode, **MICRO)


def test_sb3_make_vec_env_by_id_builds_without_warnings(trace_path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        venv = make_vec_env(
            ENV_ID,
            n_envs=2,
            seed=0,
            vec_env_cls=DummyVecEnv,
            env_kwargs={"trace_path": trace_path, "horizon": 8, **MICRO},
        )
    obs = venv.reset()
    assert obs.shape == (2, 9)
    venv.close()


@pytest.mark.parametrize(
    ("env_id", "start_method"),
    [(ENV_ID, "forkserver"), (f"gelato_env:{ENV_ID}", "spawn")],
)
def test_subproc_vec_env_workers_find_the_ids(
    trace_path: str, env_id: str, start_method: str
) -> None:
    venv = make_vec_env(
        env_id,
        n_envs=1,
        seed=0,
        vec_env_cls=SubprocVecEnv,
        vec_env_kwargs={"start_method": start_method},
        env_kwargs={"trace_path": trace_path, "horizon": 4, **MICRO},
    )
    try:
        venv.reset()
        dones = [venv.step(np.array([1]))[2][0] for _ in range(4)]
    finally:
        venv.close()
    assert dones == [False, False, False, True]  # truncated at the horizon in the worker
