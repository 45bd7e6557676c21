"""The clairvoyant offline optimum: a throughput bound on fixed realizations (docs/design.md §5).

:func:`clairvoyant_bound` solves the offline problem on the same trace positions and
channel realizations under the same energy budget: a scheduler that knows every acceptance
and every round's rate in advance chooses each round's draft length gamma to maximize
sum N / sum T subject to sum_k (E_k - A_k) <= 0 (time-average energy within budget). Solved by

* Dinkelbach's method for the ratio: R* is the root of
  g(lambda) = max {sum N - lambda sum T : constraint};
* Lagrangian relaxation of the energy constraint, g(lambda) = min_{mu >= 0} max_schedule
  (sum N - lambda sum T - mu sum C), bisection on mu to meet the budget;
* an exact dynamic program over (round k, position t) for the inner maximization.

Over randomized schedules (time sharing between two schedules) this duality is exact, so the
returned ``upper_tps`` is R* of the randomized problem, certified by a multiplier pair: no
deterministic schedule that meets the budget -- hence no causal policy on the same
realization -- exceeds it. ``feasible_tps`` is the best budget-feasible deterministic
schedule found (a lower bound on the deterministic optimum).

Realizations need greedy verification (acceptances are then deterministic facts of the trace).
Rounds are played by the env's own rules (:class:`~gelato_env.traces.rounds.RoundTable`), so a
causal policy's realized draft lengths, replayed by :func:`evaluate_schedule`, reproduce its env
totals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gelato_env.sd.exit_rules import NoExit
from gelato_env.system import EnergyBudget, SystemParams, downlink_bits, round_cost, uplink_bits
from gelato_env.traces.rounds import RoundTable

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Episode:
    """One prompt's generation as a clairvoyant scheduler sees it (greedy verification).

    Attributes:
        match: shape ``(L, G)``, bool: draft token j from position t matches the target.
        topp_size: shape ``(L, G)``, top-p set sizes of the draft tokens.
        rate_bps: shape ``(>= L,)``, uplink rate of round k, bit/s (a round emits >= 1 token,
            so L rounds always suffice).
        max_new_tokens: the generation cap (drafts are capped at ``max_new_tokens - t - 1``).
    """

    match: npt.NDArray[np.bool_]
    topp_size: IntArray
    rate_bps: FloatArray
    max_new_tokens: int

    def __post_init__(self) -> None:
        if self.match.ndim != 2 or self.match.shape[0] < 1:
            raise ValueError(f"match must have shape (L >= 1, G), got {self.match.shape}")
        if self.topp_size.shape != self.match.shape:
            raise ValueError(
                f"topp_size shape {self.topp_size.shape} != match shape {self.match.shape}"
            )
        if self.rate_bps.ndim != 1 or self.rate_bps.shape[0] < self.length:
            raise ValueError(
                f"rate_bps needs >= {self.length} rounds, got shape {self.rate_bps.shape}"
            )
        if np.any(self.rate_bps[: self.length] <= 0):
            raise ValueError("rate_bps must be > 0")
        if self.max_new_tokens < self.length:
            raise ValueError(
                f"max_new_tokens must be >= the episode length {self.length}, "
                f"got {self.max_new_tokens}"
            )

    @property
    def length(self) -> int:
        """L, tokens generated in the episode."""
        return int(self.match.shape[0])


def episodes_from_trace(
    trace: object,
    prompt_indices: Sequence[int],
    rates_bps: Sequence[npt.ArrayLike],
    max_new_tokens: int | None = None,
) -> list[Episode]:
    """Episodes of a recorded greedy trace (``gelato_env.traces.Trace``) with given channel rates.

    Args:
        trace: a loaded trace (``accept_prob`` holds greedy match bits).
        prompt_indices: the prompts, in episode order.
        rates_bps: per episode, the uplink rates of its rounds, bit/s.
        max_new_tokens: the env's cap (None: the trace's).

    Raises:
        ValueError: a sampled (non-greedy) trace, or mismatched lengths.
    """
    header = trace.header  # type: ignore[attr-defined]
    if not header.greedy:
        raise ValueError(
            f"the clairvoyant bound needs a greedy trace, got temperature {header.temperature}"
        )
    if len(prompt_indices) != len(rates_bps):
        raise ValueError(
            f"need one rate sequence per prompt, got {len(rates_bps)} for {len(prompt_indices)}"
        )
    cap = int(max_new_tokens or header.max_new_tokens)
    offsets = trace.prompt_offsets  # type: ignore[attr-defined]
    episodes = []
    for index, rates in zip(prompt_indices, rates_bps, strict=True):
        lo = int(offsets[index])
        n = min(int(offsets[index + 1]) - lo, cap)
        episodes.append(
            Episode(
                match=np.asarray(trace.accept_prob[lo : lo + n]) > 0.5,  # type: ignore[attr-defined]
                topp_size=np.asarray(trace.topp_size[lo : lo + n], dtype=np.int64),  # type: ignore[attr-defined]
                rate_bps=np.asarray(rates, dtype=np.float64),
                max_new_tokens=cap,
            )
        )
    return episodes


@dataclass(frozen=True)
class _Table:
    """Per (round k, position t, draft length gamma) outcomes of one episode.

    ``n_tokens`` and ``next_pos`` have shape ``(L, G + 1)``; ``latency_s`` and ``net_energy_j``
    (E - A) have shape ``(K, L, G + 1)`` with K = L rounds.
    """

    n_tokens: IntArray
    next_pos: IntArray
    latency_s: FloatArray
    energy_j: FloatArray
    net_energy_j: FloatArray


def _outcome_table(ep: Episode, system: SystemParams, budget: EnergyBudget) -> _Table:
    """Every (round k, position t, draft length gamma) of an episode, played by the replay rules.

    The rounds are :class:`~gelato_env.traces.rounds.RoundTable`'s (the env's), with no exit
    rule: the clairvoyant chooses gamma itself.
    """
    length, g_rec = ep.match.shape
    g_max = min(system.gamma_max, g_rec)
    rounds = RoundTable.build(
        accept_prob=ep.match, entropy=None, max_prob=None, prompt_offsets=[0, length],
        max_new_tokens=ep.max_new_tokens, gamma_max=g_max, rules=[NoExit()],
    )  # fmt: skip
    t = np.arange(length)[:, None]  # (L, 1)
    out = rounds.play(t, np.arange(g_max + 1)[None, :])  # each field (L, G+1)
    n_drafted = out.n_drafted
    topp_cum = np.concatenate(
        [np.zeros((length, 1), np.int64), np.cumsum(ep.topp_size[:, :g_max], axis=1)], axis=1
    )
    topp_sum = np.take_along_axis(topp_cum, n_drafted, axis=1)  # (L, G+1)
    ul = uplink_bits(n_drafted, topp_sum, system.payload)
    dl = downlink_bits(out.n_accepted < n_drafted, system.payload, system.gamma_max)
    rate = ep.rate_bps[:length, None, None]  # (K, 1, 1)
    cost = round_cost(n_drafted[None], ul[None], dl[None], rate, system)  # (K, L, G+1)
    latency = np.asarray(cost.latency_s, dtype=np.float64)
    energy = np.asarray(cost.energy_j, dtype=np.float64)
    net = energy - budget.allowance(out.n_tokens[None], latency)
    return _Table(
        n_tokens=out.n_tokens.astype(np.int64),
        next_pos=(t + out.n_tokens).astype(np.int64),
        latency_s=latency,
        energy_j=energy,
        net_energy_j=np.asarray(net, dtype=np.float64),
    )


@dataclass(frozen=True, slots=True)
class ScheduleTotals:
    """Totals of a schedule over all episodes.

    Attributes:
        n_tokens: sum N_k.
        latency_s: sum T_k, s.
        energy_j: sum E_k, J.
        net_energy_j: sum (E_k - A_k), J (<= 0 meets the budget).
        n_rounds: rounds used.
    """

    n_tokens: float
    latency_s: float
    energy_j: float
    net_energy_j: float
    n_rounds: int

    @property
    def throughput_tps(self) -> float:
        """Sum N / sum T, tokens/s."""
        return self.n_tokens / self.latency_s

    def __add__(self, other: ScheduleTotals) -> ScheduleTotals:
        return ScheduleTotals(
            self.n_tokens + other.n_tokens,
            self.latency_s + other.latency_s,
            self.energy_j + other.energy_j,
            self.net_energy_j + other.net_energy_j,
            self.n_rounds + other.n_rounds,
        )


_ZERO = ScheduleTotals(0.0, 0.0, 0.0, 0.0, 0)


def _solve_dp(table: _Table, lam: float, mu: float) -> tuple[float, ScheduleTotals]:
    """Max over schedules of sum (N - lam T - mu C) by backward induction; returns its totals."""
    n_rounds, length, _ = table.latency_s.shape
    reward = table.n_tokens - lam * table.latency_s - mu * table.net_energy_j  # (K, L, G+1)
    value = np.zeros(length + 1)  # value[length] = 0: the episode is over
    choice = np.zeros((n_rounds, length), dtype=np.int64)
    rows = np.arange(length)
    for k in range(n_rounds - 1, -1, -1):
        q = reward[k] + value[table.next_pos]
        best = q.argmax(axis=1)
        choice[k] = best
        value = np.append(q[rows, best], 0.0)
    return float(value[0]), _follow(table, choice)


def _follow(table: _Table, choice: IntArray) -> ScheduleTotals:
    """Totals of the schedule that plays ``choice[k, t]`` from (0, 0)."""
    gammas = []
    t, k = 0, 0
    length = table.n_tokens.shape[0]
    while t < length:
        gammas.append(int(choice[k, t]))
        t = int(table.next_pos[t, gammas[-1]])
        k += 1
    return _replay(table, gammas)


def _replay(table: _Table, gammas: Sequence[int]) -> ScheduleTotals:
    n = lat = en = net = 0.0
    t = 0
    length = table.n_tokens.shape[0]
    for k, g in enumerate(gammas):
        if t >= length:
            raise ValueError(f"schedule has {len(gammas)} rounds but the episode ended at {k}")
        n += float(table.n_tokens[t, g])
        lat += float(table.latency_s[k, t, g])
        en += float(table.energy_j[k, t, g])
        net += float(table.net_energy_j[k, t, g])
        t = int(table.next_pos[t, g])
    if t < length:
        raise ValueError(f"schedule of {len(gammas)} rounds ends at position {t} < {length}")
    return ScheduleTotals(n, lat, en, net, len(gammas))


def evaluate_schedule(
    episodes: Sequence[Episode],
    gammas: Sequence[Sequence[int]],
    system: SystemParams,
    budget: EnergyBudget,
) -> ScheduleTotals:
    """Totals of given per-round draft lengths (realized gamma) on the realizations.

    A causal policy's realized draft lengths, replayed here, reproduce its env totals (the
    clairvoyant's action set contains every such schedule).
    """
    total = _ZERO
    for ep, gs in zip(episodes, gammas, strict=True):
        total = total + _replay(_outcome_table(ep, system, budget), gs)
    return total


@dataclass(frozen=True, slots=True)
class ClairvoyantBound:
    """The clairvoyant optimum on fixed realizations.

    Attributes:
        upper_tps: certified upper bound on sum N / sum T of any budget-feasible schedule
            (= the randomized optimum R*, up to ``rel_tol``), tokens/s.
        mixed_tps: R* attained by time sharing two schedules (lower end of the bracket).
        feasible_tps: best budget-feasible deterministic schedule found, tokens/s.
        feasible: that schedule's totals.
        mu: the energy multiplier at the optimum (0 when the budget does not bind), 1/J.
        budget_binding: whether the energy constraint binds.
        n_iterations: Dinkelbach iterations.
    """

    upper_tps: float
    mixed_tps: float
    feasible_tps: float
    feasible: ScheduleTotals
    mu: float
    budget_binding: bool
    n_iterations: int


class _Problem:
    """Sum over episodes of the per-episode DP (they share lambda and mu)."""

    def __init__(self, tables: list[_Table]) -> None:
        self.tables = tables

    def solve(self, lam: float, mu: float) -> tuple[float, ScheduleTotals]:
        value, total = 0.0, _ZERO
        for table in self.tables:
            v, tot = _solve_dp(table, lam, mu)
            value += v
            total = total + tot
        return value, total

    def min_over_mu(
        self, lam: float, n_bisect: int
    ) -> tuple[float, ScheduleTotals, ScheduleTotals, float, float]:
        """Bisection on mu: (mu_lo, totals violating, totals feasible, mu_hi, dual value)."""
        value0, tot0 = self.solve(lam, 0.0)
        if tot0.net_energy_j <= 0.0:
            return 0.0, tot0, tot0, 0.0, value0
        mu_lo, mu_hi = 0.0, 1.0
        tot_lo = tot0
        value_hi, tot_hi = self.solve(lam, mu_hi)
        for _ in range(60):
            if tot_hi.net_energy_j <= 0.0:
                break
            mu_lo, tot_lo = mu_hi, tot_hi
            mu_hi *= 4.0
            value_hi, tot_hi = self.solve(lam, mu_hi)
        else:
            raise ValueError(
                "energy budget infeasible: even the least-energy schedule exceeds it "
                f"(net energy {tot_hi.net_energy_j:.4g} J over budget)"
            )
        for _ in range(n_bisect):
            mid = 0.5 * (mu_lo + mu_hi)
            value_mid, tot_mid = self.solve(lam, mid)
            if tot_mid.net_energy_j <= 0.0:
                mu_hi, tot_hi, value_hi = mid, tot_mid, value_mid
            else:
                mu_lo, tot_lo = mid, tot_mid
        return mu_lo, tot_lo, tot_hi, mu_hi, value_hi


def _mix(lo: ScheduleTotals, hi: ScheduleTotals) -> float:
    """Ratio of the time-sharing mixture of a violating and a feasible schedule meeting C = 0."""
    if lo.net_energy_j <= 0.0 or lo is hi:
        return hi.throughput_tps
    w = lo.net_energy_j / (lo.net_energy_j - hi.net_energy_j)  # weight of the feasible one
    n = w * hi.n_tokens + (1.0 - w) * lo.n_tokens
    t = w * hi.latency_s + (1.0 - w) * lo.latency_s
    return n / t


def clairvoyant_bound(
    episodes: Sequence[Episode],
    system: SystemParams,
    budget: EnergyBudget,
    *,
    rel_tol: float = 1e-7,
    max_iter: int = 50,
    n_bisect: int = 30,
) -> ClairvoyantBound:
    """Offline optimum of sum N / sum T under the energy budget on fixed realizations.

    Args:
        episodes: the realizations (same positions and channel draws the policies saw).
        system: the system model (its payload protocol sets the link cost).
        budget: the energy budget; the constraint is sum_k (E_k - A_k) <= 0.
        rel_tol: relative tolerance of the Dinkelbach iteration and of the certificate.
        max_iter: Dinkelbach iterations at most.
        n_bisect: bisection steps on the multiplier mu (its bracket [m, 4 m] shrinks to
            ~3e-9 m; the bound is certified whatever the steps, they only tighten it).

    Raises:
        ValueError: no episodes, or a budget no schedule can meet.
    """
    if not episodes:
        raise ValueError("episodes must not be empty")
    problem = _Problem([_outcome_table(ep, system, budget) for ep in episodes])
    lam = 0.0
    result = None
    for it in range(1, max_iter + 1):
        mu_lo, tot_lo, tot_hi, mu_hi, _ = problem.min_over_mu(lam, n_bisect)
        new_lam = _mix(tot_lo, tot_hi)  # Dinkelbach: the ratio of the current maximizer
        result = (mu_lo, mu_hi, tot_lo, tot_hi, new_lam, it)
        converged = abs(new_lam - lam) <= rel_tol * max(new_lam, 1e-300)
        lam = new_lam
        if converged:
            break
    assert result is not None
    mu_lo, mu_hi, tot_lo, tot_hi, mixed, n_iter = result
    upper = _certify(problem, mixed, (mu_lo, mu_hi, 0.5 * (mu_lo + mu_hi)), rel_tol)
    return ClairvoyantBound(
        upper_tps=upper,
        mixed_tps=mixed,
        feasible_tps=tot_hi.throughput_tps,
        feasible=tot_hi,
        mu=mu_hi,
        budget_binding=mu_hi > 0.0,
        n_iterations=n_iter,
    )


def _certify(problem: _Problem, lam: float, mus: Sequence[float], rel_tol: float) -> float:
    """Smallest tried lam' >= lam with max_s (N - lam' T - mu C) <= 0 for a tried mu.

    Such a pair certifies the bound: no feasible schedule (C <= 0) has N / T > lam'.
    """
    step = rel_tol
    for _ in range(30):
        candidate = lam * (1.0 + step)
        for mu in mus:
            value, _ = problem.solve(candidate, mu)
            if value <= 0.0:
                return candidate
        step *= 4.0
    return math.inf
