"""A round's bookkeeping, written once for Python floats (GelatoEnv) and arrays (the vector env).

Everything the envs compute from a played round (docs/design.md §3, §5, §7):

* :class:`CostTable`: the round's latency T_k and device energy E_k on the modelled clock,
  ``round_cost`` tabulated per (gamma, rejected) plus the uplink term;
  :func:`measured_cost` for the live backend's measured clock;
* the allowance A_k and the virtual queue: ``EnergyBudget.settle`` (both envs call it and add
  E_k and A_k to their running sums); :func:`used_frac`, the energy budget used so far;
* :func:`round_reward`: the throughput / drift-plus-penalty reward and its terms;
* :func:`ema_step`: one token of the entropy / max-prob EMAs.

The functions are plain arithmetic on ``float`` or ``ndarray`` (the same float operations in the
same order for both), which is what keeps the vector env bit-identical to the single env.
Observation encoding lives with the layout, in :meth:`ObservationSpec.encode_raw
<gelato_env.observation.ObservationSpec.encode_raw>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from gelato_env.system import SystemParams, downlink_bits, round_cost, uplink_bits
from gelato_env.system.energy import Tokens

if TYPE_CHECKING:
    from gelato_env.sd.round import RoundResult

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
F = TypeVar("F", float, FloatArray)

REWARD_MODES: tuple[str, ...] = ("throughput", "dpp", "lagrangian")


class CostItems(NamedTuple):
    """A round's itemized cost (floats, or arrays of one shape).

    Attributes:
        latency_s: T_k, s.
        energy_j: E_k = draft + radio + idle, J.
        draft_energy_j: drafting energy, J.
        radio_energy_j: uplink transmit energy, J.
        idle_energy_j: idle energy while waiting for the edge, J.
        uplink_bits: uplink payload, bits.
        downlink_bits: downlink payload, bits.
    """

    latency_s: float
    energy_j: float
    draft_energy_j: float
    radio_energy_j: float
    idle_energy_j: float
    uplink_bits: int
    downlink_bits: int


def _with_uplink(
    latency_s: F, energy_j: F, up_bits: F, rate_bps: F, tx_power_w: float
) -> tuple[F, F, F]:
    """(T_k, E_k, radio energy) from the cost at zero uplink bits plus the uplink time S_up / R."""
    uplink_time_s = up_bits / rate_bps
    radio_energy_j = tx_power_w * uplink_time_s
    return latency_s + uplink_time_s, energy_j + radio_energy_j, radio_energy_j


class CostTable:
    """``round_cost`` on the modelled clock, tabulated over its discrete inputs (the hot path).

    ``round_cost`` is affine in the uplink time S_up / R_k (T_k gains S_up / R_k, E_k gains
    p_tx S_up / R_k; docs/design.md §3), and everything else depends on (gamma, rejected) only.
    So the table holds ``round_cost`` per (gamma, rejected) at zero uplink bits (flat index
    ``2 gamma + rejected``), and a round adds its uplink term. ``tests/env/test_dynamics.py``
    checks the result against ``round_cost`` itself.

    Attributes:
        latency_s, energy_j, draft_energy_j, idle_energy_j: shape ``(2 (G + 1),)``, the cost at
            zero uplink bits, by ``2 gamma + rejected``.
        downlink_bits: shape ``(2,)``, downlink payload by ``rejected``, bits.
    """

    def __init__(self, params: SystemParams) -> None:
        self.params = params
        g = params.gamma_max
        down = [downlink_bits(rejected, params.payload, g) for rejected in (False, True)]
        costs = [round_cost(n, 0, down[r], 1.0, params) for n in range(g + 1) for r in (0, 1)]
        self.latency_s = np.array([c.latency_s for c in costs])
        self.energy_j = np.array([c.energy_j for c in costs])
        self.draft_energy_j = np.array([c.draft_energy_j for c in costs])
        self.idle_energy_j = np.array([c.idle_energy_j for c in costs])
        self.downlink_bits = np.array(down, dtype=np.int64)
        # the array path gathers one packed row per round (latency, energy, draft, idle)
        self._packed = np.stack(
            [self.latency_s, self.energy_j, self.draft_energy_j, self.idle_energy_j], axis=1
        )
        self.tx_power_w = params.radio.tx_power_w
        # the scalar path reads Python tuples (a numpy scalar lookup costs more than the round)
        self._rows = [
            (c.latency_s, c.energy_j, c.draft_energy_j, c.idle_energy_j, down[i % 2])
            for i, c in enumerate(costs)
        ]
        self._uplink: dict[tuple[int, int], int] = {}

    def uplink_bits(self, n_drafted: int, topp_size_sum: int) -> int:
        """Uplink payload of a round drafting ``n_drafted`` tokens, bits (memoized)."""
        key = (n_drafted, topp_size_sum)
        bits = self._uplink.get(key)
        if bits is None:
            bits = self._uplink[key] = uplink_bits(n_drafted, topp_size_sum, self.params.payload)
        return bits

    def cost(
        self, n_drafted: int, rejected: bool, topp_size_sum: int, rate_bps: float
    ) -> tuple[float, float, float, float, float, int, int]:
        """One round's :class:`CostItems`, as a plain tuple (the single env's hot path).

        Args:
            n_drafted: gamma, tokens drafted.
            rejected: whether verification rejected a draft token.
            topp_size_sum: sum of the drafted tokens' top-p set sizes (the ``topp`` payload).
            rate_bps: the uplink rate, > 0.
        """
        up_bits = self._uplink.get((n_drafted, topp_size_sum))
        if up_bits is None:
            up_bits = self.uplink_bits(n_drafted, topp_size_sum)
        latency_s, energy_j, draft_energy_j, idle_energy_j, down_bits = self._rows[
            2 * n_drafted + rejected
        ]
        latency_s, energy_j, radio_energy_j = _with_uplink(
            latency_s, energy_j, up_bits, rate_bps, self.tx_power_w
        )
        return (
            latency_s,
            energy_j,
            draft_energy_j,
            radio_energy_j,
            idle_energy_j,
            up_bits,
            down_bits,
        )

    def costs(
        self, n_drafted: IntArray, rejected: npt.NDArray[np.bool_], up_bits: FloatArray,
        rate_bps: FloatArray,
    ) -> CostItems:  # fmt: skip
        """Rounds' costs, each item an array of the inputs' shape (``uplink_bits`` as int64).

        One gather of the packed (latency, energy, draft, idle) rows; the draft and idle items
        are its columns (views).
        """
        row = self._packed.take(2 * n_drafted + rejected, axis=0)  # (..., 4)
        latency_s, energy_j, radio_energy_j = _with_uplink(
            row[..., 0], row[..., 1], up_bits, rate_bps, self.tx_power_w
        )
        return CostItems(
            latency_s, energy_j, row[..., 2], radio_energy_j, row[..., 3],  # type: ignore[arg-type]
            up_bits.astype(np.int64), self.downlink_bits.take(rejected),  # type: ignore[arg-type]
        )  # fmt: skip


def measured_cost(
    params: SystemParams, result: RoundResult, topp_size_sum: int, rate_bps: float
) -> CostItems:
    """The round's cost on the measured clock: live wall-clock draft/verify times x profile powers.

    Drafting draws P_d for the measured drafting time; the device idles (P_idle) through the
    measured verification; link items stay modelled (the link is not simulated on this host).
    """
    up = uplink_bits(result.n_drafted, topp_size_sum, params.payload)
    down = downlink_bits(result.rejected, params.payload, params.gamma_max)
    modelled = round_cost(result.n_drafted, up, down, rate_bps, params)
    wait_time_s = modelled.link_latency_s + result.verify_time_s + modelled.downlink_time_s
    draft_energy_j = params.device.draft_power_w * result.draft_time_s
    idle_energy_j = params.device.idle_power_w * wait_time_s
    return CostItems(
        result.draft_time_s + modelled.uplink_time_s + wait_time_s,
        draft_energy_j + modelled.radio_energy_j + idle_energy_j,
        draft_energy_j,
        modelled.radio_energy_j,
        idle_energy_j,
        up,
        down,
    )


def used_frac(energy_sum_j: F, allowance_sum_j: F) -> F:
    """Energy spent / energy allowed; 0 before any allowance, inf if energy was spent anyway.

    >>> used_frac(1.5, 3.0), used_frac(0.0, 0.0), used_frac(np.array([1.0, 0.0]), np.zeros(2))
    (0.5, 0.0, array([inf,  0.]))
    """
    if isinstance(energy_sum_j, np.ndarray):
        # allowances are >= 0, so all nonzero is the common case: a plain quotient
        if allowance_sum_j.all():
            return energy_sum_j / allowance_sum_j
        empty = np.where(energy_sum_j == 0.0, 0.0, np.inf)
        return np.divide(energy_sum_j, allowance_sum_j, out=empty, where=allowance_sum_j > 0.0)
    if allowance_sum_j > 0.0:
        return energy_sum_j / allowance_sum_j
    return 0.0 if energy_sum_j == 0.0 else float("inf")


def round_reward(
    mode: str, v: float, n_tokens: Tokens, latency_s: F, queue_before: F, energy_j: F
) -> tuple[F, F, F]:
    """``(throughput, penalty, reward)`` of a round (the env card's Rewards).

    throughput N_k / T_k (tokens/s); ``dpp``: reward V N_k / T_k - Q E_k with penalty Q E_k
    (Q the queue the decision saw); ``throughput`` and ``lagrangian``: reward N_k / T_k, penalty 0.

    >>> round_reward("dpp", 2.0, 4, 0.5, 0.25, 0.4)
    (8.0, 0.1, 15.9)
    """
    throughput = n_tokens / latency_s
    if mode == "dpp":
        penalty = queue_before * energy_j
        return throughput, penalty, v * throughput - penalty  # type: ignore[return-value]
    return throughput, 0.0 * throughput, throughput  # type: ignore[return-value]


def ema_step(ema: F, increment: F, beta: float) -> F:
    """One drafted token of an EMA: beta ema + (1 - beta) x, ``increment`` being (1 - beta) x.

    The envs keep (1 - beta) x precomputed per token, so both run the same two float operations.
    """
    return beta * ema + increment
