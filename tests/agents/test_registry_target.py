"""A user's own agent class plugged in by ``_target_`` (no edit of gelato)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agents.evaluation import run_agent
from agents.registry import load_preset, make_agent
from gelato_env.env import GelatoEnv
from tests.conftest import MICRO_VOCAB

ROOT = Path(__file__).resolve().parents[2]

USER_MODULE = '''
from agents.base import AnalyticPolicy, Decision, EnvOverrides


class HalfBudget(AnalyticPolicy):
    """Drafts half the largest budget (or `gamma`), no early exit."""

    name = "half_budget"

    def __init__(self, gamma=None):
        super().__init__()
        self.gamma = gamma

    def env_overrides(self):
        return EnvOverrides(exit_rule="none")

    def decide(self, obs):
        return Decision(budget=self.gamma if self.gamma is not None else self.gamma_max // 2)


class NotAPolicy:
    pass
'''


@pytest.fixture
def user_preset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``my_policies.py`` (importable from ``tmp_path``) and a preset file naming its class."""
    (tmp_path / "my_policies.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    preset = tmp_path / "half.yaml"
    preset.write_text("_target_: my_policies.HalfBudget\nlabel: half\nparams: {gamma: 3}\n")
    return preset


def test_preset_file_with_target_builds_and_runs_the_users_class(
    user_preset: Path, micro_trace: Any
) -> None:
    preset = load_preset(str(user_preset), {"half": {"gamma": 2}})
    assert (preset.name, preset.label, preset.params) == ("my_policies.HalfBudget", "half",
                                                          {"gamma": 2})  # fmt: skip
    policy = make_agent(preset.name, **preset.params)
    assert type(policy).__name__ == "HalfBudget"
    kwargs = {"trace_path": str(micro_trace.path), "system_overrides": {"vocab_size": MICRO_VOCAB}}
    run = run_agent(policy, lambda kw: GelatoEnv(**{**kwargs, **kw}), label=preset.label,
                    agent=preset.name, n_episodes=2, seed=0)  # fmt: skip
    assert set(run.rounds["budget"].tolist()) == {2.0}
    assert run.metrics()["throughput_tps"] > 0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("_target_: my_policies.Missing\n", r"half\.yaml: _target_ agent 'my_policies.Missing' "
                                            r"cannot be imported"),
        ("_target_: no_such_module.X\n", "cannot be imported: No module named 'no_such_module'"),
        ("_target_: my_policies.NotAPolicy\n", "must be a subclass of agents.base.AnalyticPolicy"),
        ("_target_: my_policies.HalfBudget\nname: static\n", "give name .* or _target_"),
    ],
)  # fmt: skip
def test_bad_target_presets_fail_naming_the_file(user_preset: Path, text: str, match: str) -> None:
    user_preset.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_preset(str(user_preset))


def test_missing_preset_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"agent preset file .*absent\.yaml not found"):
        load_preset(str(tmp_path / "absent.yaml"))


def test_evaluate_script_scores_the_users_agent_next_to_gelato(
    user_preset: Path, micro_trace: Any, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(user_preset.parent)]),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "+experiment=smoke",
         f"env.trace_path={micro_trace.path}", f"hydra.run.dir={tmp_path / 'eval'}",
         f"agents=[gelato,{user_preset}]", "sweep.enabled=false", "wandb.mode=disabled"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| half |" in proc.stdout
    assert "| gelato |" in proc.stdout
