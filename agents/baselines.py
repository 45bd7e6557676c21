"""Baseline policies GELATO is compared against (DESIGN.md §5).

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from agents.base import AnalyticPolicy, Decision, EnvOverrides
from agents.gelato import GelatoPolicy
from gelato_env.observation import ObservationFields
from gelato_env.system import SystemParams

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
    """GELATO's inner loop alone: the entropy-bucket exit under a fixed budget (no queue)."""

    name: ClassVar[str] = "entropy_only"

    def __init__(
        self,
        gamma: int = 8,
        threshold_nats: float = 1.0,
        bucket_nats: float = 1.0,
        protocol: str = "topp",
    ) -> None:
        params = {"threshold_nats": threshold_nats, "bucket_nats": bucket_nats}
        super().__init__(gamma, protocol, "entropy_bucket", params)


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

    def __init__(self, v: float = 1.0, **params: Any) -> None:
        params.pop("exit_rule", None)
        params.pop("exit_params", None)
        super().__init__(v=v, exit_rule="none", **params)
