"""Wrappers for the gelato env: episode statistics of the long-term problem (docs/design.md §5)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, SupportsFloat

import gymnasium as gym


@dataclass(frozen=True, slots=True)
class EpisodeStats:
    """Aggregates of one episode over its completed SD rounds.

    Attributes:
        n_rounds: completed rounds (``per_token`` drafting steps are not rounds).
        n_tokens: tokens generated, sum N_k.
        time_s: total latency sum T_k, s.
        energy_j: total device energy sum E_k, J.
        throughput_tps: episode throughput sum N_k / sum T_k, tokens/s (the paper's objective;
            not the mean of per-round rates).
        energy_per_token_j: sum E_k / sum N_k, J/token.
        mean_power_w: time-average device power sum E_k / sum T_k, W.
        mean_energy_per_round_j: sum E_k / rounds, J.
        budget_used_frac: sum E_k / sum of the budget's allowances over the episode (> 1: over
            budget).
        mean_accepted: mean accepted draft length per round, tokens.
        mean_drafted: mean realized draft length per round, tokens.
        mean_queue_j: mean virtual queue after each round, J.
        final_queue_j: queue backlog at the episode's end, J.
        episode_return: sum of rewards.
    """

    n_rounds: int
    n_tokens: int
    time_s: float
    energy_j: float
    throughput_tps: float
    energy_per_token_j: float
    mean_power_w: float
    mean_energy_per_round_j: float
    budget_used_frac: float
    mean_accepted: float
    mean_drafted: float
    mean_queue_j: float
    final_queue_j: float
    episode_return: float

    @classmethod
    def from_sums(
        cls, *, rounds: float, tokens: float, accepted: float, drafted: float, time_s: float,
        energy_j: float, allowance_j: float, queue_sum_j: float, final_queue_j: float,
        episode_return: float,
    ) -> EpisodeStats:  # fmt: skip
        """The statistics of an episode's running sums.

        The one definition behind :class:`EpisodeStatistics` and the vector training wrapper
        (``agents.vec_infos``).
        """
        per_round = max(rounds, 1)
        return cls(
            n_rounds=int(rounds),
            n_tokens=int(tokens),
            time_s=time_s,
            energy_j=energy_j,
            throughput_tps=tokens / time_s if time_s > 0 else 0.0,
            energy_per_token_j=energy_j / tokens if tokens else 0.0,
            mean_power_w=energy_j / time_s if time_s > 0 else 0.0,
            mean_energy_per_round_j=energy_j / per_round,
            budget_used_frac=energy_j / allowance_j if allowance_j > 0 else 0.0,
            mean_accepted=accepted / per_round,
            mean_drafted=drafted / per_round,
            mean_queue_j=queue_sum_j / per_round,
            final_queue_j=final_queue_j,
            episode_return=episode_return,
        )


class EpisodeStatistics(gym.Wrapper[Any, Any, Any, Any]):
    """Adds ``info["episode_stats"]`` (an :class:`EpisodeStats` as a dict) at each episode end.

    Works on any wrapper stack around a :class:`~gelato_env.env.GelatoEnv` (it reads the step
    ``info``), including ``TimeLimit`` truncation. The key differs from SB3's ``Monitor``
    ``info["episode"]`` so both can be stacked.
    """

    KEY = "episode_stats"

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self._clear()

    def _clear(self) -> None:
        self._rounds = self._tokens = self._accepted = self._drafted = 0
        self._time_s = self._energy_j = self._allowance_j = 0.0
        self._queue_sum_j = self._queue_j = self._return = 0.0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the env and the episode accumulators."""
        self._clear()
        obs, info = self.env.reset(**kwargs)
        self._queue_j = float(info.get("queue", 0.0))
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step, accumulate, and on termination/truncation attach the episode statistics."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        if info.get("round_complete", True):
            self._rounds += 1
            self._tokens += info["n_tokens"]
            self._accepted += info["n_accepted"]
            self._drafted += info["n_drafted"]
            self._time_s += info["latency_s"]
            self._energy_j += info["energy_j"]
            self._allowance_j += info["allowance_j"]
            self._queue_j = info["queue"]
            self._queue_sum_j += info["queue"]
        if terminated or truncated:
            info[self.KEY] = asdict(self.stats())
        return obs, reward, terminated, truncated, info

    def stats(self) -> EpisodeStats:
        """Statistics of the episode so far."""
        return EpisodeStats.from_sums(
            rounds=self._rounds,
            tokens=self._tokens,
            accepted=self._accepted,
            drafted=self._drafted,
            time_s=self._time_s,
            energy_j=self._energy_j,
            allowance_j=self._allowance_j,
            queue_sum_j=self._queue_sum_j,
            final_queue_j=self._queue_j,
            episode_return=self._return,
        )
