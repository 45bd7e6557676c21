"""The agent catalogue: every agent builds, asks for an env that exists, and acts in it."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from agents.baselines import DeviceOnly
from agents.registry import AGENTS, agent_class, make_agent
from gelato_env.env import GelatoEnv
from tests.conftest import MICRO_VOCAB


@pytest.mark.filterwarnings("ignore:GelatoPolicy.update")  # one round, no feedback asked
@pytest.mark.parametrize("name", sorted(AGENTS))
def test_every_agent_plays_a_round_in_the_env_it_asks_for(micro_trace: Any, name: str) -> None:
    agent = make_agent(name)
    # the class is reachable by its import path too (plug-in presets name classes that way)
    assert agent_class(f"{type(agent).__module__}.{type(agent).__name__}") is type(agent)
    kwargs = {"trace_path": str(micro_trace.path), "system_overrides": {"vocab_size": MICRO_VOCAB},
              **agent.env_overrides().env_kwargs()}  # fmt: skip
    env = GelatoEnv(**kwargs)  # an unknown payload, exit rule or action mode raises here
    if name == "learned":  # needs a trained run (tests/agents/test_learned.py)
        with pytest.raises(ValueError, match="needs a trained run"):
            agent.bind(env)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # calibration notices on the micro trace
        agent.bind(env)
    obs, _ = env.reset(seed=0)
    if name == "device_only":  # no SD rounds: reported from its closed form, never stepped
        assert not agent.env_overrides().lossless
        with pytest.raises(RuntimeError, match="closed form"):
            agent.predict(obs)
        assert DeviceOnly.closed_form(env.params).throughput_tps > 0
        return
    action, _ = agent.predict(obs)
    assert env.action_space.contains(np.asarray(action, dtype=np.int64))
    _, _, _, _, info = env.step(action)
    agent.update(info)
    assert info["n_tokens"] >= 1


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("nope", {}, r"unknown agent 'nope'; known agents: \[.*'gelato'"),
        ("gelato", {"v": 0.0}, "v must be > 0"),
        ("gelato", {"v": -1.0}, "v must be > 0"),
        ("gelato", {"alpha_max": 1.0}, "alpha_max must be in"),
        ("static", {"gamma": -1}, "gamma must be >= 0"),
        ("static", {"protocol": "carrier_pigeon"}, "protocol must be one of"),
        ("dssd", {"bogus": 1}, "agent 'dssd' got bad parameters"),
    ],
)
def test_bad_agent_input(name: str, params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_agent(name, **params)


def test_env_overrides_per_agent() -> None:
    assert make_agent("dssd").env_overrides().env_kwargs()["payload"] == "dssd"
    assert make_agent("static").env_overrides().env_kwargs() == {
        "payload": "full", "exit_rule": "none", "exit_params": {},
    }  # fmt: skip
    assert make_agent("confidence").env_overrides().exit_rule == "confidence"
    assert make_agent("lyapunov_only").env_overrides().exit_rule == "none"
    assert make_agent("gelato").env_overrides().exit_rule == "entropy_bucket"
    assert not make_agent("device_only").env_overrides().lossless


def test_fixed_budget_predicts_its_gamma_unbound() -> None:
    action, state = make_agent("static", gamma=3).predict(np.zeros(9, dtype=np.float32))
    assert int(action) == 3
    assert state is None
