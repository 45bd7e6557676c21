"""Bad Hydra overrides and config files, table-driven, and scripts that write only where told.

In-process cases compose conf/evaluate.yaml with the overrides (or a bad experiment file in a
copy of conf/) and run scripts/evaluate.py's own check; agent presets go through
``agents.registry.load_preset``. A few subprocess runs check the whole path: the error names the
field or file, and the working directory stays empty (issue #15).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

import agents.registry
from agents.registry import load_preset, make_agent
from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "gelato_env" / "conf"
#: the top-level keys of conf/evaluate.yaml, as the unknown-key message lists them
VALID_KEYS = sorted(
    set(yaml.safe_load((CONF / "evaluate.yaml").read_text())) - {"defaults", "hydra"} | {"system"}
)


@pytest.fixture(scope="module")
def evaluate_script() -> ModuleType:
    return load_script("evaluate")


def _check(module: ModuleType, conf_dir: Path, overrides: list[str]) -> None:
    with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
        cfg = compose("evaluate", overrides=overrides)
    module.check_config(cfg, "the test's overrides")


# -- Hydra overrides -----------------------------------------------------------------------------

OVERRIDE_CASES = [
    # (override, message fragment)
    ("seeds=abc", "seeds must be a non-empty list of ints, got 'abc'"),
    ("seeds=[1.5]", "seeds[i] must be an int, got 1.5"),
    ("seeds=[true]", "seeds[i] must be an int, got True"),
    ("seeds=[-1]", "seeds[i] must be >= 0, got -1"),
    ("n_episodes=abc", "n_episodes must be an int, got 'abc'"),
    ("n_episodes=0", "n_episodes must be >= 1, got 0"),
    ("sweep.n_episodes=0", "sweep.n_episodes must be >= 1, got 0"),
    ("+n_episode=1", f"unknown config key ['n_episode']; valid keys: {VALID_KEYS}"),
    ("+sweep.budget_value=[0.1]", "unknown config key ['sweep.budget_value']"),
    ("+wandb.projekt=x", "unknown config key ['wandb.projekt']"),
    ("+env.budget_vale=0.1", "unknown config key ['env.budget_vale']; valid keys of env: ['a"),
    ("env.budget_value=abc", "env: budget_value must be a number, got str"),
    ("env.threshold_levels_nats=1.0",
     "env: threshold_levels_nats must be a sequence of numbers (nats), got 1.0"),
    ("agents=gelato", "agents must be a list of conf/agent names, got 'gelato'"),
    ("agents=[]", "agents must not be empty"),
    ("sweep.agents=[]", "sweep.agents must not be empty"),
    ("+agent_overrides.gelato=5", "agent_overrides.gelato must be a mapping of agent parameters, "
     "got 5"),
    ("check_lossless=no", "check_lossless must be true or false, got 'no'"),
    ("progress=1", "progress must be true or false, got 1"),
    ("sweep.enabled=yes", "sweep.enabled must be true or false, got 'yes'"),
    ("wandb.mode=offlne", "wandb.mode must be one of ['offline', 'online', 'disabled'], "
     "got 'offlne'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("override", "fragment"), OVERRIDE_CASES, ids=[case[0] for case in OVERRIDE_CASES]
)
def test_bad_override(evaluate_script: ModuleType, override: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        _check(evaluate_script, CONF, [override])


def test_good_config_passes(evaluate_script: ModuleType) -> None:
    for overrides in ([], ["+experiment=smoke"], ["+experiment=paper_140ms", "seeds=[3]"]):
        _check(evaluate_script, CONF, overrides)  # raises nothing


# -- config files --------------------------------------------------------------------------------

EXPERIMENT_CASES = [
    # (id, experiment file text, fragment): key names fail while Hydra composes the file (the
    # schemas, gelato_env/conf/schema.py), values in the script's own check
    ("misspelled_top_level", "# @package _global_\nn_episode: 1\n",
     "In 'experiment/bad': ConfigKeyError raised while composing config:\nKey 'n_episode' not in "
     "'EvaluateSchema'"),
    ("misspelled_sweep_key", "# @package _global_\nsweep:\n  budget_value: [0.1]\n",
     "Key 'budget_value' not in 'SweepSection'"),
    ("misspelled_env_key", "# @package _global_\nenv:\n  budget_vale: 0.1\n",
     "Key 'budget_vale' not in 'EnvSchema'"),
    ("misspelled_wandb_key", "# @package _global_\nwandb:\n  mod: online\n",
     "Key 'mod' not in 'EvaluateWandb'"),
    ("quoted_seed", "# @package _global_\nseeds: ['0']\n", "seeds[i] must be an int, got '0'"),
    ("no_package_line", "n_episodes: 1\n",
     "In 'experiment/bad': ConfigKeyError raised while composing config:\nKey 'experiment' not"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragment"),
    [case[1:] for case in EXPERIMENT_CASES],
    ids=[case[0] for case in EXPERIMENT_CASES],
)
def test_bad_experiment_file(
    evaluate_script: ModuleType, tmp_path: Path, text: str, fragment: str
) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "experiment" / "bad.yaml").write_text(text)
    with pytest.raises((ValueError, ConfigCompositionException), match=re.escape(fragment)):
        _check(evaluate_script, conf, ["+experiment=bad"])


PRESET_CASES = [
    # (id, preset file text, fragment after "<file>: ")
    ("yaml_syntax", "name: gelato\nparams: {v: 1.0\n", "invalid YAML"),
    ("tab_indent", "name: gelato\nparams:\n\tv: 1.0\n", "invalid YAML"),
    ("a_list", "- gelato\n- 1.0\n",
     "an agent preset must be a mapping with keys ['name', 'label', 'params', '_target_'], "
     "got list"),
    ("misspelled_params", "name: gelato\nparms:\n  v: 2.0\n",
     "unknown preset keys ['parms']; valid keys: ['name', 'label', 'params', '_target_']"),
    ("params_a_list", "name: gelato\nparams: [1.0, 2.0]\n",
     "params must be a mapping of 'gelato' arguments, got [1.0, 2.0]"),
    ("unknown_agent", "name: gelatto\n", "unknown agent 'gelatto'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragment"),
    [case[1:] for case in PRESET_CASES],
    ids=[case[0] for case in PRESET_CASES],
)
def test_bad_agent_preset_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, fragment: str
) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    monkeypatch.setattr(agents.registry, "PRESET_DIR", tmp_path)
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'bad.yaml'}: {fragment}")):
        load_preset("bad")


def test_preset_parameter_the_agent_does_not_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.yaml").write_text("name: gelato\nparams:\n  vv: 1.0\n")
    monkeypatch.setattr(agents.registry, "PRESET_DIR", tmp_path)
    preset = load_preset("bad")
    with pytest.raises(ValueError, match=re.escape("agent 'gelato' got bad parameters ['vv']")):
        make_agent(preset.name, **preset.params)


# -- whole scripts: clear errors, nothing written outside what was named --------------------------


def _run(script: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    cmd = [sys.executable, str(ROOT / "scripts" / script), *args]
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_evaluate_bad_seed_names_the_field_and_leaves_no_outputs(
    micro_trace: Any, tmp_path: Path
) -> None:
    proc = _run("evaluate.py", tmp_path, "seeds=abc", f"env.trace_path={micro_trace.path}")
    assert proc.returncode != 0
    assert "seeds must be a non-empty list of ints, got 'abc'" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no outputs/<date>/<time>/ left behind


def test_evaluate_misspelled_experiment_key_names_the_file(
    micro_trace: Any, tmp_path: Path
) -> None:
    extra = tmp_path / "extra"
    (extra / "experiment").mkdir(parents=True)
    (extra / "experiment" / "typo.yaml").write_text("# @package _global_\nn_episode: 1\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = _run("evaluate.py", cwd, f"hydra.searchpath=[file://{extra}]", "+experiment=typo",
                f"env.trace_path={micro_trace.path}")  # fmt: skip
    assert proc.returncode != 0
    assert "In 'experiment/typo'" in proc.stderr
    assert "Key 'n_episode' not in 'EvaluateSchema'" in proc.stderr
    assert list(cwd.iterdir()) == []


def test_record_traces_writes_only_out_dir_and_smoke_pair_rejects(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    out = tmp_path / "trace"
    proc = _run("record_traces.py", cwd, "pair.kind=micro_synthetic", "prompts.n=2",
                "record.max_new_tokens=8", "record.num_threads=1", f"out_dir={out}",
                "progress=false")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(cwd.iterdir()) == []  # no outputs/<date>/<time>/ in the working directory
    assert (out / "header.json").is_file()
    acceptance = float(re.search(r"acceptance=([0-9.]+)", proc.stdout).group(1))  # type: ignore[union-attr]
    assert 0.0 < acceptance < 1.0  # the SYNTHETIC smoke pair rejects some drafts
    assert "R^2 nan" not in proc.stdout


@pytest.mark.parametrize("script", ["evaluate.py", "train.py"])
@pytest.mark.parametrize("override", ["env.system_overrides.bandwidth_hz=5e6", "env.system=paper"])
def test_env_system_overrides_on_the_command_line_name_the_spelling_to_use(
    tmp_path: Path, script: str, override: str
) -> None:
    proc = _run(script, tmp_path, override)
    assert proc.returncode != 0
    assert f"error: {override}: " in proc.stderr
    assert "system=<name> and system.<field>=<value>" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
