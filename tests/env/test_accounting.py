"""The accounting module: each formula gives the same numbers on floats and on arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gelato_env.accounting import round_reward, used_frac
from gelato_env.observation import ObservationFields, ObservationSpec
from gelato_env.system import EnergyBudget


@pytest.mark.parametrize("mode", ["per_round", "per_token", "per_second"])
def test_energy_budget_settle_equals_on_floats_and_arrays(mode: str) -> None:
    gen = np.random.default_rng(0)
    budget = EnergyBudget(mode, {"per_round": 0.3, "per_token": 0.1, "per_second": 2.0}[mode])
    queue, energy = gen.uniform(0, 0.2, 64), gen.uniform(0, 0.5, 64)
    n_tokens, latency = gen.integers(1, 9, 64), gen.uniform(0.05, 0.5, 64)
    allowance, after = budget.settle(queue, energy, n_tokens, latency)
    for i in range(64):
        a, q = budget.settle(float(queue[i]), float(energy[i]), int(n_tokens[i]), float(latency[i]))
        assert (a, q) == (allowance[i], after[i])
        assert q == max(0.0, queue[i] + energy[i] - a)
    assert (after == 0.0).any()  # both sides of the max(0, .) were exercised
    assert (after > 0.0).any()


def test_used_frac_and_reward_equal_on_floats_and_arrays() -> None:
    energy = np.array([0.0, 1.0, 2.0, 0.5])
    allowance = np.array([0.0, 0.0, 4.0, 0.25])
    got = used_frac(energy, allowance)
    want = [used_frac(float(e), float(a)) for e, a in zip(energy, allowance, strict=True)]
    assert got.tolist() == want == [0.0, math.inf, 0.5, 2.0]
    n, lat, q, e = (
        np.array([3, 1]),
        np.array([0.2, 0.1]),
        np.array([0.5, 0.0]),
        np.array([1.0, 2.0]),
    )
    for mode in ("throughput", "dpp"):
        arrays = round_reward(mode, 2.0, n, lat, q, e)
        for i in range(2):
            floats = round_reward(mode, 2.0, int(n[i]), float(lat[i]), float(q[i]), float(e[i]))
            assert floats == tuple(float(x[i]) for x in arrays)
    assert round_reward("dpp", 2.0, 3, 0.2, 0.5, 1.0)[2] == pytest.approx(2.0 * 15.0 - 0.5)


def test_encode_raw_is_the_reference_encoding_for_one_and_many() -> None:
    spec = ObservationSpec(gamma_max=8)
    fields = ObservationFields(2.0, 3.0e6, 0.02, 25.0, 0.6, 2.0, 4.0, 2.0e4, 0.25)
    raw = [getattr(fields, name) for name in spec.field_names]
    one = spec.encode_raw(raw)
    assert one.dtype == np.float32
    np.testing.assert_array_equal(one, spec.encode(fields))
    assert one[3] == spec.high()[3]  # capped: the entropy EMA
    assert one[7] == spec.high()[7]  # capped: the energy budget used
    many = spec.encode_raw(np.array([raw, raw]))
    np.testing.assert_array_equal(many, np.stack([one, one]))


@pytest.mark.parametrize("per_token", [False, True])
def test_encode_one_equals_encode_raw_bit_for_bit(per_token: bool) -> None:
    """The single env's encoder and the vector env's give the same float32 bits."""
    spec = ObservationSpec(gamma_max=8, per_token=per_token)
    gen = np.random.default_rng(1)
    scales = spec.physical_scales()
    # physical values from 0 to 3x the cap, so that some entries are capped
    raw = gen.uniform(0.0, 3.0, size=(500, spec.size)) * spec.high() * scales
    batch = spec.encode_raw(raw)
    ones = np.stack([spec.encode_one(row.tolist()) for row in raw])
    np.testing.assert_array_equal(ones.view(np.int32), batch.view(np.int32))
    assert (batch == spec.high()).any()
    assert (batch < spec.high()).any()
