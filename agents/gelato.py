"""GELATO: Lyapunov drafting budgets with generative-entropy early exit (arXiv 2605.10124).

The paper's controller has two loops (docs/design.md §5); the exact equations were not available, so
this is a reconstruction and every reconstructed choice is a constructor option, tagged [P]
paper abstract, [S] secondary reading of the paper, [A] other literature, [D] ours.

Outer loop (once per SD round; Algorithm 1 reconstruction [S]). Observe the virtual energy queue
Q and the uplink rate R_k of the coming round, take the acceptance estimate alpha^ and pick, by
exhaustive 1-D search over gamma = 0..gamma_max,

    gamma~ = argmax_gamma  V * N^(gamma) / T^(gamma) - Q * (E^(gamma) - A^(gamma)),
    N^(gamma) = (1 - alpha^^(gamma+1)) / (1 - alpha^),

with T^, E^ from the system model at R_k (:mod:`agents.forecast`) and A^ the budget allowance
(constant per round in the paper's ``per_round`` reading, so it drops out there [S]).

Acceptance estimate (``estimator``). ``running_mean`` [D]: alpha^ is a running mean of
alpha^(H_i) = a exp(b H_i) over the recently *verified* draft tokens (an exponentially weighted
mean with an effective window of ``alpha_window_tokens``, chosen on the training prompts as the
window that best predicts the next token's acceptance), fed after every round through
:meth:`GelatoPolicy.update` with the round's ``info`` (propose / verify / adapt, as transformers'
``update_candidate_strategy``). It replaces the reading ``entropy_ema`` [S] (alpha^ =
alpha^(H-bar), H-bar the observation's per-token entropy EMA), which measured 0.61 on a trace
whose per-token acceptance was 0.805, for three reasons the running mean removes:

1. alpha^(mean H) < mean alpha^(H) for a convex alpha^ (Jensen): the mean is taken of alpha^;
2. with early exit every round ends on the high-entropy token that stopped it, and a recency-
   weighted EMA of H is dominated by it: the window spans several rounds, and only tokens whose
   verification was decided on the target's own prefix feed it (``estimator_tokens="verified"``:
   the accepted tokens and the first rejected one, the early-exit token included when it was
   verified; the drafts after a rejection are conditioned on a rejected token and say nothing
   about the next round);
3. rounds with gamma~ = 0 update nothing, so a low estimate locked GELATO into gamma~ = 0 for
   the rest of a prompt (10 of 40 episodes with no energy budget). Here an idle round moves
   alpha^ toward the pair's mean acceptance (``alpha_prior``) with the weight of one token: with
   no new evidence the best predictor reverts to the mean, so drafting resumes within a few
   rounds unless the energy queue says otherwise. Peeking at the next draft token instead would
   be free information a deployed device does not have (it costs a draft forward pass the
   round's energy does not count).

Calibration (:meth:`GelatoPolicy.bind` with :mod:`agents.calibration`, on the *training* prompts
of the trace: the hash split of :func:`agents.prompt_split.split_prompts` with ``eval_fraction``,
the same as ``scripts/train.py`` holds out; evaluations play the held-out prompts).
``fit_acceptance``: (a, b) fitted on the step-1 entries and rescaled to the mean acceptance
(:func:`gelato_env.traces.fit.pair_statistics`);
``alpha_prior`` and ``topp_size_mean`` measured there. Exit thresholds: with ``exit_params=None``
the entropy-bucket (H_th, Theta_th) are chosen on the same prompts by
:func:`gelato_env.traces.fit.calibrate_entropy_bucket` under the env's system model
(``calibration_objective``). A live env has no trace: GELATO calibrates on ``calibration_trace``,
else on gelato's default trace when the env runs the default pair (the trace was recorded from
it), else it warns and names the fallback values it plans with.

Inner loop (per draft token, inside the env's ``step``): an early-exit rule. Default
``entropy_bucket`` [S]; in the ``budget_threshold`` action mode GELATO also picks the entropy
threshold level: the entropy at which a token's estimated acceptance falls to the break-even
acceptance alpha* below which GELATO would not draft at all this round [S]. The
:class:`MarginalUtility` rule (continue while one more token's expected drift-plus-penalty gain
is positive) is a further reconstruction [S].

The planned gamma~ and the realized gamma (``info["n_drafted"]``) differ whenever the exit rule
fires; :attr:`GelatoPolicy.last_plan` keeps the planned value, alpha^ and score for logging.

Over 500 lines because it is GELATO, one policy: the plan, the acceptance estimator and the
marginal-utility rule are its parts, each a reconstruction [S] documented where it is coded.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from agents.base import AnalyticPolicy, Decision, EnvOverrides, env_prompt_indices
from agents.calibration import (
    DEFAULT_ALPHA_PRIOR,
    DEFAULT_TOPP_SIZE,
    DEFAULT_WINDOW_TOKENS,
    EVAL_FRACTION,
    Calibration,
    calibrated_exit_params,
    calibration_trace,
    memoized,
    training_prompts,
    training_statistics,
)
from agents.forecast import RoundCostModel, acceptance_from_entropy
from gelato_env.observation import ObservationFields
from gelato_env.system import EnergyBudget, SystemParams

FloatArray = npt.NDArray[np.float64]

ESTIMATORS = ("running_mean", "entropy_ema")
ESTIMATOR_TOKENS = ("verified", "drafted")

PAPER_A, PAPER_B = 1.0, -0.35  # alpha^(H) = a exp(bH), Qwen2.5-0.5B -> 7B [S]
#: default V per budget mode [D]. The drift-plus-penalty transient leaves the time-average energy
#: above the budget by about Q_final / (K x budget), and Q settles at O(V / (dC / dgamma)) with
#: C = E - A the round's net energy. In ``per_token`` mode an extra draft token also earns
#: allowance (A = e-bar N), so dC / dgamma is ~4x smaller and Q ~4x larger than in ``per_round``
#: at the same V. With V = 1 the overshoot after K = 20,000 rounds was up to 5 % per token and
#: 1.2 % per second; a smaller V underspends budgets that barely bind (Q keeps hitting 0: 0.987 x
#: at V = 0.3 per round) and loosens the bound B_0 / V. These values met every binding budget
#: tried within 1 % on the default trace and a synthetic one (benchmarks/budget_satisfaction.py).
DEFAULT_V: dict[str, float] = {"per_round": 1.0, "per_token": 0.1, "per_second": 0.3}


def _check_real(name: str, value: object, *, positive: bool = False) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return float(value)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return str(value)


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


class AcceptanceEstimator:
    """Running mean of alpha^(H_i) over recent verified draft tokens, reverting when idle.

    value <- value + w (alpha^(H_i) - value) per token (w = 1 / ``window_tokens``: an
    exponentially weighted mean with that effective window), and value <- value + w (prior -
    value) per round without drafting; :meth:`reset` starts at the prior.

    Args:
        a: acceptance model scale, alpha^(H) = a exp(b H).
        b: acceptance model slope, 1/nats.
        alpha_max: cap on alpha^.
        prior: the pair's mean per-token acceptance (start value and idle target).
        window_tokens: effective window, tokens (>= 1).
    """

    def __init__(
        self, a: float, b: float, alpha_max: float, prior: float, window_tokens: float
    ) -> None:
        if not window_tokens >= 1.0:
            raise ValueError(f"window_tokens must be >= 1, got {window_tokens}")
        if not 0.0 <= prior <= 1.0:
            raise ValueError(f"prior must be in [0, 1], got {prior}")
        self.a, self.b, self.alpha_max = a, b, alpha_max
        self.prior = min(prior, alpha_max)
        self.weight = 1.0 / window_tokens
        self.value = self.prior

    def reset(self) -> None:
        """Start over at the prior (a new prompt)."""
        self.value = self.prior

    def observe(self, entropy_nats: Sequence[float]) -> None:
        """Feed the entropies of verified draft tokens, in drafting order."""
        w, a, b, cap = self.weight, self.a, self.b, self.alpha_max
        value = self.value
        for h in entropy_nats:
            alpha = a * math.exp(b * h)
            value += w * ((alpha if alpha < cap else cap) - value)
        self.value = value

    def idle(self) -> None:
        """A round without drafting: revert toward the prior with one token's weight."""
        self.value += self.weight * (self.prior - self.value)


