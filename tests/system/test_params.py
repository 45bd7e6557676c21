from __future__ import annotations

import math

import pytest

from gelato_env.system import (
    DeviceProfile,
    DvfsParams,
    EdgeProfile,
    LinkParams,
    PayloadParams,
    RadioParams,
    SystemParams,
)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: RadioParams(bandwidth_hz=-1.0), ValueError, r"bandwidth_hz must be > 0, got -1.0"),
        (lambda: RadioParams(tx_power_w=0.0), ValueError, r"tx_power_w must be > 0 .*rate zero"),
        (lambda: RadioParams(distance_m=0), ValueError, r"distance_m must be > 0, got 0.0"),
        (lambda: RadioParams(bandwidth_hz="1e6"), TypeError, r"bandwidth_hz must be a real number"),
        (lambda: RadioParams(bandwidth_hz=math.nan), ValueError, r"bandwidth_hz must be finite"),
        (lambda: PayloadParams(p_top=0.0), ValueError, r"p_top must be in \(0, 1\], got 0.0"),
        (lambda: PayloadParams(p_top=1.5), ValueError, r"p_top must be in \(0, 1\], got 1.5"),
        (lambda: PayloadParams(protocol="zip"), ValueError, r"protocol must be one of .*'zip'"),
        (lambda: PayloadParams(vocab_size=1), ValueError, r"vocab_size must be >= 2, got 1"),
        (lambda: PayloadParams(vocab_size=2.5), TypeError, r"vocab_size must be an integer"),
        (lambda: PayloadParams(prob_bits=0), ValueError, r"prob_bits must be >= 1, got 0"),
        (lambda: PayloadParams(header_bits=-8), ValueError, r"header_bits must be >= 0, got -8"),
        (lambda: LinkParams(uplink_latency_s=-0.1), ValueError, r"uplink_latency_s must be >= 0"),
        (lambda: DeviceProfile("d", draft_time_s=0.0), ValueError, r"draft_time_s must be > 0"),
        (lambda: DeviceProfile("d", idle_power_w=-1), ValueError, r"idle_power_w must be >= 0"),
        (lambda: DeviceProfile("", 0.1), TypeError, r"name must be a non-empty string"),
        (lambda: DeviceProfile("d", dvfs=1.0), TypeError, r"dvfs must be a DvfsParams or None"),
        (lambda: DvfsParams(1e7, 0.0, 1e-27), ValueError, r"freq_hz must be > 0, got 0.0"),
        (lambda: EdgeProfile("e", verify_base_s=-1), ValueError, r"verify_base_s must be >= 0"),
        (lambda: EdgeProfile("e", verify_per_token_s=True), TypeError, r"must be a real number"),
        (
            lambda: SystemParams(DeviceProfile("d"), EdgeProfile("e"), gamma_max=0),
            ValueError,
            r"gamma_max must be >= 1, got 0",
        ),
        (
            lambda: SystemParams(EdgeProfile("e"), EdgeProfile("e")),
            TypeError,
            r"device must be a DeviceProfile",
        ),
    ],
)
def test_invalid_params_are_rejected(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_numbers_are_normalised_to_python_types():
    radio = RadioParams(bandwidth_hz=1_000_000, tx_power_w=1)
    assert type(radio.bandwidth_hz) is float
    assert type(radio.tx_power_w) is float
    assert type(PayloadParams(vocab_size=50_257).vocab_size) is int


@pytest.mark.parametrize(
    ("vocab_size", "bits"), [(2, 1), (64, 6), (65, 7), (50_257, 16), (151_936, 18)]
)
def test_token_id_bits_is_ceil_log2_vocab(vocab_size, bits):
    assert PayloadParams(vocab_size=vocab_size).token_id_bits == bits
    assert bits == math.ceil(math.log2(vocab_size))


def test_device_per_token_quantities_without_and_with_dvfs():
    plain = DeviceProfile("d", draft_time_s=0.04, draft_power_w=3.0)
    assert plain.draft_time_per_token_s == 0.04
    assert plain.draft_energy_per_token_j == pytest.approx(0.12)
    dvfs = DeviceProfile("d", draft_time_s=0.04, dvfs=DvfsParams(2e7, 1e9, 1e-27))
    assert dvfs.draft_time_per_token_s == pytest.approx(0.02)  # C/f
    assert dvfs.draft_energy_per_token_j == pytest.approx(1e-27 * 2e7 * 1e18)  # kappa C f^2


def test_params_are_frozen():
    radio = RadioParams()
    with pytest.raises(AttributeError):
        radio.bandwidth_hz = 2e6  # type: ignore[misc]
