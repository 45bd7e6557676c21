"""The vector env's randomness: exact per-env streams, or one batched stream (``rng=``).

* :class:`PerEnvRandom` (``"per_env"``, exact): one ``np.random.Generator`` and one channel
  process per env; env i of ``reset(seed=s)`` is seeded s + i -- the seeding of
  ``SyncVectorEnv`` -- and draws exactly what a single env seeded s + i draws, in the same order
  (channel state, prompt choice, sampled acceptances), so trajectories are bit-identical. The
  draws (and only they) loop over envs in Python: a few microseconds per env and step.
* :class:`BatchedRandom` (``"batched"``, fast): one generator for the whole batch; every draw is
  one numpy call over all envs (``ChannelProcess.step_batch``). Each env's draws have the single
  env's distribution and a seed fixes the batch's rollout, but env i does not reproduce a single
  env's trajectory. With a memoryless channel (Rayleigh: a step is a fresh draw of the reset's
  distribution) an env reset in the step that ended its episode keeps that step's draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium.utils import seeding

from gelato_env.system import ChannelBatch, ChannelProcess

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Index = slice | IntArray


class PerEnvRandom:
    """One generator and one channel process per env: env i draws what a single env draws."""

    #: an env reset right after a step draws its channel again, as a single env does
    keeps_step_draw = False

    def __init__(self, n: int, make: Callable[[], ChannelProcess]) -> None:
        self.channels = [make() for _ in range(n)]
        self.gens = [seeding.np_random(None)[0] for _ in range(n)]

    def seed(self, seeds: Sequence[int | None]) -> None:
        """Seed env i's generator with ``seeds[i]``."""
        self.gens = [seeding.np_random(s)[0] for s in seeds]

    def channel_reset(self, idx: list[int]) -> tuple[FloatArray, FloatArray]:
        """Fresh channel states of the envs ``idx``: (rate bit/s, SNR dB), each ``(n,)``."""
        states = [self.channels[i].reset(self.gens[i]) for i in idx]
        return _rate_snr(states)

    def channel_step(self, idx: list[int], elapsed_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The envs' next channel states after rounds of ``elapsed_s`` seconds."""
        chans, gens = self.channels, self.gens
        states = [chans[i].step(gens[i], e) for i, e in zip(idx, elapsed_s.tolist(), strict=True)]
        return _rate_snr(states)

    def prompts(self, idx: list[int], n_prompts: int) -> IntArray:
        """A random start in the prompt order per env (an unseeded first reset)."""
        return np.array([self.gens[i].integers(n_prompts) for i in idx], dtype=np.int64)

    def uniforms(self, idx: list[int], gamma: IntArray, width: int) -> FloatArray:
        """U(0, 1) draws for the drafted tokens, shape ``(n, width)`` (0 past each gamma)."""
        u = np.zeros((len(idx), width))
        for row, (i, g) in enumerate(zip(idx, gamma.tolist(), strict=True)):
            u[row, :g] = self.gens[i].random(g)
        return u


class BatchedRandom:
    """One generator for the batch; the channels as one ``ChannelBatch``."""

    def __init__(self, n: int, make: Callable[[], ChannelProcess]) -> None:
        self.channel = make()
        self.gen = seeding.np_random(None)[0]
        self.batch = self.channel.reset_batch(self.gen, n)
        #: the channel's step draws are fresh draws of its reset distribution (Rayleigh): an env
        #: reset right after a step keeps that draw (same distribution, one numpy pass less)
        self.keeps_step_draw: bool = getattr(self.channel, "memoryless", False)

    def seed(self, seeds: Sequence[int | None]) -> None:
        """Seed the batch generator with ``seeds[0]``."""
        self.gen = seeding.np_random(seeds[0])[0]

    def channel_reset(self, idx: Index) -> tuple[FloatArray, FloatArray]:
        """Fresh channel states of the envs ``idx``: (rate bit/s, SNR dB), each ``(n,)``."""
        fresh = self.channel.reset_batch(self.gen, _count(idx, len(self.batch)))
        self._write(idx, fresh)
        return fresh.rate_bps, fresh.snr_db

    def channel_step(self, idx: Index, elapsed_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The envs' next channel states after rounds of ``elapsed_s`` seconds."""
        b = self.batch
        if not isinstance(idx, slice):
            b = ChannelBatch(b.rate_bps[idx], b.snr_db[idx], b.gain[idx], b.memory[idx])
        new = self.channel.step_batch(self.gen, b, elapsed_s)
        self._write(idx, new)
        return new.rate_bps, new.snr_db

    def _write(self, idx: Index, new: ChannelBatch) -> None:
        b = self.batch
        if isinstance(idx, slice):
            self.batch = new
            return
        b.rate_bps[idx], b.snr_db[idx], b.gain[idx] = new.rate_bps, new.snr_db, new.gain
        if b.memory.dtype == new.memory.dtype:  # in place: the batch is the same object
            b.memory[idx] = new.memory
            return
        memory = b.memory.astype(new.memory.dtype)
        memory[idx] = new.memory
        self.batch = ChannelBatch(b.rate_bps, b.snr_db, b.gain, memory)

    def prompts(self, idx: Index, n_prompts: int) -> IntArray:
        """A random start in the prompt order per env (an unseeded first reset)."""
        return self.gen.integers(n_prompts, size=_count(idx, len(self.batch)))

    def uniforms(self, idx: Index, gamma: IntArray, width: int) -> FloatArray:
        """U(0, 1) draws for the drafted tokens, shape ``(n, width)``."""
        return self.gen.random((gamma.shape[0], width))


def _rate_snr(states: list[Any]) -> tuple[FloatArray, FloatArray]:
    return (
        np.array([s.rate_bps for s in states], dtype=np.float64),
        np.array([s.snr_db for s in states], dtype=np.float64),
    )


def _count(idx: Index, n: int) -> int:
    return n if isinstance(idx, slice) else int(idx.shape[0])
