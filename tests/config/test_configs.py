"""The shipped Hydra configs: every experiment and group composes, misspelled keys fail by name.

Composition only (Hydra's compose API over ``pkg://gelato_env.conf``, as the scripts see it):
no env is stepped, no model loaded.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir, initialize_config_module
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

import gelato_env.conf
from agents.train_config import AlgoConfig, RewardConfig, TrainConfig
from gelato_env.conf import schema
from gelato_env.config import EnvConfig
from gelato_env.system import system_setting
from gelato_env.traces.recorder import RecordConfig

CONF = Path(gelato_env.conf.__file__).parent
ROOT = Path(__file__).resolve().parents[2]
PRIMARY = {"train": "train", "evaluate": "evaluate", "record": "record_traces"}


def help_groups(script: str) -> dict[str, list[str]]:
    """The groups and options a script's ``--help`` lists (its ``hydra.help.template``)."""
    raw = OmegaConf.to_container(OmegaConf.load(CONF / f"{PRIMARY[script]}.yaml"), resolve=False)
    assert isinstance(raw, dict)
    template = raw["hydra"]["help"]["template"]
    section = template.split("== Configuration groups ==")[1].split("==")[0]
    lines = [re.fullmatch(r"(\w+): ([\w, ]+)", line) for line in section.splitlines()]
    return {m.group(1): m.group(2).split(", ") for m in lines if m}


#: experiment -> the script it is written for (the one whose --help lists it)
EXPERIMENTS = {
    name: script for script in PRIMARY for name in help_groups(script).get("experiment", [])
}


@pytest.fixture
def hydra_conf() -> Iterator[None]:
    with initialize_config_module("gelato_env.conf", version_base="1.3"):
        yield


def _compose(script: str, overrides: list[str]) -> DictConfig:
    cfg = compose(PRIMARY[script], overrides=overrides)
    schema.check_composed(cfg)
    return cfg


def _env_config(cfg: DictConfig) -> EnvConfig:
    env = OmegaConf.to_container(cfg.env, resolve=True)
    assert isinstance(env, dict)
    return EnvConfig.from_dict(env)  # type: ignore[arg-type]


def test_every_experiment_file_is_listed_by_one_script() -> None:
    listed = [name for script in PRIMARY for name in help_groups(script).get("experiment", [])]
    assert sorted(listed) == sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("script", sorted(PRIMARY))
def test_help_lists_exactly_the_groups_the_script_composes(script: str) -> None:
    groups = help_groups(script)
    defaults = OmegaConf.load(CONF / f"{PRIMARY[script]}.yaml")["defaults"]
    composed = {next(iter(d)) for d in defaults if isinstance(d, DictConfig)} - {
        "override hydra/job_logging"
    }
    assert set(groups) - {"experiment"} == composed
    for group, options in groups.items():
        if group != "experiment":
            assert options == _options(group), group  # every file, no stale name


@pytest.mark.usefixtures("hydra_conf")
@pytest.mark.parametrize(("name", "script"), sorted(EXPERIMENTS.items()))
def test_experiment_composes_into_valid_configs(name: str, script: str) -> None:
    cfg = _compose(script, [f"+experiment={name}"])
    env = _env_config(cfg)
    system_setting(env.system, **env.system_overrides)  # a valid system setting
    expected_system = "high_latency" if name == "paper_140ms" else "paper"
    assert (env.system, cfg.system.setting) == (expected_system, expected_system)
    if script == "train":
        AlgoConfig(**OmegaConf.to_container(cfg.algo))  # type: ignore[arg-type]
        RewardConfig(**OmegaConf.to_container(cfg.reward))  # type: ignore[arg-type]
        TrainConfig(seed=cfg.seed, **OmegaConf.to_container(cfg.train))  # type: ignore[arg-type]


