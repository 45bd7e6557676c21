"""SB3 callbacks for training learned agents (``scripts/train.py``).

* :class:`SDMetrics`: episode statistics of the SD env (throughput, energy per token, budget use,
  backlog, accepted length) into the SB3 logger under ``charts/``, ``sd/``, ``energy/``.
* :class:`LagrangeMultiplier`: the adaptive multiplier of the ``lagrangian`` reward.
* :class:`HeldOutEvaluation`: SB3's ``EvalCallback`` on a fixed schedule (every ``k *
  eval_freq`` env steps, kept across resumes), each evaluation reseeded by its index, and the
  held-out throughput sum(tokens) / sum(time) as ``eval/throughput_tok_s``.
* :class:`ThroughputMeter`: that throughput for any ``evaluate_policy`` call (``callback=``).
* :class:`ResumableCheckpoint`: checkpoints with the run state a resume needs, every ``k *
  checkpoint_freq`` env steps, at a rollout boundary for on-policy algorithms; each one can be
  logged as a W&B model artifact.
* :class:`StopTraining`: ends ``learn`` cleanly on SIGINT/SIGTERM or at a step limit.

The logged metrics reach ``metrics.jsonl`` and W&B through :mod:`agents.metrics_log`, whose
:func:`~agents.metrics_log.truncate_metrics` cuts the file back to a checkpoint on resume.

Resume. A checkpoint at step S includes every metrics row dumped at or before S. On-policy
checkpoints (PPO, A2C) are taken after the update that closes a rollout, so a resumed run's
rollouts and metrics rows fall on the same steps as an uninterrupted run's; held-out evaluations
run at the first step at or past each multiple of ``eval_freq`` whatever the resumes.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from agents.checkpoints import Checkpoint, RunState, checkpoint_paths, list_checkpoints
from agents.metrics_log import scalar
from gelato_env.storage import write_bytes_atomic
from gelato_env.wrappers import EpisodeStatistics

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
    :class:`~agents.train_envs.LagrangianReward` (or
    :class:`~agents.train_envs.VectorLagrangianReward`) via ``env_method("set_multiplier")``,
    so it works with every vectorization of :func:`agents.train_envs.make_training_env`.

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


class ThroughputMeter:
    """Held-out throughput sum(tokens) / sum(time) over ``evaluate_policy`` episodes, tokens/s.

    SB3's ``eval/mean_reward`` averages episode returns; with the ``throughput`` reward a
    return is a sum of per-round rates N_k / T_k, not a rate. Pass the meter as
    ``evaluate_policy(..., callback=meter)``: it adds up ``info["n_tokens"]`` and
    ``info["latency_s"]`` of every counted step.
    """

    def __init__(self) -> None:
        self.n_tokens = 0.0
        self.time_s = 0.0

    def reset(self) -> None:
        """Start a new evaluation."""
        self.n_tokens, self.time_s = 0.0, 0.0

    def __call__(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        """``evaluate_policy``'s per-step callback."""
        info = locals_["info"]
        self.n_tokens += float(info.get("n_tokens", 0.0))
        self.time_s += float(info.get("latency_s", 0.0))

    @property
    def throughput_tps(self) -> float:
        """sum(tokens) / sum(time), tokens/s (NaN before any time has passed)."""
        return self.n_tokens / self.time_s if self.time_s > 0.0 else math.nan


