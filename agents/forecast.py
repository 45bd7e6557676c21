"""Per-round forecasts an analytic controller plans with: N^(gamma), T^(gamma), E^(gamma).

GELATO (arXiv 2605.10124) plans each round on expected quantities over the drafting budget
gamma = 0..gamma_max (docs/design.md §5):

* accepted-length model: with per-token acceptance alpha^ (i.i.d. across the round [S]), the
  expected tokens a round yields are N^(gamma) = (1 - alpha^^(gamma+1)) / (1 - alpha^)
  (accepted draft prefix plus the correction/bonus token);
* latency T^(gamma) and device energy E^(gamma) come from the system model
  (:func:`gelato_env.system.round_cost`) at the observed channel rate, with the uplink payload
  of ``gamma`` draft tokens whose top-p sets have the expected size (a config option [S]) and
  the downlink payload averaged over the rejection probability 1 - alpha^^gamma (it matters
  only for DSSD, whose downlink carries a distribution on rejection);
* the energy allowance the budget mode grants for that round, A^(gamma) (constant per round
  in ``per_round`` mode; e-bar * N^ or P-bar * T^ in the other modes).

Everything is vectorized over gamma with numpy: one forecast is a handful of array operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gelato_env.system import EnergyBudget, SystemParams, downlink_bits, round_cost, uplink_bits

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def acceptance_from_entropy(entropy_nats: float, a: float, b: float, alpha_max: float) -> float:
    """alpha^(H) = a exp(b H) clipped to [0, alpha_max] (docs/design.md §2; fitted or paper a, b).

    >>> round(acceptance_from_entropy(2.0, 1.0, -0.35, 0.999), 4)
    0.4966
    """
    return min(max(a * math.exp(b * entropy_nats), 0.0), alpha_max)


def expected_tokens(alpha: float, gamma: npt.ArrayLike) -> FloatArray:
    """N^(gamma) = (1 - alpha^(gamma+1)) / (1 - alpha): expected tokens of a round.

    Acceptances are i.i.d. with probability ``alpha`` [S].

    Args:
        alpha: per-token acceptance probability in [0, 1].
        gamma: drafting budgets, any shape.

    Returns:
        Expected tokens per round, the shape of ``gamma`` (gamma + 1 at alpha = 1).

    >>> expected_tokens(0.5, [0, 1, 2]).tolist()
    [1.0, 1.5, 1.75]
    """
    g = np.asarray(gamma, dtype=np.float64)
    if alpha >= 1.0:
        return g + 1.0
    return (1.0 - alpha ** (g + 1.0)) / (1.0 - alpha)


@dataclass(frozen=True, slots=True)
class RoundForecast:
    """Expected outcome of a round for every budget; arrays have shape ``(gamma_max + 1,)``.

    Attributes:
        n_tokens: N^(gamma), expected tokens per round.
        latency_s: T^(gamma), s.
        energy_j: E^(gamma), device energy, J.
        allowance_j: A^(gamma), energy the budget grants the round, J.
    """

    n_tokens: FloatArray
    latency_s: FloatArray
    energy_j: FloatArray
    allowance_j: FloatArray

    def dpp_objective(self, v: float, queue_j: float) -> FloatArray:
        """V * N^/T^ - Q * (E^ - A^) per budget (the drift-plus-penalty score GELATO maximizes).

        With Q = 0 the penalty is 0 even under an unconstrained budget (A^ = inf).
        """
        score = v * self.n_tokens / self.latency_s
        if queue_j == 0.0:
            return score
        return score - queue_j * (self.energy_j - self.allowance_j)


class RoundCostModel:
    """Forecasts T^(gamma), E^(gamma) and A^(gamma) from a system model and an energy budget.

    Args:
        system: the system parameters (device/edge profiles, radio, link, payload, gamma_max).
        budget: the energy budget (mode and value), for the allowance term.
        topp_size_mean: expected top-p set size per draft token (``topp`` payload), entries;
            reconstructed [S]: measured as the mean over a trace, or a config value.
    """

    def __init__(self, system: SystemParams, budget: EnergyBudget, topp_size_mean: float) -> None:
        if not math.isfinite(topp_size_mean) or topp_size_mean < 1.0:
            raise ValueError(f"topp_size_mean must be a finite number >= 1, got {topp_size_mean}")
        self.system = system
        self.budget = budget
        self.topp_size_mean = float(topp_size_mean)
        self.gamma: IntArray = np.arange(system.gamma_max + 1, dtype=np.int64)
        g = self.gamma
        # expected (fractional) bit counts: the payload formulas are plain arithmetic
        expected_bits = uplink_bits(g, g * self.topp_size_mean, system.payload)  # type: ignore[type-var]
        self._uplink_bits = np.asarray(expected_bits, dtype=np.float64)
        self._downlink_ok = float(downlink_bits(False, system.payload, system.gamma_max))
        self._downlink_rej = float(downlink_bits(True, system.payload, system.gamma_max))

    def forecast(self, rate_bps: float, alpha: float) -> RoundForecast:
        """Expected round outcome for every gamma at rate ``rate_bps`` and acceptance ``alpha``.

        Args:
            rate_bps: uplink rate of the round, bit/s (> 0).
            alpha: per-token acceptance probability alpha^ in [0, 1].
        """
        if not rate_bps > 0.0:
            raise ValueError(f"rate_bps must be > 0, got {rate_bps}")
        g = self.gamma
        p_all_accepted = alpha ** g.astype(np.float64)  # shape (gamma_max + 1,)
        downlink = self._downlink_ok * p_all_accepted + self._downlink_rej * (1.0 - p_all_accepted)
        cost = round_cost(g, self._uplink_bits, downlink, rate_bps, self.system)  # type: ignore[arg-type]
        n_tokens = expected_tokens(alpha, g)
        latency = np.asarray(cost.latency_s, dtype=np.float64)
        allowance = np.broadcast_to(
            np.asarray(self.budget.allowance(n_tokens, latency), dtype=np.float64), latency.shape
        )
        return RoundForecast(
            n_tokens=n_tokens,
            latency_s=latency,
            energy_j=np.asarray(cost.energy_j, dtype=np.float64),
            allowance_j=np.array(allowance),
        )
