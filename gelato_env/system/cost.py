"""Latency and device energy of one SD round (docs/design.md §3).

With gamma = ``n_drafted`` draft tokens, tau_d the device's time per draft token, S_up/S_dn the
payload bits, R_k the uplink rate this round and R_dl the downlink rate::

    T_k = gamma·tau_d + S_up/R_k + L_0 + T_v(gamma) + S_dn/R_dl + L_0_dl
    E_k = e_d·gamma + p_tx·S_up/R_k + P_idle·(L_0 + T_v(gamma) + S_dn/R_dl + L_0_dl)

where e_d = P_d·tau_d (or kappa·C·f² under DVFS) and T_v(gamma) = t0 + t1·gamma. E_k is the
device's energy only: edge verification costs latency, not device energy [S]; while the device
waits (propagation, verification, downlink reception) it draws P_idle.

:func:`round_cost` is plain arithmetic, so Python numbers in give Python floats out (the single
env's hot path) and numpy arrays in broadcast to arrays out (a batch of rounds), with results
that agree exactly, element by element.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

import numpy as np
import numpy.typing as npt

from gelato_env.system.params import SystemParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
F = TypeVar("F", float, FloatArray)


@dataclass(frozen=True, slots=True)
class RoundCost(Generic[F]):
    """Itemised latency and device energy of one round (or a batch of rounds, as arrays).

    ``latency_s`` is the sum of the five time items; ``energy_j`` the sum of the three energy
    items.

    Attributes:
        latency_s: T_k, seconds from the start of drafting to the device holding the verdict.
        energy_j: E_k, device energy in joules.
        draft_time_s: gamma·tau_d, on-device drafting.
        uplink_time_s: S_up/R_k, uplink transmission (the radio is on).
        verify_time_s: T_v(gamma) = t0 + t1·gamma, edge verification.
        downlink_time_s: S_dn/R_dl, downlink transmission.
        link_latency_s: L_0 + L_0_dl, one-way latencies of both directions.
        draft_energy_j: e_d·gamma, drafting energy.
        radio_energy_j: p_tx·S_up/R_k, transmit energy.
        idle_energy_j: P_idle × (latency − drafting − uplink), waiting energy.
    """

    latency_s: F
    energy_j: F
    draft_time_s: F
    uplink_time_s: F
    verify_time_s: F
    downlink_time_s: F
    link_latency_s: F
    draft_energy_j: F
    radio_energy_j: F
    idle_energy_j: F


@overload
def round_cost(  # type: ignore[overload-overlap]
    n_drafted: int, uplink_bits: int, downlink_bits: int, rate_bps: float, params: SystemParams
) -> RoundCost[float]: ...


@overload
def round_cost(
    n_drafted: int | IntArray,
    uplink_bits: int | IntArray,
    downlink_bits: int | IntArray,
    rate_bps: float | FloatArray,
    params: SystemParams,
) -> RoundCost[FloatArray]: ...


def round_cost(
    n_drafted: int | IntArray,
    uplink_bits: int | IntArray,
    downlink_bits: int | IntArray,
    rate_bps: float | FloatArray,
    params: SystemParams,
) -> RoundCost[Any]:
    """Latency and device energy of a round (equations in the module docstring).

    Args:
        n_drafted: gamma, draft tokens sent (>= 0); an int or an int array.
        uplink_bits: S_up, from :func:`~gelato_env.system.payload.uplink_bits`.
        downlink_bits: S_dn, from :func:`~gelato_env.system.payload.downlink_bits`.
        rate_bps: R_k, uplink rate this round in bit/s (> 0), e.g. ``ChannelState.rate_bps``.
        params: the system.

    Returns:
        The itemised cost; Python floats for scalar inputs, arrays broadcast from the inputs
        otherwise.

    Raises:
        ValueError: a rate that is not > 0 (zero transmit power or a dead channel cannot carry
            the uplink payload).

    On the default system, 4 draft tokens, 816 bits up at 6.5 Mbit/s, 86 bits down:

    >>> from gelato_env.system.params import DeviceProfile, EdgeProfile
    >>> cost = round_cost(4, 816, 86, 6.5e6, SystemParams(DeviceProfile("d"), EdgeProfile("e")))
    >>> round(cost.latency_s, 6), round(cost.energy_j, 6)  # 100 + 0.126 + 40 + 38 + 0.0043 ms
    (0.17813, 0.539027)
    """
    if isinstance(rate_bps, np.ndarray):
        if not np.all(rate_bps > 0):
            raise ValueError(f"rate_bps must be > 0, got min {rate_bps.min()}")
    elif not rate_bps > 0:
        raise ValueError(f"rate_bps must be > 0 (no payload crosses a dead link), got {rate_bps}")
    device, edge, link = params.device, params.edge, params.link
    draft_time_s = n_drafted * device.draft_time_per_token_s
    uplink_time_s = uplink_bits / rate_bps
    verify_time_s = edge.verify_base_s + edge.verify_per_token_s * n_drafted
    downlink_time_s = downlink_bits / params.radio.downlink_rate_bps
    link_latency_s: Any = link.uplink_latency_s + link.downlink_latency_s
    wait_time_s = link_latency_s + verify_time_s + downlink_time_s
    draft_energy_j = n_drafted * device.draft_energy_per_token_j
    radio_energy_j = params.radio.tx_power_w * uplink_time_s
    idle_energy_j = device.idle_power_w * wait_time_s
    latency_s = draft_time_s + uplink_time_s + wait_time_s
    if isinstance(latency_s, np.ndarray):
        # Batch: give every item the batch shape (some items depend on only some inputs).
        zeros = np.zeros(latency_s.shape)
        link_latency_s = link_latency_s + zeros
        draft_time_s, uplink_time_s = draft_time_s + zeros, uplink_time_s + zeros
        verify_time_s, downlink_time_s = verify_time_s + zeros, downlink_time_s + zeros
        draft_energy_j, radio_energy_j = draft_energy_j + zeros, radio_energy_j + zeros
        idle_energy_j = idle_energy_j + zeros
    cost: RoundCost[Any] = RoundCost(
        latency_s=latency_s,
        energy_j=draft_energy_j + radio_energy_j + idle_energy_j,
        draft_time_s=draft_time_s,
        uplink_time_s=uplink_time_s,
        verify_time_s=verify_time_s,
        downlink_time_s=downlink_time_s,
        link_latency_s=link_latency_s,
        draft_energy_j=draft_energy_j,
        radio_energy_j=radio_energy_j,
        idle_energy_j=idle_energy_j,
    )
    return cost
