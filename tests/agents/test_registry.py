from __future__ import annotations

import numpy as np
import pytest

from agents.base import Policy
from agents.registry import AGENTS, make_agent


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_every_agent_builds_and_is_a_policy(name: str) -> None:
    agent = make_agent(name)
    assert isinstance(agent, Policy)
    assert agent.name == name


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
