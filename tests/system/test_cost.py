from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gelato_env.system import (
    DeviceProfile,
    DvfsParams,
    EdgeProfile,
    PayloadParams,
    SystemParams,
    downlink_bits,
    round_cost,
    system_setting,
    uplink_bits,
)

PARAMS = SystemParams(DeviceProfile("jetson_orin"), EdgeProfile("a100_7b"))
FIELDS = (
    "latency_s",
    "energy_j",
    "draft_time_s",
    "uplink_time_s",
    "verify_time_s",
    "downlink_time_s",
    "link_latency_s",
    "draft_energy_j",
    "radio_energy_j",
    "idle_energy_j",
)


def test_round_cost_hand_values():
    # 4 tokens, 1000 bits up at 1 Mbit/s, 100 bits down at 20 Mbit/s.
    cost = round_cost(4, 1000, 100, 1e6, PARAMS)
    assert cost.draft_time_s == pytest.approx(0.100)  # 4 x 25 ms
    assert cost.uplink_time_s == pytest.approx(0.001)
    assert cost.verify_time_s == pytest.approx(0.038)  # 30 + 2 x 4 ms
    assert cost.downlink_time_s == pytest.approx(5e-6)
    assert cost.link_latency_s == pytest.approx(0.040)
    assert cost.latency_s == pytest.approx(0.179005)
    assert cost.draft_energy_j == pytest.approx(0.5)  # 4 x 125 mJ
    assert cost.radio_energy_j == pytest.approx(0.2 * 0.001)
    assert cost.idle_energy_j == pytest.approx(0.5 * (0.040 + 0.038 + 5e-6))
    assert cost.energy_j == pytest.approx(0.5 + 0.0002 + 0.0390025)


def test_round_cost_returns_python_floats_for_scalars():
    cost = round_cost(3, 500, 86, 2.5e6, PARAMS)
    assert all(type(getattr(cost, name)) is float for name in FIELDS)


def test_items_sum_to_totals():
    cost = round_cost(7, 12_345, 86, 3.3e6, PARAMS)
    time_items = (
        cost.draft_time_s
        + cost.uplink_time_s
        + cost.verify_time_s
        + cost.downlink_time_s
        + cost.link_latency_s
    )
    assert cost.latency_s == pytest.approx(time_items, rel=1e-15)
    assert cost.energy_j == pytest.approx(
        cost.draft_energy_j + cost.radio_energy_j + cost.idle_energy_j, rel=1e-15
    )
    idle_time = cost.latency_s - cost.draft_time_s - cost.uplink_time_s
    assert cost.idle_energy_j == pytest.approx(0.5 * idle_time, rel=1e-12)


def test_zero_idle_power_gives_compute_plus_radio_model():
    params = system_setting("legacy_300m", idle_power_w=0.0)  # 25 ms x 5 W per token
    cost = round_cost(2, 800, 86, 1e6, params)
    assert cost.idle_energy_j == 0.0
    assert cost.energy_j == pytest.approx(2 * 0.125 + 0.2 * 800 / 1e6)


def test_dvfs_overrides_draft_time_and_energy():
    device = DeviceProfile("d", dvfs=DvfsParams(cycles_per_token=1e7, freq_hz=1e9, kappa=1e-27))
    cost = round_cost(3, 0, 0, 1e6, SystemParams(device, EdgeProfile("e")))
    assert cost.draft_time_s == pytest.approx(3 * 0.01)
    assert cost.draft_energy_j == pytest.approx(3 * 1e-27 * 1e7 * 1e18)


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_dead_link_rejected(rate):
    with pytest.raises(ValueError, match="rate_bps must be > 0"):
        round_cost(1, 100, 86, rate, PARAMS)
    with pytest.raises(ValueError, match="rate_bps must be > 0"):
        round_cost(np.array([1, 2]), np.array([100, 200]), 86, np.array([1e6, rate]), PARAMS)


@pytest.mark.parametrize("protocol", ["topp", "full", "dssd"])
def test_batch_equals_scalar_exactly(protocol, rng):
    params = system_setting("paper", protocol=protocol)
    n = rng.integers(0, 9, size=300)
    up = uplink_bits(n, n * rng.integers(1, 40, size=300), params.payload)
    down = downlink_bits(rng.random(300) < 0.5, params.payload, params.gamma_max)
    rate = rng.exponential(5e6, size=300) + 1.0
    batch = round_cost(n, up, down, rate, params)
    for i in range(300):
        single = round_cost(int(n[i]), int(up[i]), int(down[i]), float(rate[i]), params)
        for name in FIELDS:
            assert getattr(batch, name)[i] == getattr(single, name), (name, i)


n_drafted = st.integers(min_value=0, max_value=15)
rates = st.floats(min_value=1e3, max_value=1e9)
topp_sizes = st.integers(min_value=1, max_value=200)


@given(n=n_drafted, topp=topp_sizes, rate=rates, protocol=st.sampled_from(["topp", "full", "dssd"]))
def test_cost_non_negative_and_monotone_in_n_drafted(n, topp, rate, protocol):
    payload = PayloadParams(protocol)
    params = SystemParams(DeviceProfile("d"), EdgeProfile("e"), payload=payload)

    def cost(k: int):
        return round_cost(
            k, uplink_bits(k, k * topp, payload), downlink_bits(True, payload, 8), rate, params
        )

    now, more = cost(n), cost(n + 1)
    for name in FIELDS:
        assert getattr(now, name) >= 0.0
    assert more.latency_s > now.latency_s
    assert more.energy_j > now.energy_j


@given(n=n_drafted, rate=rates, factor=st.floats(min_value=1.01, max_value=100.0))
def test_cost_non_increasing_in_rate(n, rate, factor):
    up = uplink_bits(n, 10 * n, PARAMS.payload)
    slow, fast = round_cost(n, up, 86, rate, PARAMS), round_cost(n, up, 86, rate * factor, PARAMS)
    assert fast.latency_s <= slow.latency_s
    assert fast.energy_j <= slow.energy_j
