from __future__ import annotations

import math

import numpy as np
import pytest

from agents.forecast import RoundCostModel, expected_tokens
from agents.gelato import GelatoPolicy, MarginalUtility
from gelato_env.observation import ObservationFields, ObservationSpec
from gelato_env.sd.exit_rules import ExitRule, realized_length
from gelato_env.system import EnergyBudget, system_setting


def _obs(queue_j: float = 0.0, rate_bps: float = 6e6, entropy: float = 1.0) -> ObservationFields:
    return ObservationFields(queue_j, rate_bps, 0.02, entropy, 0.6, 2.0, 4.0, 0.5, 0.25)


def _gelato(**kw: float) -> GelatoPolicy:
    policy = GelatoPolicy(**kw)  # type: ignore[arg-type]
    policy.configure(system_setting("paper"), EnergyBudget("per_round", 0.2), topp_size_mean=4.0)
    return policy


def test_expected_tokens_closed_form() -> None:
    alpha = 0.7
    brute = [sum(alpha**i for i in range(g + 1)) for g in range(9)]
    np.testing.assert_allclose(expected_tokens(alpha, np.arange(9)), brute)
    np.testing.assert_allclose(expected_tokens(1.0, [0, 3]), [1.0, 4.0])


def test_plan_is_exhaustive_argmax_of_dpp_score() -> None:
    policy = _gelato(v=1.0)
    model = RoundCostModel(system_setting("paper"), EnergyBudget("per_round", 0.2), 4.0)
    for q in (0.0, 0.5, 3.0, 30.0):
        for h in (0.2, 1.0, 3.0):
            plan = policy.plan(_obs(queue_j=q, entropy=h))
            alpha = min(math.exp(-0.35 * h), 0.99)
            f = model.forecast(6e6, alpha)
            scores = [f.n_tokens[g] / f.latency_s[g] - q * f.energy_j[g] for g in range(9)]
            assert plan.budget == int(np.argmax(scores))
            assert plan.alpha == pytest.approx(alpha)


def test_budget_shrinks_with_queue_and_entropy() -> None:
    policy = _gelato(v=1.0)
    budgets_q = [policy.plan(_obs(queue_j=q, entropy=0.1)).budget for q in (0.0, 1.0, 5.0, 50.0)]
    assert budgets_q == sorted(budgets_q, reverse=True)
    assert budgets_q[0] > budgets_q[-1] == 0
    budgets_h = [policy.plan(_obs(queue_j=0.5, entropy=h)).budget for h in (0.0, 1.0, 3.0, 8.0)]
    assert budgets_h == sorted(budgets_h, reverse=True)


def test_unbound_gelato_raises() -> None:
    with pytest.raises(RuntimeError, match="bind"):
        GelatoPolicy().predict(np.zeros(9, dtype=np.float32))


def test_predict_round_trips_through_the_observation() -> None:
    policy = _gelato(v=1.0)
    spec = ObservationSpec()
    obs = spec.encode(_obs(queue_j=0.3, entropy=0.5))
    action, _ = policy.predict(obs)
    assert int(action) == policy.plan(spec.decode(obs)).budget
    assert policy.last_plan is not None
    assert policy.last_plan.budget == int(action)


def test_budget_threshold_mode_picks_a_level() -> None:
    policy = _gelato(v=1.0)
    policy.action_mode = "budget_threshold"
    policy.threshold_levels_nats = (0.5, 1.0, 1.5, 2.0, 3.0)
    low_q = policy.decide(_obs(queue_j=0.0, entropy=0.5))
    high_q = policy.decide(_obs(queue_j=2.0, entropy=0.5))
    assert low_q.threshold_level is not None
    assert high_q.threshold_level is not None
    # an energy-stressed device tolerates less entropy before exiting
    assert high_q.threshold_level <= low_q.threshold_level


def test_marginal_utility_rule() -> None:
    policy = _gelato(v=1.0)
    rule = policy.marginal_utility_rule(_obs(queue_j=0.0))
    assert isinstance(rule, ExitRule)
    confident = np.zeros(8)
    assert realized_length(rule, confident, np.ones(8), 8) == 8  # free energy, sure tokens
    stressed = policy.marginal_utility_rule(_obs(queue_j=100.0))
    assert realized_length(stressed, confident, np.ones(8), 8) == 1
    uncertain = np.array([0.1, 0.1, 9.0, 0.1, 0.1, 0.1, 0.1, 0.1])
    mid = policy.marginal_utility_rule(_obs(queue_j=0.5))
    assert realized_length(mid, uncertain, np.ones(8), 8) <= 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latency_s": (0.1,), "energy_j": (0.1,)}, "same length >= 2"),
        ({"latency_s": (0.1, 0.2), "energy_j": (0.1,)}, "same length >= 2"),
        ({"latency_s": (0.0, 0.2), "energy_j": (0.1, 0.2)}, "latency_s must be > 0"),
        ({"v": 0.0}, "v must be > 0"),
    ],
)
def test_marginal_utility_rejects_bad_input(kwargs: dict, match: str) -> None:
    args = {"v": 1.0, "queue_j": 0.0, "latency_s": (0.1, 0.2), "energy_j": (0.1, 0.2)} | kwargs
    with pytest.raises(ValueError, match=match):
        MarginalUtility(**args)
