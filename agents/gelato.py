"""GELATO: Lyapunov drafting budgets with generative-entropy early exit (arXiv 2605.10124).

The paper's controller has two loops (DESIGN.md §5); the exact equations were not available, so
this is a reconstruction and every reconstructed choice [S] is a constructor option.

Outer loop (once per SD round; Algorithm 1 reconstruction [S]). Observe the virtual energy queue
Q, the uplink rate R_k of the coming round and the entropy EMA H-bar; estimate the per-token
acceptance alpha^ = a * exp(b * H-bar) (paper a = 1.0, b = -0.35 for Qwen2.5-0.5B -> 7B [S], or
refit from the trace) and pick, by exhaustive 1-D search over gamma = 0..gamma_max,

    gamma~ = argmax_gamma  V * N^(gamma) / T^(gamma) - Q * (E^(gamma) - A^(gamma)),
    N^(gamma) = (1 - alpha^^(gamma+1)) / (1 - alpha^),

with T^, E^ from the system model at R_k (:mod:`agents.forecast`) and A^ the budget allowance
(constant per round in the paper's ``per_round`` reading, so it drops out there [S]).

Inner loop (per draft token, inside the env's ``step``): an early-exit rule. Default
``entropy_bucket`` [S]; in the ``budget_threshold`` action mode GELATO also picks the entropy
threshold level: the entropy at which a token's estimated acceptance falls to the break-even
acceptance alpha* below which GELATO would not draft at all this round [S]. The
:class:`MarginalUtility` rule (continue while one more token's expected drift-plus-penalty gain
is positive) is a further reconstruction [S].

The planned gamma~ and the realized gamma (``info["n_drafted"]``) differ whenever the exit rule
fires; :attr:`GelatoPolicy.last_plan` keeps the planned value and score for logging.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from agents.base import AnalyticPolicy, Decision, EnvOverrides
from agents.forecast import RoundCostModel, acceptance_from_entropy
from gelato_env.observation import ObservationFields
from gelato_env.system import EnergyBudget, SystemParams

FloatArray = npt.NDArray[np.float64]

PAPER_A, PAPER_B = 1.0, -0.35  # alpha^(H) = a exp(bH), Qwen2.5-0.5B -> 7B [S]
DEFAULT_TOPP_SIZE = 8.0  # expected top-p set entries per draft token when no trace is bound [D]


def _check_real(name: str, value: object, *, positive: bool = False) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Plan:
    """One outer-loop decision, for logging.

    Attributes:
        budget: planned gamma~.
        alpha: acceptance estimate alpha^ used.
        score: drift-plus-penalty score of each gamma, shape ``(gamma_max + 1,)``.
        threshold_nats: entropy threshold chosen (``budget_threshold`` mode), else None.
    """

    budget: int
    alpha: float
    score: FloatArray
    threshold_nats: float | None = None


class GelatoPolicy(AnalyticPolicy):
    """The GELATO controller as an SB3-style policy (bind it to the env before use).

    Args:
        v: drift-plus-penalty weight V (> 0), J^2 s/token: larger V favours throughput and lets
            the energy backlog Q grow (O(V)); the throughput gap to optimal shrinks as B_0/V.
        a: acceptance model scale, alpha^(H) = a exp(b H).
        b: acceptance model slope, 1/nats.
        fit_acceptance: refit (a, b) from the bound env's trace (``gelato_env.traces`` fit tools)
            instead of the paper values.
        topp_size_mean: expected top-p set size per draft token; None measures it on the bound
            env's trace (or uses 8 when the env has none).
        alpha_max: cap on alpha^ (keeps N^ finite and the search well posed).
        exit_rule: inner exit rule the env runs (``entropy_bucket`` [S]; ``none`` gives the
            Lyapunov-only ablation).
        exit_params: its parameters.
    """

    name: ClassVar[str] = "gelato"

    def __init__(
        self,
        v: float = 1.0,
        a: float = PAPER_A,
        b: float = PAPER_B,
        *,
        fit_acceptance: bool = False,
        topp_size_mean: float | None = None,
        alpha_max: float = 0.99,
        exit_rule: str = "entropy_bucket",
        exit_params: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.v = _check_real("v", v, positive=True)
        self.a = _check_real("a", a, positive=True)
        self.b = _check_real("b", b)
        self.alpha_max = _check_real("alpha_max", alpha_max)
        if not 0.0 < self.alpha_max < 1.0:
            raise ValueError(f"alpha_max must be in (0, 1), got {alpha_max}")
        if topp_size_mean is not None:
            _check_real("topp_size_mean", topp_size_mean, positive=True)
        self.fit_acceptance = bool(fit_acceptance)
        self.topp_size_mean = topp_size_mean
        self.exit_rule = exit_rule
        self.exit_params = dict(exit_params or {})
        self.cost_model: RoundCostModel | None = None
        self.threshold_levels_nats: tuple[float, ...] = ()
        self.last_plan: Plan | None = None

    def env_overrides(self) -> EnvOverrides:
        """GELATO drafts with the ``topp`` payload and its inner exit rule."""
        return EnvOverrides(
            protocol="topp", exit_rule=self.exit_rule, exit_rule_params=self.exit_params
        )

    def configure(self, system: SystemParams, budget: EnergyBudget, topp_size_mean: float) -> None:
        """Set the static system model directly (``bind`` calls this with the env's)."""
        self.gamma_max = system.gamma_max
        self.cost_model = RoundCostModel(system, budget, topp_size_mean)

    def bind(self, env: Any) -> GelatoPolicy:
        """Read the env's system model, budget, threshold levels and (optionally) its trace."""
        super().bind(env)
        base = self.env
        trace = getattr(getattr(base, "backend", None), "trace", None)
        topp = self.topp_size_mean
        if topp is None:
            topp = _trace_topp_mean(trace) if trace is not None else DEFAULT_TOPP_SIZE
        if self.fit_acceptance and trace is None:
            warnings.warn(
                f"fit_acceptance=True but the env has no replay trace (live backend): GELATO "
                f"keeps alpha^(H) = {self.a} * exp({self.b} * H); pass a, b fitted on a trace "
                "of the same pair (gelato_env.traces.fit) to match a replay run",
                stacklevel=2,
            )
        elif self.fit_acceptance and trace is not None:
            from gelato_env.traces.fit import fit_alpha_from_trace

            fit = fit_alpha_from_trace(trace)
            self.a, self.b = float(fit.a), float(fit.b)
        config = base.config
        self.threshold_levels_nats = tuple(config.threshold_levels_nats)
        budget = EnergyBudget(config.budget_mode, config.budget_value)
        self.configure(base.params, budget, float(topp))
        return self

    def plan(self, obs: ObservationFields) -> Plan:
        """The outer-loop decision: exhaustive search of the DPP score over gamma."""
        if self.cost_model is None:
            raise RuntimeError("GelatoPolicy needs the system model: call policy.bind(env) first")
        alpha = acceptance_from_entropy(obs.entropy_ema_nats, self.a, self.b, self.alpha_max)
        forecast = self.cost_model.forecast(max(obs.rate_bps, 1.0), alpha)
        score = forecast.dpp_objective(self.v, obs.queue_j)
        budget = int(np.argmax(score))
        threshold = None
        if self.action_mode == "budget_threshold":
            threshold = self._break_even_entropy(obs)
        return Plan(budget=budget, alpha=alpha, score=score, threshold_nats=threshold)

    def decide(self, obs: ObservationFields) -> Decision:
        """Plan, remember the plan, and map the threshold to the nearest env level."""
        plan = self.plan(obs)
        self.last_plan = plan
        level = None
        if plan.threshold_nats is not None and self.threshold_levels_nats:
            levels = np.asarray(self.threshold_levels_nats)
            level = int(np.argmin(np.abs(levels - plan.threshold_nats)))
        return Decision(budget=plan.budget, threshold_level=level)

    def _break_even_entropy(self, obs: ObservationFields, n_grid: int = 64) -> float:
        """Entropy H* with alpha^(H*) = alpha*, the lowest acceptance at which gamma~ >= 1 [S]."""
        assert self.cost_model is not None
        rate = max(obs.rate_bps, 1.0)
        alpha_star = self.alpha_max
        for alpha in np.linspace(0.0, self.alpha_max, n_grid).tolist():
            score = self.cost_model.forecast(rate, alpha).dpp_objective(self.v, obs.queue_j)
            if int(np.argmax(score)) >= 1:
                alpha_star = alpha
                break
        if alpha_star <= 0.0:
            return math.inf
        # invert alpha^ = a exp(bH): H* = ln(alpha*/a) / b (b < 0: larger H, lower acceptance)
        return max(0.0, math.log(alpha_star / self.a) / self.b) if self.b < 0 else math.inf

    def marginal_utility_rule(self, obs: ObservationFields) -> MarginalUtility:
        """The :class:`MarginalUtility` exit rule for the coming round (needs ``bind``)."""
        if self.cost_model is None:
            raise RuntimeError("GelatoPolicy needs the system model: call policy.bind(env) first")
        forecast = self.cost_model.forecast(max(obs.rate_bps, 1.0), 0.0)
        return MarginalUtility(
            v=self.v,
            queue_j=obs.queue_j,
            latency_s=tuple(forecast.latency_s.tolist()),
            energy_j=tuple((forecast.energy_j - forecast.allowance_j).tolist()),
            a=self.a,
            b=self.b,
            alpha_max=self.alpha_max,
        )


def _trace_topp_mean(trace: Any) -> float:
    """Mean recorded top-p set size per draft token of a trace (falls back to the default)."""
    sizes = getattr(trace, "topp_size", None)
    if sizes is None:
        return DEFAULT_TOPP_SIZE
    arr = np.asarray(sizes, dtype=np.float64)
    return float(arr.mean()) if arr.size else DEFAULT_TOPP_SIZE


@dataclass(frozen=True, slots=True)
class MarginalUtility:
    """Exit rule: continue while one more draft token's expected DPP gain is positive [S].

    After tokens 1..i (entropies H_j), the probability that all are accepted is
    s_i = prod_j alpha^(H_j) and the expected tokens of stopping now N_i = 1 + sum_{j<=i} s_j.
    Drafting token i+1, predicted to be accepted with alpha^(H_i) (entropy persistence [S]), gives
    N_{i+1} = N_i + s_i alpha^(H_i). Stop after token i when

        V (N_{i+1} / T(i+1) - N_i / T(i)) - Q (C(i+1) - C(i)) <= 0,

    with T(gamma) the round latency and C(gamma) = E(gamma) - A(gamma) the net energy of a
    gamma-token round at this round's rate (from :class:`agents.forecast.RoundCostModel`). The
    rule carries this round's context, so GELATO builds one per round
    (:meth:`GelatoPolicy.marginal_utility_rule`); it is stateless and causal like every rule.

    Attributes:
        v: DPP weight V.
        queue_j: energy queue Q at the round's start, J.
        latency_s: T(gamma) for gamma = 0..gamma_max, s.
        energy_j: C(gamma) for gamma = 0..gamma_max, J.
        a: acceptance model scale.
        b: acceptance model slope, 1/nats.
        alpha_max: cap on alpha^.
    """

    v: float
    queue_j: float
    latency_s: tuple[float, ...]
    energy_j: tuple[float, ...]
    a: float = PAPER_A
    b: float = PAPER_B
    alpha_max: float = 0.99
    name: ClassVar[str] = "marginal_utility"

    def __post_init__(self) -> None:
        _check_real("v", self.v, positive=True)
        _check_real("queue_j", self.queue_j)
        if len(self.latency_s) < 2 or len(self.latency_s) != len(self.energy_j):
            raise ValueError(
                "latency_s and energy_j must have the same length >= 2 (gamma = 0..gamma_max), "
                f"got {len(self.latency_s)} and {len(self.energy_j)}"
            )
        if min(self.latency_s) <= 0:
            raise ValueError(f"latency_s must be > 0, got min {min(self.latency_s)}")

    def stop_after(self, entropy: FloatArray, max_prob: FloatArray) -> int:
        """First i at which drafting token i+1 has non-positive expected gain, else 0."""
        gamma_max = len(self.latency_s) - 1
        survival, n_now = 1.0, 1.0
        for i, h in enumerate(entropy.tolist(), start=1):
            if i >= gamma_max:
                return 0
            alpha = min(max(self.a * math.exp(self.b * h), 0.0), self.alpha_max)
            survival *= alpha
            n_now += survival
            n_next = n_now + survival * alpha
            gain = self.v * (n_next / self.latency_s[i + 1] - n_now / self.latency_s[i])
            gain -= self.queue_j * (self.energy_j[i + 1] - self.energy_j[i])
            if gain <= 0.0:
                return i
        return 0
