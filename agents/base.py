"""The policy interface every agent implements, analytic or learned.

:class:`Policy` is stable-baselines3's ``PolicyPredictor`` signature, so one evaluation loop
(:mod:`agents.evaluation`) scores GELATO, the baselines and trained SB3 models alike.

Two kinds of agents share it:

* **Learned agents** (SB3 models) see only the observation vector.
* **Analytic agents** (:class:`AnalyticPolicy`) may additionally be *bound* to an env's static
  configuration with :meth:`AnalyticPolicy.bind`: the system model (device and edge profiles,
  radio, payload protocol), the energy-budget mode and the observation scales, read from
  ``env.unwrapped``. Static configuration is what a deployed controller is built with; the
  per-round state (queue, channel rate, entropy EMA) still comes from the observation only.

After every step the harness hands the round's ``info`` to :meth:`AnalyticPolicy.update`, the
adapt step of propose / verify / adapt (GELATO's acceptance estimate learns from the entropies
of the tokens it verified; the observation carries only their EMA).

Each analytic agent also declares the env settings it needs (payload protocol, inner exit rule,
action mode) via :meth:`AnalyticPolicy.env_overrides`, so the harness builds the right env per
agent (e.g. DSSD needs the ``dssd`` payload, static SD needs no early exit).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from gelato_env.observation import ObservationFields, ObservationSpec

PolicyState = tuple[npt.NDArray[Any], ...] | None


@runtime_checkable
class Policy(Protocol):
    """Anything with SB3's ``predict``: maps an observation to an action (and a hidden state)."""

    def predict(
        self,
        observation: npt.NDArray[Any],
        state: PolicyState = None,
        episode_start: npt.NDArray[np.bool_] | None = None,
        deterministic: bool = True,
    ) -> tuple[npt.NDArray[Any], PolicyState]:
        """Action for ``observation``; ``state``/``episode_start`` as in SB3 recurrent policies."""
        ...


@dataclass(frozen=True, slots=True)
class EnvOverrides:
    """Env settings an agent needs; ``None`` keeps the experiment's setting.

    Attributes:
        protocol: payload protocol (``"topp"``, ``"full"``, ``"dssd"``).
        exit_rule: inner early-exit rule name (``gelato_env.sd.exit_rules.EXIT_RULES``).
        exit_rule_params: parameters of ``exit_rule``.
        action_mode: ``"budget"`` or ``"budget_threshold"``.
        lossless: False for agents whose output is not the target's (device-only decoding);
            the harness reports those separately and skips the lossless check.
    """

    protocol: str | None = None
    exit_rule: str | None = None
    exit_rule_params: Mapping[str, float] = field(default_factory=dict)
    action_mode: str | None = None
    lossless: bool = True

    def env_kwargs(self) -> dict[str, Any]:
        """The non-None settings as ``GelatoEnv`` keyword arguments (``EnvConfig`` field names)."""
        kwargs: dict[str, Any] = {}
        if self.protocol is not None:
            kwargs["payload"] = self.protocol
        if self.exit_rule is not None:
            kwargs["exit_rule"] = self.exit_rule
            kwargs["exit_params"] = dict(self.exit_rule_params)
        if self.action_mode is not None:
            kwargs["action_mode"] = self.action_mode
        return kwargs


@dataclass(frozen=True, slots=True)
class Decision:
    """One round's outer decision.

    Attributes:
        budget: reference drafting budget gamma~ in 0..gamma_max, tokens.
        threshold_level: index into the env's entropy-threshold levels (``budget_threshold``
            action mode only); None in ``budget`` mode.
    """

    budget: int
    threshold_level: int | None = None


