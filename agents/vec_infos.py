"""Per-step infos and episode statistics for gelato's vector env under stable-baselines3.

SB3's adapter of :class:`gelato_env.vector.GelatoVectorEnv`
(:func:`gelato_env.vector.make_sb3_vec_env`) builds a step's info dicts only at episode ends
(one dict per env and step would cost more than the step). The training callbacks
(:mod:`agents.callbacks`) read ``infos`` as a ``DummyVecEnv`` of
``EpisodeStatistics(GelatoEnv)`` gives them: every step's round values (``cost``,
``allowance_j``, ...) and, at an episode's end, ``info["episode_stats"]``.
:class:`VecRoundInfos` restores both from the step's arrays (kept below the adapter by
``agents.train_envs._StepTap``), so the callbacks need not know which vectorization runs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import numpy.typing as npt
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from gelato_env.wrappers import EpisodeStatistics, EpisodeStats

#: the per-env sums of an episode, as :class:`~gelato_env.wrappers.EpisodeStatistics` keeps them
SUMS = ("rounds", "tokens", "accepted", "drafted", "time_s", "energy_j", "allowance_j",
        "queue_sum_j", "return")  # fmt: skip
_ROW = {name: i for i, name in enumerate(SUMS)}
#: step info key -> the sum it adds to (completed rounds only)
_ADDS = {"n_tokens": "tokens", "n_accepted": "accepted", "n_drafted": "drafted",
         "latency_s": "time_s", "energy_j": "energy_j", "allowance_j": "allowance_j",
         "queue": "queue_sum_j"}  # fmt: skip


class VecRoundInfos(VecEnvWrapper):
    """Adds each env's round values to every step's info, and ``episode_stats`` at episode ends.

    Args:
        venv: the SB3 adapter of a ``same_step`` :class:`~gelato_env.vector.GelatoVectorEnv`.
        tap: the vector wrapper below the adapter whose ``rewards`` (the env's, before any
            reward shaping) and ``values`` (``{key: (N,) array}`` of the round each env just
            played) hold the last step.

    Infos gain every key of ``tap.values`` (values the adapter already set at an episode end are
    kept), ``reward_env`` (the env's reward) and, at an episode's end,
    ``episode_stats``: :class:`~gelato_env.wrappers.EpisodeStats` as a dict, equal to what
    :class:`~gelato_env.wrappers.EpisodeStatistics` reports for the same rounds.
    """

    def __init__(self, venv: VecEnv, tap: Any) -> None:
        super().__init__(venv)
        self.tap = tap
        self._sums = np.zeros((len(SUMS), self.num_envs))  # (n_sums, N)
        self._queue_j = np.zeros(self.num_envs)

    def reset(self) -> Any:
        """Reset the envs and the episode sums."""
        obs = self.venv.reset()
        self._sums[:] = 0.0
        self._queue_j[:] = 0.0
        return obs

    def step_wait(self) -> tuple[Any, npt.NDArray[np.float32], npt.NDArray[np.bool_], list[Any]]:
        """Step, accumulate the rounds, and complete the infos."""
        obs, rewards, dones, infos = self.venv.step_wait()
        values = self.tap.values
        complete = np.asarray(values["round_complete"], dtype=np.bool_)
        for key, name in _ADDS.items():
            self._sums[_ROW[name]] += np.where(complete, values[key], 0.0)
        self._sums[_ROW["rounds"]] += complete
        self._sums[_ROW["return"]] += self.tap.rewards
        self._queue_j = np.where(complete, values["queue"], self._queue_j)

        columns = {key: np.asarray(value).tolist() for key, value in values.items()}
        reward_env = self.tap.rewards.tolist()
        for i, info in enumerate(infos):
            for key, column in columns.items():
                info.setdefault(key, column[i])
            info["reward_env"] = reward_env[i]
        for i in np.flatnonzero(dones).tolist():
            infos[i][EpisodeStatistics.KEY] = asdict(self._stats(i))
            self._sums[:, i] = 0.0
            self._queue_j[i] = 0.0
        return obs, rewards, dones, infos

    def _stats(self, i: int) -> EpisodeStats:
        """Env ``i``'s episode so far (``EpisodeStats.from_sums``, as ``EpisodeStatistics``)."""
        sums = {name: float(self._sums[row, i]) for name, row in _ROW.items()}
        episode_return = sums.pop("return")
        return EpisodeStats.from_sums(
            **sums, final_queue_j=float(self._queue_j[i]), episode_return=episode_return
        )
