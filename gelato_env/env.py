"""The Gymnasium environment: one device-edge SD round per step (docs/design.md §7).

Over 500 lines because the class docstring is the full environment card (about 150 lines, in
Gymnasium's fixed sections); the code is the episode loop only -- settings, backends, rounds and
accounting live in :mod:`~gelato_env.setting`, :mod:`~gelato_env.backends`,
:mod:`~gelato_env.traces.rounds` and :mod:`~gelato_env.accounting`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from gelato_env.accounting import CostTable, measured_cost, round_reward, used_frac
from gelato_env.backends import build_backend
from gelato_env.config import EnvConfig
from gelato_env.observation import ObsArray, ObservationFields, ObservationScales
from gelato_env.prompt_order import prompt_order as make_prompt_order
from gelato_env.sd.exit_rules import ExitRule, NoExit
from gelato_env.sd.round import RoundBackend
from gelato_env.setting import EnvSetting, env_config
from gelato_env.system import EnergyBudget, SystemParams, make_channel

_NO_EXIT = NoExit()


class GelatoEnv(gym.Env[ObsArray, Any]):
    r"""Device-edge speculative decoding under a long-term device energy budget.

    ## Description

    A small draft LLM runs on a battery-powered device; a large target LLM verifies its drafts at
    an edge server across a wireless uplink (docs/design.md §2-§5). Each step is one speculative-
    decoding round: the agent picks a drafting budget, the device drafts (an exit rule may stop
    early), the draft crosses the link (payload protocol ``topp``/``full``/``dssd``), the target
    verifies losslessly, and the round's latency T_k and device energy E_k follow from the system
    model. Token statistics come from real models: a recorded trace (``backend="replay"``, exact
    under greedy verification) or live ``transformers`` models (``backend="live"``). Time and
    energy come from the device/edge profiles, so they model the paper's hardware, not this CPU.
    A virtual energy queue Q tracks the long-term budget (drift-plus-penalty, Neely).

    Two budgets, named apart: the **drafting budget** gamma~ (tokens; the action,
    ``info["budget"]``) caps a round's draft length; the **energy budget** (``budget_mode`` /
    ``budget_value``, in J/round, J/token or W; ``env.energy_budget``) is the long-term device
    energy constraint.

    ## Action Space

    By ``action_mode`` (gamma_max = the system setting's largest drafting budget, default 8):

    | mode               | space                               | meaning                        |
    |--------------------|-------------------------------------|--------------------------------|
    | `budget`           | `Discrete(gamma_max + 1)`           | drafting budget gamma~ (tokens)|
    | `budget_threshold` | `MultiDiscrete([gamma_max + 1, L])` | drafting budget, level index   |
    | `per_token`        | `Discrete(2)`                       | 0: offload now, 1: draft more  |

    In `budget` mode the configured `exit_rule` runs inside the step (budget 0: no drafting, the
    target produces one token). In `budget_threshold` mode the second entry indexes
    `threshold_levels_nats` (L levels) and sets the exit rule's `threshold_nats` for the round.

    Actions are checked in every mode (also under ``python -O``): an integral float or a 0-d
    array counts as the integer it holds; anything else (NaN, 2.5, a wrong shape, out of
    range) raises ``ValueError`` naming the mode's valid actions.

    In `per_token` mode a round spans several steps: the observation shows the next draft
    token's entropy and max-prob (``RoundBackend.peek``); the round is verified when the agent
    offloads or when gamma_max tokens are drafted. No exit rule runs in this mode.

    ## Observation Space

    A `Box(0, high, (9,), float32)` (`(12,)` in `per_token` mode); each entry is a physical
    value over a scale (:class:`~gelato_env.observation.ObservationScales`), clipped to its bound.
    ``decode_observation(obs, env.unwrapped.observation_spec)`` gives the physical values.

    | idx | field                | unit   | normalization                  | bounds          |
    |-----|----------------------|--------|--------------------------------|-----------------|
    | 0   | energy queue Q       | J      | / `queue_scale_j` (1 J)        | [0, 1e4]        |
    | 1   | uplink rate R_k      | bit/s  | / `rate_scale_bps` (1 Mbit/s)  | [0, 1e3]        |
    | 2   | link latency L_0     | s      | / `latency_scale_s` (0.1 s)    | [0, 100]        |
    | 3   | draft entropy EMA    | nats   | / `entropy_scale_nats` (10)    | [0, 2]          |
    | 4   | draft max-prob EMA   | 1      | none                           | [0, 1]          |
    | 5   | last accepted length | tokens | / gamma_max                    | [0, 1]          |
    | 6   | last budget          | tokens | / gamma_max                    | [0, 1]          |
    | 7   | energy budget used   | 1      | sum E / sum allowance          | [0, 1e3]        |
    | 8   | progress             | 1      | n_generated / max_new_tokens   | [0, 1]          |
    | 9   | drafted this round   | tokens | / gamma_max (`per_token` only) | [0, 1]          |
    | 10  | next token entropy   | nats   | / `entropy_scale_nats`         | [0, 2]          |
    | 11  | next token max-prob  | 1      | none                           | [0, 1]          |

    The rate is that of the channel state the next round will use (observed before deciding).

    ## Rewards

    With N_k tokens produced in T_k seconds at device energy E_k, and Q the queue the round's
    decision saw:

    * `throughput`: N_k / T_k (tokens/s). Summed over an episode this is a sum of per-round
      rates, not the episode throughput sum N / sum T, which
      :class:`~gelato_env.wrappers.EpisodeStatistics` reports.
    * `dpp`: V * N_k / T_k - Q * E_k, the drift-plus-penalty objective GELATO maximizes.
    * `lagrangian`: N_k / T_k, with ``info["cost"] = E_k`` (J) for constrained RL.

    In `per_token` mode the reward is 0 on steps that draft one more token and the round's
    reward on the step that completes it (offload, or the gamma_max cap). ``info`` carries every
    term: see :data:`~gelato_env.observation.INFO_KEYS`.

    ## Starting State

    `reset` picks a prompt (a pass without replacement over a fixed order, ``sequential`` or a
    fixed ``random`` permutation; ``reset(seed=s)`` starts the pass at position s, so consecutive
    seeds play distinct prompts: :mod:`gelato_env.prompt_order`), resets the backend
    with ``self.np_random`` (sampled replay acceptances and the live torch generator draw from
    it), draws the channel state, and sets the entropy / max-prob EMAs from the first draft
    token. Q and the energy accounting restart at 0 unless ``options={"keep_queue": True}``,
    which carries them over for long-term runs across episodes.

    ## Episode End

    * Termination: the prompt's generation ends (EOS or `max_new_tokens`) -- unless `horizon`
      is set, in which case the next prompt starts within the same episode.
    * Truncation: with `horizon` set, by the `TimeLimit` wrapper after `horizon` steps, which
      ``gymnasium.make(id, horizon=H)`` adds (``spec.max_episode_steps == H``, as the vector
      env truncates).

    ## Arguments

    ```python
    gymnasium.make("gelato/DeviceEdgeSD-v0", trace_path=None, system="paper",
                   channel="rayleigh", budget_mode="per_round", budget_value=0.2,
                   action_mode="budget", reward_mode="throughput", exit_rule="entropy_bucket")
    ```

    * `backend`: ``"replay"``, ``"live"``, or a ready :class:`~gelato_env.sd.round.RoundBackend`.
    * `trace_path`: replay trace; None uses the shipped default trace (``default_trace_path()``).
    * `model_pair`: live backend's model pair (``"default"``: gelato's own offline pair).
    * `clock`: ``"modelled"`` (profiles; deterministic) or ``"measured"`` (live wall-clock x
      profile powers; flags the spec ``nondeterministic``).
    * `system`, `system_overrides`: named system setting and field overrides. The payload's
      ``vocab_size`` may differ from a replayed trace's (to price a small pair's rounds at
      another model's link cost); unless ``system_overrides`` sets it, a difference warns,
      naming both sizes.
    * `channel`, `channel_params`: channel process and its parameters.
    * `payload`: payload protocol (None keeps the setting's).
    * `budget_mode`, `budget_value`: the energy budget, ``per_round`` (J/round), ``per_token``
      (J/token) or ``per_second`` (W).
    * `v`: drift-plus-penalty weight V (``dpp`` reward).
    * `action_mode`, `threshold_levels_nats`, `reward_mode`, `exit_rule`, `exit_params`.
    * `max_new_tokens`: tokens per prompt (None: the backend's).
    * `horizon`: rounds per episode across prompts (see Episode End).
    * `prompt_order`: ``"random"`` or ``"sequential"``; `ema_decay`: EMA factor beta;
      `scales`: observation scales.
    * `render_mode`: None or ``"ansi"`` (``render()`` returns one text line of the state).

    ## Version History

    * v0: initial release.
    """

    # render_fps: gymnasium's checker asks for one; text frames have no real-time rate
    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012

    def __init__(
        self,
        *,
        backend: str | RoundBackend = "replay",
        trace_path: str | None = None,
        model_pair: str = "default",
        clock: str = "modelled",
        system: str = "paper",
        system_overrides: Mapping[str, Any] | None = None,
        channel: str = "rayleigh",
        channel_params: Mapping[str, Any] | None = None,
        payload: str | None = None,
        budget_mode: str = "per_round",
        budget_value: float = 0.2,
        v: float = 1.0,
        action_mode: str = "budget",
        threshold_levels_nats: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 3.0),
        reward_mode: str = "throughput",
        exit_rule: str = "entropy_bucket",
        exit_params: Mapping[str, float] | None = None,
        max_new_tokens: int | None = None,
        horizon: int | None = None,
        prompt_order: str = "random",
        ema_decay: float = 0.8,
        scales: ObservationScales | Mapping[str, float] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            # TypeError, not ValueError: SB3's make_vec_env asks for "rgb_array" and retries
            # without a render_mode on a TypeError
            raise TypeError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode
        config, backend_obj = env_config(
            backend=backend,
            trace_path=trace_path,
            model_pair=model_pair,
            clock=clock,
            system=system,
            system_overrides=system_overrides,
            channel=channel,
            channel_params=channel_params,
            payload=payload,
            budget_mode=budget_mode,
            budget_value=budget_value,
            v=v,
            action_mode=action_mode,
            threshold_levels_nats=threshold_levels_nats,
            reward_mode=reward_mode,
            exit_rule=exit_rule,
            exit_params=exit_params,
            max_new_tokens=max_new_tokens,
            horizon=horizon,
            prompt_order=prompt_order,
            ema_decay=ema_decay,
            scales=scales,
        )
        # Settings, exit rules and spaces: checked before any model or trace is loaded.
        setting = EnvSetting.from_config(config)
        self.config = config
        self.params: SystemParams = setting.params
        gamma_max = self._gamma_max = setting.gamma_max
        self._exit_rule = setting.exit_rule
        self._channel = make_channel(config.channel, self.params.radio, **config.channel_params)
        self.energy_budget = EnergyBudget(config.budget_mode, config.budget_value)

        self.backend: RoundBackend = (
            backend_obj if backend_obj is not None else build_backend(config, gamma_max)
        )
        self._max_new_tokens = setting.check_backend(self.backend)
        self._n_prompts = self.backend.n_prompts

        self.observation_spec = setting.observation_spec
        self._encode = self.observation_spec.encoder()
        self.observation_space = setting.observation_space
        self.action_space = setting.action_space
        self._action_help = setting.action_help
        # the valid action values -> what they select (step's checks are lookups in these)
        self._draft_budgets = {b: b for b in range(gamma_max + 1)}
        self._level_rules = dict(enumerate(setting.threshold_rules))
        self._per_token_actions = {0: 0, 1: 1}

        # Hot-path constants.
        self._inv_gamma = 1.0 / gamma_max
        self._beta = config.ema_decay
        self._ema_weight = 1.0 - config.ema_decay  # (1 - beta), the EMA's weight of a new token
        self._reward_mode = config.reward_mode
        self._v = config.v
        self._per_token = config.action_mode == "per_token"
        self._threshold_mode = config.action_mode == "budget_threshold"
        self._across_prompts = config.horizon is not None
        self._measured = config.clock == "measured"
        self._costs = CostTable(self.params)
        self._topp_payload = self.params.payload.protocol == "topp"
        self._latency_s = self.params.link.uplink_latency_s
        self._last_accepted = 0  # n_accepted and drafting budget of the last completed round
        self._last_budget = 0

        # Episode state.
        self._ready = False
        self._prompt_order = make_prompt_order(self._n_prompts, config.prompt_order)
        self._prompt_cursor: int | None = None  # position in the order; a seed sets it
        self._prompt_index = 0
        self._queue = 0.0
        self._energy_sum_j = 0.0
        self._allowance_sum_j = 0.0
        self._rate_bps = 0.0
        self._snr_db = 0.0
        self._entropy_ema = 0.0
        self._max_prob_ema = 0.0
        self._n_generated = 0
        self._drafted = 0  # per_token mode: tokens drafted so far in the open round
        self._next_entropy = 0.0  # per_token mode: stats of the next draft token
        self._next_max_prob = 0.0
        self._spec_value: gym.envs.registration.EnvSpec | None = None

    # -- construction helpers -------------------------------------------------------------

    @classmethod
    def from_config(cls, config: EnvConfig, backend: RoundBackend | None = None) -> GelatoEnv:
        """Build the env from an :class:`EnvConfig` (Hydra scripts), optionally on a backend."""
        kwargs = config.to_kwargs()
        if backend is not None:
            kwargs["backend"] = backend
        return cls(**kwargs)

    @property
    def spec(self) -> gym.envs.registration.EnvSpec | None:
        """The registration spec; flagged ``nondeterministic`` under the measured clock."""
        return self._spec_value

    @spec.setter
    def spec(self, value: gym.envs.registration.EnvSpec | None) -> None:
        if value is not None and self.config.clock == "measured" and not value.nondeterministic:
            value = dataclasses.replace(value, nondeterministic=True)
        self._spec_value = value

    @property
    def nondeterministic(self) -> bool:
        """Whether rollouts depend on more than the seed (the measured clock)."""
        return self.config.clock == "measured"

    @property
    def queue(self) -> float:
        """The virtual energy queue Q, J."""
        return self._queue

    def decode_observation(self, obs: ObsArray) -> ObservationFields:
        """Physical values of one of this env's observations."""
        return self.observation_spec.decode(obs)

    # -- gymnasium API ----------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsArray, dict[str, Any]]:
        """Start a new episode (see Starting State); ``options={"keep_queue": True}`` keeps Q."""
        super().reset(seed=seed)
        if seed is not None:
            self._prompt_cursor = int(seed)
        keep_queue = bool(options.get("keep_queue", False)) if options else False
        if not keep_queue:
            self._queue = 0.0
            self._energy_sum_j = 0.0
            self._allowance_sum_j = 0.0
        state = self._channel.reset(self.np_random)
        self._rate_bps = float(state.rate_bps)
        self._snr_db = float(state.snr_db)
        self._start_prompt()
        first = self.backend.peek(1)
        self._entropy_ema = float(first.entropy[0]) if len(first.entropy) else 0.0
        self._max_prob_ema = float(first.max_prob[0]) if len(first.max_prob) else 0.0
        self._ready = True
        self._last_accepted = self._last_budget = 0
        info = {
            "queue": self._queue,
            "rate_bps": self._rate_bps,
            "prompt_index": self._prompt_index,
            "budget_used_frac": used_frac(self._energy_sum_j, self._allowance_sum_j),
            "n_generated": self._n_generated,
        }
        return self._observation(info["budget_used_frac"]), info

    def step(self, action: Any) -> tuple[ObsArray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Play one round (or, in ``per_token`` mode, one drafting decision)."""
        if not self._ready:
            raise RuntimeError("call reset() before step() (the episode has ended or never began)")
        # Actions are checked by dict lookups over the valid values (an integral float or numpy
        # scalar equals, and hashes like, its int; NaN, 2.5 and out-of-range values miss): one
        # lookup per entry checks type, integrality and range, and survives `python -O`.
        if self._per_token:
            try:
                a = self._per_token_actions[action]
            except (KeyError, TypeError):
                a = self._scalar_action(action, self._per_token_actions)
            if a == 1 and self._drafted < self._gamma_max - 1:
                self._drafted += 1
                self._peek_next()
                return self._in_round_step()
            budget = self._drafted + a  # offload, or the gamma_max cap was reached
            rule: ExitRule = _NO_EXIT
        elif self._threshold_mode:
            try:
                b, level = action.tolist() if isinstance(action, np.ndarray) else action
                budget = self._draft_budgets[b]
                rule = self._level_rules[level]
            except (KeyError, TypeError, ValueError):
                raise self._action_error(action) from None
        else:
            try:
                budget = self._draft_budgets[action]
            except (KeyError, TypeError):
                budget = self._scalar_action(action, self._draft_budgets)
            rule = self._exit_rule
        return self._play_round(budget, rule)

    def _scalar_action(self, action: Any, valid: Mapping[Any, int]) -> int:
        """The valid int a 0-d array ``action`` holds; else the action error (the slow path)."""
        if isinstance(action, np.ndarray) and action.ndim == 0:
            value = valid.get(action.item())
            if value is not None:
                return value
        raise self._action_error(action)

    def _action_error(self, action: Any) -> ValueError:
        shown = repr(action)
        if isinstance(action, np.ndarray):
            shown += f" of shape {action.shape}"
        return ValueError(f"action must be {self._action_help}, got {shown}")

    def render(self) -> str | None:
        """``ansi``: one text line of the env's state; otherwise nothing (``info`` has it all)."""
        if self.render_mode != "ansi":
            return None
        return (
            f"prompt {self._prompt_index}: {self._n_generated} tokens, Q {self._queue:.4f} J, "
            f"rate {self._rate_bps / 1e6:.3f} Mbit/s, "
            f"budget used {used_frac(self._energy_sum_j, self._allowance_sum_j):.2f}"
        )

    # -- internals ------------------------------------------------------------------------

    def _start_prompt(self) -> None:
        cursor = self._prompt_cursor
        if cursor is None:  # unseeded first reset: sequential starts at 0, random anywhere
            random = self.config.prompt_order == "random"
            cursor = int(self.np_random.integers(self._n_prompts)) if random else 0
        self._prompt_index = int(self._prompt_order[cursor % self._n_prompts])
        self._prompt_cursor = cursor + 1
        self.backend.reset(self._prompt_index, self.np_random)
        self._n_generated = 0
        self._open_round()

    def _open_round(self) -> None:
        self._drafted = 0
        if self._per_token:
            self._peek_next()

    def _peek_next(self) -> None:
        """Statistics of the next draft token of the open round (``per_token`` mode).

        Peeks lazily, one token further per step, so the live engine drafts only what the agent
        asks for; 0.0 when no further token can be drafted (end of generation).
        """
        d = self._drafted
        stats = self.backend.peek(d + 1)
        if len(stats.entropy) > d:
            self._next_entropy = float(stats.entropy[d])
            self._next_max_prob = float(stats.max_prob[d])
        else:
            self._next_entropy = self._next_max_prob = 0.0

    def _play_round(
        self, budget: int, rule: ExitRule
    ) -> tuple[ObsArray, float, bool, bool, dict[str, Any]]:
        result = self.backend.run_round(budget, rule)
        n_drafted = result.n_drafted
        n_tokens = len(result.tokens)
        remaining = self._max_new_tokens - self._n_generated
        if n_tokens > remaining:
            n_tokens = remaining
        topp_size_sum = sum(result.topp_size.tolist()) if self._topp_payload else 0
        cost: tuple[float, float, float, float, float, int, int]
        if self._measured:
            cost = measured_cost(self.params, result, topp_size_sum, self._rate_bps)
        else:
            cost = self._costs.cost(
                n_drafted, result.n_accepted < n_drafted, topp_size_sum, self._rate_bps
            )
        latency_s, energy_j, draft_energy_j, radio_energy_j, idle_energy_j, up_bits, down_bits = (
            cost
        )

        queue_before = self._queue
        allowance_j, self._queue = self.energy_budget.settle(
            queue_before, energy_j, n_tokens, latency_s
        )
        self._energy_sum_j += energy_j
        self._allowance_sum_j += allowance_j
        self._n_generated += n_tokens

        ema_h, ema_p = self._entropy_ema, self._max_prob_ema
        entropies = result.entropy.tolist()
        if entropies:
            # accounting.ema_step per token, unrolled (the hot path)
            beta, weight = self._beta, self._ema_weight
            for h, p in zip(entropies, result.max_prob.tolist(), strict=True):
                ema_h = beta * ema_h + weight * h
                ema_p = beta * ema_p + weight * p
            self._entropy_ema, self._max_prob_ema = ema_h, ema_p

        throughput, penalty, reward = round_reward(
            self._reward_mode, self._v, n_tokens, latency_s, queue_before, energy_j
        )
        used = used_frac(self._energy_sum_j, self._allowance_sum_j)

        info = {
            "prompt_index": self._prompt_index,
            "budget": result.budget,
            "n_drafted": n_drafted,
            "n_accepted": result.n_accepted,
            "n_tokens": n_tokens,
            "n_generated": self._n_generated,
            "entropies": tuple(entropies),
            "entropy_mean_nats": sum(entropies) / len(entropies) if entropies else 0.0,
            "entropy_ema_nats": ema_h,
            "max_prob_ema": ema_p,
            "round_complete": True,
            "rate_bps": self._rate_bps,
            "snr_db": self._snr_db,
            "uplink_bits": up_bits,
            "downlink_bits": down_bits,
            "latency_s": latency_s,
            "energy_j": energy_j,
            "draft_energy_j": draft_energy_j,
            "radio_energy_j": radio_energy_j,
            "idle_energy_j": idle_energy_j,
            "queue": self._queue,
            "queue_before": queue_before,
            "allowance_j": allowance_j,
            "budget_used_frac": used,
            "throughput_tps": throughput,
            "reward_throughput": throughput,
            "reward_penalty": penalty,
            "cost": energy_j,
        }

        # The next round's channel state, then the next round (or prompt).
        state = self._channel.step(self.np_random, latency_s)
        self._rate_bps = float(state.rate_bps)
        self._snr_db = float(state.snr_db)
        finished = result.finished or self._n_generated >= self._max_new_tokens
        terminated = False
        if finished and self._across_prompts:
            self._start_prompt()
        elif finished:
            terminated = True
            self._ready = False
            self._drafted = 0
            self._next_entropy = self._next_max_prob = 0.0
        else:
            self._open_round()

        self._last_accepted = result.n_accepted
        self._last_budget = result.budget
        return self._observation(used), reward, terminated, False, info

    def _in_round_step(self) -> tuple[ObsArray, float, bool, bool, dict[str, Any]]:
        info = dict(self._idle_info)
        info["prompt_index"] = self._prompt_index
        info["n_drafted"] = self._drafted
        info["n_generated"] = self._n_generated
        info["queue"] = info["queue_before"] = self._queue
        info["rate_bps"] = self._rate_bps
        info["snr_db"] = self._snr_db
        info["entropy_ema_nats"] = self._entropy_ema
        info["max_prob_ema"] = self._max_prob_ema
        info["budget_used_frac"] = used = used_frac(self._energy_sum_j, self._allowance_sum_j)
        return self._observation(used), 0.0, False, False, info

    _idle_info: Mapping[str, Any] = {
        "budget": 0,
        "n_accepted": 0,
        "n_tokens": 0,
        "entropies": (),
        "entropy_mean_nats": 0.0,
        "round_complete": False,
        "uplink_bits": 0,
        "downlink_bits": 0,
        "latency_s": 0.0,
        "energy_j": 0.0,
        "draft_energy_j": 0.0,
        "radio_energy_j": 0.0,
        "idle_energy_j": 0.0,
        "allowance_j": 0.0,
        "throughput_tps": 0.0,
        "reward_throughput": 0.0,
        "reward_penalty": 0.0,
        "cost": 0.0,
    }

    def _observation(self, used: float) -> ObsArray:
        """The observation: ``ObservationSpec.encode_raw`` of the physical state.

        ``used`` is the energy budget used so far (computed once per step by the caller).
        """
        raw = [
            self._queue,
            self._rate_bps,
            self._latency_s,
            self._entropy_ema,
            self._max_prob_ema,
            self._last_accepted,
            self._last_budget,
            used,
            self._n_generated / self._max_new_tokens,
        ]
        if self._per_token:
            raw += (self._drafted, self._next_entropy, self._next_max_prob)
        return self._encode(raw)
