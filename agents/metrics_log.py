"""The metrics a training run logs: SB3 logger outputs to ``metrics.jsonl`` and W&B.

:class:`JsonlWriter` and :class:`WandbWriter` are SB3 ``KVWriter`` outputs, so every metric the
logger records reaches the local ``metrics.jsonl`` and W&B with the same keys, namespaced as in
CleanRL (:func:`wandb_key`: ``charts/``, ``losses/``, ``sd/``, ``energy/``); :func:`jsonl_to_csv`
makes ``metrics.csv``.

Resume and the metrics file. Every metrics row carries the ``global_step`` at which it was
dumped, and a checkpoint at step S includes everything dumped at or before S. A run killed at
any moment resumes from its last checkpoint S after :func:`truncate_metrics` dropped the rows
with ``global_step > S`` (and a line cut by the kill), so no step is logged twice and steps
never run backwards (:mod:`agents.callbacks` takes the checkpoints).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.logger import KVWriter

from gelato_env.storage import write_bytes_atomic, write_csv_atomic


def wandb_key(key: str) -> str:
    """CleanRL-style namespace of an SB3 logger key (``train/*`` -> ``losses/*``, ...).

    >>> wandb_key("rollout/ep_rew_mean"), wandb_key("train/value_loss"), wandb_key("sd/x")
    ('charts/episodic_return', 'losses/value_loss', 'sd/x')
    """
    renamed = {
        "rollout/ep_rew_mean": "charts/episodic_return",
        "rollout/ep_len_mean": "charts/episodic_length",
        "time/fps": "charts/SPS",
        "train/learning_rate": "charts/learning_rate",
        "rollout/exploration_rate": "charts/exploration_rate",
    }
    if key in renamed:
        return renamed[key]
    if key.startswith("train/"):
        return "losses/" + key[len("train/") :]
    return key


def scalar(value: Any) -> float | None:
    """``value`` as a float when it is a Python or numpy scalar, else None."""
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return float(value)
    return None


def metrics_row(key_values: dict[str, Any], step: int) -> dict[str, float]:
    """One logger dump as ``{global_step, <wandb_key>: scalar}`` (non-scalars skipped), sorted."""
    row: dict[str, float] = {"global_step": float(step)}
    for key, value in sorted(key_values.items()):
        number = scalar(value)
        if number is not None:
            row[wandb_key(key)] = number
    return row


class JsonlWriter(KVWriter):
    """Appends each logger dump as one JSON line (``global_step`` plus the scalar metrics).

    Append mode, so a resumed run extends the same file; :func:`jsonl_to_csv` makes a CSV.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("a")

    def write(
        self,
        key_values: dict[str, Any],
        key_excluded: dict[str, tuple[str, ...]],
        step: int = 0,
    ) -> None:
        """Write one dump (non-scalar values are skipped)."""
        self._file.write(json.dumps(metrics_row(key_values, step)) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def read_metrics(jsonl: Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.jsonl`` (a last line cut by a kill is skipped; none: [])."""
    if not jsonl.is_file():
        return []
    rows = []
    for line in jsonl.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line the kill cut short
        if isinstance(row, dict) and "global_step" in row:
            rows.append(row)
    return rows


def truncate_metrics(jsonl: Path, max_step: int) -> int:
    """Keep the rows of ``jsonl`` dumped at ``global_step <= max_step``; returns rows dropped.

    A resume from a checkpoint at step S calls this with S (a fresh start with -1): rows of
    the interrupted segment past the checkpoint go, so the resumed run logs them once.
    """
    if not jsonl.is_file():
        return 0
    lines = [line for line in jsonl.read_text().splitlines() if line.strip()]
    kept = [row for row in read_metrics(jsonl) if row["global_step"] <= max_step]
    if len(kept) == len(lines):
        return 0
    write_bytes_atomic(jsonl, "".join(json.dumps(row) + "\n" for row in kept).encode())
    return len(lines) - len(kept)


def jsonl_to_csv(jsonl: Path, out: Path) -> Path:
    """Write the rows of ``jsonl`` as a CSV (``gelato_env.storage.write_csv_atomic``)."""
    return write_csv_atomic(out, read_metrics(jsonl))


class WandbWriter(KVWriter):
    """Forwards each logger dump to a W&B run, keyed by :func:`wandb_key`, x-axis ``global_step``.

    ``global_step`` is a logged metric (``define_metric("*", step_metric="global_step")``), not
    W&B's internal step, so a resumed run may log again from its checkpoint's step count.
    """

    def __init__(self, run: Any) -> None:
        self.run = run
        run.define_metric("global_step")
        run.define_metric("*", step_metric="global_step")

    def write(
        self,
        key_values: dict[str, Any],
        key_excluded: dict[str, tuple[str, ...]],
        step: int = 0,
    ) -> None:
        """Log one dump."""
        self.run.log(metrics_row(key_values, step))

    def close(self) -> None:
        """Nothing to close (the script finishes the run)."""
