"""SB3 callbacks and logger outputs for training learned agents (``scripts/train.py``).

* :class:`SDMetrics`: episode statistics of the SD env (throughput, energy per token, budget use,
  backlog, accepted length) into the SB3 logger under ``charts/``, ``sd/``, ``energy/``.
* :class:`LagrangeMultiplier`: the adaptive multiplier of the ``lagrangian`` reward.
* :class:`ResumableCheckpoint`: SB3's ``CheckpointCallback`` plus the run state a resume needs,
  with each checkpoint logged as a W&B model artifact.
* :class:`StopTraining`: ends ``learn`` cleanly on SIGINT/SIGTERM or at a step limit.
* :class:`JsonlWriter` / :class:`WandbWriter`: SB3 ``KVWriter`` outputs, so every metric the
  logger records reaches the local ``metrics.jsonl`` and W&B with the same keys.
"""

from __future__ import annotations

import csv
import json
import math
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.logger import KVWriter

from agents.training import Checkpoint, RunState, checkpoint_paths, list_checkpoints
from agents.training import write_text_atomic as _write_atomic
from gelato_env.wrappers import EpisodeStatistics

# ------------------------------------------------------------------------------------------
# metric names


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


def _scalar(value: Any) -> float | None:
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return float(value)
    return None


def metrics_row(key_values: dict[str, Any], step: int) -> dict[str, float]:
    """One logger dump as ``{global_step, <wandb_key>: scalar}`` (non-scalars skipped), sorted."""
    row: dict[str, float] = {"global_step": float(step)}
    for key, value in sorted(key_values.items()):
        scalar = _scalar(value)
        if scalar is not None:
            row[wandb_key(key)] = scalar
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


