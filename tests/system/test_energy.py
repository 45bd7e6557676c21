from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gelato_env.system import EnergyBudget


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [("per_round", 0.3, 0.3), ("per_token", 0.1, 0.4), ("per_second", 2.0, 0.5)],
)
def test_allowance_by_mode(mode, value, expected):
    # A round that produced 4 tokens in 0.25 s.
    assert EnergyBudget(mode, value).allowance(4, 0.25) == pytest.approx(expected)


def test_queue_update_hand_values():
    budget = EnergyBudget("per_token", 0.1)
    assert budget.queue_update(1.0, 0.5, 3, 0.2) == pytest.approx(1.2)  # 1 + 0.5 - 0.3
    assert budget.queue_update(0.1, 0.2, 5, 0.2) == 0.0  # 0.1 + 0.2 - 0.5 < 0
    assert type(budget.queue_update(1.0, 0.5, 3, 0.2)) is float


def test_unconstrained_budget_keeps_queue_empty():
    budget = EnergyBudget("per_round", math.inf)
    assert budget.queue_update(0.0, 100.0, 1, 1.0) == 0.0


@pytest.mark.parametrize(
    ("mode", "value", "error", "match"),
    [
        ("per_day", 1.0, ValueError, r"mode must be one of .*'per_day'"),
        ("per_round", 0.0, ValueError, r"value must be > 0 \(J/round\), got 0.0"),
        ("per_second", -2.0, ValueError, r"value must be > 0 \(W\), got -2.0"),
        ("per_token", math.nan, ValueError, r"value must be > 0"),
        ("per_token", "0.1", TypeError, r"value must be a real number"),
        (3, 0.1, TypeError, r"mode must be a string"),
    ],
)
def test_invalid_budget(mode, value, error, match):
    with pytest.raises(error, match=match):
        EnergyBudget(mode, value)


@pytest.mark.parametrize("mode", ["per_round", "per_token", "per_second"])
def test_batch_equals_scalar_exactly(mode, rng):
    budget = EnergyBudget(mode, 0.2)
    queue = rng.exponential(1.0, size=200)
    energy = rng.exponential(0.5, size=200)
    n_tokens = rng.integers(1, 10, size=200)
    latency = rng.uniform(0.05, 1.0, size=200)
    allowed = budget.allowance(n_tokens, latency)
    updated = budget.queue_update(queue, energy, n_tokens, latency)
    assert allowed.shape == updated.shape == (200,)
    for i in range(200):
        args = (float(queue[i]), float(energy[i]), int(n_tokens[i]), float(latency[i]))
        assert updated[i] == budget.queue_update(*args)
        assert allowed[i] == budget.allowance(int(n_tokens[i]), float(latency[i]))


@given(
    mode=st.sampled_from(["per_round", "per_token", "per_second"]),
    value=st.floats(min_value=1e-6, max_value=1e3),
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=10.0),
            st.integers(min_value=1, max_value=9),
            st.floats(min_value=1e-3, max_value=5.0),
        ),
        max_size=30,
    ),
)
def test_queue_never_negative(mode, value, steps):
    budget = EnergyBudget(mode, value)
    queue = 0.0
    for energy, n_tokens, latency in steps:
        new = budget.queue_update(queue, energy, n_tokens, latency)
        assert new >= 0.0
        assert new >= queue + energy - budget.allowance(n_tokens, latency) - 1e-12
        queue = new


def test_queue_is_stable_iff_average_energy_meets_budget():
    budget = EnergyBudget("per_round", 0.5)
    under, over = 0.0, 0.0
    for _ in range(1000):
        under = budget.queue_update(under, 0.45, 2, 0.1)
        over = budget.queue_update(over, 0.55, 2, 0.1)
    assert under == 0.0
    assert over == pytest.approx(1000 * 0.05)
    assert np.isfinite(over)
