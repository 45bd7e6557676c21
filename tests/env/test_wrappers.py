"""EpisodeStatistics: episode aggregates equal the sums of the step infos."""

from __future__ import annotations

import gymnasium as gym
import pytest

from gelato_env.env import GelatoEnv
from gelato_env.registration import ENV_ID
from gelato_env.wrappers import EpisodeStatistics


@pytest.mark.parametrize("action_mode", ["budget", "per_token"])
def test_episode_statistics_match_step_infos(trace_path: str, action_mode: str) -> None:
    env = EpisodeStatistics(GelatoEnv(trace_path=trace_path, action_mode=action_mode))
    env.action_space.seed(0)
    env.reset(seed=0)
    infos, rewards = [], []
    while True:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        rewards.append(reward)
        if info["round_complete"]:
            infos.append(info)
        if terminated or truncated:
            break
    stats = info[EpisodeStatistics.KEY]
    tokens = sum(i["n_tokens"] for i in infos)
    time_s = sum(i["latency_s"] for i in infos)
    energy_j = sum(i["energy_j"] for i in infos)
    assert stats["n_rounds"] == len(infos)
    assert stats["n_tokens"] == tokens == info["n_generated"]
    assert stats["throughput_tps"] == pytest.approx(tokens / time_s)
    assert stats["energy_per_token_j"] == pytest.approx(energy_j / tokens)
    assert stats["mean_power_w"] == pytest.approx(energy_j / time_s)
    assert stats["budget_used_frac"] == pytest.approx(info["budget_used_frac"])
    assert stats["mean_accepted"] == pytest.approx(sum(i["n_accepted"] for i in infos) / len(infos))
    assert stats["final_queue_j"] == info["queue"]
    assert stats["episode_return"] == pytest.approx(sum(rewards))


def test_statistics_reset_between_episodes_and_on_truncation(trace_path: str) -> None:
    env = EpisodeStatistics(gym.make(ENV_ID, trace_path=trace_path, horizon=7, max_episode_steps=7))
    for seed in (0, 1):
        env.reset(seed=seed)
        for _ in range(7):
            *_, truncated, info = env.step(3)
        assert truncated
        assert info[EpisodeStatistics.KEY]["n_rounds"] == 7
