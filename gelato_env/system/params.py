"""Parameters of the physical system model (docs/design.md §3-§4): frozen, validated dataclasses.

Every default carries its provenance tag: [P] paper abstract, [S] secondary reading of the
paper, [A] other literature, [D] our default. Constructors validate type, then value, and
normalise numbers to Python ``float``/``int`` so that the cost formulas downstream stay in
plain Python arithmetic on the single-env hot path.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

PROTOCOLS: tuple[str, ...] = ("topp", "full", "dssd")


def _real(obj: object, name: str, value: object) -> float:
    """Check that ``value`` is a finite real number, store it on ``obj`` as a float, return it."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    as_float = float(value)
    if not math.isfinite(as_float):
        raise ValueError(f"{name} must be finite, got {value!r}")
    object.__setattr__(obj, name, as_float)
    return as_float


def _integer(obj: object, name: str, value: object) -> int:
    """Check that ``value`` is an integer (not a bool), store it on ``obj`` as an int, return it."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    object.__setattr__(obj, name, int(value))
    return int(value)


def _positive(obj: object, name: str, value: object) -> float:
    checked = _real(obj, name, value)
    if checked <= 0:
        raise ValueError(f"{name} must be > 0, got {checked}")
    return checked


def _non_negative(obj: object, name: str, value: object) -> float:
    checked = _real(obj, name, value)
    if checked < 0:
        raise ValueError(f"{name} must be >= 0, got {checked}")
    return checked


def _name(value: object, field_name: str = "name") -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{field_name} must be a non-empty string, got {value!r}")


@dataclass(frozen=True, slots=True)
class DvfsParams:
    """Dynamic voltage/frequency scaling model of on-device drafting (docs/design.md §3, off [D]).

    A draft token costs ``cycles_per_token`` CPU/NPU cycles C; at clock f it takes C/f seconds
    and ``kappa * C * f**2`` joules (the classic effective-switched-capacitance model).

    Attributes:
        cycles_per_token: C, cycles per draft token.
        freq_hz: f, clock frequency in Hz.
        kappa: effective switched capacitance, J/(cycle·Hz²); 1e-28 to 1e-26 in the
            mobile-edge-computing literature [A].
    """

    cycles_per_token: float
    freq_hz: float
    kappa: float

    def __post_init__(self) -> None:
        _positive(self, "cycles_per_token", self.cycles_per_token)
        _positive(self, "freq_hz", self.freq_hz)
        _positive(self, "kappa", self.kappa)

    @property
    def time_per_token_s(self) -> float:
        """Time per draft token tau_d = C/f, seconds."""
        return self.cycles_per_token / self.freq_hz

    @property
    def energy_per_token_j(self) -> float:
        """Energy per draft token kappa·C·f², joules."""
        return self.kappa * self.cycles_per_token * self.freq_hz**2


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """The battery-powered device that runs the draft model.

    Attributes:
        name: profile name (see :mod:`gelato_env.system.profiles`).
        draft_time_s: tau_d, seconds per draft token; 25 ms [D] (Jetson-class, 0.5B draft).
        draft_power_w: P_d, device power while drafting, W; 5 W [D] (125 mJ/token, inside the
            44-280 mJ/token of measured on-device peers [A]).
        idle_power_w: P_idle, device power while waiting for the link and the edge, W;
            0.5 W [D] (0 reproduces a compute+radio-only energy model).
        dvfs: optional DVFS model; when set it overrides ``draft_time_s`` and the draft energy
            (``draft_power_w`` is then unused). None (off) [D].
    """

    name: str
    draft_time_s: float = 0.025  # [D]
    draft_power_w: float = 5.0  # [D]
    idle_power_w: float = 0.5  # [D]
    dvfs: DvfsParams | None = None  # [D] off

    def __post_init__(self) -> None:
        _name(self.name)
        _positive(self, "draft_time_s", self.draft_time_s)
        _non_negative(self, "draft_power_w", self.draft_power_w)
        _non_negative(self, "idle_power_w", self.idle_power_w)
        if self.dvfs is not None and not isinstance(self.dvfs, DvfsParams):
            raise TypeError(f"dvfs must be a DvfsParams or None, got {self.dvfs!r}")

    @property
    def draft_time_per_token_s(self) -> float:
        """tau_d in seconds per draft token (C/f under DVFS, else ``draft_time_s``)."""
        return self.draft_time_s if self.dvfs is None else self.dvfs.time_per_token_s

    @property
    def draft_energy_per_token_j(self) -> float:
        """Device energy per draft token in joules (kappa·C·f² under DVFS, else P_d·tau_d).

        >>> DeviceProfile("jetson_orin").draft_energy_per_token_j
        0.125
        """
        if self.dvfs is None:
            return self.draft_power_w * self.draft_time_s
        return self.dvfs.energy_per_token_j


@dataclass(frozen=True, slots=True)
class EdgeProfile:
    """The edge server that runs the target model: T_v(gamma) = t0 + t1·gamma (docs/design.md §3).

    Verification time is latency only; it is not in the device energy [S].

    Attributes:
        name: profile name (see :mod:`gelato_env.system.profiles`).
        verify_base_s: t0, seconds for one target forward pass; 30 ms [D] (7B on an A100).
        verify_per_token_s: t1, extra seconds per verified draft token; 2 ms [D].
    """

    name: str
    verify_base_s: float = 0.030  # [D]
    verify_per_token_s: float = 0.002  # [D]

    def __post_init__(self) -> None:
        _name(self.name)
        _non_negative(self, "verify_base_s", self.verify_base_s)
        _non_negative(self, "verify_per_token_s", self.verify_per_token_s)


DOWNLINK_MODELS: tuple[str, ...] = ("fixed", "link_budget")


@dataclass(frozen=True, slots=True)
class RadioParams:
    """The device's uplink radio and the edge's downlink (docs/design.md §3).

    Field defaults are the first build's [D] values (the ``legacy_300m`` setting); the
    ``paper`` setting (:mod:`gelato_env.system.profiles`) reconstructs a resource-constrained
    cell-edge link and argues each number there.

    Attributes:
        bandwidth_hz: B, uplink bandwidth in Hz; 1 MHz, the paper's headline point [S].
        tx_power_w: p_tx, device transmit power in W; 0.2 W (23 dBm) [D]. Must be > 0: a zero
            transmit power makes the Shannon rate zero and any uplink payload never arrives.
        noise_psd_dbm_hz: N_0, thermal noise power spectral density in dBm/Hz; -174 [D].
        noise_figure_db: noise figure of the uplink receiver (the edge's base station) in dB;
            9 dB [D].
        distance_m: device-edge distance in m; 300 m [D]. Path loss
            128.1 + 37.6·log10(d/km) dB (3GPP TR 36.814 macro model) [D].
        downlink_rate_bps: R_dl, downlink rate in bit/s with ``downlink_model="fixed"``;
            20 Mbit/s [D]. With ``"link_budget"`` it is derived (any given value is replaced).
        downlink_model: ``"fixed"`` (``downlink_rate_bps`` as given) [D] or ``"link_budget"``:
            R_dl = B_dl·E[log2(1 + snr_dl·X)], X ~ Exp(1), the ergodic Shannon rate of a
            Rayleigh-faded downlink at the mean SNR snr_dl = P_dl·g/(N_0·NF_dl·B_dl), with the
            uplink's distance and path loss (the env draws no per-round downlink fade: a round's
            verdict is a few hundred bits, so only DSSD's distributions feel the downlink).
        downlink_bandwidth_hz: B_dl in Hz (``link_budget``); None uses the uplink's B (a paired
            allocation of the same width, so a bandwidth sweep moves both directions) [D].
        downlink_psd_dbm_hz: base-station transmit power spectral density in dBm/Hz
            (``link_budget``); -24 dBm/Hz = 46 dBm over 10 MHz (3GPP TR 36.814 macro) [A].
        downlink_noise_figure_db: noise figure of the device's receiver in dB (``link_budget``);
            9 dB (3GPP TR 36.814 UE) [A].
    """

    bandwidth_hz: float = 1e6  # [S]
    tx_power_w: float = 0.2  # [D]
    noise_psd_dbm_hz: float = -174.0  # [D]
    noise_figure_db: float = 9.0  # [D]
    distance_m: float = 300.0  # [D]
    downlink_rate_bps: float = 20e6  # [D]
    downlink_model: str = "fixed"  # [D]
    downlink_bandwidth_hz: float | None = None  # [D] None: the uplink's
    downlink_psd_dbm_hz: float = -24.0  # [A]
    downlink_noise_figure_db: float = 9.0  # [A]

    def __post_init__(self) -> None:
        _positive(self, "bandwidth_hz", self.bandwidth_hz)
        tx = _real(self, "tx_power_w", self.tx_power_w)
        if tx <= 0:
            raise ValueError(
                f"tx_power_w must be > 0 (a zero transmit power makes the uplink rate zero, "
                f"so no payload can be sent), got {tx}"
            )
        _real(self, "noise_psd_dbm_hz", self.noise_psd_dbm_hz)
        _non_negative(self, "noise_figure_db", self.noise_figure_db)
        _positive(self, "distance_m", self.distance_m)
        model = self.downlink_model
        if model not in DOWNLINK_MODELS:
            raise ValueError(
                f"downlink_model must be one of {list(DOWNLINK_MODELS)}, got {model!r}"
            )
        if self.downlink_bandwidth_hz is not None:
            _positive(self, "downlink_bandwidth_hz", self.downlink_bandwidth_hz)
        _real(self, "downlink_psd_dbm_hz", self.downlink_psd_dbm_hz)
        _non_negative(self, "downlink_noise_figure_db", self.downlink_noise_figure_db)
        if self.downlink_model == "link_budget":
            object.__setattr__(self, "downlink_rate_bps", self.link_budget_downlink_rate_bps())
        _positive(self, "downlink_rate_bps", self.downlink_rate_bps)

    @property
    def downlink_snr_db(self) -> float:
        """Mean downlink SNR of the ``link_budget`` model, dB.

        >>> round(RadioParams(distance_m=1000.0, downlink_model="link_budget").downlink_snr_db, 2)
        12.9
        """
        path_loss_db = 128.1 + 37.6 * math.log10(self.distance_m / 1000.0)
        # transmit PSD and noise PSD both per Hz: the downlink bandwidth cancels
        noise_dbm_hz = self.noise_psd_dbm_hz + self.downlink_noise_figure_db
        return self.downlink_psd_dbm_hz - path_loss_db - noise_dbm_hz

    def link_budget_downlink_rate_bps(self) -> float:
        """Ergodic Rayleigh-faded Shannon rate of the downlink at its mean SNR, bit/s.

        E[log2(1 + snr·X)], X ~ Exp(1), by 64-point Gauss-Laguerre quadrature (exact to ~1e-6
        relative for this smooth integrand).

        >>> radio = RadioParams(distance_m=1000.0, downlink_model="link_budget")
        >>> round(radio.downlink_rate_bps / 1e6, 2)  # Mbit/s over 1 MHz at 12.9 dB mean SNR
        3.71
        """
        bandwidth = (
            self.bandwidth_hz
            if self.downlink_bandwidth_hz is None
            else (self.downlink_bandwidth_hz)
        )
        snr = 10.0 ** (self.downlink_snr_db / 10.0)
        x, w = np.polynomial.laguerre.laggauss(64)
        return float(bandwidth * np.sum(w * np.log2(1.0 + snr * x)))


@dataclass(frozen=True, slots=True)
class LinkParams:
    """One-way propagation/protocol latencies of the device-edge link (docs/design.md §3).

    Attributes:
        uplink_latency_s: L_0, device -> edge; 20 ms [D] ("high latency": 140 ms [S]).
        downlink_latency_s: L_0_dl, edge -> device; 20 ms [D].
    """

    uplink_latency_s: float = 0.020  # [D]
    downlink_latency_s: float = 0.020  # [D]

    def __post_init__(self) -> None:
        _non_negative(self, "uplink_latency_s", self.uplink_latency_s)
        _non_negative(self, "downlink_latency_s", self.downlink_latency_s)


@dataclass(frozen=True, slots=True)
class PayloadParams:
    """The payload protocol (docs/design.md §4); bit sizes in :mod:`~gelato_env.system.payload`.

    Attributes:
        protocol: ``"topp"`` (GELATO [S]: token id + top-p set of q_i), ``"full"`` (vanilla
            distributed SD: token id + full q_i) or ``"dssd"`` (DSSD, arXiv 2507.12000: token
            id + scalar q_i(d_i) up; the full p_j down on rejection). ``"topp"`` [S].
        vocab_size: V, the vocabulary size the link carries; 151,936 (Qwen2.5) [S]. It is a
            parameter of its own so a small local model pair can model the paper's link cost.
        p_top: top-p mass of the sent set of q_i, in (0, 1]; 0.9 [S].
        prob_bits: b_q, bits per transmitted probability; 16 (fp16) [D].
        header_bits: per-message framing overhead, bits; 64 [D].
    """

    protocol: str = "topp"  # [S]
    vocab_size: int = 151_936  # [S] Qwen2.5
    p_top: float = 0.9  # [S]
    prob_bits: int = 16  # [D]
    header_bits: int = 64  # [D]

    def __post_init__(self) -> None:
        if not isinstance(self.protocol, str):
            raise TypeError(f"protocol must be a string, got {self.protocol!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {self.protocol!r}")
        if _integer(self, "vocab_size", self.vocab_size) < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        p_top = _real(self, "p_top", self.p_top)
        if not 0.0 < p_top <= 1.0:
            raise ValueError(f"p_top must be in (0, 1], got {p_top}")
        if _integer(self, "prob_bits", self.prob_bits) < 1:
            raise ValueError(f"prob_bits must be >= 1, got {self.prob_bits}")
        if _integer(self, "header_bits", self.header_bits) < 0:
            raise ValueError(f"header_bits must be >= 0, got {self.header_bits}")

    @property
    def token_id_bits(self) -> int:
        """ceil(log2 V), bits per token id (18 for V = 151,936).

        >>> PayloadParams().token_id_bits
        18
        """
        return (self.vocab_size - 1).bit_length()


@dataclass(frozen=True, slots=True)
class SystemParams:
    """Everything the latency/energy model needs for one device-edge pair.

    Attributes:
        device: the drafting device.
        edge: the verifying edge server.
        radio: uplink radio and downlink rate.
        link: one-way link latencies.
        payload: the SD payload protocol.
        gamma_max: largest drafting budget per round; 8 [D].
    """

    device: DeviceProfile
    edge: EdgeProfile
    radio: RadioParams = field(default_factory=RadioParams)
    link: LinkParams = field(default_factory=LinkParams)
    payload: PayloadParams = field(default_factory=PayloadParams)
    gamma_max: int = 8  # [D]

    def __post_init__(self) -> None:
        for name, cls in (
            ("device", DeviceProfile),
            ("edge", EdgeProfile),
            ("radio", RadioParams),
            ("link", LinkParams),
            ("payload", PayloadParams),
        ):
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise TypeError(f"{name} must be a {cls.__name__}, got {value!r}")
        if _integer(self, "gamma_max", self.gamma_max) < 1:
            raise ValueError(f"gamma_max must be >= 1, got {self.gamma_max}")
