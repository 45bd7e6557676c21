"""Prompt order: a pass without replacement that a seeded reset starts (micro trace)."""

from __future__ import annotations

import pytest

from gelato_env.env import GelatoEnv
from gelato_env.prompt_order import prompt_order


@pytest.mark.parametrize("order", ["sequential", "random"])
def test_consecutive_seeds_play_distinct_prompts(trace_path: str, order: str) -> None:
    env = GelatoEnv(trace_path=trace_path, prompt_order=order)
    n = env.backend.n_prompts
    for start in (0, 3):  # the harness seeds episode i with seed + i
        prompts = [env.reset(seed=start + i)[1]["prompt_index"] for i in range(n)]
        assert sorted(prompts) == list(range(n)), prompts
    if order == "sequential":
        assert [env.reset(seed=s)[1]["prompt_index"] for s in (0, 1, 2)] == [0, 1, 2]


@pytest.mark.parametrize("order", ["sequential", "random"])
def test_unseeded_resets_continue_the_pass(trace_path: str, order: str) -> None:
    env = GelatoEnv(trace_path=trace_path, prompt_order=order)
    n = env.backend.n_prompts
    prompts = [env.reset(seed=7)[1]["prompt_index"]]
    prompts += [env.reset()[1]["prompt_index"] for _ in range(n - 1)]
    assert sorted(prompts) == list(range(n))


def test_a_seed_replays_its_prompt(trace_path: str) -> None:
    env = GelatoEnv(trace_path=trace_path)
    first = env.reset(seed=123)[1]["prompt_index"]
    env.reset()
    assert env.reset(seed=123)[1]["prompt_index"] == first


def test_order_is_a_permutation() -> None:
    assert prompt_order(5, "sequential").tolist() == [0, 1, 2, 3, 4]
    assert sorted(prompt_order(50, "random").tolist()) == list(range(50))
    assert prompt_order(50, "random").tolist() != list(range(50))
    with pytest.raises(ValueError, match="prompt_order must be one of"):
        prompt_order(5, "shuffled")
    with pytest.raises(ValueError, match="n_prompts must be >= 1"):
        prompt_order(0, "random")
