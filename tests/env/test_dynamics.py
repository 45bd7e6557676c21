"""Rewards, energy accounting, the virtual queue, the per-token mode, the observation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gelato_env.env import GelatoEnv
from gelato_env.observation import INFO_KEYS, decode_observation
from gelato_env.system import EnergyBudget


def _play(env: GelatoEnv, action: object, n: int) -> list[tuple]:  # type: ignore[type-arg]
    steps = []
    for _ in range(n):
        step = env.step(action)
        steps.append(step)
        if step[2]:
            break
    return steps


@pytest.mark.parametrize("reward_mode", ["throughput", "dpp", "lagrangian"])
def test_reward_terms(trace_path: str, reward_mode: str) -> None:
    env = GelatoEnv(trace_path=trace_path, reward_mode=reward_mode, v=3.0, budget_value=0.05)
    env.reset(seed=0)
    for _, reward, _, _, info in _play(env, 6, 30):
        assert set(info) == set(INFO_KEYS)
        throughput = info["n_tokens"] / info["latency_s"]
        assert info["throughput_tps"] == pytest.approx(throughput)
        assert info["cost"] == info["energy_j"]
        assert info["energy_j"] == pytest.approx(
            info["draft_energy_j"] + info["radio_energy_j"] + info["idle_energy_j"]
        )
        if reward_mode == "dpp":
            expected = 3.0 * throughput - info["queue_before"] * info["energy_j"]
        else:
            expected = throughput
        assert reward == pytest.approx(expected)
    assert info["queue_before"] > 0.0  # the small budget made the penalty bite


@pytest.mark.parametrize("mode", ["per_round", "per_token", "per_second"])
def test_queue_follows_budget_update(trace_path: str, mode: str) -> None:
    env = GelatoEnv(trace_path=trace_path, budget_mode=mode, budget_value=0.3)
    budget = EnergyBudget(mode, 0.3)
    obs, info = env.reset(seed=1)
    queue = 0.0
    for obs, _, _, _, info in _play(env, 8, 20):
        queue = budget.queue_update(queue, info["energy_j"], info["n_tokens"], info["latency_s"])
        assert info["queue"] == pytest.approx(queue)
        assert decode_observation(obs, env.observation_spec).queue_j == pytest.approx(
            queue, rel=1e-6
        )


def test_queue_persists_only_with_keep_queue(trace_path: str) -> None:
    env = GelatoEnv(trace_path=trace_path, budget_value=0.01)
    env.reset(seed=0)
    while not env.step(8)[2]:
        pass
    backlog = env.queue
    assert backlog > 0.0
    obs, info = env.reset(options={"keep_queue": True})
    assert info["queue"] == backlog
    assert env.queue == backlog
    assert decode_observation(obs, env.observation_spec).queue_j == pytest.approx(backlog, rel=1e-6)
    assert info["budget_used_frac"] > 1.0
    _, info = env.reset()
    assert info["queue"] == 0.0
    assert info["budget_used_frac"] == 0.0


def test_episode_is_one_prompt_then_terminates(trace_path: str, micro_trace) -> None:  # type: ignore[no-untyped-def]
    env = GelatoEnv(trace_path=trace_path, prompt_order="sequential")
    _, info = env.reset(seed=0)
    assert info["prompt_index"] == 0
    steps = _play(env, 4, 1000)
    assert steps[-1][2]
    assert not any(s[2] for s in steps[:-1])
    assert steps[-1][4]["n_generated"] == len(micro_trace.output_of(0))
    assert steps[-1][0][8] == pytest.approx(len(micro_trace.output_of(0)) / 40)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(4)
    assert env.reset()[1]["prompt_index"] == 1


def test_horizon_spans_prompts_and_time_limit_truncates(trace_path: str) -> None:
    from gelato_env.config import EnvConfig
    from gelato_env.registration import make_env

    env = make_env(EnvConfig(trace_path=trace_path, horizon=150, prompt_order="sequential"))
    env.reset(seed=0)
    prompts = set()
    for k in range(150):
        _, _, terminated, truncated, info = env.step(2)
        prompts.add(info["prompt_index"])
        assert not terminated
        assert truncated == (k == 149)
    assert len(prompts) > 1


def test_per_token_mode_drafts_then_offloads(trace_path: str, micro_trace) -> None:  # type: ignore[no-untyped-def]
    env = GelatoEnv(trace_path=trace_path, action_mode="per_token", prompt_order="sequential")
    obs, _ = env.reset(seed=0)
    spec = env.observation_spec
    assert spec.per_token
    assert obs.shape == (12,)
    # the observation shows the next draft token's recorded statistics
    assert decode_observation(obs, spec).next_entropy_nats == pytest.approx(
        float(micro_trace.entropy[0, 0]), rel=1e-6
    )
    for k in range(1, 3):
        obs, reward, _, _, info = env.step(1)
        assert reward == 0.0
        assert not info["round_complete"]
        assert info["energy_j"] == 0.0
        fields = decode_observation(obs, spec)
        assert fields.n_drafted_in_round == pytest.approx(k)
        assert fields.next_entropy_nats == pytest.approx(float(micro_trace.entropy[0, k]), rel=1e-6)
    _, reward, _, _, info = env.step(0)
    assert info["round_complete"]
    assert info["budget"] == 2
    assert reward > 0.0
    # drafting to the cap completes the round without an offload action
    start = info["n_generated"]
    for _ in range(env.params.gamma_max - 1):
        assert not env.step(1)[4]["round_complete"]
    info = env.step(1)[4]
    assert info["round_complete"]
    assert info["budget"] == env.params.gamma_max
    assert info["n_generated"] > start


def test_budget_threshold_levels_change_draft_length(trace_path: str) -> None:
    def drafted(level: int) -> int:
        env = GelatoEnv(
            trace_path=trace_path,
            action_mode="budget_threshold",
            exit_rule="entropy_threshold",
            threshold_levels_nats=(0.0, 100.0),
        )
        env.reset(seed=5)
        return sum(s[4]["n_drafted"] for s in _play(env, np.array([8, level]), 10))

    assert drafted(0) < drafted(1)  # H > 0 always exits after one token; 100 nats never does


def test_observation_matches_info(trace_path: str) -> None:
    env = GelatoEnv(trace_path=trace_path)
    obs, info = env.reset(seed=2)
    assert env.observation_space.contains(obs)
    assert decode_observation(obs, env.observation_spec).rate_bps == pytest.approx(
        info["rate_bps"], rel=1e-6
    )
    obs, _, _, _, info = env.step(5)
    fields = env.decode_observation(obs)
    assert fields.last_budget == pytest.approx(5.0)
    assert fields.last_accepted == pytest.approx(info["n_accepted"])
    assert fields.entropy_ema_nats == pytest.approx(info["entropy_ema_nats"], rel=1e-6)
    assert fields.max_prob_ema == pytest.approx(info["max_prob_ema"], rel=1e-6)
    assert fields.queue_j == pytest.approx(info["queue"], rel=1e-6, abs=1e-9)
    assert fields.rate_bps != pytest.approx(info["rate_bps"])  # the next round's channel
    assert fields.link_latency_s == pytest.approx(env.params.link.uplink_latency_s, rel=1e-6)
    assert fields.progress == pytest.approx(info["n_generated"] / 40)
    assert math.isclose(
        fields.budget_used_frac, info["energy_j"] / info["allowance_j"], rel_tol=1e-6
    )


@pytest.mark.parametrize("protocol", ["topp", "full", "dssd"])
def test_cost_table_equals_round_cost(protocol: str) -> None:
    """The tabulated cost is round_cost's, and the batched form is the scalar's bit for bit."""
    from gelato_env.accounting import CostTable
    from gelato_env.system import downlink_bits, round_cost, system_setting, uplink_bits

    params = system_setting("high_latency", protocol=protocol, idle_power_w=0.7)
    table = CostTable(params)
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(50):
        gamma, rejected = int(rng.integers(0, 9)), bool(rng.integers(0, 2))
        topp, rate = int(rng.integers(0, 40)) * (gamma > 0), float(rng.uniform(1e4, 1e7))
        up = uplink_bits(gamma, topp, params.payload)
        down = downlink_bits(rejected, params.payload, params.gamma_max)
        ref = round_cost(gamma, up, down, rate, params)
        assert table.uplink_bits(gamma, topp) == up
        got = table.cost(gamma, rejected, topp, rate)
        expected = (ref.latency_s, ref.energy_j, ref.draft_energy_j, ref.radio_energy_j)
        np.testing.assert_allclose(got[:4], expected, rtol=1e-12)
        assert got[4] == pytest.approx(ref.idle_energy_j, rel=1e-12)
        assert got[5:] == (up, down)
        rows.append((gamma, rejected, up, rate, got))
    gamma, rejected, up, rate, scalar = zip(*rows, strict=True)
    batch = table.costs(
        np.array(gamma), np.array(rejected), np.array(up, dtype=np.float64), np.array(rate)
    )
    for i, item in enumerate(batch):
        np.testing.assert_array_equal(item, [s[i] for s in scalar])