class HeldOutEvaluation(EvalCallback):
    """SB3's ``EvalCallback`` at every ``k * eval_freq`` env steps, surviving resumes.

    An evaluation runs at the first callback step whose timestep count reaches the next
    multiple of ``eval_freq`` after ``last_eval_step`` (a resumed run passes its checkpoint's),
    so the schedule does not restart at the resume step. Evaluation k resets the eval env with
    seed ``seed + k``: the same parameters give the same episodes and numbers in an
    interrupted and an uninterrupted run. Besides ``eval/mean_reward`` it logs
    ``eval/throughput_tok_s`` (:class:`ThroughputMeter`).

    Args:
        eval_env: the held-out ``VecEnv``.
        eval_freq: env steps (all envs together) between evaluations, >= 1.
        seed: seed of evaluation 0's episodes.
        last_eval_step: timestep count of the last evaluation done (0: none yet).
        **kwargs: ``EvalCallback`` arguments (``n_eval_episodes``, ``best_model_save_path``,
            ``log_path``, ...).
    """

    def __init__(
        self, eval_env: Any, *, eval_freq: int, seed: int, last_eval_step: int = 0, **kwargs: Any
    ) -> None:
        if eval_freq < 1:
            raise ValueError(f"eval_freq must be >= 1, got {eval_freq}")
        super().__init__(eval_env, eval_freq=1, deterministic=True, verbose=0, **kwargs)
        self.every_steps = int(eval_freq)
        self.seed = int(seed)
        self.last_eval_step = int(last_eval_step)
        self.meter = ThroughputMeter()
        self.history: list[tuple[int, float]] = []  # (step, mean reward) of this segment

    def restore_log(self, max_step: int) -> None:
        """Reload the evaluations of earlier segments (``log_path``) up to ``max_step``."""
        if self.log_path is None:
            return
        path = Path(f"{self.log_path}.npz")  # np.savez adds the suffix
        if not path.is_file():
            return
        with np.load(path) as data:
            keep = [i for i, step in enumerate(data["timesteps"]) if step <= max_step]
            self.evaluations_timesteps = [int(data["timesteps"][i]) for i in keep]
            self.evaluations_results = [list(data["results"][i]) for i in keep]
            self.evaluations_length = [list(data["ep_lengths"][i]) for i in keep]

    def state_at(self, step: int, best_before: float, last_before: int) -> tuple[int, float]:
        """``(last evaluation step, best mean reward)`` counting evaluations up to ``step``."""
        done = [(s, r) for s, r in self.history if s <= step]
        last = max([last_before] + [s for s, _ in done])
        return last, max([best_before] + [r for _, r in done])

    def _on_step(self) -> bool:
        step = self.num_timesteps
        if step // self.every_steps <= self.last_eval_step // self.every_steps:
            return True
        self.last_eval_step = step
        self.eval_env.seed(self.seed + step // self.every_steps)
        self.meter.reset()
        keep_going = super()._on_step()  # eval_freq=1: evaluates now, dumps a metrics row
        self.history.append((step, float(self.last_mean_reward)))
        return keep_going

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        super()._log_success_callback(locals_, globals_)
        self.meter(locals_, globals_)
        if locals_["done"]:  # recorded before EvalCallback's dump: same row as mean_reward
            self.logger.record("eval/throughput_tok_s", self.meter.throughput_tps)


class ResumableCheckpoint(BaseCallback):
    """Checkpoints a run can resume from, at every ``k * save_freq`` env steps.

    Saves the model, the replay buffer (off-policy), the ``VecNormalize`` statistics and last a
    :class:`~agents.checkpoints.RunState` (``state_fn`` supplies it), keeps the newest ``keep``
    checkpoints, and hands each one to ``on_save`` (the W&B artifact upload).

    When. Off-policy algorithms: at the first step at or past each multiple of ``save_freq``.
    On-policy algorithms (PPO, A2C): at the start of the first rollout at or past it, i.e.
    after the update that closed the previous rollout, so the checkpoint holds the parameters
    the next rollout is collected with, and :meth:`save` with ``rollback=True`` (an
    interruption) dates the checkpoint back to that boundary: the steps of a cut-off rollout
    were never trained on.

    Args:
        save_freq: env steps (all envs together) between checkpoints, >= 1.
        save_path: the checkpoint directory.
        state_fn: the run state at a given timestep count.
        keep: checkpoints kept on disk (>= 1).
        save_replay_buffer: also save the replay buffer (off-policy algorithms).
        save_vecnormalize: also save the ``VecNormalize`` statistics.
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
        super().__init__(verbose)
        if save_freq < 1:
            raise ValueError(f"save_freq must be >= 1, got {save_freq}")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.save_freq = int(save_freq)
        self.directory = Path(save_path)
        self.state_fn = state_fn
        self.keep = keep
        self.save_replay_buffer = save_replay_buffer
        self.save_vecnormalize = save_vecnormalize
        self.on_save = on_save
        self.pending_log: dict[str, float] = {}  # logged after the last row (the update's)
        self._on_policy = False
        self._last_saved = 0
        self._boundary: int | None = None  # timestep count at the last rollout start
        self._last_handed_over = -1

    def _init_callback(self) -> None:
        self._on_policy = isinstance(self.model, OnPolicyAlgorithm)
        self._last_saved = int(self.model.num_timesteps)

    def _due(self, step: int) -> bool:
        return step // self.save_freq > self._last_saved // self.save_freq

    def _on_rollout_start(self) -> None:
        if not self._on_policy:
            return
        self._boundary = int(self.model.num_timesteps)
        values = self.logger.name_to_value  # the update's train/* values, not yet dumped
        self.pending_log = {k: float(v) for k, v in values.items() if scalar(v) is not None}
        if self._due(self._boundary):
            self.save()

    def _on_step(self) -> bool:
        if not self._on_policy and self._due(int(self.model.num_timesteps)):
            self.save()
        return True

    def save(self, *, rollback: bool = False) -> Checkpoint:
        """Checkpoint the model now (also called at an interruption and at the end).

        Args:
            rollback: on-policy only: date the checkpoint back to the last rollout boundary
                (the rollout in progress is discarded; the parameters are that boundary's).
        """
        if rollback and self._on_policy and self._boundary is not None:
            self.model.num_timesteps = self._boundary
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
        write_bytes_atomic(
            ckpt.state, self.state_fn(n).to_json().encode()
        )  # last: marks it complete
        done = Checkpoint(n, ckpt.model, ckpt.state, replay, vecnorm)
        self._last_saved = n
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
    """Ends ``learn`` after SIGINT/SIGTERM, or once ``stop_at`` steps are done.

    Off-policy algorithms stop at the next step. On-policy algorithms finish the rollout in
    progress and its update first and stop at the next rollout's first step, so the
    interruption checkpoint (:meth:`ResumableCheckpoint.save` with ``rollback=True``) loses
    no collected experience. A second signal acts as it would without this callback (e.g.
    ``KeyboardInterrupt`` for a second Ctrl-C).

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
        self._requested = False
        self._wait_for_rollout = False
        self._rollout_steps = 0

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
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))  # a second one: as usual

    def _init_callback(self) -> None:
        self._wait_for_rollout = isinstance(self.model, OnPolicyAlgorithm)

    def _on_rollout_start(self) -> None:
        self._rollout_steps = 0

    def _on_step(self) -> bool:
        self._rollout_steps += 1
        limit = self.stop_at is not None and self.num_timesteps >= self.stop_at
        self._requested = self._requested or self.signum is not None or limit
        if self._requested and (not self._wait_for_rollout or self._rollout_steps == 1):
            self.stopped = True
            return False
        return True