def jsonl_to_csv(jsonl: Path, out: Path) -> Path:
    """Write the rows of ``jsonl`` as a CSV with the union of their keys (blank where absent)."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return out


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


# ------------------------------------------------------------------------------------------
# callbacks


#: EpisodeStats field -> logger key
EPISODE_METRICS: Mapping[str, str] = {
    "throughput_tps": "charts/throughput_tps",
    "energy_per_token_j": "energy/energy_per_token_j",
    "mean_energy_per_round_j": "energy/energy_per_round_j",
    "mean_power_w": "energy/mean_power_w",
    "budget_used_frac": "energy/budget_used_frac",
    "mean_queue_j": "energy/backlog_mean_j",
    "final_queue_j": "energy/backlog_final_j",
    "mean_accepted": "sd/accepted_length",
    "mean_drafted": "sd/drafted_length",
    "n_tokens": "sd/tokens_per_episode",
}


class SDMetrics(BaseCallback):
    """Logs the env's episode statistics (``info["episode_stats"]``) as means over a dump period.

    Every finished training episode contributes once; the logger averages them until its next
    dump (each PPO/A2C iteration, every ``log_interval`` DQN episodes).
    """

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            stats = info.get(EpisodeStatistics.KEY)
            if stats is None:
                continue
            for field, key in EPISODE_METRICS.items():
                value = float(stats[field])
                if math.isfinite(value):
                    self.logger.record_mean(key, value)
        return True


class LagrangeMultiplier(BaseCallback):
    """Dual ascent on lambda: lambda <- [lambda + eta (mean_k (E_k - A_k))]^+ after each rollout.

    E_k is ``info["cost"]`` (J) and A_k ``info["allowance_j"]`` (the budget's allowance) of every
    completed round of the rollout, over all envs; lambda reaches the envs'
    :class:`~agents.training.LagrangianReward` via ``env_method("set_multiplier")``, so it works
    with ``DummyVecEnv`` and ``SubprocVecEnv`` alike.

    Args:
        lr: step size eta, tokens/s per J^2.
        initial: lambda at the start (a resumed run passes the checkpoint's), tokens/s per J.
    """

    def __init__(self, lr: float, initial: float = 0.0, verbose: int = 0) -> None:
        super().__init__(verbose)
        if not lr > 0.0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not initial >= 0.0:
            raise ValueError(f"initial must be >= 0, got {initial}")
        self.lr = float(lr)
        self.multiplier = float(initial)
        self._net_sum_j = 0.0
        self._n_rounds = 0

    def _on_training_start(self) -> None:
        self.training_env.env_method("set_multiplier", self.multiplier)

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            if info.get("round_complete", True) and "cost" in info:
                self._net_sum_j += float(info["cost"]) - float(info["allowance_j"])
                self._n_rounds += 1
        return True

    def _on_rollout_end(self) -> None:
        if self._n_rounds == 0:
            return
        mean_net_j = self._net_sum_j / self._n_rounds
        self.multiplier = max(0.0, self.multiplier + self.lr * mean_net_j)
        self._net_sum_j, self._n_rounds = 0.0, 0
        self.training_env.env_method("set_multiplier", self.multiplier)
        self.logger.record("charts/lagrange_multiplier", self.multiplier)
        self.logger.record("energy/net_energy_per_round_j", mean_net_j)


class ResumableCheckpoint(CheckpointCallback):
    """SB3's ``CheckpointCallback`` whose checkpoints a run can resume from.

    Saves the model, the replay buffer (off-policy), the ``VecNormalize`` statistics and last a
    :class:`~agents.training.RunState` (``state_fn`` supplies it), keeps the newest
    ``keep`` checkpoints, and hands each model to ``on_save`` (the W&B artifact upload).

    Args:
        save_freq: checkpoint every this many callback calls (vectorized steps).
        save_path: the checkpoint directory.
        state_fn: the run state at a given timestep count.
        keep: checkpoints kept on disk (>= 1).
        on_save: called with each completed checkpoint.
    """

    def __init__(
        self,
        save_freq: int,
        save_path: Path,
        state_fn: Callable[[int], RunState],
        *,
        keep: int = 2,
        save_replay_buffer: bool = False,
        save_vecnormalize: bool = False,
        on_save: Callable[[Checkpoint], None] | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(
            save_freq, str(save_path), name_prefix="model",
            save_replay_buffer=save_replay_buffer, save_vecnormalize=save_vecnormalize,
            verbose=verbose,
        )  # fmt: skip
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = Path(save_path)
        self.state_fn = state_fn
        self.keep = keep
        self.on_save = on_save
        self._last_handed_over = -1

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            self.save()
        return True

    def save(self) -> Checkpoint:
        """Checkpoint the model now (also called at an interruption and at the end)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        n = int(self.model.num_timesteps)
        ckpt = checkpoint_paths(self.directory, n)
        self.model.save(ckpt.model)
        replay, vecnorm = None, None
        if self.save_replay_buffer and getattr(self.model, "replay_buffer", None) is not None:
            self.model.save_replay_buffer(ckpt.replay_buffer)  # type: ignore[attr-defined]
            replay = ckpt.replay_buffer
        venv = self.model.get_vec_normalize_env()
        if self.save_vecnormalize and venv is not None:
            venv.save(str(ckpt.vecnormalize))
            vecnorm = ckpt.vecnormalize
        _write_atomic(ckpt.state, self.state_fn(n).to_json())  # last: marks it complete
        done = Checkpoint(n, ckpt.model, ckpt.state, replay, vecnorm)
        self._prune()
        if self.on_save is not None and n != self._last_handed_over:  # once per step count
            self.on_save(done)
            self._last_handed_over = n
        return done

    def _prune(self) -> None:
        for old in list_checkpoints(self.directory)[: -self.keep]:
            old.state.unlink()  # first: the checkpoint stops counting before its files go
            for path in (old.model, old.replay_buffer, old.vecnormalize):
                if path is not None:
                    path.unlink(missing_ok=True)


class StopTraining(BaseCallback):
    """Ends ``learn`` at the next step after SIGINT/SIGTERM, or once ``stop_at`` steps are done.

    Install the signal handlers with :meth:`install` (the previous handlers come back with
    :meth:`uninstall`); ``signum`` records the signal received (None: none).

    Args:
        stop_at: timestep count at which to stop (a simulated interruption), or None.
    """

    def __init__(self, stop_at: int | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        if stop_at is not None and stop_at < 1:
            raise ValueError(f"stop_at must be >= 1, got {stop_at}")
        self.stop_at = stop_at
        self.signum: int | None = None
        self.stopped = False
        self._previous: dict[int, Any] = {}

    def install(self) -> StopTraining:
        """Route SIGINT and SIGTERM to this callback; returns ``self``."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        """Restore the previous signal handlers."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    def _on_step(self) -> bool:
        limit = self.stop_at is not None and self.num_timesteps >= self.stop_at
        if self.signum is not None or limit:
            self.stopped = True
            return False
        return True
