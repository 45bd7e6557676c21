"""Throughput bounds. Episodes here are SYNTHETIC (random match bits and rates) unless they come
from the micro trace: they exercise the optimizer, not the models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

from agents.bounds import (
    Episode,
    clairvoyant_bound,
    dpp_gap_bound,
    evaluate_schedule,
    rate_quantiles,
)
from gelato_env.system import (
    EnergyBudget,
    PayloadParams,
    SystemParams,
    device_profile,
    edge_profile,
)


def _system(gamma_max: int = 2, protocol: str = "topp") -> SystemParams:
    return SystemParams(
        device_profile("legacy_jetson"),  # 25 ms x 5 W: the budgets below are sized for it
        edge_profile("legacy_a100"),
        payload=PayloadParams(protocol=protocol, vocab_size=64),
        gamma_max=gamma_max,
    )


def _synthetic_episode(rng: np.random.Generator, length: int, gamma_max: int) -> Episode:
    return Episode(
        match=rng.random((length, gamma_max)) < 0.6,
        topp_size=rng.integers(1, 5, size=(length, gamma_max)),
        rate_bps=rng.uniform(2e4, 2e5, size=length),
        max_new_tokens=length,
    )


def _all_schedules(ep: Episode, gamma_max: int):  # type: ignore[no-untyped-def]
    """Every sequence of draft lengths that completes the episode (brute force)."""
    out = []

    def rec(prefix: list[int], t: int) -> None:
        if t >= ep.length:
            out.append(list(prefix))
            return
        for g in range(gamma_max + 1):
            n_d = min(g, max(ep.max_new_tokens - t - 1, 0))
            lead = int(np.cumprod(ep.match[t, :n_d]).sum()) if n_d else 0
            rec([*prefix, g], t + min(lead + 1, ep.length - t))

    rec([], 0)
    return out


def _brute_force(episodes, system, budget):  # type: ignore[no-untyped-def]
    per_ep = [_all_schedules(ep, system.gamma_max) for ep in episodes]
    totals = [
        evaluate_schedule(episodes, list(combo), system, budget)
        for combo in itertools.product(*per_ep)
    ]
    feasible = [t.throughput_tps for t in totals if t.net_energy_j <= 1e-12]
    det = max(feasible) if feasible else None
    # randomized optimum: Charnes-Cooper LP over the mixture weights of all schedules
    n = np.array([t.n_tokens for t in totals])
    lat = np.array([t.latency_s for t in totals])
    net = np.array([t.net_energy_j for t in totals])
    lp = linprog(-n, A_ub=net[None], b_ub=[0.0], A_eq=lat[None], b_eq=[1.0], bounds=(0, None))
    return det, -lp.fun


@pytest.mark.parametrize(
    ("seed", "budget_j", "protocol"),
    [(0, 0.12, "topp"), (1, 0.2, "topp"), (2, 10.0, "topp"), (3, 0.15, "dssd"), (4, 0.1, "full")],
)
def test_clairvoyant_matches_brute_force(seed: int, budget_j: float, protocol: str) -> None:
    rng = np.random.default_rng(seed)
    system = _system(2, protocol)
    episodes = [_synthetic_episode(rng, 5, 2), _synthetic_episode(rng, 4, 2)]
    budget = EnergyBudget("per_round", budget_j)
    det, mixed = _brute_force(episodes, system, budget)
    bound = clairvoyant_bound(episodes, system, budget)
    assert bound.upper_tps == pytest.approx(mixed, rel=1e-5)
    assert det is not None
    assert bound.feasible_tps <= det + 1e-9 <= bound.upper_tps + 2e-9
    assert bound.feasible.net_energy_j <= 1e-12
    if not bound.budget_binding:
        assert bound.feasible_tps == pytest.approx(det, rel=1e-9)


def test_loose_budget_is_not_binding(rng: np.random.Generator) -> None:
    system = _system(2)
    episodes = [_synthetic_episode(rng, 5, 2)]
    bound = clairvoyant_bound(episodes, system, EnergyBudget("per_round", 100.0))
    assert not bound.budget_binding
    assert bound.mu == 0.0


def test_infeasible_budget_raises(rng: np.random.Generator) -> None:
    system = _system(2)
    episodes = [_synthetic_episode(rng, 4, 2)]
    with pytest.raises(ValueError, match="infeasible"):
        clairvoyant_bound(episodes, system, EnergyBudget("per_round", 1e-6))


@pytest.mark.parametrize("mode", ["per_token", "per_second"])
def test_other_budget_modes_match_brute_force(rng: np.random.Generator, mode: str) -> None:
    system = _system(2)
    episodes = [_synthetic_episode(rng, 5, 2)]
    value = {"per_token": 0.08, "per_second": 1.0}[mode]
    budget = EnergyBudget(mode, value)
    _, mixed = _brute_force(episodes, system, budget)
    assert clairvoyant_bound(episodes, system, budget).upper_tps == pytest.approx(mixed, rel=1e-5)


def test_dpp_gap_bound_shrinks_with_v() -> None:
    system = _system(8)
    budget = EnergyBudget("per_round", 0.3)
    small = dpp_gap_bound(system, budget, 1.0, (1e5, 1e7), 16)
    large = dpp_gap_bound(system, budget, 10.0, (1e5, 1e7), 16)
    assert large.gap_tps == pytest.approx(small.gap_tps / 10.0)
    # the worst round: 8 drafts of 16-entry top-p sets at the lowest rate, far above budget
    assert small.b0_j2 > 0.5 * (8 * 0.125 - 0.3) ** 2
    assert small.upper_tps(20.0) == pytest.approx(20.0 + small.gap_tps)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"v": 0.0}, "v must be > 0"),
        ({"rate_range_bps": (0.0, 1e6)}, "rate_range_bps"),
        ({"rate_range_bps": (2e6, 1e6)}, "rate_range_bps"),
        ({"topp_size_max": 0}, "topp_size_max"),
    ],
)
def test_dpp_gap_bound_rejects_bad_input(kwargs: dict, match: str) -> None:
    args = {"v": 1.0, "rate_range_bps": (1e5, 1e6), "topp_size_max": 4} | kwargs
    with pytest.raises(ValueError, match=match):
        dpp_gap_bound(_system(), EnergyBudget("per_round", 0.3), **args)


def test_rate_quantiles() -> None:
    lo, hi = rate_quantiles(np.arange(1, 101, dtype=float), (0.0, 1.0))
    assert (lo, hi) == (1.0, 100.0)
    with pytest.raises(ValueError, match="empty"):
        rate_quantiles([])
