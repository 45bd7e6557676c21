from __future__ import annotations

import numpy as np
import pytest

from gelato_env.system import PayloadParams, downlink_bits, uplink_bits, verdict_bits

# Hand-computed with V = 151,936 (18-bit ids), 16-bit probabilities, 64 header bits.
UPLINK_CASES = [
    ("topp", 0, 0, 64),
    ("topp", 4, 20, 64 + 4 * 18 + 20 * 34),
    ("topp", 8, 8, 64 + 8 * 18 + 8 * 34),
    ("full", 0, 0, 64),
    ("full", 3, 99, 64 + 3 * (18 + 151_936 * 16)),
    ("dssd", 5, 99, 64 + 5 * 34),
]


@pytest.mark.parametrize(("protocol", "n_drafted", "topp_sum", "bits"), UPLINK_CASES)
def test_uplink_bits_hand_values(protocol, n_drafted, topp_sum, bits):
    result = uplink_bits(n_drafted, topp_sum, PayloadParams(protocol))
    assert result == bits
    assert type(result) is int


@pytest.mark.parametrize(
    ("protocol", "rejected", "bits"),
    [
        ("topp", False, 64 + 4 + 18),
        ("topp", True, 64 + 4 + 18),
        ("full", True, 64 + 4 + 18),
        ("dssd", False, 64 + 4 + 18),
        ("dssd", True, 64 + 4 + 18 + 151_936 * 16),
    ],
)
def test_downlink_bits_hand_values(protocol, rejected, bits):
    assert downlink_bits(rejected, PayloadParams(protocol), 8) == bits


@pytest.mark.parametrize(("gamma_max", "bits"), [(1, 2), (2, 2), (6, 3), (8, 4), (14, 4), (15, 5)])
def test_verdict_bits(gamma_max, bits):
    assert verdict_bits(gamma_max) == bits


def test_small_vocab_models_paper_link_cost_through_vocab_size():
    small = PayloadParams("full", vocab_size=64)
    assert uplink_bits(1, 0, small) == 64 + 6 + 64 * 16


@pytest.mark.parametrize("protocol", ["topp", "full", "dssd"])
def test_vectorised_equals_scalar_exactly(protocol, rng):
    payload = PayloadParams(protocol)
    n = rng.integers(0, 9, size=200)
    topp = n * rng.integers(1, 50, size=200)
    rejected = rng.random(200) < 0.5
    up = uplink_bits(n, topp, payload)
    down = downlink_bits(rejected, payload, 8)
    assert up.dtype == np.int64
    assert down.dtype == np.int64
    assert up.tolist() == [
        uplink_bits(int(a), int(b), payload) for a, b in zip(n, topp, strict=True)
    ]
    assert down.tolist() == [downlink_bits(bool(r), payload, 8) for r in rejected]
