"""A natively vectorized replay env: N device-edge SD envs stepped as numpy batch operations.

:class:`GelatoVectorEnv` is a Gymnasium 1.x ``VectorEnv`` over the replay backend. It keeps one
array per state variable (prompt row, position, energy queue, EMAs, channel state), and one
``step`` plays one SD round in every env with array operations only. The per-env semantics are
those of :class:`~gelato_env.env.GelatoEnv` (``tests/env/test_vector.py`` checks them against
``gymnasium.vector.SyncVectorEnv`` of single envs).

How a step stays cheap (dev machine, cached default trace of 25,600 positions, batched: ~85 us
of numpy calls plus ~0.15 us per env):

* Per-position tables (:class:`_RoundTables`, built once from the trace): for a fixed exit rule
  the realized length is a pure function of (trace position, cap), so the rule runs once per
  position at construction (:func:`~gelato_env.sd.exit_rules.realized_lengths`; causal rules
  stop at min(stop index, cap)) and a step gathers gamma from a
  ``(n_pos, gamma_max + 1)`` table (one per threshold level in ``budget_threshold`` mode); the
  uplink payload and the mean entropy of the drafted tokens are gathered at (position, gamma),
  greedy acceptance from the leading match bits per position, costs from the ``round_cost``
  table at (gamma, rejected) plus the uplink term, and the queue from
  :class:`~gelato_env.system.EnergyBudget` on arrays. The per-(position, gamma) statistics sit in
  one ``(n_pos (G + 1), 4)`` float64 table, so a step gathers one 32-byte row per env (random
  positions in a large trace make every gather a cache miss; one gather, not three).
* The EMAs (entropy, max-prob): in ``rng="per_env"`` mode a loop over the (at most gamma_max)
  drafted columns, so that their float operations are the single env's (bit-identical). In
  ``rng="batched"`` mode the closed form ``ema <- beta^gamma * ema + c[pos, gamma]``, with
  ``c[pos, k]`` the EMA over the k drafted tokens from 0, tabulated once per trace: one gather
  and two operations whatever gamma, equal to the loop up to float rounding (the last bits of
  the float64 EMAs; batched mode promises statistical, not bitwise, equivalence anyway).
* Per-env state vectors are 1D, or ``(2, N)`` for the EMA pair: numpy loops over the last axis,
  and ``(N, 2)`` arrays would make every operation on them a length-2 inner loop.
* The step's info arrays are the rows of three ``(K, N)`` blocks (float64, int64, bool), written
  with ``out=`` arguments; masking, scattering and zeroing reset envs are one call per block.
  The blocks are fresh every step, so info arrays stay valid after later steps.

Randomness (``rng=``), two modes:

* ``"per_env"`` (exact): one ``np.random.Generator`` and one channel process per env; env ``i``
  of ``reset(seed=s)`` is seeded ``s + i`` -- the seeding of ``SyncVectorEnv`` -- and draws
  exactly what a single env seeded ``s + i`` draws, in the same order (channel state, prompt
  choice, sampled acceptances), so trajectories are bit-identical. The random draws (and only
  they) loop over envs in Python: a few microseconds per env and step.
* ``"batched"`` (fast, default): one generator for the whole batch; every draw is one numpy call
  over all envs (``ChannelProcess.step_batch``). Each env's draws have the single env's
  distribution, and a seed fixes the whole batch's rollout, but env ``i`` does not reproduce a
  single env's trajectory; ``tests/env/test_vector.py`` checks the statistics instead.

Greedy traces with a deterministic channel (``channel="trace"``) draw nothing per step, so the
two modes then agree (the EMAs up to float rounding, above).

Autoreset (``autoreset_mode=``): ``"same_step"`` [D] (``AutoresetMode.SAME_STEP``, what SB3
expects: a finished env is reset inside the step that ended it; ``infos["final_obs"]`` (shape
``(N, obs_dim)``, float32) and ``infos["final_info"]`` carry the last step, masked by
``infos["_final_obs"]`` / ``infos["_final_info"]``), or ``"next_step"``
(``AutoresetMode.NEXT_STEP``, Gymnasium's default: the step after the end resets the env and
returns reward 0).

Only ``action_mode="budget"`` and ``"budget_threshold"`` are vectorized; ``per_token`` raises
``NotImplementedError``. Time limits: with ``horizon`` set, envs truncate after ``horizon``
steps (the vectorized ``TimeLimit``).

:func:`make_sb3_vec_env` adapts the vector env to stable-baselines3's ``VecEnv``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gelato_env.env import GelatoEnv
from gelato_env.observation import (
    BUDGET_USED,
    ENTROPY_EMA,
    INFO_KEYS,
    LAST_ACCEPTED,
    LAST_BUDGET,
    LATENCY,
    MAX_PROB_EMA,
    PROGRESS,
    QUEUE,
    RATE,
    ObsArray,
)
from gelato_env.prompt_order import prompt_order as make_prompt_order
from gelato_env.sd.exit_rules import (
    ExitRule,
    is_batched,
    make_exit_rule,
    realized_lengths,
)
from gelato_env.system import (
    ChannelBatch,
    ChannelProcess,
    EnergyBudget,
    downlink_bits,
    make_channel,
    round_cost,
    uplink_bits,
)
from gelato_env.traces.replay import ReplayBackend

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Index = slice | IntArray

RNG_MODES = ("batched", "per_env")
AUTORESET_MODES: dict[str, AutoresetMode] = {
    "same_step": AutoresetMode.SAME_STEP,
    "next_step": AutoresetMode.NEXT_STEP,
}
#: ``info`` keys of a step, as arrays of shape ``(N,)`` (the single env's, less ``entropies``)
STEP_INFO_KEYS: tuple[str, ...] = tuple(k for k in INFO_KEYS if k != "entropies")
#: ``info`` keys of a reset (the single env's ``reset`` info)
RESET_INFO_KEYS = ("queue", "rate_bps", "prompt_index", "budget_used_frac", "n_generated")


# -- per-position lookup tables: a round as gathers -------------------------------------------


def _length_table(
    rule: ExitRule,
    entropy: FloatArray,
    max_prob: FloatArray,
    gamma_max: int,
    threshold: float | None,
) -> npt.NDArray[np.integer[Any]]:
    """``realized_lengths`` of every trace position at every cap, shape ``(n_pos, G + 1)``.

    The built-in rules are causal, so the length at cap c is min(s, c), s being the length at
    cap G (the replay backend's stop indices rest on the same fact).
    """
    n_pos = entropy.shape[0]
    thresholds = None if threshold is None else np.full(n_pos, threshold)
    full = np.full(n_pos, gamma_max, dtype=np.int64)
    stop = realized_lengths(rule, entropy, max_prob, full, thresholds)  # (n_pos,)
    caps = np.arange(gamma_max + 1)
    return np.minimum(stop[:, None], caps).astype(np.min_scalar_type(gamma_max))


class _RoundTables:
    """What a round from trace position ``row`` yields, precomputed for every position.

    For a fixed exit rule the realized length gamma is a pure function of (position, cap), and
    the drafted tokens' statistics (uplink payload, mean entropy, EMA increments) are functions
    of (position, gamma); a step gathers them at ``row * (G + 1) + cap`` (or ``+ gamma``)
    instead of running the rule and the per-token sums on ``(N, G)`` blocks. The tables hold
    exactly what the per-round arithmetic gives (the same float operations in the same order),
    so the vector env stays bit-identical to the single env -- except the closed-form EMA
    offsets, which only ``rng="batched"`` uses. Memory: about
    ``(G + 1) * (32 + L) + 16 G + 25`` bytes per position (L threshold levels, else 1).

    Attributes:
        width: G + 1, the row stride of the flat tables.
        lengths: flat, ``[level, row, cap]`` -> gamma, for the built-in exit rules (one level in
            ``budget`` mode, one per threshold level in ``budget_threshold`` mode); None for a
            custom rule (run per step by :func:`realized_lengths`).
        n_lead: shape ``(n_pos,)``, the greedy trace's leading match bits per position.
        drafted: shape ``(n_pos (G + 1), 4)``, float64, row ``row * (G + 1) + gamma`` -> the
            round's uplink payload (bits, an integer), the mean entropy of the gamma drafted
            tokens (nats, 0 at gamma = 0) and the EMAs after them from EMAs of 0 (the closed
            form of ``rng="batched"``): one table, so that a step gathers one 32-byte row per
            env rather than 3 rows from 3 tables (cache misses dominate on large traces).
        ema_terms: shape ``(n_pos, G, 2)``, ``(1 - beta) * (H_j, p_max_j)``, the EMA increments
            (the exact, token-by-token EMA of ``rng="per_env"``).
        ema_decay_pow: shape ``(G + 1,)``, beta ** gamma.
        ema_start: shape ``(2, n_pos)``, ``(H_0, p_max_0)``, the EMAs of a prompt starting at a
            position (the single env's ``peek(1)``).
        eos: shape ``(n_pos,)``, whether the target token at a position is EOS; None without EOS.
        latency_s, energy_j, draft_energy_j, idle_energy_j: flat, ``[gamma, rejected]`` ->
            ``round_cost`` at zero uplink bits (``round_cost`` is affine in the uplink time
            S_up / R, added per step).
        downlink_bits: shape ``(2,)``, ``[rejected]`` -> downlink payload, bits.
    """

    def __init__(self, env: GelatoEnv, exit_rule: ExitRule, levels: Sequence[float] | None) -> None:
        params, beta = env.params, env.config.ema_decay
        g = params.gamma_max
        self.width = g + 1
        backend = env.backend
        assert isinstance(backend, ReplayBackend)
        trace = backend.trace
        entropy = np.asarray(trace.entropy[:, :g], dtype=np.float64)  # (n_pos, G)
        max_prob = np.asarray(trace.max_prob[:, :g], dtype=np.float64)
        n_pos = entropy.shape[0]

        self.lengths: npt.NDArray[np.integer[Any]] | None = None
        if is_batched(exit_rule):  # a subclass may change the rule: run it
            tables = [
                _length_table(exit_rule, entropy, max_prob, g, level)
                for level in (levels if levels is not None else [None])
            ]
            self.lengths = np.stack(tables).reshape(-1)

        matches = trace.accept_prob[:, :g] >= 0.5
        self.n_lead = np.where(matches.all(axis=1), g, np.argmin(matches, axis=1)).astype(np.int64)

        # Sequential sums over the first gamma tokens (cumsum adds left to right, as the env).
        zero = np.zeros((n_pos, 1))
        topp_sum = np.cumsum(trace.topp_size[:, :g], axis=1, dtype=np.int64)
        topp_sum = np.concatenate([zero.astype(np.int64), topp_sum], axis=1)  # (n_pos, G + 1)
        gammas = np.arange(g + 1)
        bits = uplink_bits(gammas[None, :], topp_sum, params.payload)  # topp reads topp_sum
        bits = np.broadcast_to(bits, topp_sum.shape).astype(np.int64)
        assert int(bits.max()) < 2**53, "uplink bits must be exact in float64"
        entropy_sum = np.concatenate([zero, np.cumsum(entropy, axis=1)], axis=1)
        mean = np.divide(entropy_sum, gammas, out=np.zeros_like(entropy_sum), where=gammas > 0)
        # (n_pos, G, 2), C order: one 16 G-byte block per position (a strided table would make
        # np.take copy all of it every step)
        terms = np.stack([(1.0 - beta) * entropy, (1.0 - beta) * max_prob], axis=2)
        self.ema_terms = np.ascontiguousarray(terms)
        # the closed form: after gamma tokens ema = beta^gamma ema_0 + offset[row, gamma], the
        # offset being the sequential EMA from 0 (equal to the loop up to float rounding)
        offset = np.zeros((n_pos, g + 1, 2))
        for j in range(g):
            offset[:, j + 1] = beta * offset[:, j] + terms[:, j]
        # one row of 32 bytes per (position, gamma): a step gathers them with one np.take
        self.drafted = np.concatenate(
            [bits[..., None].astype(np.float64), mean[..., None], offset], axis=2
        ).reshape(-1, 4)
        self.ema_decay_pow = beta ** np.arange(g + 1, dtype=np.float64)
        self.ema_start = np.stack([entropy[:, 0], max_prob[:, 0]])
        eos = trace.header.eos_token_id
        self.eos = None if eos is None else np.asarray(trace.target_tokens) == eos

        down = [downlink_bits(bool(r), params.payload, g) for r in (0, 1)]
        costs = [round_cost(n, 0, down[r], 1.0, params) for n in range(g + 1) for r in (0, 1)]
        self.latency_s = np.array([c.latency_s for c in costs])  # (2 (G + 1),)
        self.energy_j = np.array([c.energy_j for c in costs])
        self.draft_energy_j = np.array([c.draft_energy_j for c in costs])
        self.idle_energy_j = np.array([c.idle_energy_j for c in costs])
        self.downlink_bits = np.array(down, dtype=np.int64)


# -- a step's info: three 2D blocks, one row per key --------------------------------------------

_INT_INFO = (
    "prompt_index",
    "budget",
    "n_drafted",
    "n_accepted",
    "n_tokens",
    "n_generated",
    "uplink_bits",
    "downlink_bits",
)
_BOOL_INFO = ("round_complete",)
_FLOAT_INFO = tuple(k for k in STEP_INFO_KEYS if k not in _INT_INFO + _BOOL_INFO)
#: (key, block, row) of every step info key, in ``STEP_INFO_KEYS`` order
_LAYOUT = tuple(
    (key, b, keys.index(key))
    for key in STEP_INFO_KEYS
    for b, keys in enumerate((_FLOAT_INFO, _INT_INFO, _BOOL_INFO))
    if key in keys
)
#: picks the ``STEP_INFO_KEYS`` rows out of the concatenated rows of the three blocks
_ROW_ORDER = operator.itemgetter(
    *(row + sum(len(k) for k in (_FLOAT_INFO, _INT_INFO, _BOOL_INFO)[:b]) for _, b, row in _LAYOUT)
)
_STEP_MASKS = tuple(f"_{k}" for k in STEP_INFO_KEYS if k not in RESET_INFO_KEYS)
_RESET_MASKS = tuple(f"_{k}" for k in RESET_INFO_KEYS)


class _StepInfo:
    """A step's info arrays as the rows of a float64, an int64 and a bool block, each ``(K, n)``.

    Whole-info operations (scatter, masking, zeroing finished envs) are then three numpy calls
    rather than one per key. A fresh block is allocated every step, so the ``(n,)`` arrays
    handed out (row views) stay valid after later steps.
    """

    __slots__ = ("_views", "blocks")

    def __init__(self, blocks: tuple[FloatArray, IntArray, BoolArray]) -> None:
        self.blocks = blocks
        self._views: dict[str, npt.NDArray[Any]] | None = None

    @classmethod
    def empty(cls, n: int) -> _StepInfo:
        return cls(
            (
                np.empty((len(_FLOAT_INFO), n)),
                np.empty((len(_INT_INFO), n), dtype=np.int64),
                np.ones((len(_BOOL_INFO), n), dtype=np.bool_),
            )
        )

    def views(self) -> dict[str, npt.NDArray[Any]]:
        """A new ``{key: (n,) row}`` dict in ``STEP_INFO_KEYS`` order (the rows are views)."""
        if self._views is None:
            rows = [*self.blocks[0], *self.blocks[1], *self.blocks[2]]  # row views, C speed
            self._views = dict(zip(STEP_INFO_KEYS, _ROW_ORDER(rows), strict=True))
        return dict(self._views)

    def scattered(self, n: int, sel: IntArray) -> _StepInfo:
        """These values at columns ``sel`` of ``(K, n)`` blocks, zeros elsewhere."""
        out = tuple(np.zeros((b.shape[0], n), dtype=b.dtype) for b in self.blocks)
        for new, old in zip(out, self.blocks, strict=True):
            new[:, sel] = old
        return _StepInfo(out)  # type: ignore[arg-type]

    def columns(self, idx: IntArray) -> _StepInfo:
        """A copy holding the columns ``idx`` of these values, zeros elsewhere."""
        out = tuple(np.zeros_like(b) for b in self.blocks)
        for new, old in zip(out, self.blocks, strict=True):
            new[:, idx] = old[:, idx]
        return _StepInfo(out)  # type: ignore[arg-type]

    def zero(self, idx: IntArray) -> None:
        """Zero the columns ``idx`` in place."""
        for b in self.blocks:
            b[:, idx] = 0


# -- randomness: exact per-env streams, or one batched stream ---------------------------------


class _PerEnvRandom:
    """One generator and one channel process per env: env i draws what a single env draws."""

    exact = True

    def __init__(self, n: int, make: Callable[[], ChannelProcess]) -> None:
        self.channels = [make() for _ in range(n)]
        self.gens = [seeding.np_random(None)[0] for _ in range(n)]

    def seed(self, seeds: Sequence[int | None]) -> None:
        self.gens = [seeding.np_random(s)[0] for s in seeds]

    def channel_reset(self, idx: list[int]) -> tuple[FloatArray, FloatArray]:
        states = [self.channels[i].reset(self.gens[i]) for i in idx]
        return _rate_snr(states)

    def channel_step(self, idx: list[int], elapsed_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        chans, gens = self.channels, self.gens
        states = [chans[i].step(gens[i], e) for i, e in zip(idx, elapsed_s.tolist(), strict=True)]
        return _rate_snr(states)

    def prompts(self, idx: list[int], n_prompts: int) -> IntArray:
        return np.array([self.gens[i].integers(n_prompts) for i in idx], dtype=np.int64)

    def uniforms(self, idx: list[int], gamma: IntArray, width: int) -> FloatArray:
        u = np.zeros((len(idx), width))
        for row, (i, g) in enumerate(zip(idx, gamma.tolist(), strict=True)):
            u[row, :g] = self.gens[i].random(g)
        return u


class _BatchedRandom:
    """One generator for the batch; the channels as one ``ChannelBatch``."""

    exact = False

    def __init__(self, n: int, make: Callable[[], ChannelProcess]) -> None:
        self.channel = make()
        self.gen = seeding.np_random(None)[0]
        self.batch = self.channel.reset_batch(self.gen, n)

    def seed(self, seeds: Sequence[int | None]) -> None:
        self.gen = seeding.np_random(seeds[0])[0]

    def channel_reset(self, idx: Index) -> tuple[FloatArray, FloatArray]:
        fresh = self.channel.reset_batch(self.gen, _count(idx, len(self.batch)))
        self._write(idx, fresh)
        return fresh.rate_bps, fresh.snr_db

    def channel_step(self, idx: Index, elapsed_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        b = self.batch
        sub = ChannelBatch(b.rate_bps[idx], b.snr_db[idx], b.gain[idx], b.memory[idx])
        new = self.channel.step_batch(self.gen, sub, elapsed_s)
        self._write(idx, new)
        return new.rate_bps, new.snr_db

    def _write(self, idx: Index, new: ChannelBatch) -> None:
        b = self.batch
        if isinstance(idx, slice):
            self.batch = new
            return
        memory = (
            b.memory if b.memory.dtype == new.memory.dtype else b.memory.astype(new.memory.dtype)
        )
        for old, value in (
            (b.rate_bps, new.rate_bps),
            (b.snr_db, new.snr_db),
            (b.gain, new.gain),
            (memory, new.memory),
        ):
            old[idx] = value
        self.batch = ChannelBatch(b.rate_bps, b.snr_db, b.gain, memory)

    def prompts(self, idx: Index, n_prompts: int) -> IntArray:
        return self.gen.integers(n_prompts, size=_count(idx, len(self.batch)))

    def uniforms(self, idx: Index, gamma: IntArray, width: int) -> FloatArray:
        return self.gen.random((gamma.shape[0], width))


def _rate_snr(states: list[Any]) -> tuple[FloatArray, FloatArray]:
    return (
        np.array([s.rate_bps for s in states], dtype=np.float64),
        np.array([s.snr_db for s in states], dtype=np.float64),
    )


def _count(idx: Index, n: int) -> int:
    return n if isinstance(idx, slice) else int(idx.shape[0])


# -- the vector env --------------------------------------------------------------------------


class GelatoVectorEnv(VectorEnv[ObsArray, Any, Any]):
    """N replay ``GelatoEnv``s stepped as numpy batch operations (module docstring).

    Args:
        num_envs: number of envs N (>= 1).
        rng: ``"batched"`` (fast; one generator) or ``"per_env"`` (exact single-env streams).
        autoreset_mode: ``"same_step"`` or ``"next_step"``.
        **env_kwargs: ``GelatoEnv`` arguments (the env card's Arguments section); ``backend``
            must be ``"replay"`` or a :class:`~gelato_env.traces.replay.ReplayBackend`.

    Raises:
        NotImplementedError: ``action_mode="per_token"`` or a non-replay backend.
        ValueError: a bad ``num_envs``, ``rng`` or ``autoreset_mode`` (and every ``GelatoEnv``
            argument error).
    """

    def __init__(
        self,
        num_envs: int,
        *,
        rng: str = "batched",
        autoreset_mode: str = "same_step",
        **env_kwargs: Any,
    ) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if rng not in RNG_MODES:
            raise ValueError(f"rng must be one of {list(RNG_MODES)}, got {rng!r}")
        if autoreset_mode not in AUTORESET_MODES:
            raise ValueError(
                f"autoreset_mode must be one of {list(AUTORESET_MODES)}, got {autoreset_mode!r}"
            )
        if env_kwargs.get("action_mode", "budget") == "per_token":
            raise NotImplementedError(
                "action_mode 'per_token' is not vectorized (a round spans a variable number of "
                "steps); use GelatoEnv in a SyncVectorEnv, or action_mode 'budget' / "
                "'budget_threshold'"
            )
        backend = env_kwargs.get("backend", "replay")
        if backend != "replay" and not isinstance(backend, ReplayBackend):
            raise NotImplementedError(
                f"GelatoVectorEnv replays traces only; backend {backend!r} is not vectorized "
                "(use GelatoEnv in a SyncVectorEnv for the live backend)"
            )
        # The single env validates the arguments, loads the trace and defines the spaces.
        proto = GelatoEnv(**env_kwargs)
        assert isinstance(proto.backend, ReplayBackend)
        self.prototype = proto
        self.config = proto.config
        self.params = proto.params
        self.observation_spec = proto.observation_spec
        self.num_envs = num_envs
        self.single_observation_space = proto.observation_space
        self.single_action_space = proto.action_space
        self.observation_space = batch_space(proto.observation_space, num_envs)
        self.action_space = batch_space(proto.action_space, num_envs)
        self.metadata = {"autoreset_mode": AUTORESET_MODES[autoreset_mode], "render_modes": []}
        self.render_mode = None
        self.spec = None
        self.closed = False
        self._autoreset = AUTORESET_MODES[autoreset_mode]
        self.rng_mode = rng

        config, g = proto.config, proto.params.gamma_max
        self._gamma_max = g
        trace = proto.backend.trace
        self._greedy = trace.header.greedy
        self._entropy = trace.entropy[:, :g]  # (n_pos, G) float32
        self._max_prob = trace.max_prob[:, :g]
        self._accept_prob = trace.accept_prob[:, :g]
        self._offsets = trace.prompt_offsets.astype(np.int64)
        self._max_new = proto.backend.max_new_tokens
        self._n_prompts = proto.backend.n_prompts
        self._cols = np.arange(g)

        self._exit_rule: ExitRule = make_exit_rule(config.exit_rule, **config.exit_params)
        self._threshold_mode = config.action_mode == "budget_threshold"
        self._levels = np.asarray(config.threshold_levels_nats, dtype=np.float64)
        self._budget = EnergyBudget(config.budget_mode, config.budget_value)
        self._tables = _RoundTables(
            proto, self._exit_rule, config.threshold_levels_nats if self._threshold_mode else None
        )
        self._n_pos = int(self._entropy.shape[0])
        self._tx_power_w = proto.params.radio.tx_power_w
        self._beta = config.ema_decay
        self._horizon = config.horizon
        self._sequential = config.prompt_order == "sequential"
        self._prompt_order = make_prompt_order(self._n_prompts, config.prompt_order)
        self._reward_mode, self._v = config.reward_mode, config.v
        scales = config.scales
        self._hi = proto.observation_spec.high().astype(np.float64)
        self._inv = (1.0 / scales.queue_scale_j, 1.0 / scales.rate_scale_bps)
        self._inv_entropy = 1.0 / scales.entropy_scale_nats
        self._inv_gamma = 1.0 / g
        self._latency_obs = min(
            proto.params.link.uplink_latency_s / scales.latency_scale_s, float(self._hi[LATENCY])
        )

        def channel() -> ChannelProcess:
            return make_channel(config.channel, proto.params.radio, **config.channel_params)

        self._random: _PerEnvRandom | _BatchedRandom = (
            _PerEnvRandom(num_envs, channel)
            if rng == "per_env"
            else _BatchedRandom(num_envs, channel)
        )

        n = num_envs
        self._row0 = np.zeros(n, dtype=np.int64)
        self._length = np.zeros(n, dtype=np.int64)
        self._t = np.zeros(n, dtype=np.int64)
        self._prompt = np.zeros(n, dtype=np.int64)
        # position of each env in the prompt order (the single env's cursor); -1: unseeded
        self._seq_next = np.full(n, 0 if self._sequential else -1, dtype=np.int64)
        self._elapsed = np.zeros(n, dtype=np.int64)
        self._queue = np.zeros(n)
        self._energy_sum = np.zeros(n)
        self._allowance_sum = np.zeros(n)
        self._used = np.zeros(n)  # _used_frac(energy_sum, allowance_sum), kept up to date
        self._rate = np.zeros(n)
        self._snr = np.zeros(n)
        # the entropy EMA and the max-prob EMA; (2, N), not (N, 2): numpy loops over the last
        # axis, and a length-2 inner loop makes every operation on them several times slower
        self._ema = np.zeros((2, n))
        self._all = np.arange(n)
        self._last_accepted = np.zeros(n, dtype=np.int64)
        self._last_budget = np.zeros(n, dtype=np.int64)
        self._needs_reset = np.zeros(n, dtype=np.bool_)
        self._ready = False

    # -- gymnasium VectorEnv API -----------------------------------------------------------------

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[ObsArray, dict[str, Any]]:
        """Reset every env (or those in ``options["reset_mask"]``).

        Args:
            seed: an int ``s`` seeds env i with ``s + i`` (``per_env``) or the batch generator
                with ``s`` (``batched``); a list gives one seed per env (``per_env``).
            options: ``{"keep_queue": True}`` keeps Q and the energy accounting (as the single
                env); ``{"reset_mask": mask}`` resets only the envs where the (N,) mask is True.

        Returns:
            Observations, shape ``(N, obs_dim)``, and the reset ``info`` (keys
            :data:`RESET_INFO_KEYS`, arrays of shape ``(N,)``).
        """
        options = options or {}
        if seed is not None:
            seeds = self._seeds(seed)
            self._random.seed(seeds)
            if not self._random.exact:
                self._np_random = self._random.gen  # type: ignore[union-attr]
        mask = options.get("reset_mask")
        if mask is None:
            idx: Index = slice(None)
        else:
            mask = np.asarray(mask, dtype=np.bool_)
            assert mask.shape == (self.num_envs,), f"reset_mask must have shape ({self.num_envs},)"
            idx = np.flatnonzero(mask)
        if seed is not None:  # the single env's reset(seed=s): the cursor starts at s
            given = [(i, s) for i, s in enumerate(seeds) if s is not None]
            cursors = self._seq_next.copy()
            for i, s in given:
                cursors[i] = s
            self._seq_next[idx] = cursors[idx]
        self._reset_envs(idx, keep_queue=bool(options.get("keep_queue", False)))
        self._ready = True
        info = self._reset_info()
        everywhere = np.ones(self.num_envs, dtype=np.bool_)
        info.update({f"_{key}": everywhere for key in RESET_INFO_KEYS})
        return self._observations(), info

    def _checked_actions(self, actions: Any) -> IntArray:
        """Actions as int64, refused (not truncated) unless integral, in range and well shaped.

        Raises:
            ValueError: naming the expected shape and ranges, and the offending values.
        """
        raw = np.asarray(actions)
        shape = (self.num_envs, 2) if self._threshold_mode else (self.num_envs,)
        if raw.shape != shape:
            raise ValueError(f"actions must have shape {shape}, got {raw.shape}")
        if raw.dtype.kind not in "iuf" or (
            raw.dtype.kind == "f" and not np.all(np.isfinite(raw) & (raw == np.round(raw)))
        ):
            raise ValueError(f"actions must be integers, got {raw.dtype} values {raw}")
        a = raw.astype(np.int64)
        budget = a[:, 0] if self._threshold_mode else a
        if budget.min() < 0 or budget.max() > self._gamma_max:
            raise ValueError(f"budgets must be in Discrete({self._gamma_max + 1}), got {budget}")
        if self._threshold_mode and (a[:, 1].min() < 0 or a[:, 1].max() >= self._levels.shape[0]):
            raise ValueError(
                f"threshold levels must be in Discrete({self._levels.shape[0]}), got {a[:, 1]}"
            )
        return a

    def step(
        self, actions: Any
    ) -> tuple[ObsArray, FloatArray, BoolArray, BoolArray, dict[str, Any]]:
        """Play one SD round in every env (``next_step``: reset the envs that ended last step).

        Args:
            actions: shape ``(N,)`` budgets (``budget``) or ``(N, 2)`` budget and threshold
                level (``budget_threshold``).

        Returns:
            ``(obs (N, obs_dim), rewards (N,), terminated (N,), truncated (N,), info)``; ``info``
            maps each of :data:`STEP_INFO_KEYS` to an ``(N,)`` array, with a ``_key`` mask.
        """
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        a = self._checked_actions(actions)
        if self._threshold_mode:
            budget, level = a[:, 0], a[:, 1]
            levels: IntArray | None = level
        else:
            budget, levels = a, None

        stepped: Index = slice(None)
        reset_now = self._needs_reset.copy()
        any_reset = self._autoreset is AutoresetMode.NEXT_STEP and bool(reset_now.any())
        if any_reset:
            reset_idx = np.flatnonzero(reset_now)
            self._reset_envs(reset_idx, keep_queue=False)
            stepped = np.flatnonzero(~reset_now)
            budget = budget[stepped]
            levels = None if levels is None else levels[stepped]
        block, reward, terminated, truncated = self._play(stepped, budget, levels)

        n = self.num_envs
        if isinstance(stepped, np.ndarray):
            block = block.scattered(n, stepped)
            reward, terminated, truncated = (
                _scattered(n, stepped, x) for x in (reward, terminated, truncated)
            )
        done = terminated | truncated
        obs = self._observations()
        everywhere = np.ones(n, dtype=np.bool_)
        if any_reset:  # envs reset this step report their reset info (as SyncVectorEnv)
            info: dict[str, Any] = block.views()
            self._put_reset_info(info, reset_idx)
            info.update(dict.fromkeys(_STEP_MASKS, ~reset_now))
        elif self._autoreset is AutoresetMode.SAME_STEP and done.any():
            obs, info = self._same_step_reset(done, obs, block)
        else:
            info = block.views()
            info.update(dict.fromkeys(_STEP_MASKS, everywhere))
        info.update(dict.fromkeys(_RESET_MASKS, everywhere))
        if self._autoreset is AutoresetMode.NEXT_STEP:
            self._needs_reset = done
        return obs, reward, terminated, truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to release (no subprocesses)."""
        self.prototype.close()

    # -- internals -----------------------------------------------------------------------------

    def _seeds(self, seed: int | Sequence[int | None]) -> list[int | None]:
        if isinstance(seed, (int, np.integer)):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"seed must be an int or {self.num_envs} seeds, got {len(seeds)}")
        return seeds

    def _ids(self, idx: Index) -> Any:
        """``idx`` as the per-env engine wants it (a list of env indices) or as is (batched)."""
        if not self._random.exact:
            return idx
        return list(range(self.num_envs)) if isinstance(idx, slice) else idx.tolist()

    def _start_prompts(self, idx: Index) -> None:
        cursor = self._seq_next[idx].copy()
        unset = np.flatnonzero(cursor < 0)
        if unset.size:  # unseeded first reset of a random order: a random start
            envs = self._all[idx][unset]
            cursor[unset] = self._random.prompts(self._ids(envs), self._n_prompts)
        prompt = self._prompt_order[cursor % self._n_prompts]
        self._seq_next[idx] = cursor + 1
        row0 = self._offsets[prompt]
        self._prompt[idx] = prompt
        self._row0[idx] = row0
        self._length[idx] = np.minimum(self._offsets[prompt + 1] - row0, self._max_new)
        self._t[idx] = 0

    def _reset_envs(self, idx: Index, *, keep_queue: bool) -> None:
        if not keep_queue:
            self._queue[idx] = 0.0
            self._energy_sum[idx] = 0.0
            self._allowance_sum[idx] = 0.0
            self._used[idx] = 0.0
        self._rate[idx], self._snr[idx] = self._random.channel_reset(self._ids(idx))
        self._start_prompts(idx)
        row0 = self._row0[idx]
        if self._max_new >= 2:  # the single env's peek(1): the first draft token's statistics
            self._ema[:, idx] = self._tables.ema_start[:, row0]
        else:
            self._ema[:, idx] = 0.0
        self._last_accepted[idx] = 0
        self._last_budget[idx] = 0
        self._elapsed[idx] = 0
        self._needs_reset[idx] = False

    def _lengths(self, row: IntArray, cap: IntArray, levels: IntArray | None) -> IntArray:
        """Realized draft lengths gamma of the rounds at trace rows ``row``, shape ``(n,)``."""
        tab = self._tables
        if tab.lengths is not None:  # a built-in rule: gather from the (level, row, cap) table
            key = row * tab.width + cap
            if levels is not None:
                key += levels * (self._n_pos * tab.width)
            return tab.lengths[key].astype(np.int64)
        thresholds = None if levels is None else self._levels[levels]
        entropy = self._entropy[row].astype(np.float64)  # (n, G)
        max_prob = self._max_prob[row].astype(np.float64)
        return realized_lengths(self._exit_rule, entropy, max_prob, cap, thresholds)

    def _emas(self, sel: Index, row: IntArray, gamma: IntArray, offset: FloatArray) -> FloatArray:
        """The entropy and max-prob EMAs after the rounds' drafted tokens, shape ``(2, n)``.

        ``per_env``: token by token as the single env (ema_j+1 = beta * ema_j + (1 - beta) x_j,
        bit-identical); ``batched``: the closed form beta^gamma * ema + ``offset`` (the rounds'
        ``_RoundTables.drafted`` EMA columns, shape ``(n, 2)``), equal up to float rounding.
        """
        tab = self._tables
        if not self._random.exact:
            ema = self._ema[:, sel] * tab.ema_decay_pow[gamma]
            ema += offset.T
            return ema
        n = gamma.shape[0]
        n_steps = int(gamma.max(initial=0))
        terms = np.take(tab.ema_terms, row, axis=0)  # (n, G, 2)
        emas = np.empty((n_steps + 1, 2, n))  # emas[j]: after j drafted tokens
        emas[0] = self._ema[:, sel]
        for j in range(n_steps):
            np.multiply(emas[j], self._beta, out=emas[j + 1])
            emas[j + 1] += terms[:, j].T
        return emas[gamma, :, self._all[:n]].T

    def _play(
        self, sel: Index, budget: IntArray, levels: IntArray | None
    ) -> tuple[_StepInfo, FloatArray, BoolArray, BoolArray]:
        """One round in the envs ``sel`` (the replay backend's steps 1-4, then the env's)."""
        tab = self._tables
        t, row0, length = _get(self._t, sel), _get(self._row0, sel), _get(self._length, sel)
        row = row0 + t
        cap = np.minimum(budget, self._max_new - 1 - t)
        gamma = self._lengths(row, cap, levels)
        n = gamma.shape[0]
        if self._greedy:  # the recorded leading matches
            n_matches = np.minimum(gamma, tab.n_lead[row])
        else:  # d_i is accepted when u_i <= accept_prob (the replay backend's draw)
            u = self._random.uniforms(self._ids(sel), gamma, self._gamma_max)
            within = self._cols < gamma[:, None]  # (n, G): drafted tokens
            match = (u <= self._accept_prob[row]) & within
            n_matches = np.cumprod(match, axis=1).sum(axis=1)  # leading matches
        end = np.minimum(t + n_matches + 1, length)
        n_tokens = end - t
        n_accepted = np.minimum(n_matches, n_tokens)
        finished = end >= self._max_new
        if tab.eos is not None:
            finished |= tab.eos[row0 + end - 1]
        drafted = row * tab.width + gamma  # index of (row, gamma) in the flat tables

        block = _StepInfo.empty(n)
        info = block.views()
        # the round's cost: round_cost at zero uplink bits + the uplink time S_up / R
        rejected = n_accepted < gamma
        cost_idx = 2 * gamma + rejected
        # (np.take: much faster than fancy indexing on 2D arrays, slower on 1D ones)
        stats = np.take(tab.drafted, drafted, axis=0)  # (n, 4)
        up_bits = stats[:, 0]
        info["uplink_bits"][...] = up_bits
        info["downlink_bits"][...] = tab.downlink_bits[rejected.view(np.int8)]
        rate = info["rate_bps"]
        rate[...] = self._rate[sel]
        info["snr_db"][...] = self._snr[sel]
        uplink_time_s = up_bits / rate
        radio_energy_j = np.multiply(self._tx_power_w, uplink_time_s, out=info["radio_energy_j"])
        latency_s = np.add(tab.latency_s[cost_idx], uplink_time_s, out=info["latency_s"])
        energy_j = np.add(tab.energy_j[cost_idx], radio_energy_j, out=info["energy_j"])
        info["draft_energy_j"][...] = tab.draft_energy_j[cost_idx]
        info["idle_energy_j"][...] = tab.idle_energy_j[cost_idx]
        info["cost"][...] = energy_j

        # the energy queue and its accounting
        queue_before = info["queue_before"]
        queue_before[...] = self._queue[sel]
        allowance_j = self._budget.allowance(n_tokens, latency_s)
        info["allowance_j"][...] = allowance_j
        queue = self._budget.queue_update(queue_before, energy_j, n_tokens, latency_s)
        info["queue"][...] = queue
        energy_sum = self._energy_sum[sel] + energy_j
        allowance_sum = self._allowance_sum[sel] + allowance_j
        info["budget_used_frac"][...] = _used_frac(energy_sum, allowance_sum)

        ema = self._emas(sel, row, gamma, stats[:, 2:])
        info["entropy_ema_nats"][...] = ema[0]
        info["max_prob_ema"][...] = ema[1]
        info["entropy_mean_nats"][...] = stats[:, 1]

        throughput = np.divide(n_tokens, latency_s, out=info["throughput_tps"])
        info["reward_throughput"][...] = throughput
        if self._reward_mode == "dpp":
            penalty = np.multiply(queue_before, energy_j, out=info["reward_penalty"])
            reward = self._v * throughput - penalty
        else:
            info["reward_penalty"][...] = 0.0
            reward = throughput.copy()
        for key, value in (
            ("prompt_index", self._prompt[sel]),
            ("budget", budget),
            ("n_drafted", gamma),
            ("n_accepted", n_accepted),
            ("n_tokens", n_tokens),
            ("n_generated", end),
        ):
            info[key][...] = value

        self._queue[sel], self._energy_sum[sel] = queue, energy_sum
        self._allowance_sum[sel] = allowance_sum
        self._used[sel] = info["budget_used_frac"]
        self._ema[:, sel] = ema
        self._t[sel] = end
        self._last_accepted[sel] = n_accepted
        self._last_budget[sel] = budget

        # The next round's channel state, then the next prompt or the episode's end.
        self._rate[sel], self._snr[sel] = self._random.channel_step(self._ids(sel), latency_s)
        truncated = np.zeros(n, dtype=np.bool_)
        if self._horizon is not None:
            elapsed = self._elapsed[sel] + 1
            self._elapsed[sel] = elapsed
            truncated = elapsed >= self._horizon
            if finished.any():
                sel_idx = self._all[sel]
                self._start_prompts(sel_idx[finished])
            terminated = np.zeros(n, dtype=np.bool_)
        else:
            terminated = finished
        return block, reward, terminated, truncated

    def _same_step_reset(
        self, done: BoolArray, obs: ObsArray, block: _StepInfo
    ) -> tuple[ObsArray, dict[str, Any]]:
        """Reset the finished envs; their step's results go to ``final_obs`` / ``final_info``."""
        idx = np.flatnonzero(done)
        final_info: dict[str, Any] = block.columns(idx).views()
        final_info.update(dict.fromkeys(_STEP_MASKS + _RESET_MASKS, done))
        self._reset_envs(idx, keep_queue=False)
        # as SyncVectorEnv: a reset env reports its reset info in place of the step's
        block.zero(idx)
        info: dict[str, Any] = block.views()
        self._put_reset_info(info, idx)
        info.update(dict.fromkeys(_STEP_MASKS, ~done))
        info.update(final_obs=obs, _final_obs=done, final_info=final_info, _final_info=done)
        obs = obs.copy()
        obs[idx] = self._observations(idx)
        return obs, info

    def _put_reset_info(self, info: dict[str, Any], idx: IntArray) -> None:
        """Write the reset info of the envs ``idx`` into the step's info arrays (in place)."""
        info["queue"][idx] = self._queue[idx]
        info["rate_bps"][idx] = self._rate[idx]
        info["prompt_index"][idx] = self._prompt[idx]
        info["budget_used_frac"][idx] = self._used[idx]
        info["n_generated"][idx] = self._t[idx]

    def _reset_info(self) -> dict[str, Any]:
        return {
            "queue": self._queue.copy(),
            "rate_bps": self._rate.copy(),
            "prompt_index": self._prompt.copy(),
            "budget_used_frac": self._used.copy(),
            "n_generated": self._t.copy(),
        }

    def _observations(self, idx: Index = slice(None)) -> ObsArray:
        """Observations of the envs ``idx`` (all by default), shape ``(n, obs_dim)``, float32."""
        hi = self._hi
        t = self._t[idx]
        obs = np.empty((t.shape[0], self.observation_spec.size), dtype=np.float32)
        obs[:, QUEUE] = np.minimum(self._queue[idx] * self._inv[0], hi[QUEUE])
        obs[:, RATE] = np.minimum(self._rate[idx] * self._inv[1], hi[RATE])
        obs[:, LATENCY] = self._latency_obs
        ema = self._ema[:, idx]
        obs[:, ENTROPY_EMA] = np.minimum(ema[0] * self._inv_entropy, hi[ENTROPY_EMA])
        obs[:, MAX_PROB_EMA] = ema[1]
        obs[:, LAST_ACCEPTED] = self._last_accepted[idx] * self._inv_gamma
        obs[:, LAST_BUDGET] = self._last_budget[idx] * self._inv_gamma
        obs[:, BUDGET_USED] = np.minimum(self._used[idx], hi[BUDGET_USED])
        obs[:, PROGRESS] = np.minimum(t / self._max_new, 1.0)
        return obs


def _get(array: npt.NDArray[Any], sel: Index) -> npt.NDArray[Any]:
    """``array[sel]`` as a copy (a slice would alias state that the step overwrites)."""
    return array[sel].copy() if isinstance(sel, slice) else array[sel]


def _used_frac(energy_sum: FloatArray, allowance_sum: FloatArray) -> FloatArray:
    """Energy spent / energy allowed; 0 before any allowance, inf if energy was spent anyway."""
    empty = np.where(energy_sum == 0.0, 0.0, np.inf)
    return np.divide(energy_sum, allowance_sum, out=empty, where=allowance_sum > 0.0)


def _scattered(n: int, sel: IntArray, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``values`` of the envs ``sel`` spread into an ``(n,)`` array, zeros elsewhere."""
    out = np.zeros(n, dtype=values.dtype)
    out[sel] = values
    return out


# -- stable-baselines3 ---------------------------------------------------------------------------


def make_sb3_vec_env(venv: GelatoVectorEnv) -> Any:
    """Wrap a ``same_step`` vector env as a stable-baselines3 ``VecEnv`` (SB3 trains on it as is).

    Step infos are per-env dicts, empty except at an episode's end, where they hold
    ``terminal_observation`` and ``TimeLimit.truncated`` (SB3's conventions) and the last step's
    info values; wrap in ``VecMonitor`` for episode statistics. ``seed(s)`` seeds the next
    ``reset`` like SB3's own VecEnvs (env i with s + i in ``per_env`` mode).

    Raises:
        ValueError: the vector env does not autoreset in the same step.
    """
    if venv.metadata["autoreset_mode"] is not AutoresetMode.SAME_STEP:
        raise ValueError("make_sb3_vec_env needs autoreset_mode='same_step' (SB3's semantics)")
    return _sb3_class()(venv)


class _SB3Adapter:
    """The stable-baselines3 ``VecEnv`` methods over a :class:`GelatoVectorEnv` (no subprocesses).

    Combined with SB3's ``VecEnv`` base by :func:`_sb3_class`, so this module imports no torch.
    """

    num_envs: int
    _seeds: list[int | None]
    reset_infos: list[dict[str, Any]]

    def __init__(self, venv: GelatoVectorEnv) -> None:
        self.venv = venv
        self._actions: Any = None
        super().__init__(  # type: ignore[call-arg]
            venv.num_envs, venv.single_observation_space, venv.single_action_space
        )

    def reset(self) -> ObsArray:
        obs, _ = self.venv.reset(seed=self._seeds[0])
        self._seeds = [None] * self.num_envs
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: npt.NDArray[Any]) -> None:
        self._actions = actions

    def step_wait(
        self,
    ) -> tuple[ObsArray, npt.NDArray[np.float32], BoolArray, list[dict[str, Any]]]:
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final_obs, final_info = info["final_obs"], info["final_info"]
            for i in np.flatnonzero(dones).tolist():
                item = {k: final_info[k][i].item() for k in STEP_INFO_KEYS}
                item["terminal_observation"] = final_obs[i]
                item["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                infos[i] = item
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        value = None if attr_name == "render_mode" else getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[Any], indices: Any = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)


@functools.cache
def _sb3_class() -> type[Any]:
    """``GelatoSB3VecEnv``, defined on first use: SB3 imports torch (docs/design.md §1)."""
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv

    return type("GelatoSB3VecEnv", (_SB3Adapter, VecEnv), {"__module__": __name__})


def make_vector_env(
    num_envs: int, config: Mapping[str, Any] | None = None, **kwargs: Any
) -> GelatoVectorEnv:
    """Build a :class:`GelatoVectorEnv` from ``EnvConfig``-style keyword arguments.

    Args:
        num_envs: number of envs.
        config: ``GelatoEnv`` keyword arguments (e.g. ``EnvConfig(...).to_kwargs()``).
        **kwargs: ``rng``, ``autoreset_mode`` and further ``GelatoEnv`` arguments (override
            ``config``).
    """
    merged = {**dict(config or {}), **kwargs}
    return GelatoVectorEnv(num_envs, **merged)


__all__ = [
    "AUTORESET_MODES",
    "RESET_INFO_KEYS",
    "RNG_MODES",
    "STEP_INFO_KEYS",
    "GelatoVectorEnv",
    "make_sb3_vec_env",
    "make_vector_env",
]
