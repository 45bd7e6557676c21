"""A natively vectorized replay env: N device-edge SD envs stepped as numpy batch operations.

:class:`GelatoVectorEnv` is a Gymnasium 1.x ``VectorEnv`` over the replay backend, registered as
the ``vector_entry_point`` of ``gelato/DeviceEdgeSD-v0``::

    gymnasium.make_vec("gelato/DeviceEdgeSD-v0", num_envs=1024,
                       vectorization_mode="vector_entry_point")

One ``step`` plays one SD round in every env with array operations only; the per-env semantics
are :class:`~gelato_env.env.GelatoEnv`'s, from the same modules: rounds from
:class:`~gelato_env.traces.rounds.RoundTable` (tabulated in
:class:`~gelato_env.vector.tables.StepTables`), bookkeeping from :mod:`gelato_env.accounting`,
observations from ``ObservationSpec.encode_raw``. ``tests/env/test_vector.py`` checks them
against ``gymnasium.vector.SyncVectorEnv`` of single envs in the same autoreset mode.

State layout. The observed state is one ``(obs_dim, N)`` float64 matrix of physical values, one
row per observation field (queue, rate, EMAs, ...); the per-field arrays are its row views, and
an observation is one ``encode_raw`` over its transpose. The rest (trace position, energy sums,
channel SNR) are ``(N,)`` arrays: numpy loops over the last axis, so 1D rows are fast.

Randomness (``rng=``): ``"batched"`` [D] (one generator; statistically the single env) or
``"per_env"`` (bit-identical to single envs seeded s + i): :mod:`gelato_env.vector.rng`. In
``batched`` mode the EMAs use the closed form ``ema <- beta^gamma ema + c[pos, gamma]``, equal
to the token-by-token loop up to float rounding.

Autoreset (``autoreset_mode=``, stored as a Gymnasium ``AutoresetMode`` in
``metadata["autoreset_mode"]``): ``SAME_STEP`` [D] (what SB3 expects: a finished env is reset
inside the step that ended it; ``infos["final_obs"]`` (shape ``(N, obs_dim)``, float32) and
``infos["final_info"]`` carry the last step, masked by ``infos["_final_obs"]`` /
``infos["_final_info"]``; the step's own entries of a finished env, under a False mask, hold
that last step too, where ``SyncVectorEnv`` leaves 0), or ``NEXT_STEP`` (Gymnasium's default:
the step after the end resets the env and returns reward 0).

Only ``action_mode="budget"`` and ``"budget_threshold"`` are vectorized; ``per_token`` raises
``NotImplementedError``. With ``horizon`` set, envs truncate after ``horizon`` steps (the
vectorized ``TimeLimit``). :func:`~gelato_env.vector.sb3.make_sb3_vec_env` adapts the env to
stable-baselines3.

Over 500 lines because ``GelatoVectorEnv`` is one class: the ``VectorEnv`` API (reset, step,
both autoreset modes, reset masks) and the round as array operations share its state arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gelato_env.accounting import (
    CostTable,
    ema_step,
    round_reward,
    used_frac,
)
from gelato_env.backends import replay_backend
from gelato_env.observation import (
    BUDGET_USED,
    ENTROPY_EMA,
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
from gelato_env.sd.exit_rules import realized_lengths
from gelato_env.setting import EnvSetting, env_config
from gelato_env.system import ChannelProcess, EnergyBudget, make_channel
from gelato_env.traces.replay import ReplayBackend
from gelato_env.vector.info import RESET_INFO_KEYS, RESET_MASKS, STEP_MASKS
from gelato_env.vector.rng import BatchedRandom, PerEnvRandom
from gelato_env.vector.tables import FINISHED, N_ACCEPTED, N_DRAFTED, N_TOKENS, StepTables

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Index = slice | IntArray

RNG_MODES = ("batched", "per_env")
#: state rows a reset zeroes, as a column (it broadcasts against the envs' indices)
_ZEROED = np.array([[QUEUE], [LAST_ACCEPTED], [LAST_BUDGET], [BUDGET_USED]])
_KEPT_ZEROED = np.array([[LAST_ACCEPTED], [LAST_BUDGET]])
AUTORESET_MODES: dict[str, AutoresetMode] = {
    "same_step": AutoresetMode.SAME_STEP,
    "next_step": AutoresetMode.NEXT_STEP,
}


class GelatoVectorEnv(VectorEnv[ObsArray, Any, Any]):
    """N replay ``GelatoEnv``s stepped as numpy batch operations (module docstring).

    Args:
        num_envs: number of envs N (>= 1).
        rng: ``"batched"`` (fast; one generator) or ``"per_env"`` (exact single-env streams).
        autoreset_mode: ``"same_step"`` or ``"next_step"`` (or the ``AutoresetMode`` itself).
        max_episode_steps: as ``horizon`` (what ``gymnasium.make_vec`` passes from a spec's
            ``max_episode_steps``); must equal ``horizon`` when both are given.
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
        autoreset_mode: str | AutoresetMode = "same_step",
        max_episode_steps: int | None = None,
        **env_kwargs: Any,
    ) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if rng not in RNG_MODES:
            raise ValueError(f"rng must be one of {list(RNG_MODES)}, got {rng!r}")
        if isinstance(autoreset_mode, AutoresetMode):  # the enum: its name here
            autoreset_mode = {m: k for k, m in AUTORESET_MODES.items()}.get(
                autoreset_mode, autoreset_mode.value
            )
        if autoreset_mode not in AUTORESET_MODES:
            raise ValueError(
                f"autoreset_mode must be one of {list(AUTORESET_MODES)}, got {autoreset_mode!r}"
            )
        if max_episode_steps is not None:
            horizon = env_kwargs.setdefault("horizon", max_episode_steps)
            if horizon != max_episode_steps:
                raise ValueError(
                    f"max_episode_steps {max_episode_steps} must equal horizon {horizon}"
                )
        if env_kwargs.get("action_mode", "budget") == "per_token":
            raise NotImplementedError(
                "action_mode 'per_token' is not vectorized (a round spans a variable number of "
                "steps); use GelatoEnv in a SyncVectorEnv, or action_mode 'budget' / "
                "'budget_threshold'"
            )
        backend = env_kwargs.pop("backend", "replay")
        if backend != "replay" and not isinstance(backend, ReplayBackend):
            raise NotImplementedError(
                f"GelatoVectorEnv replays traces only; backend {backend!r} is not vectorized "
                "(use GelatoEnv in a SyncVectorEnv for the live backend)"
            )
        config, _ = env_config(**env_kwargs)  # a replay config: GelatoEnv's checks, no I/O yet
        setting = EnvSetting.from_config(config)
        self.backend = (
            backend
            if isinstance(backend, ReplayBackend)
            else replay_backend(config, setting.gamma_max)
        )
        self._max_new = setting.check_backend(self.backend)
        self.config, self.params = config, setting.params
        self.observation_spec = setting.observation_spec
        self.num_envs = num_envs
        self.single_observation_space = setting.observation_space
        self.single_action_space = setting.action_space
        self.observation_space = batch_space(setting.observation_space, num_envs)
        self.action_space = batch_space(setting.action_space, num_envs)
        self._autoreset = AUTORESET_MODES[autoreset_mode]
        self.metadata = {"autoreset_mode": self._autoreset, "render_modes": []}
        self.render_mode = None
        self.spec = None
        self.closed = False
        self.rng_mode = rng

        g = self._gamma_max = setting.gamma_max
        trace = self.backend.trace
        self._threshold_mode = config.action_mode == "budget_threshold"
        self._exit_rule = setting.exit_rule
        rules = setting.threshold_rules if self._threshold_mode else (setting.exit_rule,)
        self._n_levels = len(rules)
        self._levels = np.asarray(config.threshold_levels_nats, dtype=np.float64)
        self._tables = StepTables(trace, setting.params, rules, self._max_new, config.ema_decay)
        self._rounds = self._tables.rounds
        self._n_pos = self._rounds.n_pos
        self._greedy = self._rounds.greedy
        self._entropy = trace.entropy[:, :g]  # (n_pos, G): per-round rules and draws read these
        self._max_prob = trace.max_prob[:, :g]
        self._accept_prob = trace.accept_prob[:, :g]
        self._offsets = trace.prompt_offsets.astype(np.int64)
        self._n_prompts = self.backend.n_prompts
        self._cols = np.arange(g)
        self._costs = CostTable(setting.params)
        self._energy_budget = EnergyBudget(config.budget_mode, config.budget_value)
        self._beta = config.ema_decay
        self._horizon = config.horizon
        self._prompt_order = make_prompt_order(self._n_prompts, config.prompt_order)
        self._reward_mode, self._v = config.reward_mode, config.v

        def channel() -> ChannelProcess:
            return make_channel(config.channel, setting.params.radio, **config.channel_params)

        self._random: PerEnvRandom | BatchedRandom = (
            PerEnvRandom(num_envs, channel)
            if rng == "per_env"
            else BatchedRandom(num_envs, channel)
        )

        n = num_envs
        # the observed state, physical units, one row per observation field (module docstring)
        self._state = np.zeros((self.observation_spec.size, n))
        self._state[LATENCY] = setting.params.link.uplink_latency_s
        self._queue = self._state[QUEUE]
        self._rate = self._state[RATE]
        self._ema = self._state[ENTROPY_EMA : MAX_PROB_EMA + 1]  # (2, N): entropy, max-prob
        self._last_accepted = self._state[LAST_ACCEPTED]
        self._last_budget = self._state[LAST_BUDGET]
        self._used = self._state[BUDGET_USED]
        self._progress = self._state[PROGRESS]
        self._row0 = np.zeros(n, dtype=np.int64)
        self._t = np.zeros(n, dtype=np.int64)
        self._prompt = np.zeros(n, dtype=np.int64)
        # position of each env in the prompt order (the single env's cursor); -1: unseeded
        self._seq_next = np.full(n, 0 if config.prompt_order == "sequential" else -1)
        self._elapsed = np.zeros(n, dtype=np.int64)
        self._sums = np.zeros((2, n))  # the energy spent and allowed, J: zeroed together
        self._energy_sum, self._allowance_sum = self._sums
        self._snr = np.zeros(n)
        self._all = np.arange(n)
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
            :data:`~gelato_env.vector.info.RESET_INFO_KEYS`, arrays of shape ``(N,)``).
        """
        options = options or {}
        if seed is not None:
            seeds = self._seeds(seed)
            self._random.seed(seeds)
            if isinstance(self._random, BatchedRandom):
                self._np_random = self._random.gen
        mask = options.get("reset_mask")
        if mask is None:
            idx: Index = slice(None)
        else:
            mask = np.asarray(mask, dtype=np.bool_)
            assert mask.shape == (self.num_envs,), f"reset_mask must have shape ({self.num_envs},)"
            idx = np.flatnonzero(mask)
        if seed is not None:  # the single env's reset(seed=s): the cursor starts at s
            cursors = self._seq_next.copy()
            for i, s in enumerate(seeds):
                if s is not None:
                    cursors[i] = s
            self._seq_next[idx] = cursors[idx]
        self._reset_envs(idx, keep_queue=bool(options.get("keep_queue", False)))
        self._ready = True
        info = {
            "queue": self._queue.copy(),
            "rate_bps": self._rate.copy(),
            "prompt_index": self._prompt.copy(),
            "budget_used_frac": self._used.copy(),
            "n_generated": self._t.copy(),
        }
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
            maps each of :data:`~gelato_env.vector.info.STEP_INFO_KEYS` to an ``(N,)`` array,
            with a ``_key`` mask.
        """
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        a = self._checked_actions(actions)
        budget, levels = (a[:, 0], a[:, 1]) if self._threshold_mode else (a, None)

        stepped: Index = slice(None)
        reset_now = self._needs_reset
        any_reset = self._autoreset is AutoresetMode.NEXT_STEP and bool(reset_now.any())
        if any_reset:
            reset_now = reset_now.copy()
            reset_idx = np.flatnonzero(reset_now)
            self._reset_envs(reset_idx, keep_queue=False)
            stepped = np.flatnonzero(~reset_now)
            budget = budget[stepped]
            levels = None if levels is None else levels[stepped]
        step_info, reward, terminated, truncated = self._play(stepped, budget, levels)

        n = self.num_envs
        if isinstance(stepped, np.ndarray):  # the envs reset now report zeros, as SyncVectorEnv
            step_info = {key: _scattered(n, stepped, x) for key, x in step_info.items()}
            reward, terminated, truncated = (
                _scattered(n, stepped, x) for x in (reward, terminated, truncated)
            )
        done = terminated | truncated
        everywhere = _trues(n)
        if any_reset:  # envs reset this step report their reset info (as SyncVectorEnv)
            obs = self._observations()
            info = step_info
            self._put_reset_info(info, reset_idx)
            info.update(dict.fromkeys(STEP_MASKS, ~reset_now))
        elif self._autoreset is AutoresetMode.SAME_STEP and done.any():
            obs, info = self._same_step_reset(done, step_info)
        else:
            obs = self._observations()
            info = step_info
            info.update(dict.fromkeys(STEP_MASKS, everywhere))
        info.update(dict.fromkeys(RESET_MASKS, everywhere))
        if self._autoreset is AutoresetMode.NEXT_STEP:
            self._needs_reset = done
        return obs, reward, terminated, truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to release (no subprocesses)."""

    # -- actions and seeds -----------------------------------------------------------------------

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
        a = raw.astype(np.int64, copy=False)
        budget = a[:, 0] if self._threshold_mode else a
        # as uint64 a negative value is >= 2**63: one max() checks both ends
        if budget.view(np.uint64).max() > self._gamma_max:
            raise ValueError(f"budgets must be in Discrete({self._gamma_max + 1}), got {budget}")
        if self._threshold_mode and a[:, 1].view(np.uint64).max() >= self._n_levels:
            raise ValueError(
                f"threshold levels must be in Discrete({self._n_levels}), got {a[:, 1]}"
            )
        return a

    def _seeds(self, seed: int | Sequence[int | None]) -> list[int | None]:
        if isinstance(seed, (int, np.integer)):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"seed must be an int or {self.num_envs} seeds, got {len(seeds)}")
        return seeds

    def _ids(self, idx: Index) -> Any:
        """``idx`` as the per-env engine wants it (a list of env indices) or as is (batched)."""
        if isinstance(self._random, BatchedRandom):
            return idx
        return list(range(self.num_envs)) if isinstance(idx, slice) else idx.tolist()

    # -- episodes --------------------------------------------------------------------------------

    def _start_prompts(self, idx: Index) -> None:
        cursor = self._seq_next[idx].copy()
        (unset,) = (cursor < 0).nonzero()
        if unset.size:  # unseeded first reset of a random order: a random start
            envs = self._all[idx][unset]
            cursor[unset] = self._random.prompts(self._ids(envs), self._n_prompts)
        prompt = self._prompt_order[cursor % self._n_prompts]
        self._seq_next[idx] = cursor + 1
        self._prompt[idx] = prompt
        self._row0[idx] = self._offsets[prompt]
        self._t[idx] = 0
        self._progress[idx] = 0.0

    def _reset_envs(self, idx: Index, *, keep_queue: bool, after_step: bool = False) -> None:
        """Reset the envs ``idx``; ``after_step``: right after a step drew their next channel."""
        # state rows zeroed by a reset, in one assignment (QUEUE and BUDGET_USED unless kept)
        self._state[_KEPT_ZEROED if keep_queue else _ZEROED, idx] = 0.0
        if not keep_queue:
            self._sums[:, idx] = 0.0
        if not (after_step and self._random.keeps_step_draw):
            self._rate[idx], self._snr[idx] = self._random.channel_reset(self._ids(idx))
        self._start_prompts(idx)
        if self._max_new >= 2:  # the single env's peek(1): the first draft token's statistics
            self._ema[:, idx] = self._tables.ema_start[:, self._row0[idx]]
        else:
            self._ema[:, idx] = 0.0
        self._elapsed[idx] = 0
        self._needs_reset[idx] = False

    def _same_step_reset(
        self, done: BoolArray, step_info: dict[str, Any]
    ) -> tuple[ObsArray, dict[str, Any]]:
        """Reset the finished envs; their step's results go to ``final_obs`` / ``final_info``.

        ``final_info`` holds the step's arrays themselves, and the step's info shares them
        except for the reset keys (copies holding the reset values of the envs reset): under a
        False ``_key`` mask an entry holds the finished env's last-step value, where
        ``SyncVectorEnv`` leaves 0 (read entries through the masks, as Gymnasium intends).
        """
        (idx,) = done.nonzero()
        final_obs = np.zeros((self.num_envs, self.observation_spec.size), dtype=np.float32)
        final_obs[idx] = self._observations(idx)
        info = dict(step_info)
        final_info = step_info
        final_info.update(dict.fromkeys(STEP_MASKS + RESET_MASKS, done))
        self._reset_envs(idx, keep_queue=False, after_step=True)
        self._put_reset_info(info, idx)  # as SyncVectorEnv: a reset env reports its reset info
        info.update(dict.fromkeys(STEP_MASKS, ~done))
        info.update(final_obs=final_obs, _final_obs=done, final_info=final_info, _final_info=done)
        return self._observations(), info

    def _put_reset_info(self, info: dict[str, Any], idx: IntArray) -> None:
        """Give the envs ``idx`` (reset in this step) their reset info: new arrays."""
        for key, state in (
            ("queue", self._queue),
            ("rate_bps", self._rate),
            ("prompt_index", self._prompt),
            ("budget_used_frac", self._used),
            ("n_generated", self._t),
        ):
            info[key] = values = info[key].copy()
            values[idx] = state[idx]

    def _observations(self, idx: Index = slice(None)) -> ObsArray:
        """Observations of the envs ``idx`` (all by default), shape ``(n, obs_dim)``, float32."""
        state = self._state[:, idx]  # (obs_dim, n)
        # encode in the state's memory order (an F-ordered (n, obs_dim) view), then one C copy
        out = np.empty(state.shape, dtype=np.float32).T  # (n, obs_dim)
        return np.ascontiguousarray(self.observation_spec.encode_raw(state.T, out=out))

    # -- one round in every env ------------------------------------------------------------------

    def _outcome(
        self, sel: Index, row: IntArray, base: IntArray, budget: IntArray, levels: IntArray | None
    ) -> tuple[IntArray, IntArray, IntArray, BoolArray]:
        """(n_drafted, n_accepted, n_tokens, finished) of the rounds at ``row`` (RoundTable).

        ``base`` is ``row (G + 1)``, the rows' offset in the flat tables.
        """
        tab, rounds = self._tables, self._rounds
        if tab.outcome is not None:  # greedy, a built-in rule: one gather
            key = base + budget
            if levels is not None:
                key += levels * (self._n_pos * tab.width)
            out = np.ascontiguousarray(tab.outcome.take(key, axis=0).T, dtype=np.int64)  # (4, n)
            return out[N_DRAFTED], out[N_ACCEPTED], out[N_TOKENS], out[FINISHED] != 0
        if rounds.stops is not None:
            gamma = rounds.n_drafted(row, budget, 0 if levels is None else levels)
        else:  # a per-round rule
            cap = np.minimum(budget, rounds.cap_left[row])
            thresholds = None if levels is None else self._levels[levels]
            entropy = self._entropy[row].astype(np.float64)  # (n, G)
            max_prob = self._max_prob[row].astype(np.float64)
            gamma = realized_lengths(self._exit_rule, entropy, max_prob, cap, thresholds)
        if self._greedy:  # the recorded leading matches
            n_matches = np.minimum(gamma, rounds.n_lead[row])
        else:  # d_i is accepted when u_i <= accept_prob (the replay backend's draw)
            u = self._random.uniforms(self._ids(sel), gamma, self._gamma_max)
            within = self._cols < gamma[:, None]  # (n, G): drafted tokens
            match = (u <= self._accept_prob[row]) & within
            n_matches = np.cumprod(match, axis=1).sum(axis=1)  # leading matches
        o = rounds.settle(row, gamma, n_matches)
        return o.n_drafted, o.n_accepted, o.n_tokens, o.finished

    def _emas(self, sel: Index, row: IntArray, gamma: IntArray, offset: FloatArray) -> FloatArray:
        """The entropy and max-prob EMAs after the rounds' drafted tokens, shape ``(2, n)``.

        ``per_env``: token by token as the single env (``accounting.ema_step``, bit-identical);
        ``batched``: the closed form beta^gamma ema + ``offset`` (the rounds' ``drafted`` EMA
        columns, shape ``(n, 2)``), equal up to float rounding.
        """
        tab = self._tables
        if isinstance(self._random, BatchedRandom):
            ema = self._ema[:, sel] * tab.ema_decay_pow[gamma]
            ema += offset.T
            return ema
        n = gamma.shape[0]
        terms = tab.ema_terms.take(row, axis=0)  # (n, G, 2)
        emas = np.empty((int(gamma.max(initial=0)) + 1, 2, n))  # emas[j]: after j tokens
        emas[0] = self._ema[:, sel]
        for j in range(emas.shape[0] - 1):
            emas[j + 1] = ema_step(emas[j], terms[:, j].T, self._beta)
        return emas[gamma, :, self._all[:n]].T

    def _play(
        self, sel: Index, budget: IntArray, levels: IntArray | None
    ) -> tuple[dict[str, Any], FloatArray, BoolArray, BoolArray]:
        """One round in the envs ``sel``: the round, its cost, the accounting, the next state.

        Returns the step's info (every :data:`~gelato_env.vector.info.STEP_INFO_KEYS` entry a
        fresh ``(n,)`` array: the arrays computed here, or copies of the state), the rewards
        and the termination flags.
        """
        t = _get(self._t, sel)
        row = _get(self._row0, sel)
        row += t
        base = row * self._tables.width  # the flat tables' row offsets
        gamma, n_accepted, n_tokens, finished = self._outcome(sel, row, base, budget, levels)
        end = t + n_tokens
        n = gamma.shape[0]
        rate, queue_before = _get(self._rate, sel), _get(self._queue, sel)

        # the round's cost (take: faster than fancy indexing on 2D tables)
        stats = self._tables.drafted.take(base + gamma, axis=0)  # (n, 4)
        cost = self._costs.costs(gamma, n_accepted < gamma, stats[:, 0], rate)
        # (CostItems annotates the scalar path's floats; here every item is an (n,) array)
        latency_s: FloatArray = cost.latency_s  # type: ignore[assignment]
        energy_j: FloatArray = cost.energy_j  # type: ignore[assignment]

        # the energy accounting and the reward
        allowance_j, queue = self._energy_budget.settle(queue_before, energy_j, n_tokens, latency_s)
        energy_sum, allowance_sum = self._energy_sum[sel], self._allowance_sum[sel]
        energy_sum += energy_j  # in place: the state itself when sel is a slice
        allowance_sum += allowance_j
        used = used_frac(energy_sum, allowance_sum)
        throughput, penalty, reward = round_reward(
            self._reward_mode, self._v, n_tokens, latency_s, queue_before, energy_j
        )
        ema = self._emas(sel, row, gamma, stats[:, 2:])
        info = {  # STEP_INFO_KEYS order; no two entries share memory
            "prompt_index": _get(self._prompt, sel),
            "budget": budget.copy(),
            "n_drafted": gamma,
            "n_accepted": n_accepted,
            "n_tokens": n_tokens,
            "n_generated": end,
            "entropy_mean_nats": stats[:, 1],
            "entropy_ema_nats": ema[0],
            "max_prob_ema": ema[1],
            "round_complete": _trues(n),
            "rate_bps": rate,
            "snr_db": _get(self._snr, sel),
            "uplink_bits": cost.uplink_bits,
            "downlink_bits": cost.downlink_bits,
            "latency_s": latency_s,
            "energy_j": energy_j,
            "draft_energy_j": cost.draft_energy_j,
            "radio_energy_j": cost.radio_energy_j,
            "idle_energy_j": cost.idle_energy_j,
            "queue": queue,
            "queue_before": queue_before,
            "allowance_j": allowance_j,
            "budget_used_frac": used,
            "throughput_tps": throughput,
            "reward_throughput": throughput.copy(),
            "reward_penalty": penalty,
            "cost": energy_j.copy(),
        }
        if reward is throughput:
            reward = throughput.copy()

        # the state after the round
        self._queue[sel] = queue
        if not isinstance(sel, slice):  # fancy indexing gave copies
            self._energy_sum[sel], self._allowance_sum[sel] = energy_sum, allowance_sum
        self._used[sel] = used
        self._ema[:, sel] = ema
        self._t[sel] = end
        self._progress[sel] = end / self._max_new
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
                self._start_prompts(self._all[sel][finished])
            terminated = np.zeros(n, dtype=np.bool_)
        else:
            terminated = finished
        return info, reward, terminated, truncated


def _trues(n: int) -> BoolArray:
    """A fresh ``(n,)`` array of True (``np.ones`` costs three times as much here)."""
    out = np.empty(n, dtype=np.bool_)
    out.fill(True)
    return out


def _get(array: npt.NDArray[Any], sel: Index) -> npt.NDArray[Any]:
    """``array[sel]`` as a copy (a slice would alias state that the step overwrites)."""
    return array[sel].copy() if isinstance(sel, slice) else array[sel]


def _scattered(n: int, sel: IntArray, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``values`` of the envs ``sel`` spread into an ``(n,)`` array, zeros elsewhere."""
    out = np.zeros(n, dtype=values.dtype)
    out[sel] = values
    return out
