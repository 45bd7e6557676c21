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
    override :meth:`env_overrides`, :meth:`reset` and :meth:`bind`. Unbound, a policy uses the
    default observation layout (gamma_max 8) and the ``budget`` action mode.
    """

    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.spec = ObservationSpec()
        self.gamma_max = self.spec.gamma_max
        self.action_mode = "budget"
        self.env: Any = None

    def bind(self, env: Any) -> AnalyticPolicy:
        """Read the env's static configuration (``env.unwrapped``); returns ``self``."""
        base = env.unwrapped
        self.env = base
        self.spec = base.observation_spec
        self.gamma_max = int(self.spec.gamma_max)
        self.action_mode = str(base.config.action_mode)
        if self.action_mode == "per_token":
            raise ValueError(
                f"analytic agents play the 'budget' or 'budget_threshold' action modes, "
                f"got action_mode {self.action_mode!r}"
            )
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
        """SB3-compatible ``predict`` for one (unbatched) observation.

        Analytic agents are deterministic, so ``deterministic`` is ignored.
        """
        if episode_start is not None and bool(np.any(episode_start)):
            self.reset()
        decision = self.decide(self.spec.decode(observation))
        budget = min(max(int(decision.budget), 0), self.gamma_max)
        if self.action_mode == "budget_threshold":
            level = 0 if decision.threshold_level is None else int(decision.threshold_level)
            return np.array([budget, level], dtype=np.int64), state
        return np.array(budget, dtype=np.int64), state
