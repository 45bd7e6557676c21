"""EnvConfig validation, Hydra composition of conf/env, and bad input -> clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gelato_env.config import EnvConfig
from gelato_env.env import GelatoEnv
from gelato_env.traces.store import TraceError

CONF_DIR = Path(__file__).resolve().parents[2] / "gelato_env" / "conf"


@pytest.mark.parametrize("name", ["replay", "live"])
def test_hydra_env_configs_compose_into_env_config(name: str) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(overrides=[f"+env={name}"])
    config = EnvConfig.from_dict(OmegaConf.to_container(cfg.env, resolve=True))  # type: ignore[arg-type]
    assert config.backend == ("live" if name == "live" else "replay")
    assert config.system == "paper"  # a setting is chosen by the system group (system=<name>)
    assert config.threshold_levels_nats == (0.5, 1.0, 1.5, 2.0, 3.0)


def test_yaml_defaults_equal_dataclass_defaults() -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(overrides=["+env=replay"])
    assert EnvConfig.from_dict(OmegaConf.to_container(cfg.env)) == EnvConfig()  # type: ignore[arg-type]


def test_from_config_builds_the_configured_env(trace_path: str) -> None:
    config = EnvConfig(trace_path=trace_path, action_mode="budget_threshold", payload="dssd")
    env = GelatoEnv.from_config(config)
    assert env.config == config
    assert env.params.payload.protocol == "dssd"
    assert tuple(env.action_space.nvec) == (9, 5)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"backend": "remote"}, ValueError, "backend must be one of"),
        ({"system": "nope"}, ValueError, "setting must be one of"),
        ({"system_overrides": {"device": "toaster"}}, ValueError, "device profile must be one of"),
        ({"system_overrides": {"warp": 9}}, ValueError, "system overrides must be among"),
        ({"payload": "carrier_pigeon"}, ValueError, "protocol must be one of"),
        ({"channel": "telepathy"}, ValueError, "channel must be one of"),
        ({"channel_params": {"speed": 1}}, ValueError, "unknown"),
        ({"budget_mode": "per_day"}, ValueError, "budget_mode must be one of"),
        ({"budget_value": -1.0}, ValueError, "budget_value must be a finite number > 0"),
        ({"budget_value": "lots"}, TypeError, "budget_value must be a number"),
        ({"action_mode": "joystick"}, ValueError, "action_mode must be one of"),
        ({"reward_mode": "vibes"}, ValueError, "reward_mode must be one of"),
        ({"exit_rule": "never"}, ValueError, "exit_rule must be one of"),
        ({"exit_params": {"bogus": 1.0}}, ValueError, "unknown"),
        (
            {"action_mode": "budget_threshold", "exit_rule": "survival"},
            ValueError,
            "threshold_nats",
        ),
        ({"threshold_levels_nats": ()}, ValueError, "threshold_levels_nats must not be empty"),
        ({"ema_decay": 1.0}, ValueError, "ema_decay must be in"),
        ({"horizon": 0}, ValueError, "horizon must be >= 1"),
        ({"max_new_tokens": 1000}, TraceError, "max_new_tokens 1000 exceeds"),
        ({"system_overrides": {"gamma_max": 12}}, TraceError, "gamma_max 12 exceeds the recorded"),
        ({"clock": "measured"}, ValueError, "clock='measured' needs backend='live'"),
        ({"model_pair": "gpt-5", "backend": "live"}, ValueError, "model_pair must be 'default'"),
        ({"backend": 42}, TypeError, "backend must be"),
        ({"scales": {"queue_scale_j": 0.0}}, ValueError, "queue_scale_j must be"),
    ],
)
def test_bad_arguments_raise_clear_errors(trace_path, kwargs, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        GelatoEnv(**{"trace_path": trace_path, **kwargs})


def test_missing_or_corrupt_trace_names_the_file(tmp_path: Path) -> None:
    with pytest.raises((TraceError, FileNotFoundError), match=str(tmp_path)):
        GelatoEnv(trace_path=str(tmp_path))


def test_live_backend_gamma_mismatch(make_live_backend) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="backend serves gamma_max 8"):
        GelatoEnv(backend=make_live_backend(), system_overrides={"gamma_max": 10})


def test_unknown_config_key() -> None:
    with pytest.raises(ValueError, match=r"unknown env config keys \['gama_max'\]"):
        EnvConfig.from_dict({"gama_max": 4})


@pytest.mark.parametrize(
    ("action_mode", "bad_action"),
    [
        ("budget", 9),
        ("budget", -1),
        ("budget", 2.5),
        ("per_token", 2),
        ("budget_threshold", np.array([3, 5])),
    ],
)
def test_action_outside_space(trace_path: str, action_mode: str, bad_action: object) -> None:
    env = GelatoEnv(trace_path=trace_path, action_mode=action_mode)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be"):
        env.step(bad_action)


def test_step_before_reset(trace_path: str) -> None:
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        GelatoEnv(trace_path=trace_path).step(0)
