"""Baseline policies GELATO is compared against (docs/design.md §5).

Each baseline is a policy plus the env settings it needs (payload protocol, inner exit rule),
exposed by ``env_overrides()`` so the harness builds the right env per agent:

============================  =====================  ==========  =================
agent                         budget gamma~          exit rule   payload
============================  =====================  ==========  =================
``static`` (static SD)        fixed                  none        ``full``/``topp``
``dssd`` (arXiv 2507.12000)   fixed                  none        ``dssd``
``hf_heuristic``              +2 if all accepted,    none        ``topp`` [D]
                              else -1 (transformers)
``confidence``                fixed (gamma_max)      max-prob    ``topp`` [D]
                                                     < 0.4
``adaedl``                    fixed (gamma_max)      AdaEDL      ``topp`` [D]
``entropy_only``              fixed                  entropy     ``topp``
                                                     bucket
``target_only``               0 (target over link)   --          ``topp``
``device_only``               not an SD round: the draft decodes alone (not lossless)
============================  =====================  ==========  =================

The Lyapunov-only ablation (GELATO without early exit) is :class:`LyapunovOnly`. The early-exit
baselines use the compact ``topp`` payload by default so that they differ from GELATO only in
the drafting schedule (a config option).

Budget-aware baselines (:class:`BudgetStatic`). The static baselines above ignore the energy
budget, so comparing GELATO's energy against them flatters it. ``static_budget`` is the best
fixed budget gamma and payload that meets the energy budget, chosen on the *training* prompts
(the prompts GELATO calibrates on, never the held-out ones an evaluation plays) by playing every
candidate in the env's own system, channel and budget; ``dssd_budget`` restricts the payload to
DSSD's (the paper's named reference, made budget-aware); ``entropy_budget`` drafts with GELATO's
calibrated entropy exit under the best budget-meeting fixed gamma (GELATO without the queue).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from agents.base import AnalyticPolicy, Decision, EnvOverrides
from agents.calibration import (
    EVAL_FRACTION,
    calibrated_exit_params,
    calibration_trace,
    training_prompts,
    training_statistics,
)
from agents.gelato import GelatoPolicy
from gelato_env.observation import ObservationFields
from gelato_env.system import EnergyBudget, SystemParams

PROTOCOLS = ("topp", "full", "dssd")


def _check_gamma(gamma: object) -> int:
    if not isinstance(gamma, int) or isinstance(gamma, bool):
        raise TypeError(f"gamma must be an int, got {type(gamma).__name__}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    return gamma


def _check_protocol(protocol: object) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    return str(protocol)


class FixedBudget(AnalyticPolicy):
    """Draft a fixed budget every round, under a given exit rule and payload protocol.

    Args:
        gamma: the budget gamma~ (clipped to the env's gamma_max), tokens.
        protocol: payload protocol.
        exit_rule: inner exit rule name (``none``: draft the full budget).
        exit_params: its parameters.
    """

    name: ClassVar[str] = "fixed"

    def __init__(
        self,
        gamma: int = 4,
        protocol: str = "topp",
        exit_rule: str = "none",
        exit_params: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.gamma = _check_gamma(gamma)
        self.protocol = _check_protocol(protocol)
        self.exit_rule = exit_rule
        self.exit_params = dict(exit_params or {})

    def env_overrides(self) -> EnvOverrides:
        """The payload protocol and exit rule this baseline is defined with."""
        return EnvOverrides(
            protocol=self.protocol, exit_rule=self.exit_rule, exit_rule_params=self.exit_params
        )

    def decide(self, obs: ObservationFields) -> Decision:
        """Always the fixed budget."""
        return Decision(budget=min(self.gamma, self.gamma_max))


class StaticSD(FixedBudget):
    """Static distributed SD: fixed gamma, no early exit, ``full`` or ``topp`` payload."""

    name: ClassVar[str] = "static"

    def __init__(self, gamma: int = 4, protocol: str = "full") -> None:
        super().__init__(gamma, protocol, "none")


class DSSD(FixedBudget):
    """DSSD (arXiv 2507.12000): fixed gamma, scalar q(d_i) uplink, p_j downlink on rejection."""

    name: ClassVar[str] = "dssd"

    def __init__(self, gamma: int = 4) -> None:
        super().__init__(gamma, "dssd", "none")


class TargetOnly(FixedBudget):
    """Autoregressive target decoding over the link: gamma = 0 every round."""

    name: ClassVar[str] = "target_only"

    def __init__(self, protocol: str = "topp") -> None:
        super().__init__(0, protocol, "none")


class ConfidenceStop(FixedBudget):
    """Draft up to ``gamma``, stop after a token with draft max-prob < ``min_prob`` (0.4)."""

    name: ClassVar[str] = "confidence"

    def __init__(self, gamma: int = 8, min_prob: float = 0.4, protocol: str = "topp") -> None:
        super().__init__(gamma, protocol, "confidence", {"min_prob": min_prob})


class AdaEDLStop(FixedBudget):
    """AdaEDL-style entropy stop (arXiv 2410.18351) under a fixed budget ``gamma``."""

    name: ClassVar[str] = "adaedl"

    def __init__(
        self, gamma: int = 8, scale: float = 0.3, threshold: float = 0.4, protocol: str = "topp"
    ) -> None:
        super().__init__(gamma, protocol, "adaedl", {"scale": scale, "threshold": threshold})


class EntropyOnly(FixedBudget):
    """GELATO's inner loop alone: the entropy-bucket exit under a fixed budget (no queue).

    With ``threshold_nats`` and ``bucket_nats`` None [D] the thresholds are GELATO's, calibrated
    on the trace's training prompts at :meth:`bind` (``agents.gelato.calibrated_exit_params``);
    numbers fix them.
    """

    name: ClassVar[str] = "entropy_only"

    def __init__(
        self,
        gamma: int = 8,
        threshold_nats: float | None = None,
        bucket_nats: float | None = None,
        protocol: str = "topp",
    ) -> None:
        self.calibrate = threshold_nats is None and bucket_nats is None
        params = {
            "threshold_nats": 1.0 if threshold_nats is None else threshold_nats,
            "bucket_nats": 1.0 if bucket_nats is None else bucket_nats,
        }
        super().__init__(gamma, protocol, "entropy_bucket", {} if self.calibrate else params)
        self._defaults = params

    def bind(self, env: Any) -> EntropyOnly:
        """Calibrate the thresholds on the training prompts (when not fixed)."""
        super().bind(env)
        if not self.calibrate:
            return self
        base = self.env
        trace = calibration_trace(base, None)
        if trace is None:
            warnings.warn(
                f"entropy_only found no trace to calibrate on: it exits with {self._defaults}",
                stacklevel=2,
            )
            self.exit_params = dict(self._defaults)
            return self
        train = training_prompts(trace)
        config = base.config
        budget = EnergyBudget(config.budget_mode, config.budget_value)
        topp = max(training_statistics(trace, train).topp_size_mean, 1.0)
        self.exit_params, _ = calibrated_exit_params(trace, train, base.params, budget, topp)
        return self


class HFHeuristic(AnalyticPolicy):
    """transformers' heuristic schedule: gamma += 2 if all drafts were accepted, else -= 1.

    The budget starts at ``gamma_init`` each episode and stays in [1, gamma_max]; it reads the
    last round's accepted length and budget from the observation.
    """

    name: ClassVar[str] = "hf_heuristic"

    def __init__(self, gamma_init: int = 4, protocol: str = "topp") -> None:
        super().__init__()
        self.gamma_init = _check_gamma(gamma_init)
        self.protocol = _check_protocol(protocol)
        self.gamma = gamma_init

    def env_overrides(self) -> EnvOverrides:
        """No early exit; the configured payload."""
        return EnvOverrides(protocol=self.protocol, exit_rule="none")

    def reset(self) -> None:
        """Back to ``gamma_init``."""
        self.gamma = self.gamma_init

    def decide(self, obs: ObservationFields) -> Decision:
        """Adapt from the last round (the first round of a prompt uses ``gamma_init``)."""
        if obs.progress <= 0.0 or obs.last_budget < 0.5:
            self.gamma = self.gamma_init
        elif round(obs.last_accepted) >= round(obs.last_budget):
            self.gamma = self.gamma + 2
        else:
            self.gamma = self.gamma - 1
        self.gamma = min(max(self.gamma, 1), self.gamma_max)
        return Decision(budget=self.gamma)


class DeviceOnly(AnalyticPolicy):
    """Device-only draft decoding: the draft generates every token, nothing is sent.

    Not lossless (the output is the draft's, not the target's) and not an SD round, so the harness
    reports it separately from its closed form (:meth:`closed_form`) instead of running the env.
    """

    name: ClassVar[str] = "device_only"

    def env_overrides(self) -> EnvOverrides:
        """Flags the agent as not lossless."""
        return EnvOverrides(lossless=False)

    def decide(self, obs: ObservationFields) -> Decision:
        """Not applicable: device-only decoding has no SD rounds."""
        raise RuntimeError("device_only is evaluated in closed form (DeviceOnly.closed_form)")

    @staticmethod
    def closed_form(system: SystemParams) -> DeviceOnlyMetrics:
        """Throughput and energy per token of drafting alone on the device profile."""
        tau = system.device.draft_time_per_token_s
        energy = system.device.draft_energy_per_token_j
        return DeviceOnlyMetrics(throughput_tps=1.0 / tau, energy_per_token_j=energy)


@dataclass(frozen=True, slots=True)
class DeviceOnlyMetrics:
    """Closed-form device-only decoding metrics.

    Attributes:
        throughput_tps: 1 / tau_d, tokens/s.
        energy_per_token_j: device energy per token, J.
    """

    throughput_tps: float
    energy_per_token_j: float


class LyapunovOnly(GelatoPolicy):
    """GELATO without early exit: the drafting budget alone adapts to Q, rate and entropy."""

    name: ClassVar[str] = "lyapunov_only"

    def __init__(self, v: float | None = None, **params: Any) -> None:
        params.pop("exit_rule", None)
        params.pop("exit_params", None)
        super().__init__(v=v, exit_rule="none", **params)


@dataclass(frozen=True, slots=True)
class StaticCandidate:
    """One fixed (gamma, payload) played on the training prompts.

    Attributes:
        gamma: the fixed budget, tokens.
        protocol: the payload protocol.
        throughput_tps: tokens / s over the training episodes.
        budget_ratio: the budget mode's average energy / the budget.
        energy_per_token_j: J / token.
    """

    gamma: int
    protocol: str
    throughput_tps: float
    budget_ratio: float
    energy_per_token_j: float


class BudgetStatic(FixedBudget):
    """The best fixed gamma and payload meeting the energy budget on training prompts.

    At :meth:`bind` every candidate (gamma = 0..gamma_max) x ``protocols`` plays
    ``n_train_episodes`` training prompts (seeds ``seed``, the queue kept across episodes, the
    env's system, channel and budget); the one with the highest throughput whose average energy
    is within ``1 - margin`` of the budget wins (none: the least energy, with a warning).

    Args:
        protocols: payloads to choose from.
        exit_rule: ``none`` [D] or ``entropy_bucket`` (GELATO's thresholds, calibrated on the
            same training prompts).
        n_train_episodes: training episodes per candidate; None plays every training prompt
            once (at most 40 [D]).
        margin: required slack below the budget, in [0, 1); 0 [D].
        eval_fraction: held-out share of the trace's prompts (never played here).
        seed: seed of the first training episode; 10,000 [D] (apart from evaluation seeds).
        calibration_trace: trace to choose on when the env has none (live backend).
    """

    name: ClassVar[str] = "static_budget"

    def __init__(
        self,
        protocols: Sequence[str] = ("topp", "full", "dssd"),
        exit_rule: str = "none",
        n_train_episodes: int | None = None,
        margin: float = 0.0,
        eval_fraction: float = EVAL_FRACTION,
        seed: int = 10_000,
        calibration_trace: str | None = None,
    ) -> None:
        protocols = tuple(_check_protocol(p) for p in protocols)
        if not protocols:
            raise ValueError("protocols must not be empty")
        if exit_rule not in ("none", "entropy_bucket"):
            raise ValueError(f"exit_rule must be 'none' or 'entropy_bucket', got {exit_rule!r}")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {margin}")
        if n_train_episodes is not None and n_train_episodes < 1:
            raise ValueError(f"n_train_episodes must be >= 1, got {n_train_episodes}")
        super().__init__(0, protocols[0], exit_rule)
        self.protocols = protocols
        self.n_train_episodes = n_train_episodes
        self.margin = float(margin)
        self.eval_fraction = float(eval_fraction)
        self.seed = int(seed)
        self.calibration_trace = calibration_trace
        self.candidates: tuple[StaticCandidate, ...] = ()
        self.choice: StaticCandidate | None = None

    def bind(self, env: Any) -> BudgetStatic:
        """Choose (gamma, payload) on the training prompts (see the class docstring)."""
        super().bind(env)
        base = self.env
        trace = calibration_trace(base, self.calibration_trace)
        if trace is None:
            raise ValueError(
                f"{self.name} chooses on training prompts of a trace, but the env has none "
                "(live backend): pass calibration_trace= a trace of the same pair"
            )
        train = training_prompts(trace, self.eval_fraction)
        config = base.config
        if self.exit_rule == "entropy_bucket":
            budget = EnergyBudget(config.budget_mode, config.budget_value)
            topp = max(training_statistics(trace, train).topp_size_mean, 1.0)
            self.exit_params, _ = calibrated_exit_params(trace, train, base.params, budget, topp)
        n_episodes = self.n_train_episodes or min(len(train), 40)
        self.candidates = tuple(
            _play_static(base, trace, train, gamma, protocol, self, n_episodes)
            for protocol in self.protocols
            for gamma in range(0 if protocol == self.protocols[0] else 1, self.gamma_max + 1)
        )
        self.choice = self._choose()
        self.gamma, self.protocol = self.choice.gamma, self.choice.protocol
        return self

    def _choose(self) -> StaticCandidate:
        limit = 1.0 - self.margin
        feasible = [c for c in self.candidates if c.budget_ratio <= limit]
        if feasible:
            return max(feasible, key=lambda c: c.throughput_tps)
        cheapest = min(self.candidates, key=lambda c: c.budget_ratio)
        warnings.warn(
            f"{self.name}: no fixed gamma and payload meets the budget on the training prompts; "
            f"playing the least energy one (gamma {cheapest.gamma}, {cheapest.protocol}: "
            f"{cheapest.budget_ratio:.2f} x the budget)",
            stacklevel=3,
        )
        return cheapest


def _play_static(
    base: Any,
    trace: Any,
    train: tuple[int, ...],
    gamma: int,
    protocol: str,
    policy: BudgetStatic,
    n_episodes: int,
) -> StaticCandidate:
    """Play a fixed (gamma, payload) on ``n_episodes`` training prompts of ``trace``."""
    from gelato_env.backends import PromptSubset
    from gelato_env.env import GelatoEnv
    from gelato_env.traces.replay import ReplayBackend

    config = base.config
    backend = PromptSubset(
        ReplayBackend(trace, gamma_max=base.params.gamma_max,
                      max_new_tokens=config.max_new_tokens),
        train,
    )  # fmt: skip
    kwargs = {
        **config.to_kwargs(),
        "backend": backend,
        "payload": protocol,
        "exit_rule": policy.exit_rule,
        "exit_params": dict(policy.exit_params),
        "action_mode": "budget",
        "horizon": None,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the evaluation env already said what applies
        env = GelatoEnv(**kwargs)
    n_tokens = latency = energy = 0.0
    n_rounds = 0
    for episode in range(n_episodes):
        env.reset(seed=policy.seed + episode, options={"keep_queue": episode > 0})
        done = False
        while not done:
            _, _, done, _, info = env.step(gamma)
            n_tokens += info["n_tokens"]
            latency += info["latency_s"]
            energy += info["energy_j"]
            n_rounds += 1
    env.close()
    average = {
        "per_round": energy / n_rounds,
        "per_token": energy / n_tokens,
        "per_second": energy / latency,
    }[config.budget_mode]
    ratio = average / config.budget_value if math.isfinite(config.budget_value) else 0.0
    return StaticCandidate(gamma, protocol, n_tokens / latency, ratio, energy / n_tokens)


def budget_static_table(policy: BudgetStatic) -> list[dict[str, Any]]:
    """The candidates a bound :class:`BudgetStatic` played, one dict each (for reports)."""
    return [
        {
            "gamma": c.gamma,
            "protocol": c.protocol,
            "throughput_tps": c.throughput_tps,
            "budget_ratio": c.budget_ratio,
            "energy_per_token_j": c.energy_per_token_j,
            "chosen": c == policy.choice,
        }
        for c in policy.candidates
    ]
