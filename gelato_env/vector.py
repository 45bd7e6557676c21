"""A natively vectorized replay env: N device-edge SD envs stepped as numpy batch operations.

:class:`GelatoVectorEnv` is a Gymnasium 1.x ``VectorEnv`` over the replay backend. It keeps one
array per state variable (prompt row, position, energy queue, EMAs, channel state), and one
``step`` plays one SD round in every env with array operations only: the trace's
``(n_pos, gamma_max)`` entropy / max-prob / match columns are gathered at each env's position,
the exit rule runs vectorized (:func:`realized_lengths`), accepted = leading matches via a
cumulative product of match bits, costs come from the ``round_cost`` table plus the uplink term,
and the queue from :class:`~gelato_env.system.EnergyBudget` on arrays. The per-env semantics are
those of :class:`~gelato_env.env.GelatoEnv` (``tests/env/test_vector.py`` checks them against
``gymnasium.vector.SyncVectorEnv`` of single envs).

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
two modes then agree.

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
from gelato_env.sd.exit_rules import (
    AdaEDL,
    ConfidenceStop,
    EntropyBucket,
    EntropyThreshold,
    ExitRule,
    NoExit,
    Survival,
    make_exit_rule,
    realized_length,
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


# -- the exit rules, vectorized ----------------------------------------------------------------


def _first_within(mask: BoolArray, cap: IntArray) -> IntArray:
    """Per row, the 1-based index of the first True in ``mask[:, :cap]``, else ``cap``."""
    inside = mask & (np.arange(mask.shape[1]) < cap[:, None])  # (N, G)
    hit = inside.any(axis=1)
    return np.where(hit, inside.argmax(axis=1) + 1, cap)


def realized_lengths(
    rule: ExitRule,
    entropy: FloatArray,
    max_prob: FloatArray,
    cap: IntArray,
    threshold_nats: FloatArray | None = None,
) -> IntArray:
    """Realized draft lengths of N rounds (``realized_length`` of each row).

    The built-in rules run as array operations (a cumulative product for ``survival``, a loop
    over the G columns -- not over rounds -- for the entropy bucket's reflected walk); any other
    ``ExitRule`` falls back to one ``realized_length`` call per round.

    Args:
        rule: the exit rule.
        entropy: shape ``(N, G)``, entropies H of each round's draft continuation, nats.
        max_prob: shape ``(N, G)``, max-probabilities of the same tokens.
        cap: shape ``(N,)``, each round's budget after the end-of-generation cap (0..G).
        threshold_nats: shape ``(N,)``, per-round ``threshold_nats`` replacing the rule's
            (``budget_threshold`` action mode); None keeps the rule's.

    Returns:
        Shape ``(N,)``, int64, 0 <= gamma <= cap.

    >>> realized_lengths(EntropyThreshold(1.0), np.array([[0.2, 1.5, 0.1]]), np.ones((1, 3)),
    ...                  np.array([3]))
    array([2])
    """
    if isinstance(rule, NoExit):
        return cap.copy()
    if isinstance(rule, EntropyThreshold):
        th = rule.threshold_nats if threshold_nats is None else threshold_nats[:, None]
        return _first_within(entropy > th, cap)
    if isinstance(rule, EntropyBucket):
        th_col = rule.threshold_nats if threshold_nats is None else threshold_nats
        theta = np.zeros(entropy.shape[0])
        stop = np.zeros(entropy.shape, dtype=np.bool_)  # (N, G)
        for j in range(entropy.shape[1]):  # Theta_j = max(0, Theta_{j-1} + H_j - H_th)
            theta = np.maximum(0.0, theta + entropy[:, j] - th_col)
            stop[:, j] = theta > rule.bucket_nats
        return _first_within(stop, cap)
    if threshold_nats is not None:
        raise ValueError(f"per-round threshold_nats needs a threshold rule, got {rule.name!r}")
    if isinstance(rule, Survival):
        alpha = np.minimum(1.0, rule.a * np.exp(rule.b * entropy))
        return _first_within(np.cumprod(alpha, axis=1) < rule.epsilon, cap)
    if isinstance(rule, ConfidenceStop):
        return _first_within(max_prob < rule.min_prob, cap)
    if isinstance(rule, AdaEDL):
        beta = 1.0 - np.sqrt(rule.scale * np.maximum(entropy, 0.0))
        return _first_within(beta < rule.threshold, cap)
    return np.array(
        [
            realized_length(rule, h, p, int(c))
            for h, p, c in zip(entropy, max_prob, cap.tolist(), strict=True)
        ],
        dtype=np.int64,
    )


# -- the round cost, vectorized ------------------------------------------------------------------


class _CostTable:
    """``round_cost`` of N rounds: a (gamma, rejected) table plus the per-round uplink term.

    ``round_cost`` is affine in the uplink time S_up/R_k, so the table holds its value at zero
    uplink bits (the single env's memo does the same, with the same float operations).
    """

    def __init__(self, env: GelatoEnv) -> None:
        params = env.params
        self.payload = params.payload
        self.topp = params.payload.protocol == "topp"
        self.tx_power_w = params.radio.tx_power_w
        g = params.gamma_max
        down = [downlink_bits(bool(r), params.payload, g) for r in (0, 1)]
        costs = [[round_cost(n, 0, down[r], 1.0, params) for r in (0, 1)] for n in range(g + 1)]
        self.latency_s = np.array([[c.latency_s for c in row] for row in costs])  # (G+1, 2)
        self.energy_j = np.array([[c.energy_j for c in row] for row in costs])
        self.draft_energy_j = np.array([[c.draft_energy_j for c in row] for row in costs])
        self.idle_energy_j = np.array([[c.idle_energy_j for c in row] for row in costs])
        self.down_bits = np.array(down, dtype=np.int64)

    def cost(
        self, gamma: IntArray, rejected: BoolArray, topp_sum: IntArray, rate_bps: FloatArray
    ) -> dict[str, Any]:
        """Itemized cost arrays, shape ``(N,)`` each (keys as the single env's ``info``)."""
        r = rejected.astype(np.int64)
        up_bits = uplink_bits(gamma, topp_sum, self.payload)
        uplink_time_s = up_bits / rate_bps
        radio_energy_j = self.tx_power_w * uplink_time_s
        return {
            "latency_s": self.latency_s[gamma, r] + uplink_time_s,
            "energy_j": self.energy_j[gamma, r] + radio_energy_j,
            "draft_energy_j": self.draft_energy_j[gamma, r],
            "radio_energy_j": radio_energy_j,
            "idle_energy_j": self.idle_energy_j[gamma, r],
            "uplink_bits": up_bits,
            "downlink_bits": self.down_bits[r],
        }


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
        self._eos = trace.header.eos_token_id
        self._entropy = trace.entropy[:, :g]  # (n_pos, G) float32
        self._max_prob = trace.max_prob[:, :g]
        self._match = trace.accept_prob[:, :g] >= 0.5  # (n_pos, G) greedy match bits
        self._accept_prob = trace.accept_prob[:, :g]
        self._topp = trace.topp_size[:, :g].astype(np.int64)
        self._target = trace.target_tokens
        self._offsets = trace.prompt_offsets.astype(np.int64)
        self._max_new = proto.backend.max_new_tokens
        self._n_prompts = proto.backend.n_prompts
        self._cols = np.arange(g)

        self._exit_rule: ExitRule = make_exit_rule(config.exit_rule, **config.exit_params)
        self._threshold_mode = config.action_mode == "budget_threshold"
        self._levels = np.asarray(config.threshold_levels_nats, dtype=np.float64)
        self._budget = EnergyBudget(config.budget_mode, config.budget_value)
        self._costs = _CostTable(proto)
        self._beta = config.ema_decay
        self._horizon = config.horizon
        self._sequential = config.prompt_order == "sequential"
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
        self._seq_next = np.zeros(n, dtype=np.int64)
        self._elapsed = np.zeros(n, dtype=np.int64)
        self._queue = np.zeros(n)
        self._energy_sum = np.zeros(n)
        self._allowance_sum = np.zeros(n)
        self._rate = np.zeros(n)
        self._snr = np.zeros(n)
        self._ema_h = np.zeros(n)
        self._ema_p = np.zeros(n)
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
        if seed is not None:
            self._seq_next[idx] = 0
        self._reset_envs(idx, keep_queue=bool(options.get("keep_queue", False)))
        self._ready = True
        info = self._reset_info()
        everywhere = np.ones(self.num_envs, dtype=np.bool_)
        info.update({f"_{key}": everywhere for key in RESET_INFO_KEYS})
        return self._observations(), info

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
        assert self._ready, "call reset() before step()"
        a = np.asarray(actions, dtype=np.int64)
        if self._threshold_mode:
            assert a.shape == (self.num_envs, 2), f"actions must have shape ({self.num_envs}, 2)"
            budget, level = a[:, 0], a[:, 1]
            assert ((level >= 0) & (level < self._levels.shape[0])).all(), f"bad levels {level}"
            thresholds: FloatArray | None = self._levels[level]
        else:
            assert a.shape == (self.num_envs,), f"actions must have shape ({self.num_envs},)"
            budget, thresholds = a, None
        assert ((budget >= 0) & (budget <= self._gamma_max)).all(), (
            f"actions {budget} are not in Discrete({self._gamma_max + 1})"
        )

        stepped: Index = slice(None)
        reset_now = self._needs_reset.copy()
        any_reset = self._autoreset is AutoresetMode.NEXT_STEP and bool(reset_now.any())
        if any_reset:
            reset_idx = np.flatnonzero(reset_now)
            self._reset_envs(reset_idx, keep_queue=False)
            stepped = np.flatnonzero(~reset_now)
            budget = budget[stepped]
            thresholds = None if thresholds is None else thresholds[stepped]
        info, reward, terminated, truncated = self._play(stepped, budget, thresholds)

        if isinstance(stepped, np.ndarray):
            info, reward, terminated, truncated = _scatter(
                self.num_envs, stepped, info, reward, terminated, truncated
            )
        done = terminated | truncated
        obs = self._observations()
        everywhere = np.ones(self.num_envs, dtype=np.bool_)
        if any_reset:  # envs reset this step report their reset info (as SyncVectorEnv)
            live = ~reset_now
            for key in STEP_INFO_KEYS:
                info[f"_{key}"] = live
            for key, value in self._reset_info().items():
                info[key] = np.where(live, info[key], value)
                info[f"_{key}"] = everywhere
        else:
            for key in STEP_INFO_KEYS:
                info[f"_{key}"] = everywhere
        if self._autoreset is AutoresetMode.NEXT_STEP:
            self._needs_reset = done
        elif done.any():
            obs, info = self._same_step_reset(done, obs, info)
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
        if self._sequential:
            prompt = self._seq_next[idx] % self._n_prompts
            self._seq_next[idx] += 1
        else:
            prompt = self._random.prompts(self._ids(idx), self._n_prompts)
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
        self._rate[idx], self._snr[idx] = self._random.channel_reset(self._ids(idx))
        self._start_prompts(idx)
        row0 = self._row0[idx]
        if self._max_new >= 2:  # the single env's peek(1): the first draft token's statistics
            self._ema_h[idx] = self._entropy[row0, 0]
            self._ema_p[idx] = self._max_prob[row0, 0]
        else:
            self._ema_h[idx] = self._ema_p[idx] = 0.0
        self._last_accepted[idx] = 0
        self._last_budget[idx] = 0
        self._elapsed[idx] = 0
        self._needs_reset[idx] = False

    def _play(
        self, sel: Index, budget: IntArray, thresholds: FloatArray | None
    ) -> tuple[dict[str, Any], FloatArray, BoolArray, BoolArray]:
        """One round in the envs ``sel`` (the replay backend's steps 1-4, then the env's)."""
        t, row0, length = _get(self._t, sel), _get(self._row0, sel), _get(self._length, sel)
        row = row0 + t
        cap = np.minimum(budget, self._max_new - t - 1)
        entropy = self._entropy[row].astype(np.float64)  # (n, G)
        max_prob = self._max_prob[row].astype(np.float64)
        gamma = realized_lengths(self._exit_rule, entropy, max_prob, cap, thresholds)
        within = self._cols < gamma[:, None]  # (n, G): drafted tokens
        if self._greedy:
            match = self._match[row]
        else:  # d_i is accepted when u_i <= accept_prob (the replay backend's draw)
            u = self._random.uniforms(self._ids(sel), gamma, self._gamma_max)
            match = u <= self._accept_prob[row]
        n_matches = np.cumprod(match & within, axis=1).sum(axis=1)  # leading matches
        end = np.minimum(t + n_matches + 1, length)
        n_tokens = end - t
        finished = end >= self._max_new
        if self._eos is not None:
            finished |= self._target[row0 + end - 1] == self._eos
        n_accepted = np.minimum(n_matches, n_tokens)
        topp_sum = (self._topp[row] * within).sum(axis=1) if self._costs.topp else 0 * gamma
        rate, snr = _get(self._rate, sel), _get(self._snr, sel)
        info = self._costs.cost(gamma, n_accepted < gamma, topp_sum, rate)
        latency_s, energy_j = info["latency_s"], info["energy_j"]

        queue_before = _get(self._queue, sel)
        queue = self._budget.queue_update(queue_before, energy_j, n_tokens, latency_s)
        allowance_j = self._budget.allowance(n_tokens, latency_s)
        energy_sum = self._energy_sum[sel] + energy_j
        allowance_sum = self._allowance_sum[sel] + allowance_j
        ema_h, ema_p = _get(self._ema_h, sel), _get(self._ema_p, sel)
        entropy_sum = np.zeros(gamma.shape)
        beta = self._beta
        for j in range(int(gamma.max(initial=0))):  # sequential, as the single env's loop
            on = within[:, j]
            h = entropy[:, j]
            ema_h = np.where(on, beta * ema_h + (1.0 - beta) * h, ema_h)
            ema_p = np.where(on, beta * ema_p + (1.0 - beta) * max_prob[:, j], ema_p)
            entropy_sum = np.where(on, entropy_sum + h, entropy_sum)
        entropy_mean = np.divide(entropy_sum, gamma, out=np.zeros(gamma.shape), where=gamma > 0)
        throughput = n_tokens / latency_s
        if self._reward_mode == "dpp":
            penalty = queue_before * energy_j
            reward = self._v * throughput - penalty
        else:
            penalty = np.zeros(gamma.shape)
            reward = throughput

        self._queue[sel], self._energy_sum[sel] = queue, energy_sum
        self._allowance_sum[sel] = allowance_sum
        self._ema_h[sel], self._ema_p[sel] = ema_h, ema_p
        self._t[sel] = end
        self._last_accepted[sel] = n_accepted
        self._last_budget[sel] = budget
        info.update(
            prompt_index=_get(self._prompt, sel),
            budget=budget,
            n_drafted=gamma,
            n_accepted=n_accepted,
            n_tokens=n_tokens,
            n_generated=end,
            entropy_mean_nats=entropy_mean,
            entropy_ema_nats=ema_h,
            max_prob_ema=ema_p,
            round_complete=np.ones(gamma.shape, dtype=np.bool_),
            rate_bps=rate,
            snr_db=snr,
            queue=queue,
            queue_before=queue_before,
            allowance_j=allowance_j,
            budget_used_frac=_used_frac(energy_sum, allowance_sum),
            throughput_tps=throughput,
            reward_throughput=throughput,
            reward_penalty=penalty,
            cost=energy_j,
        )

        # The next round's channel state, then the next prompt or the episode's end.
        self._rate[sel], self._snr[sel] = self._random.channel_step(self._ids(sel), latency_s)
        n = gamma.shape[0]
        truncated = np.zeros(n, dtype=np.bool_)
        if self._horizon is not None:
            elapsed = self._elapsed[sel] + 1
            self._elapsed[sel] = elapsed
            truncated = elapsed >= self._horizon
            if finished.any():
                sel_idx = np.arange(self.num_envs)[sel]
                self._start_prompts(sel_idx[finished])
            terminated = np.zeros(n, dtype=np.bool_)
        else:
            terminated = finished
        return info, reward, terminated, truncated

    def _same_step_reset(
        self, done: BoolArray, obs: ObsArray, info: dict[str, Any]
    ) -> tuple[ObsArray, dict[str, Any]]:
        idx = np.flatnonzero(done)
        final_info = {
            k: np.where(done, v, np.zeros_like(v)) for k, v in info.items() if not k.startswith("_")
        }
        final_info.update({f"_{k}": done for k in STEP_INFO_KEYS})
        info["final_obs"], info["_final_obs"] = obs.copy(), done
        info["final_info"], info["_final_info"] = final_info, done
        self._reset_envs(idx, keep_queue=False)
        obs = self._observations()
        # as SyncVectorEnv: a reset env reports its reset info in place of the step's
        running = ~done
        for key in STEP_INFO_KEYS:
            info[key] = np.where(done, np.zeros_like(info[key]), info[key])
            info[f"_{key}"] = running & info[f"_{key}"]
        for key, value in self._reset_info().items():
            info[key] = np.where(done, value, info[key])
            info[f"_{key}"] = info[f"_{key}"] | done
        return obs, info

    def _reset_info(self) -> dict[str, Any]:
        return {
            "queue": self._queue.copy(),
            "rate_bps": self._rate.copy(),
            "prompt_index": self._prompt.copy(),
            "budget_used_frac": _used_frac(self._energy_sum, self._allowance_sum),
            "n_generated": self._t.copy(),
        }

    def _observations(self) -> ObsArray:
        hi = self._hi
        obs = np.empty((self.num_envs, self.observation_spec.size), dtype=np.float32)
        obs[:, QUEUE] = np.minimum(self._queue * self._inv[0], hi[QUEUE])
        obs[:, RATE] = np.minimum(self._rate * self._inv[1], hi[RATE])
        obs[:, LATENCY] = self._latency_obs
        obs[:, ENTROPY_EMA] = np.minimum(self._ema_h * self._inv_entropy, hi[ENTROPY_EMA])
        obs[:, MAX_PROB_EMA] = self._ema_p
        obs[:, LAST_ACCEPTED] = self._last_accepted * self._inv_gamma
        obs[:, LAST_BUDGET] = self._last_budget * self._inv_gamma
        used = _used_frac(self._energy_sum, self._allowance_sum)
        obs[:, BUDGET_USED] = np.minimum(used, hi[BUDGET_USED])
        obs[:, PROGRESS] = np.minimum(self._t / self._max_new, 1.0)
        return obs


def _get(array: npt.NDArray[Any], sel: Index) -> npt.NDArray[Any]:
    """``array[sel]`` as a copy (a slice would alias state that the step overwrites)."""
    return array[sel].copy() if isinstance(sel, slice) else array[sel]


def _used_frac(energy_sum: FloatArray, allowance_sum: FloatArray) -> FloatArray:
    """Energy spent / energy allowed; 0 before any allowance, inf if energy was spent anyway."""
    empty = np.where(energy_sum == 0.0, 0.0, np.inf)
    return np.divide(energy_sum, allowance_sum, out=empty, where=allowance_sum > 0.0)


def _scatter(
    n: int,
    sel: IntArray,
    info: dict[str, Any],
    reward: FloatArray,
    terminated: BoolArray,
    truncated: BoolArray,
) -> tuple[dict[str, Any], FloatArray, BoolArray, BoolArray]:
    """Spread the results of the envs ``sel`` into (n,) arrays, zeros elsewhere."""

    def full(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        out = np.zeros(n, dtype=values.dtype)
        out[sel] = values
        return out

    return {k: full(v) for k, v in info.items()}, full(reward), full(terminated), full(truncated)


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
    """``GelatoSB3VecEnv``, defined on first use: importing SB3 imports torch (DESIGN.md §1)."""
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
    "realized_lengths",
]
