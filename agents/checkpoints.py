"""Checkpoints of a training run: the files, the run state besides SB3's own, finding the latest.

A checkpoint is a set of files in ``<run dir>/checkpoints`` sharing a step count:
``model_<n>_steps.zip`` (SB3 model, including the timestep count), ``replay_buffer_<n>_steps.pkl``
(off-policy algorithms), ``vecnormalize_<n>_steps.pkl`` (when ``VecNormalize`` is used) and
``state_<n>_steps.json`` (:class:`RunState`: W&B run id and name, Lagrange multiplier, best
evaluation return, last evaluation step), written last: a checkpoint counts only once its state
file exists (:func:`latest_checkpoint`). :class:`agents.callbacks.ResumableCheckpoint` writes
them; ``scripts/train.py`` resumes from :func:`latest_checkpoint`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RunState:
    """What a checkpoint needs besides SB3's own files to continue a run.

    Attributes:
        num_timesteps: the model's timestep count at the checkpoint.
        wandb_id: the W&B run id (resumed with ``resume="allow"``), or "" without W&B.
        run_name: the run name ``f"{env}__{agent}__{seed}__{time}"`` chosen at the first start.
        multiplier: the Lagrange multiplier lambda (``lagrangian`` reward), else 0.
        best_mean_reward: best held-out evaluation return so far (-inf before any evaluation).
        segments: ``[start, end]`` timestep counts of each training segment (start, resumes).
        interrupted: whether the segment ended early (signal or step limit).
        last_eval_step: timestep count of the last held-out evaluation at or before
            ``num_timesteps`` (the next one runs at the next multiple of ``eval_freq``); None in
            checkpoints written before it was recorded.
        pending_log: logger values recorded after the last metrics row and before the
            checkpoint (the update's ``train/*`` losses), restored on resume so the next row
            holds them.
    """

    num_timesteps: int
    wandb_id: str
    run_name: str
    multiplier: float = 0.0
    best_mean_reward: float = -math.inf
    segments: tuple[tuple[int, int], ...] = ()
    interrupted: bool = False
    last_eval_step: int | None = None
    pending_log: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        """JSON text (``-inf`` is stored as null)."""
        data = asdict(self)
        data["segments"] = [list(s) for s in self.segments]
        data["pending_log"] = dict(self.pending_log)
        if not math.isfinite(self.best_mean_reward):
            data["best_mean_reward"] = None
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RunState:
        """Parse :meth:`to_json` output."""
        data = json.loads(text)
        if data.get("best_mean_reward") is None:
            data["best_mean_reward"] = -math.inf
        data["segments"] = tuple(tuple(int(x) for x in s) for s in data.get("segments", ()))
        return cls(**data)


@dataclass(frozen=True)
class Checkpoint:
    """The files of one checkpoint (see the module docstring).

    Attributes:
        num_timesteps: the step count in the file names.
        model: SB3 model zip.
        state: :class:`RunState` JSON.
        replay_buffer: replay buffer pickle, None when not saved.
        vecnormalize: ``VecNormalize`` pickle, None when not saved.
    """

    num_timesteps: int
    model: Path
    state: Path
    replay_buffer: Path | None
    vecnormalize: Path | None

    def run_state(self) -> RunState:
        """The checkpoint's :class:`RunState`."""
        return RunState.from_json(self.state.read_text())


_STATE_RE = re.compile(r"^state_(\d+)_steps\.json$")


def checkpoint_paths(directory: Path, num_timesteps: int) -> Checkpoint:
    """The file names of the checkpoint at ``num_timesteps`` (whether or not they exist)."""
    stem = f"{num_timesteps}_steps"
    return Checkpoint(
        num_timesteps=num_timesteps,
        model=directory / f"model_{stem}.zip",
        state=directory / f"state_{stem}.json",
        replay_buffer=directory / f"replay_buffer_{stem}.pkl",
        vecnormalize=directory / f"vecnormalize_{stem}.pkl",
    )


def list_checkpoints(directory: Path) -> list[Checkpoint]:
    """Complete checkpoints in ``directory`` (state file and model present), oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _STATE_RE.match(path.name)
        if match is None:
            continue
        ckpt = checkpoint_paths(directory, int(match.group(1)))
        if not ckpt.model.is_file():
            continue
        found.append(
            Checkpoint(
                ckpt.num_timesteps, ckpt.model, ckpt.state,
                ckpt.replay_buffer if ckpt.replay_buffer and ckpt.replay_buffer.is_file() else None,
                ckpt.vecnormalize if ckpt.vecnormalize and ckpt.vecnormalize.is_file() else None,
            )
        )  # fmt: skip
    return sorted(found, key=lambda c: c.num_timesteps)


def latest_checkpoint(directory: Path) -> Checkpoint | None:
    """The most recent complete checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None