@pytest.mark.usefixtures("hydra_conf")
def test_experiment_values_reach_the_env() -> None:
    env = _env_config(_compose("evaluate", ["+experiment=paper_1mhz"]))
    assert env.system_overrides == {"bandwidth_hz": 1.0e6}
    assert env.budget_value == 0.57
    assert _env_config(_compose("train", ["+experiment=smoke_train"])).horizon == 32


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.usefixtures("hydra_conf")
@pytest.mark.parametrize(
    ("script", "group", "option"),
    [("train", g, o) for g in ("env", "system", "algo", "reward") for o in _options(g)]
    + [("evaluate", g, o) for g in ("env", "system") for o in _options(g)]
    + [("record", "prompts", o) for o in _options("prompts")],
)
def test_every_group_option_composes(script: str, group: str, option: str) -> None:
    cfg = _compose(script, [f"{group}={option}"])
    if group == "system":
        assert _env_config(cfg).system == option == cfg.system.setting
    elif group == "env":
        assert _env_config(cfg).backend == ("live" if option == "live" else "replay")
    else:
        assert cfg[group].get("name", cfg[group].get("source")) == option.split("_")[0]


def test_every_group_is_composed_by_a_script() -> None:
    """No dead groups: each folder of conf/ is in a primary defaults list (or is ``experiment``,
    selected with ``+experiment=``, or ``agent``, the presets ``agents=[...]`` names)."""
    used = {"experiment", "agent"}
    for primary in PRIMARY.values():
        defaults = OmegaConf.load(CONF / f"{primary}.yaml")["defaults"]
        used |= {next(iter(d)) for d in defaults if isinstance(d, DictConfig)}
    groups = {p.name for p in CONF.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert groups <= used, f"groups no script composes: {sorted(groups - used)}"


@pytest.mark.usefixtures("hydra_conf")
def test_system_group_sets_env_system() -> None:
    cfg = _compose("evaluate", ["system=high_latency", "system.bandwidth_hz=5e6"])
    env = _env_config(cfg)
    assert (env.system, env.system_overrides) == ("high_latency", {"bandwidth_hz": 5e6})
    params = system_setting(env.system, **env.system_overrides)
    assert (params.radio.bandwidth_hz, params.link.uplink_latency_s) == (5e6, 0.14)


@pytest.mark.usefixtures("hydra_conf")
def test_free_form_maps_take_new_keys_without_plus() -> None:
    cfg = _compose("evaluate", ["env.channel=gauss_markov", "env.channel_params.rho=0.9",
                                "env.exit_params.threshold_nats=1.5",
                                "agent_overrides.gelato.v=3.0"])  # fmt: skip
    assert _env_config(cfg).channel_params == {"rho": 0.9}
    assert cfg.agent_overrides.gelato.v == 3.0
    train = _compose("train", ["algo.kwargs.n_steps=64", "algo.kwargs.policy_kwargs.net_arch=[8]"])
    assert train.algo.kwargs.n_steps == 64


# -- misspelled keys fail, naming the key ---------------------------------------------------------

BAD_OVERRIDES = [
    # (script, override, message fragment)
    ("evaluate", "n_episode=1", "Could not override 'n_episode'"),
    ("evaluate", "env.budget_vale=0.1", "Key 'budget_vale' not in 'EnvSchema'"),
    ("evaluate", "sweep.budget_value=[0.1]", "Key 'budget_value' not in 'SweepSection'"),
    ("evaluate", "system.bandwith_hz=5e6", "Key 'bandwith_hz' not in 'SystemSchema'"),
    ("evaluate", "env=high_latency", "Could not find 'env/high_latency'"),
    ("train", "train.total_timestep=10", "Key 'total_timestep' not in 'TrainSection'"),
    ("train", "algo.nmae=ppo", "Key 'nmae' not in 'AlgoSchema'"),
    ("train", "wandb.name=x", "Key 'name' not in 'TrainWandb'"),
    ("record", "record.gama_max=4", "Key 'gama_max' not in 'RecordSection'"),
]  # fmt: skip


@pytest.mark.usefixtures("hydra_conf")
@pytest.mark.parametrize(("script", "override", "fragment"), BAD_OVERRIDES)
def test_misspelled_override_fails_at_composition(script: str, override: str,
                                                  fragment: str) -> None:  # fmt: skip
    with pytest.raises(ConfigCompositionException) as err:
        compose(PRIMARY[script], overrides=[override])
    assert fragment in f"{err.value} {err.value.__cause__}"


PLUS_OVERRIDES = [
    # (script, override, message fragment): ``+`` adds to a struct config; check_composed refuses
    ("evaluate", "+n_episode=1", "unknown config key ['n_episode']; valid keys: ['agent_"),
    ("evaluate", "+wandb.projekt=x", "unknown config key ['wandb.projekt']; valid keys of wandb"),
    ("train", "+env.budget_vale=0.1", "unknown config key ['env.budget_vale']"),
    ("evaluate", "env.system=high_latency", "env.system is set from the system group"),
]  # fmt: skip


@pytest.mark.usefixtures("hydra_conf")
@pytest.mark.parametrize(("script", "override", "fragment"), PLUS_OVERRIDES)
def test_added_key_or_bypassed_system_fails_before_work(script: str, override: str,
                                                        fragment: str) -> None:  # fmt: skip
    cfg = compose(PRIMARY[script], overrides=[override])
    with pytest.raises(ValueError, match=re.escape(fragment)):
        schema.check_composed(cfg)


BAD_EXPERIMENTS = [
    # (id, experiment file text, message fragment)
    ("top_level", "# @package _global_\nn_episode: 1\n", "Key 'n_episode' not in 'EvaluateSchema'"),
    ("sweep_key", "# @package _global_\nsweep:\n  budget_value: [0.1]\n",
     "Key 'budget_value' not in 'SweepSection'"),
    ("env_key", "# @package _global_\nenv:\n  budget_vale: 0.1\n", "Key 'budget_vale' not in"),
    ("system_key", "# @package _global_\nsystem:\n  bandwith_hz: 5.0e6\n",
     "Key 'bandwith_hz' not in 'SystemSchema'"),
    ("no_package_line", "n_episodes: 1\n", "Key 'experiment' not in 'EvaluateSchema'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "fragment"), [c[1:] for c in BAD_EXPERIMENTS],
                         ids=[c[0] for c in BAD_EXPERIMENTS])  # fmt: skip
def test_misspelled_key_in_an_experiment_file_fails(tmp_path: Path, text: str,
                                                    fragment: str) -> None:  # fmt: skip
    conf = shutil.copytree(CONF, tmp_path / "conf")  # the shipped configs plus the bad file
    (conf / "experiment" / "bad.yaml").write_text(text)
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        with pytest.raises(ConfigCompositionException) as err:
            compose("evaluate", overrides=["+experiment=bad"])
    assert fragment in f"{err.value} {err.value.__cause__}"


# -- the schemas track the dataclasses the scripts build -----------------------------------------


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_section_schemas_match_the_configs_they_feed() -> None:
    assert _names(schema.TrainSection) == _names(TrainConfig) - {"seed"}
    assert _names(schema.AlgoSchema) == _names(AlgoConfig)
    assert _names(schema.RewardSchema) == _names(RewardConfig)
    assert _names(schema.RecordSection) <= _names(RecordConfig)
    assert _names(schema.EnvSchema) == _names(EnvConfig)


def test_every_script_uses_one_version_base_and_the_packaged_configs() -> None:
    for script in ("train.py", "evaluate.py", "record_traces.py"):
        text = (ROOT / "scripts" / script).read_text()
        lines = re.findall(r"@hydra\.main\((.*)\)", text)
        assert len(lines) == 1, script
        assert lines[0].startswith('version_base="1.3", config_path="pkg://gelato_env.conf"')