class AnalyticPolicy:
    """Base class of the analytic agents: decode the observation, decide, encode the action.

    Subclasses implement :meth:`decide` (physical observation -> :class:`Decision`) and may
    override :meth:`env_overrides`, :meth:`reset` and :meth:`bind` (calling ``super().bind``,
    which every agent shares). Unbound, a policy uses the default observation layout
    (gamma_max 8) and the ``budget`` action mode.
    """

    name: ClassVar[str] = ""
    #: the env action modes the agent can play (``per_token`` asks for a decision per draft
    #: token, which the analytic agents' round-level :class:`Decision` does not make)
    action_modes: ClassVar[tuple[str, ...]] = ("budget", "budget_threshold")

    def __init__(self) -> None:
        self.spec = ObservationSpec()
        self.gamma_max = self.spec.gamma_max
        self.action_mode = "budget"
        self.env: Any = None

    def bind(self, env: Any) -> AnalyticPolicy:
        """Read the env's static configuration (``env.unwrapped``); returns ``self``.

        Raises:
            ValueError: the env's action mode is not one of :attr:`action_modes`.
        """
        base = env.unwrapped
        action_mode = str(base.config.action_mode)
        if action_mode not in self.action_modes:
            raise ValueError(
                f"agent {self.name or type(self).__name__!r} plays the action modes "
                f"{list(self.action_modes)}, got action_mode {action_mode!r}"
            )
        self.env = base
        self.spec = base.observation_spec
        self.gamma_max = int(self.spec.gamma_max)
        self.action_mode = action_mode
        return self

    def env_overrides(self) -> EnvOverrides:
        """Env settings this agent needs (none by default)."""
        return EnvOverrides()

    def reset(self) -> None:
        """Forget per-episode state (called at ``episode_start``)."""

    def update(self, info: Mapping[str, Any]) -> None:
        """Adapt to the outcome of the round just played (the env's ``info`` after ``step``).

        Propose, verify, adapt: like transformers' ``update_candidate_strategy`` after each
        verification. The evaluation harness calls it after every step; the default does
        nothing (agents that read only the observation need no feedback).
        """

    def decide(self, obs: ObservationFields) -> Decision:
        """The round's decision from the physical observation."""
        raise NotImplementedError

    def predict(
        self,
        observation: npt.NDArray[Any],
        state: PolicyState = None,
        episode_start: npt.NDArray[np.bool_] | None = None,
        deterministic: bool = True,
    ) -> tuple[npt.NDArray[Any], PolicyState]:
        """SB3-compatible ``predict`` for one observation or a batch of them.

        Like SB3's ``predict``: an observation of shape ``(obs_dim,)`` gives one action (shape
        ``()``, or ``(2,)`` in ``budget_threshold`` mode); a batch ``(n_env, obs_dim)`` from a
        ``VecEnv`` gives ``(n_env,)`` actions (``(n_env, 2)``), so SB3's ``evaluate_policy``
        scores analytic agents. In a batch of several envs, env i is played by its own copy of
        the policy (the bound env shared, per-episode state its own), reset where
        ``episode_start[i]``. Analytic agents are deterministic: ``deterministic`` is ignored.

        Raises:
            ValueError: an observation of another shape.
        """
        obs = np.asarray(observation)
        if obs.ndim <= 1:
            if episode_start is not None and bool(np.any(episode_start)):
                self.reset()
            return self._act(obs), state
        if obs.ndim != 2:
            raise ValueError(
                f"observation must have shape (obs_dim,) or (n_env, obs_dim), got {obs.shape}"
            )
        n_env = obs.shape[0]
        starts = np.zeros(n_env, dtype=bool)
        if episode_start is not None:
            starts = np.asarray(episode_start, dtype=bool).reshape(n_env)
        policies = [self] if n_env == 1 else self._per_env(n_env)
        actions = []
        for policy, row, start in zip(policies, obs, starts, strict=True):
            if start:
                policy.reset()
            actions.append(policy._act(row))
        return np.stack(actions), state  # (n_env,) or (n_env, 2)

    def evaluate_policy_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        """Per-step callback for SB3's ``evaluate_policy``: the adapt step it does not call.

        ``evaluate_policy(policy, venv, callback=policy.evaluate_policy_callback)`` hands each
        step's ``info`` of env ``i`` to :meth:`update` of the policy that played env ``i`` (as
        :func:`agents.evaluation.run_agent` does after every step).
        """
        n_env, i = int(locals_["n_envs"]), int(locals_["i"])
        policy = self if n_env == 1 else self._per_env(n_env)[i]
        policy.update(locals_["info"])

    def _act(self, observation: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        """The env action for one observation of shape ``(obs_dim,)``."""
        decision = self.decide(self.spec.decode(observation))
        budget = min(max(int(decision.budget), 0), self.gamma_max)
        if self.action_mode == "budget_threshold":
            level = 0 if decision.threshold_level is None else int(decision.threshold_level)
            return np.array([budget, level], dtype=np.int64)
        return np.array(budget, dtype=np.int64)

    def _per_env(self, n_env: int) -> list[AnalyticPolicy]:
        """``n_env`` copies of this policy (made once per batch size), sharing the bound env."""
        copies: list[AnalyticPolicy] = self.__dict__.get("_env_copies", [])
        if len(copies) != n_env:
            memo = {id(self.env): self.env, id(copies): []}  # deep copies, but one env
            copies = [copy.deepcopy(self, dict(memo)) for _ in range(n_env)]
            self.__dict__["_env_copies"] = copies
        return copies


def env_prompt_indices(env: Any) -> tuple[int, ...]:
    """The trace prompt indices ``env`` plays (a prompt subset's), or () when it plays them all.

    The one place in ``agents/`` that knows how a backend serves a subset
    (:class:`gelato_env.backends.PromptSubset`'s ``indices``); the trace itself is every
    backend's ``trace`` (``RoundBackend.trace``: None for live models).
    """
    return tuple(getattr(env.unwrapped.backend, "indices", ()))
