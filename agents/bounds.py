"""Throughput bounds agents are compared against (docs/design.md §5).

(a) **Drift-plus-penalty bound** (Neely, *Stochastic Network Optimization*, 2010, Thm 4.8, as
    applied by GELATO, arXiv 2605.10124 [S]): with i.i.d. state and Slater's condition the
    drift-plus-penalty policy with weight V achieves throughput >= R_opt - B_0 / V, so

        R_opt <= R_GELATO + B_0 / V,    B_0 = 1/2 max_k (E_k - A_k)^2,

    with the max over drafting budgets gamma = 0..gamma_max, channel rates in a configured
    range, top-p set sizes and verification outcomes (:func:`dpp_gap_bound`). V is in
    J^2 s/token, so B_0 / V is in tokens/s.

(b) the **clairvoyant offline optimum** on the same realizations: :mod:`agents.clairvoyant`
    (its names are re-exported here).

:func:`bounds_from_runs` computes both for a set of evaluated runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from agents.clairvoyant import (
    ClairvoyantBound,
    Episode,
    ScheduleTotals,
    clairvoyant_bound,
    episodes_from_trace,
    evaluate_schedule,
)
from gelato_env.system import EnergyBudget, SystemParams, downlink_bits, round_cost, uplink_bits

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# --------------------------------------------------------------------------------------------
# (a) drift-plus-penalty bound


@dataclass(frozen=True, slots=True)
class DppBound:
    """R_opt <= R_GELATO + B_0 / V.

    Attributes:
        b0_j2: B_0 = 1/2 max (E_k - A_k)^2, J^2.
        v: the DPP weight V, J^2 s/token.
        gap_tps: B_0 / V, tokens/s.
    """

    b0_j2: float
    v: float
    gap_tps: float

    def upper_tps(self, gelato_tps: float) -> float:
        """Upper bound on the optimal throughput from GELATO's measured throughput, tokens/s."""
        return gelato_tps + self.gap_tps


def dpp_gap_bound(
    system: SystemParams,
    budget: EnergyBudget,
    v: float,
    rate_range_bps: tuple[float, float],
    topp_size_max: int,
    n_rates: int = 64,
) -> DppBound:
    """B_0 and the gap B_0 / V over every round the configured system can produce.

    Args:
        system: the system model.
        budget: the energy budget (its allowance A_k enters E_k - A_k).
        v: DPP weight V (> 0).
        rate_range_bps: (lowest, highest) uplink rate considered, bit/s (e.g. the 1 % and 99 %
            quantiles of the channel process, :func:`rate_quantiles`); a config option.
        topp_size_max: largest top-p set size per draft token considered.
        n_rates: rates sampled geometrically in the range (endpoints included).

    Raises:
        ValueError: V <= 0, an empty or non-positive rate range, topp_size_max < 1.
    """
    if not v > 0:
        raise ValueError(f"v must be > 0, got {v}")
    lo, hi = rate_range_bps
    if not 0 < lo <= hi:
        raise ValueError(f"rate_range_bps must satisfy 0 < low <= high, got {rate_range_bps}")
    if topp_size_max < 1:
        raise ValueError(f"topp_size_max must be >= 1, got {topp_size_max}")
    g = np.arange(system.gamma_max + 1, dtype=np.int64)
    # grid axes: rate (R,), gamma (G,), topp size per token (2,), rejected (2,), accepted (A,)
    rate = np.geomspace(lo, hi, n_rates)[:, None, None, None]
    gamma = g[None, :, None, None]
    topp = np.array([1, topp_size_max], dtype=np.int64)[None, None, :, None]
    rejected = np.array([False, True])[None, None, None, :]
    ul = uplink_bits(gamma, gamma * topp, system.payload)
    dl = downlink_bits(
        np.broadcast_to(rejected, (*ul.shape[:3], 2)), system.payload, system.gamma_max
    )
    cost = round_cost(gamma, ul, dl, rate, system)
    worst = 0.0
    for n_tokens in range(1, system.gamma_max + 2):  # allowance may depend on N_k
        net = cost.energy_j - budget.allowance(n_tokens, cost.latency_s)
        feasible = n_tokens <= gamma + 1  # a round of gamma drafts yields at most gamma + 1
        worst = max(worst, float(np.max(np.where(feasible, net * net, 0.0))))
    b0 = 0.5 * worst
    return DppBound(b0_j2=b0, v=float(v), gap_tps=b0 / float(v))


def rate_quantiles(
    rates_bps: npt.ArrayLike, quantiles: tuple[float, float] = (0.01, 0.99)
) -> tuple[float, float]:
    """(low, high) quantiles of sampled channel rates, bit/s, for ``dpp_gap_bound``."""
    arr = np.asarray(rates_bps, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("rates_bps must not be empty")
    low, high = np.quantile(arr, quantiles).tolist()
    return max(float(low), 1e-9), float(high)


def bounds_from_runs(
    runs: Sequence[Any],
    *,
    v: float | None,
    system: SystemParams,
    budget: EnergyBudget,
    trace: Any,
    max_new_tokens: int,
    prompt_indices: Sequence[int] | None = None,
    clairvoyant: bool = True,
) -> dict[str, float]:
    """GELATO's bounds for a set of evaluated runs (``agents.evaluation.AgentRun``).

    - ``dpp_upper_tps`` = R_GELATO + B_0/V (needs a ``gelato`` run and its V): the
      drift-plus-penalty bound on the optimal throughput, with B_0 from the rates GELATO saw.
    - ``clairvoyant_upper_tps``: the offline optimum on the same trace positions and channel
      draws (needs a ``target_only`` run: its one-token rounds reveal each episode's rate per
      round, which every agent sees under i.i.d. block fading with the same seeds).

    Args:
        runs: the evaluated runs.
        v: GELATO's V, or None to skip the DPP bound.
        system: the env's system parameters.
        budget: the env's energy budget.
        trace: the replayed trace (greedy).
        max_new_tokens: the env's generation cap.
        prompt_indices: trace prompt index of each env prompt index (None: identity).
        clairvoyant: also compute the clairvoyant bound.
    """
    bounds: dict[str, float] = {}
    gelato = next((r for r in runs if r.agent == "gelato"), None)
    if gelato is not None and v is not None:
        dpp = dpp_gap_bound(
            system, budget, float(v), rate_quantiles(gelato.rounds["rate_bps"]),
            int(np.max(trace.topp_size)),
        )  # fmt: skip
        tps = gelato.metrics()["throughput_tps"]
        bounds.update(gelato_tps=tps, dpp_gap_tps=dpp.gap_tps, dpp_upper_tps=dpp.upper_tps(tps))
    target = next((r for r in runs if r.agent == "target_only"), None)
    if clairvoyant and target is not None and trace.header.greedy:
        index = list(range(trace.n_prompts)) if prompt_indices is None else list(prompt_indices)
        trace_prompts = [index[i] for i in target.prompts]
        lengths = [min(int(trace.lengths[p]), max_new_tokens) for p in trace_prompts]
        rates = np.split(target.rounds["rate_bps"], np.cumsum(lengths)[:-1])
        episodes = episodes_from_trace(trace, trace_prompts, rates, max_new_tokens)
        bounds["clairvoyant_upper_tps"] = clairvoyant_bound(episodes, system, budget).upper_tps
    return bounds


__all__ = [
    "ClairvoyantBound",
    "DppBound",
    "Episode",
    "ScheduleTotals",
    "bounds_from_runs",
    "clairvoyant_bound",
    "dpp_gap_bound",
    "episodes_from_trace",
    "evaluate_schedule",
    "rate_quantiles",
]
