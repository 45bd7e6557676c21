"""Console scripts gelato-train / gelato-evaluate / gelato-record (agents/cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents import cli

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_console_scripts_point_at_the_cli() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {
        **{f"gelato-{job}": f"agents.cli:{job}" for job in cli.SCRIPTS},
        "gelato-aggregate": "agents.sweep:main",
    }
    for job in cli.SCRIPTS:
        assert callable(getattr(cli, job))
        assert cli.script_path(job).is_file()


@pytest.mark.parametrize(("job", "key"), [("train", "total_timesteps"), ("evaluate", "agents"),
                                          ("record", "prompts")])  # fmt: skip
def test_console_script_runs_its_hydra_script(job: str, key: str, tmp_path: Path) -> None:
    code = (
        f"import sys; from agents.cli import {job}; "
        f"sys.argv = ['gelato-{job}', '--cfg', 'job']; {job}()"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{key}:" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # --cfg prints the config only


def test_unknown_job_names_the_jobs() -> None:
    with pytest.raises(ValueError, match=r"job must be one of \['evaluate', 'record', 'train'\]"):
        cli.script_path("sweep")


def test_missing_script_names_where_it_looked(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setattr(cli, "SCRIPT_DIRS", (tmp_path / "a", tmp_path / "b"))
    with pytest.raises(FileNotFoundError, match=r"gelato-train runs train\.py, which none of"):
        cli.script_path("train")
