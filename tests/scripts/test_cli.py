"""Console scripts gelato-train / gelato-evaluate / gelato-record (agents/cli.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
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


# -- the wheel: configs, scripts, licence and console scripts without a checkout -----------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of its sources (no build/ left in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "chunks")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for name in ("gelato_env", "agents", "scripts", "hydra_plugins"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(out)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    (path,) = out.glob("gelato_env-*.whl")
    return path


def test_wheel_ships_configs_scripts_licence_and_console_scripts(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    conf = ROOT / "gelato_env" / "conf"
    shipped = {f"gelato_env/conf/{p.relative_to(conf)}" for p in conf.rglob("*.yaml")}
    assert len(shipped) > 30
    assert shipped <= names, sorted(shipped - names)
    assert "gelato_env/conf/schema.py" in names
    assert "hydra_plugins/gelato_conf/__init__.py" in names  # registers the schemas
    data = "gelato_env-0.1.0.data/data/share/gelato-env/scripts"
    assert {f"{data}/{script}" for script in cli.SCRIPTS.values()} <= names
    assert "gelato_env-0.1.0.dist-info/licenses/LICENSE" in names
    for job in [*cli.SCRIPTS, "aggregate"]:
        assert f"gelato-{job} = " in entry_points


def test_console_scripts_run_from_an_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    """A fresh venv holding only the wheel (dependencies: this environment's, via a .pth file):
    the scripts come from the venv's share/ and the configs from the installed package."""
    import hydra

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "deps.pth").write_text(str(Path(hydra.__file__).resolve().parent.parent) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"

    def run(*argv: str) -> str:
        cmd = [str(venv / "bin" / argv[0]), *argv[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=300, check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    where = run("python", "-c", "import agents.cli, gelato_env; print(gelato_env.__file__); "
                "print(agents.cli.script_path('evaluate'))")  # fmt: skip
    package, script = where.split()
    assert package.startswith(str(site))
    assert script.startswith(str(venv / "share"))
    help_text = run("gelato-evaluate", "--help")
    assert "system: high_latency, legacy_300m, paper" in help_text
    assert "env: live, replay" in help_text  # the groups the script composes, none unused
    assert "seeds:" in run("gelato-evaluate", "+experiment=paper_140ms", "--cfg", "job")
    assert "total_timesteps:" in run("gelato-train", "--cfg", "job")
    assert "batch_positions:" in run("gelato-record", "--cfg", "job")
