from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gelato_env.system import (
    DEVICE_PROFILES,
    OVERRIDE_FIELDS,
    DeviceProfile,
    EdgeProfile,
    SystemParams,
    device_profile,
    edge_profile,
    system_setting,
)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "system"


def test_paper_setting_is_the_reconstructed_scenario():
    params = system_setting("paper")
    # roofline: weight bytes / (0.7 x memory bandwidth)
    assert params.device.draft_time_s == pytest.approx(0.98e9 / (0.7 * 102.4e9))
    assert params.device.draft_power_w == 15.0
    assert params.edge.verify_base_s == pytest.approx(
        15.22e9 / (0.7 * 2.039e12) + 9.756e-5, rel=1e-3
    )
    assert params.radio.bandwidth_hz == 1e6
    assert params.radio.distance_m == 1000.0
    assert params.radio.downlink_model == "link_budget"
    assert params.radio.downlink_snr_db == pytest.approx(12.9)
    assert params.link.uplink_latency_s == 0.020
    assert params.payload.protocol == "topp"
    assert params.payload.vocab_size == 151_936
    assert params.gamma_max == 8


def test_paper_uplink_is_the_constraint_and_the_downlink_follows_it():
    from gelato_env.system import noise_power_w, path_gain, shannon_rate_bps, snr_db

    radio = system_setting("paper").radio
    noise = noise_power_w(radio.bandwidth_hz, radio.noise_psd_dbm_hz, radio.noise_figure_db)
    gain = path_gain(radio.distance_m)
    assert snr_db(radio.tx_power_w, gain, noise) == pytest.approx(3.91, abs=0.01)
    assert shannon_rate_bps(radio.bandwidth_hz, radio.tx_power_w, gain, noise) < 2e6
    # the downlink scales with the (paired) bandwidth; a fixed rate does not
    wide = system_setting("paper", bandwidth_hz=10e6).radio
    assert wide.downlink_rate_bps == pytest.approx(10 * radio.downlink_rate_bps)
    fixed = system_setting("paper", downlink_model="fixed", downlink_rate_bps=5e6).radio
    assert fixed.downlink_rate_bps == 5e6


def test_legacy_setting_keeps_the_first_build():
    params = system_setting("legacy_300m")
    assert params == SystemParams(DeviceProfile("legacy_jetson"), EdgeProfile("legacy_a100"))
    assert params.radio.downlink_rate_bps == 20e6


def test_overrides_reach_every_part():
    params = system_setting(
        "paper",
        bandwidth_hz=5e6,
        uplink_latency_s=0.14,
        protocol="full",
        vocab_size=50_257,
        device="phone_cpu",
        edge=EdgeProfile("mine", 0.01, 0.001),
        idle_power_w=0.0,
        verify_per_token_s=0.003,
        gamma_max=12,
        downlink_latency_s=None,  # None keeps the setting's value
    )
    assert params.radio.bandwidth_hz == 5e6
    assert params.link.uplink_latency_s == 0.14
    assert params.link.downlink_latency_s == 0.020
    assert params.payload.protocol == "full"
    assert params.payload.vocab_size == 50_257
    assert params.device.name == "phone_cpu"
    assert params.device.draft_time_s == 0.070
    assert params.device.idle_power_w == 0.0
    assert params.edge == EdgeProfile("mine", 0.01, 0.003)
    assert params.gamma_max == 12


def test_profiles_stay_inside_the_literature_energy_range():
    for name in ("phone_npu", "phone_cpu"):
        assert 0.044 <= DEVICE_PROFILES[name].draft_energy_per_token_j <= 0.280
    assert device_profile("phone_cpu").draft_time_s > device_profile("jetson_orin").draft_time_s
    assert edge_profile("h100_7b").verify_base_s < edge_profile("a100_7b").verify_base_s


def test_dvfs_profile_time_override_warns():
    with pytest.warns(UserWarning, match="uses DVFS"):
        system_setting("paper", device="jetson_orin_dvfs", draft_time_s=0.05)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: device_profile("pixel"), r"device profile must be one of \[.*'phone_cpu'.*\]"),
        (
            lambda: edge_profile("tpu"),
            r"edge profile must be one of \['a100_7b', 'h100_7b', 'legacy_a100'\]",
        ),
        (
            lambda: system_setting("lab"),
            r"setting must be one of \['high_latency', 'legacy_300m', 'paper'\]",
        ),
        (lambda: system_setting(device="pixel"), r"device profile must be one of"),
        (lambda: system_setting(bandwith_hz=1e6), r"got \['bandwith_hz'\]"),
        (lambda: system_setting(protocol="zip"), r"protocol must be one of"),
        (lambda: system_setting(bandwidth_hz=-1.0), r"bandwidth_hz must be > 0, got -1.0"),
        (lambda: system_setting(tx_power_w=0.0), r"tx_power_w must be > 0"),
        (lambda: system_setting(p_top=2.0), r"p_top must be in \(0, 1\]"),
    ],
)
def test_unknown_names_and_bad_values(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("name", ["paper", "high_latency", "legacy_300m"])
def test_hydra_config_builds_the_named_setting(name):
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / f"{name}.yaml"))
    assert isinstance(cfg, dict)
    assert cfg["setting"] == name
    assert set(cfg) == {"setting", *OVERRIDE_FIELDS}  # every override field is documented
    assert system_setting(**cfg) == system_setting(name)
    cfg["bandwidth_hz"] = 5e6
    assert system_setting(**cfg).radio.bandwidth_hz == 5e6


def test_every_config_field_is_commented():
    for path in CONF_DIR.glob("*.yaml"):
        for line in path.read_text().splitlines():
            if line and not line.startswith("#"):
                assert "#" in line, f"{path.name}: undocumented field {line!r}"
