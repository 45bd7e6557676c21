"""Radio link budget: path gain, thermal noise and the Shannon rate (docs/design.md §3).

``R = B·log2(1 + p_tx·g / (N_0·B))``, with g = path gain × fading power gain. Functions take
Python floats (and return Python floats, via :mod:`math`) or numpy arrays (and return arrays,
via numpy ufuncs); the two paths agree to the last few ulp, not bit for bit (``math.log2`` and
``np.log2`` may round differently).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
FloatOrArray = TypeVar("FloatOrArray", float, FloatArray)

_LN2 = math.log(2.0)


def path_loss_db(distance_m: float) -> float:
    """Macro-cell path loss 128.1 + 37.6·log10(d/km) dB (3GPP TR 36.814) [D].

    >>> round(path_loss_db(300.0), 4)
    108.4398
    """
    return 128.1 + 37.6 * math.log10(distance_m / 1000.0)


def path_gain(distance_m: float) -> float:
    """Linear power gain of the path loss at ``distance_m`` metres (no fading).

    >>> f"{path_gain(300.0):.4e}"
    '1.4323e-11'
    """
    return 10.0 ** (-path_loss_db(distance_m) / 10.0)


def noise_power_w(bandwidth_hz: float, psd_dbm_hz: float, noise_figure_db: float) -> float:
    """Receiver noise power N_0·B·NF in watts.

    >>> f"{noise_power_w(1e6, -174.0, 9.0):.4e}"  # -105 dBm
    '3.1623e-14'
    """
    return 10.0 ** ((psd_dbm_hz + noise_figure_db - 30.0) / 10.0) * bandwidth_hz


def shannon_rate_bps(
    bandwidth_hz: float, tx_power_w: float, gain: FloatOrArray, noise_w: float
) -> FloatOrArray:
    """Shannon rate B·log2(1 + p_tx·g/noise) in bit/s.

    Args:
        bandwidth_hz: B in Hz.
        tx_power_w: p_tx in W.
        gain: total linear power gain g (path gain × fading), a float or an array of any shape.
        noise_w: noise power N_0·B in W.

    Returns:
        Rate in bit/s, a float or an array of ``gain``'s shape.

    At the default 300 m, 1 MHz, 0.2 W and -174 dBm/Hz + 9 dB (mean SNR 19.57 dB):

    >>> g, n = path_gain(300.0), noise_power_w(1e6, -174.0, 9.0)
    >>> round(shannon_rate_bps(1e6, 0.2, g, n))
    6517032
    """
    snr = tx_power_w * gain / noise_w
    if isinstance(snr, np.ndarray):
        return bandwidth_hz * np.log2(1.0 + snr)
    return bandwidth_hz * math.log2(1.0 + snr)


def snr_db(tx_power_w: float, gain: FloatOrArray, noise_w: float) -> FloatOrArray:
    """Received SNR 10·log10(p_tx·g/noise) in dB (-inf for a zero gain).

    >>> round(snr_db(0.2, path_gain(300.0), noise_power_w(1e6, -174.0, 9.0)), 3)
    19.571
    """
    snr = tx_power_w * gain / noise_w
    if isinstance(snr, np.ndarray):
        with np.errstate(divide="ignore"):
            return 10.0 * np.log10(snr)
    return 10.0 * math.log10(snr) if snr > 0 else -math.inf


def rate_and_snr_db(
    bandwidth_hz: float, tx_power_w: float, gain: FloatOrArray, noise_w: float
) -> tuple[FloatOrArray, FloatOrArray]:
    """(:func:`shannon_rate_bps`, :func:`snr_db`) of a gain, the SNR computed once.

    The envs' per-round channel state (a float in the single env, an array in the vector
    env); equal to the two functions bit for bit (the same float operations).

    >>> rate, snr = rate_and_snr_db(1e6, 0.2, path_gain(300.0), noise_power_w(1e6, -174.0, 9.0))
    >>> round(rate), round(snr, 3)
    (6517032, 19.571)
    """
    snr = tx_power_w * gain / noise_w
    if isinstance(snr, float):  # one gain (a numpy float64 is a float too)
        return (
            bandwidth_hz * math.log2(1.0 + snr),
            10.0 * math.log10(snr) if snr > 0 else -math.inf,
        )
    rate = bandwidth_hz * np.log2(1.0 + snr)
    # gains are >= 0: only a zero gain (rare) needs snr_db's guarded log of zero
    return rate, (10.0 * np.log10(snr) if snr.all() else snr_db(tx_power_w, gain, noise_w))


def snr_db_for_rate(rate_bps: FloatOrArray, bandwidth_hz: float) -> FloatOrArray:
    """SNR in dB at which the Shannon rate over ``bandwidth_hz`` equals ``rate_bps``.

    Inverts R = B·log2(1 + snr) without overflow for large R/B:
    10·log10(2^x − 1) = 10·(x·log10 2 + log10(1 − 2^−x)), x = R/B.

    >>> round(snr_db_for_rate(6517032.160924275, 1e6), 3)
    19.571
    """
    x = rate_bps / bandwidth_hz
    if isinstance(x, np.ndarray):
        with np.errstate(divide="ignore"):
            return 10.0 * (x * math.log10(2.0) + np.log10(-np.expm1(-x * _LN2)))
    if x <= 0:
        return -math.inf
    return 10.0 * (x * math.log10(2.0) + math.log10(-math.expm1(-x * _LN2)))


def gain_for_snr_db(snr_db_value: FloatOrArray, tx_power_w: float, noise_w: float) -> FloatOrArray:
    """Linear power gain g with 10·log10(p_tx·g/noise) = ``snr_db_value`` (inf on overflow).

    >>> f"{gain_for_snr_db(19.57054077918052, 0.2, 3.162277660168379e-14):.4e}"
    '1.4323e-11'
    """
    if isinstance(snr_db_value, np.ndarray):
        with np.errstate(over="ignore"):
            return np.power(10.0, snr_db_value / 10.0) * (noise_w / tx_power_w)
    try:
        return 10.0 ** (snr_db_value / 10.0) * (noise_w / tx_power_w)
    except OverflowError:
        return math.inf