class GelatoPolicy(AnalyticPolicy):
    """The GELATO controller as an SB3-style policy (bind it to the env before use).

    Args:
        v: drift-plus-penalty weight V (> 0), J^2 s/token: larger V favours throughput and lets
            the energy backlog Q grow (O(V)); the throughput gap to optimal shrinks as B_0/V.
            None [D]: the budget mode's default (:data:`DEFAULT_V`: 1.0 per round, 0.3 per
            second, 0.1 per token; they met every binding budget tried within 1 % over 20,000
            rounds).
        a: acceptance model scale, alpha^(H) = a exp(b H) (paper 1.0 [S]).
        b: acceptance model slope, 1/nats (paper -0.35 [S]).
        fit_acceptance: fit (a, b) on the training prompts of the calibration trace instead of
            the paper values [D].
        topp_size_mean: expected top-p set size per draft token; None measures it on the
            training prompts (8 without a trace [D]).
        alpha_max: cap on alpha^ (keeps N^ finite and the search well posed).
        estimator: ``running_mean`` [D] or ``entropy_ema`` (alpha^(H-bar) of the observation,
            the biased reading kept for comparison [S]); see the module docstring.
        estimator_tokens: tokens feeding the running mean: ``verified`` [D] (accepted plus the
            first rejected) or ``drafted`` (every drafted token).
        alpha_window_tokens: effective window of the running mean, tokens; None [D] picks it on
            the training prompts (the window that best predicts the next token's acceptance,
            ``gelato_env.traces.fit.calibrate_acceptance_window``; 4 without a trace [D]).
        alpha_prior: the pair's mean acceptance, the running mean's start and idle target;
            None measures it on the training prompts (0.7 without a trace [D]).
        exit_rule: inner exit rule the env runs (``entropy_bucket`` [S]; ``none`` gives the
            Lyapunov-only ablation).
        exit_params: its parameters; None calibrates the entropy bucket's (H_th, Theta_th) on
            the training prompts (other rules: their defaults).
        calibration_objective: objective of the exit calibration: ``throughput`` [D], ``edp``
            or ``efficiency`` (``gelato_env.traces.fit.calibrate_entropy_bucket``).
        eval_fraction: share of the trace's prompts held out (never used for calibration).
        calibration_trace: trace to calibrate on when the env has none (live backend); None
            uses gelato's default trace for the default pair.
    """

    name: ClassVar[str] = "gelato"

    def __init__(
        self,
        v: float | None = None,
        a: float = PAPER_A,
        b: float = PAPER_B,
        *,
        fit_acceptance: bool = True,
        topp_size_mean: float | None = None,
        alpha_max: float = 0.99,
        estimator: str = "running_mean",
        estimator_tokens: str = "verified",
        alpha_window_tokens: float | None = None,
        alpha_prior: float | None = None,
        exit_rule: str = "entropy_bucket",
        exit_params: Mapping[str, float] | None = None,
        calibration_objective: str = "throughput",
        eval_fraction: float = EVAL_FRACTION,
        calibration_trace: str | None = None,
    ) -> None:
        super().__init__()
        self.v_given = None if v is None else _check_real("v", v, positive=True)
        self.v = DEFAULT_V["per_round"] if v is None else float(v)
        self.a = _check_real("a", a, positive=True)
        self.b = _check_real("b", b)
        self.alpha_max = _check_real("alpha_max", alpha_max)
        if not 0.0 < self.alpha_max < 1.0:
            raise ValueError(f"alpha_max must be in (0, 1), got {alpha_max}")
        if topp_size_mean is not None:
            _check_real("topp_size_mean", topp_size_mean, positive=True)
        if alpha_prior is not None and not 0.0 < _check_real("alpha_prior", alpha_prior) <= 1.0:
            raise ValueError(f"alpha_prior must be in (0, 1], got {alpha_prior}")
        if (
            alpha_window_tokens is not None
            and _check_real("alpha_window_tokens", alpha_window_tokens) < 1.0
        ):
            raise ValueError(f"alpha_window_tokens must be >= 1, got {alpha_window_tokens}")
        if not 0.0 < _check_real("eval_fraction", eval_fraction) < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
        self.fit_acceptance = bool(fit_acceptance)
        self.topp_size_mean = topp_size_mean
        self.estimator = _check_choice("estimator", estimator, ESTIMATORS)
        self.estimator_tokens = _check_choice(
            "estimator_tokens", estimator_tokens, ESTIMATOR_TOKENS
        )
        self.alpha_window_tokens = alpha_window_tokens
        self.alpha_prior = alpha_prior
        self.exit_rule = exit_rule
        self.exit_params: dict[str, float] | None = (
            None if exit_params is None else dict(exit_params)
        )
        from gelato_env.traces.fit import CALIBRATION_OBJECTIVES

        self.calibration_objective = _check_choice(
            "calibration_objective", calibration_objective, CALIBRATION_OBJECTIVES
        )
        self.eval_fraction = float(eval_fraction)
        self.calibration_trace = calibration_trace
        self.cost_model: RoundCostModel | None = None
        self.calibration: Calibration | None = None
        self.acceptance = AcceptanceEstimator(
            self.a, self.b, self.alpha_max, alpha_prior or DEFAULT_ALPHA_PRIOR,
            alpha_window_tokens or DEFAULT_WINDOW_TOKENS,
        )  # fmt: skip
        self.threshold_levels_nats: tuple[float, ...] = ()
        self.last_plan: Plan | None = None
        self._awaiting_update = False
        self._warned_no_update = False

    def env_overrides(self) -> EnvOverrides:
        """GELATO drafts with the ``topp`` payload and its inner exit rule.

        Before :meth:`bind` calibrates them, the entropy bucket's thresholds are the rule's
        defaults; the harness rebuilds the env when they change (``agents.evaluation``).
        """
        return EnvOverrides(
            protocol="topp", exit_rule=self.exit_rule, exit_rule_params=self.exit_params or {}
        )

    def configure(self, system: SystemParams, budget: EnergyBudget, topp_size_mean: float) -> None:
        """Set the static system model directly (``bind`` calls this with the env's)."""
        self.gamma_max = system.gamma_max
        self.v = DEFAULT_V[budget.mode] if self.v_given is None else self.v_given
        self.cost_model = RoundCostModel(system, budget, topp_size_mean)

    def bind(self, env: Any) -> GelatoPolicy:
        """Read the env's system model, budget and threshold levels, and calibrate (see above)."""
        super().bind(env)
        base = self.env
        config = base.config
        self.threshold_levels_nats = tuple(config.threshold_levels_nats)
        budget = EnergyBudget(config.budget_mode, config.budget_value)
        calibration = self._calibrate(base, budget)
        self.calibration = calibration
        self.a, self.b = calibration.a, calibration.b
        self.acceptance = AcceptanceEstimator(
            self.a, self.b, self.alpha_max, calibration.alpha_prior, calibration.window_tokens
        )
        self.configure(base.params, budget, calibration.topp_size_mean)
        if self.exit_rule == "entropy_bucket" and self.exit_params is None:
            self.exit_params = dict(calibration.exit_params)
        wanted = dict(self.exit_params or {})
        if config.exit_rule == self.exit_rule and wanted and dict(config.exit_params) != wanted:
            warnings.warn(
                f"the env runs {config.exit_rule} with {dict(config.exit_params)} but GELATO "
                f"calibrated {wanted}: build the env with policy.env_overrides().env_kwargs() "
                "after bind (agents.evaluation.run_agent does)",
                stacklevel=2,
            )
        return self

    def _calibrate(self, base: Any, budget: EnergyBudget) -> Calibration:
        trace = calibration_trace(base, self.calibration_trace)
        if trace is None:
            return self._fallback_calibration(base)
        train = training_prompts(trace, self.eval_fraction)
        played = set(env_prompt_indices(base)) & set(train)
        if played:
            warnings.warn(
                f"the env plays {len(played)} of the {len(train)} prompts GELATO calibrates on "
                f"(eval_fraction {self.eval_fraction}): evaluate on the held-out prompts "
                "(agents.evaluation.heldout_prompts) or set eval_fraction to the split's",
                stacklevel=3,
            )
        stats = training_statistics(trace, train)
        a, b = (stats.fit.a, stats.fit.b) if self.fit_acceptance else (self.a, self.b)
        topp = self.topp_size_mean or max(stats.topp_size_mean, 1.0)
        prior = self.alpha_prior if self.alpha_prior is not None else stats.alpha_mean
        window = self.alpha_window_tokens or self._calibrate_window(trace, train, a, b, prior)
        exit_params: Mapping[str, float] = self.exit_params or {}
        score = None
        if self.exit_rule == "entropy_bucket" and self.exit_params is None:
            exit_params, score = self._calibrate_exit(trace, train, base.params, budget, topp)
        return Calibration(
            str(trace.path), len(train), a, b, prior, window, topp, exit_params, score
        )

    def _calibrate_window(
        self, trace: Any, train: tuple[int, ...], a: float, b: float, prior: float
    ) -> float:
        from gelato_env.traces.fit import AlphaFit, calibrate_acceptance_window

        fit = AlphaFit(a, b, math.nan, 0, 0, "given")
        key = ("window", str(trace.path), trace.header.checksum, train, a, b, prior,
               self.alpha_max)  # fmt: skip
        result = memoized(key, lambda: calibrate_acceptance_window(
            trace, train, fit, prior, alpha_max=self.alpha_max))  # fmt: skip
        return float(result.window_tokens)

    def _calibrate_exit(
        self, trace: Any, train: tuple[int, ...], system: SystemParams, budget: EnergyBudget,
        topp: float,
    ) -> tuple[dict[str, float], tuple[float, float]]:  # fmt: skip
        return calibrated_exit_params(
            trace, train, system, budget, topp, self.calibration_objective
        )

    def _fallback_calibration(self, base: Any) -> Calibration:
        topp = self.topp_size_mean or DEFAULT_TOPP_SIZE
        prior = self.alpha_prior if self.alpha_prior is not None else DEFAULT_ALPHA_PRIOR
        exit_params = dict(self.exit_params or {})
        warnings.warn(
            f"GELATO found no trace to calibrate on (backend {base.config.backend!r}; pass "
            f"calibration_trace= a trace of the same pair to plan as a replay run does): it "
            f"plans with a={self.a}, b={self.b}, alpha_prior={prior}, topp_size_mean={topp}, "
            f"alpha_window_tokens={self.alpha_window_tokens or DEFAULT_WINDOW_TOKENS} "
            f"and exit params {exit_params or 'the rule defaults'}",
            stacklevel=3,
        )
        window = self.alpha_window_tokens or DEFAULT_WINDOW_TOKENS
        return Calibration("fallback", 0, self.a, self.b, prior, window, topp, exit_params)

    def reset(self) -> None:
        """A new prompt: the running mean restarts at the prior."""
        self.acceptance.reset()
        self._awaiting_update = False

    def update(self, info: Mapping[str, Any]) -> None:
        """Feed the round's outcome (the env's ``info``) to the acceptance estimate."""
        self._awaiting_update = False
        if not info.get("round_complete", True):
            return
        n_drafted = int(info["n_drafted"])
        if n_drafted == 0:
            self.acceptance.idle()
            return
        entropies = info["entropies"]
        if self.estimator_tokens == "verified":
            n_accepted = int(info["n_accepted"])
            entropies = entropies[: min(n_accepted + 1, n_drafted)]
        self.acceptance.observe(entropies)

    def current_alpha(self, obs: ObservationFields) -> float:
        """The acceptance estimate alpha^ for the coming round."""
        if self.estimator == "entropy_ema":
            return acceptance_from_entropy(obs.entropy_ema_nats, self.a, self.b, self.alpha_max)
        if self._awaiting_update and not self._warned_no_update:
            self._warned_no_update = True
            warnings.warn(
                "GelatoPolicy.update(info) was not called after env.step: the running mean "
                f"stays at its prior {self.acceptance.value:.3f}; call policy.update(info) after "
                "every step (agents.evaluation.run_agent does)",
                stacklevel=3,
            )
        return self.acceptance.value

    def plan(self, obs: ObservationFields) -> Plan:
        """The outer-loop decision: exhaustive search of the DPP score over gamma."""
        if self.cost_model is None:
            raise RuntimeError("GelatoPolicy needs the system model: call policy.bind(env) first")
        alpha = self.current_alpha(obs)
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
        self._awaiting_update = True
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
