"""Console scripts ``gelato-train``, ``gelato-evaluate`` and ``gelato-record``.

``pyproject.toml``'s ``[project.scripts]`` points at these functions. Each runs the Hydra script
of its job as a program, exactly as ``python scripts/<script>.py ARGS`` would (same config
groups, overrides, ``--help``, output directories and exit code)::

    gelato-train +experiment=train_ppo_paper seed=0
    gelato-evaluate agents=[gelato,static_topp]
    gelato-record out_dir=traces/mine

The scripts read their configs from ``conf/`` next to them, so the console scripts need an
installation from a checkout (``pip install -e .``, what ``make install`` does); a wheel ships
neither ``scripts/`` nor ``conf/`` yet, and then every command says so.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

#: console-script job -> the script it runs
SCRIPTS: dict[str, str] = {
    "train": "train.py",
    "evaluate": "evaluate.py",
    "record": "record_traces.py",
}


def script_path(job: str) -> Path:
    """The script of ``job`` (``train``, ``evaluate``, ``record``).

    Raises:
        ValueError: an unknown job (the message lists the jobs).
        FileNotFoundError: the installation has no ``scripts/`` and ``conf/`` (a wheel).
    """
    if job not in SCRIPTS:
        raise ValueError(f"job must be one of {sorted(SCRIPTS)}, got {job!r}")
    root = Path(__file__).resolve().parent.parent
    path = root / "scripts" / SCRIPTS[job]
    if not path.is_file() or not (root / "conf").is_dir():
        raise FileNotFoundError(
            f"gelato-{job} runs {path} with the configs in {root / 'conf'}, which this "
            f"installation lacks; install gelato from a checkout (pip install -e .) or run "
            f"python scripts/{SCRIPTS[job]} there"
        )
    return path


def _run(job: str) -> None:
    path = script_path(job)
    sys.argv[0] = str(path)  # Hydra names the job (and its log file) after the script
    runpy.run_path(str(path), run_name="__main__")


def train() -> None:
    """``gelato-train``: ``scripts/train.py``."""
    _run("train")


def evaluate() -> None:
    """``gelato-evaluate``: ``scripts/evaluate.py``."""
    _run("evaluate")


def record() -> None:
    """``gelato-record``: ``scripts/record_traces.py``."""
    _run("record")
