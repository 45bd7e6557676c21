"""Console scripts ``gelato-train``, ``gelato-evaluate`` and ``gelato-record``.

``pyproject.toml``'s ``[project.scripts]`` points at these functions. Each runs the Hydra script
of its job as a program, exactly as ``python scripts/<script>.py ARGS`` would (same config
groups, overrides, ``--help``, output directories and exit code)::

    gelato-train +experiment=train_ppo_paper seed=0
    gelato-evaluate agents=[gelato,static_topp]
    gelato-record out_dir=traces/mine

``gelato-aggregate <multirun dir>`` (:func:`agents.sweep.main`) joins a Hydra multirun's jobs
into one table and plot.

The configs ship inside the package (``gelato_env/conf``, Hydra's ``pkg://gelato_env.conf``).
The scripts run from the checkout (an editable install, what ``make install`` does) or, from a
wheel, from ``<prefix>/share/gelato-env/scripts`` (``pyproject.toml``'s ``data-files``).
"""

from __future__ import annotations

import runpy
import sys
import sysconfig
from pathlib import Path

#: console-script job -> the script it runs
SCRIPTS: dict[str, str] = {
    "train": "train.py",
    "evaluate": "evaluate.py",
    "record": "record_traces.py",
}
#: where the scripts are: the checkout's ``scripts/``, else a wheel's installed data files
SCRIPT_DIRS: tuple[Path, ...] = (
    Path(__file__).resolve().parent.parent / "scripts",
    Path(sysconfig.get_path("data")) / "share" / "gelato-env" / "scripts",
)


def script_path(job: str) -> Path:
    """The script of ``job`` (``train``, ``evaluate``, ``record``).

    Raises:
        ValueError: an unknown job (the message lists the jobs).
        FileNotFoundError: none of :data:`SCRIPT_DIRS` holds the script (a broken install).
    """
    if job not in SCRIPTS:
        raise ValueError(f"job must be one of {sorted(SCRIPTS)}, got {job!r}")
    for folder in SCRIPT_DIRS:
        if (folder / SCRIPTS[job]).is_file():
            return folder / SCRIPTS[job]
    raise FileNotFoundError(
        f"gelato-{job} runs {SCRIPTS[job]}, which none of {[str(d) for d in SCRIPT_DIRS]} "
        f"holds; reinstall gelato (pip install -e . in a checkout, or its wheel)"
    )


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
