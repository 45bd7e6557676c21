"""Gymnasium's and SB3's env checkers on every registered id and every action mode."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from gelato_env.registration import ENV_ID, ENV_IDS, LIVE_ENV_ID
from tests.conftest import MICRO_VOCAB

ACTION_MODES = ("budget", "budget_threshold", "per_token")


def _make(env_id, action_mode, trace_path, make_live_backend):  # type: ignore[no-untyped-def]
    if env_id == ENV_ID:
        # the micro trace's own vocabulary: no payload-vocabulary notice among checker warnings
        overrides = {"vocab_size": MICRO_VOCAB}
        return gym.make(
            env_id, trace_path=trace_path, action_mode=action_mode, system_overrides=overrides
        )
    return gym.make(env_id, backend=make_live_backend(), action_mode=action_mode)


def test_both_ids_registered() -> None:
    assert set(ENV_IDS) <= set(gym.registry)


@pytest.mark.parametrize("action_mode", ACTION_MODES)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id, action_mode, trace_path, make_live_backend) -> None:  # type: ignore[no-untyped-def]
    env = _make(env_id, action_mode, trace_path, make_live_backend)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped, skip_render_check=True)
    # No allow-list needed: every checker warning is a failure.
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("action_mode", ACTION_MODES)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env(env_id, action_mode, trace_path, make_live_backend) -> None:  # type: ignore[no-untyped-def]
    env = _make(env_id, action_mode, trace_path, make_live_backend)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(env, warn=True)
    assert [str(w.message) for w in caught] == []


def test_measured_clock_flags_spec_nondeterministic(make_live_backend) -> None:  # type: ignore[no-untyped-def]
    modelled = gym.make(LIVE_ENV_ID, backend=make_live_backend())
    measured = gym.make(LIVE_ENV_ID, backend=make_live_backend(), clock="measured")
    assert modelled.spec is not None
    assert not modelled.spec.nondeterministic
    assert measured.unwrapped.spec is not None
    assert measured.unwrapped.spec.nondeterministic
