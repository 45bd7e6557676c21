"""Named device/edge profiles and system settings (docs/design.md §3).

Profiles model the paper's hardware, not the machine gelato runs on: token statistics come
from real models, time and energy from these numbers. Provenance tags: [P] paper abstract,
[S] secondary reading of the paper, [A] other literature or a datasheet, [D] our default.

**Roofline** (how ``jetson_orin`` and ``a100_7b`` are derived). Decoding one token at batch 1
reads every weight once, so it is memory-bound: time = weight bytes / (eta_mem x memory
bandwidth). Verification of gamma + 1 positions reads the weights once and does
2 x params FLOPs per position, and the two are added (a conservative, non-overlapping
roofline): T_v(gamma) = bytes / (eta_mem x BW) + (gamma + 1) x 2 N / (eta_flop x peak).

==========================  =====================================  ===========================
input                       value                                  why
==========================  =====================================  ===========================
draft Qwen2.5-0.5B          0.49e9 params [A]                      model card; tied embeddings:
                                                                   the LM head reads them all
target Qwen2.5-7B           7.61e9 params [A]                      model card
bytes per parameter         2 (fp16/bf16) [D]                      no quantization assumed
Jetson Orin NX 16GB         102.4 GB/s LPDDR5 [A]                  NVIDIA datasheet
A100 80GB SXM               2.039 TB/s HBM2e, 312 TFLOP/s bf16 [A] NVIDIA datasheet
eta_mem                     0.7 [D]                                batch-1 GEMV kernels sustain
                                                                   ~60-80 % of peak DRAM BW
eta_flop                    0.5 [D]                                small-batch MFU
P_d (Orin NX drafting)      15 W [A]                               the module's 15 W power mode
                                                                   (modes: 10/15/25 W)
P_idle (Orin NX waiting)    3 W [D]                                module idle, GPU clock-gated,
                                                                   radio receiving: a few W
==========================  =====================================  ===========================

Results: ``jetson_orin`` tau_d = 0.98 GB / (0.7 x 102.4 GB/s) = 13.7 ms per draft token,
15 W -> 205 mJ/token (inside the 44-280 mJ/token measured for on-device LLM decoding [A]);
``a100_7b`` T_v = 10.76 ms + 0.098 ms x gamma.

Device profiles (per draft token of a ~0.5B draft model):

- ``jetson_orin``: the roofline above [A]/[D].
- ``phone_npu``: 20 ms, 2.5 W -> 50 mJ/token, idle 0.3 W [A] (low end of the 44-280 mJ/token
  measured for on-device LLM decoding; an illustrative point in that range, not a measurement).
- ``phone_cpu``: 70 ms, 3.5 W -> 245 mJ/token, idle 0.5 W [A] (high end of the same range;
  illustrative).
- ``jetson_orin_dvfs``: a DVFS device: C = 3.25e7 cycles/token at f = 1.3 GHz (25 ms) with
  kappa = 2.3e-27 (inside the 1e-28..1e-26 range [A]) -> 126 mJ/token [D].
- ``legacy_jetson``: the first build's 25 ms, 5 W, idle 0.5 W [D].

Edge profiles (7B target, one forward pass over gamma+1 positions):

- ``a100_7b``: the roofline above [A]/[D].
- ``h100_7b``: the same roofline on an H100 SXM (3.35 TB/s HBM3, 989 TFLOP/s bf16 [A]).
- ``legacy_a100``: the first build's T_v = 30 ms + 2 ms·gamma [D].

Settings:

- ``paper``: the reconstructed resource-constrained scenario of the paper's headline (1 MHz
  uplink [S]); every radio number below with its reason. Mean uplink SNR 3.9 dB (mean-SNR
  Shannon rate 1.79 Mbit/s over 1 MHz, less under Rayleigh fading), downlink 12.9 dB
  (3.71 Mbit/s ergodic over 1 MHz):

  ========================  ==================  =============================================
  quantity                  value               why
  ========================  ==================  =============================================
  device, edge              ``jetson_orin``,    roofline (above)
                            ``a100_7b``
  distance                  1000 m [A]          edge of a 3GPP TR 36.814 Case 3 macro cell
                                                (ISD 1732 m, cell radius 1 km): the device
                                                the paper's "resource-constrained" link serves
  path loss                 128.1 + 37.6 log10  3GPP TR 36.814 macro, 2 GHz [A]
                            (d/km) dB
  p_tx                      0.2 W (23 dBm) [A]  LTE/NR UE power class 3 maximum
  N_0                       -174 dBm/Hz [A]     thermal noise at 290 K
  uplink noise figure       5 dB [A]            base-station receiver (TR 36.814)
  uplink bandwidth B        1 MHz [S]           the paper's headline point; sweep 0.5-10 MHz
  downlink                  link budget [D]     same path, BS 46 dBm / 10 MHz [A], UE NF 9 dB
                                                [A], B_dl = B (paired allocation) [D]
  one-way latency L_0       20 ms each way [D]  core-network + scheduling latency of a
                                                cellular edge; 140 ms in ``high_latency`` [S]
  prob_bits b_q             16 [D]              fp16, the precision drafts are computed in
  vocabulary V              151,936 [A]         Qwen2.5 tokenizer (18-bit token ids)
  protocol, gamma_max       ``topp`` [S], 8 [D]
  ========================  ==================  =============================================

- ``high_latency``: ``paper`` with 140 ms one-way latency both ways [S].
- ``legacy_300m``: the first build's setting (``legacy_jetson`` + ``legacy_a100``, 300 m,
  9 dB noise figure, fixed 20 Mbit/s downlink; all [D]): a 1 MHz uplink at 19.6 dB mean SNR
  (~6.5 Mbit/s), on which top-p payloads cross in under a millisecond. Kept for comparison.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

from gelato_env.system.params import (
    DeviceProfile,
    DvfsParams,
    EdgeProfile,
    LinkParams,
    PayloadParams,
    RadioParams,
    SystemParams,
)

# -- roofline inputs (module docstring table) ------------------------------------------------
BYTES_PER_PARAM = 2.0  # [D] fp16/bf16 weights
DRAFT_PARAMS = 0.49e9  # [A] Qwen2.5-0.5B model card (tied embeddings read by the LM head)
TARGET_PARAMS = 7.61e9  # [A] Qwen2.5-7B model card
ORIN_NX_BANDWIDTH_BPS = 102.4e9  # [A] Jetson Orin NX 16GB LPDDR5, bytes/s
A100_BANDWIDTH_BPS = 2.039e12  # [A] A100 80GB SXM HBM2e, bytes/s
A100_PEAK_FLOPS = 312e12  # [A] A100 dense bf16
H100_BANDWIDTH_BPS = 3.35e12  # [A] H100 SXM HBM3, bytes/s
H100_PEAK_FLOPS = 989e12  # [A] H100 SXM dense bf16
MEMORY_EFFICIENCY = 0.7  # [D] sustained share of peak DRAM bandwidth for batch-1 GEMV
FLOP_EFFICIENCY = 0.5  # [D] model FLOP utilization of a small verification batch
ORIN_NX_DRAFT_POWER_W = 15.0  # [A] the Orin NX 16GB 15 W power mode
ORIN_NX_IDLE_POWER_W = 3.0  # [D] idle module (GPU clock-gated) plus a receiving radio


def roofline_decode_time_s(
    n_params: float,
    memory_bandwidth_bps: float,
    *,
    bytes_per_param: float = BYTES_PER_PARAM,
    efficiency: float = MEMORY_EFFICIENCY,
) -> float:
    """Seconds per decoded token of a memory-bound model: weight bytes / (efficiency x BW).

    >>> round(roofline_decode_time_s(DRAFT_PARAMS, ORIN_NX_BANDWIDTH_BPS) * 1e3, 2)  # ms
    13.67
    """
    return n_params * bytes_per_param / (efficiency * memory_bandwidth_bps)


def roofline_verify_times_s(
    n_params: float,
    memory_bandwidth_bps: float,
    peak_flops: float,
    *,
    bytes_per_param: float = BYTES_PER_PARAM,
    memory_efficiency: float = MEMORY_EFFICIENCY,
    flop_efficiency: float = FLOP_EFFICIENCY,
) -> tuple[float, float]:
    """(t0, t1) of T_v(gamma) = t0 + t1·gamma for one pass over gamma + 1 positions, seconds.

    t1 = 2 N / (eta_flop x peak) per position; t0 = the weight read plus the first position.

    >>> t0, t1 = roofline_verify_times_s(TARGET_PARAMS, A100_BANDWIDTH_BPS, A100_PEAK_FLOPS)
    >>> round(t0 * 1e3, 2), round(t1 * 1e3, 4)  # ms
    (10.76, 0.0976)
    """
    per_position = 2.0 * n_params / (flop_efficiency * peak_flops)
    weights = roofline_decode_time_s(
        n_params, memory_bandwidth_bps, bytes_per_param=bytes_per_param,
        efficiency=memory_efficiency,
    )  # fmt: skip
    return weights + per_position, per_position


_A100_T0, _A100_T1 = roofline_verify_times_s(TARGET_PARAMS, A100_BANDWIDTH_BPS, A100_PEAK_FLOPS)
_H100_T0, _H100_T1 = roofline_verify_times_s(TARGET_PARAMS, H100_BANDWIDTH_BPS, H100_PEAK_FLOPS)

DEVICE_PROFILES: dict[str, DeviceProfile] = {
    profile.name: profile
    for profile in (
        DeviceProfile(
            "jetson_orin",
            draft_time_s=roofline_decode_time_s(DRAFT_PARAMS, ORIN_NX_BANDWIDTH_BPS),
            draft_power_w=ORIN_NX_DRAFT_POWER_W,
            idle_power_w=ORIN_NX_IDLE_POWER_W,
        ),
        DeviceProfile("phone_npu", draft_time_s=0.020, draft_power_w=2.5, idle_power_w=0.3),
        DeviceProfile("phone_cpu", draft_time_s=0.070, draft_power_w=3.5, idle_power_w=0.5),
        DeviceProfile(
            "jetson_orin_dvfs",
            idle_power_w=0.5,
            dvfs=DvfsParams(cycles_per_token=3.25e7, freq_hz=1.3e9, kappa=2.3e-27),
        ),
        DeviceProfile("legacy_jetson", draft_time_s=0.025, draft_power_w=5.0, idle_power_w=0.5),
    )
}

EDGE_PROFILES: dict[str, EdgeProfile] = {
    profile.name: profile
    for profile in (
        EdgeProfile("a100_7b", verify_base_s=_A100_T0, verify_per_token_s=_A100_T1),
        EdgeProfile("h100_7b", verify_base_s=_H100_T0, verify_per_token_s=_H100_T1),
        EdgeProfile("legacy_a100", verify_base_s=0.030, verify_per_token_s=0.002),
    )
}

_PAPER: dict[str, Any] = {
    "device": "jetson_orin",  # roofline (module docstring)
    "edge": "a100_7b",  # roofline
    "bandwidth_hz": 1e6,  # [S] the paper's headline point
    "tx_power_w": 0.2,  # [A] 23 dBm, UE power class 3
    "noise_psd_dbm_hz": -174.0,  # [A] thermal noise at 290 K
    "noise_figure_db": 5.0,  # [A] base-station receiver, 3GPP TR 36.814
    "distance_m": 1000.0,  # [A] edge of a TR 36.814 Case 3 macro cell (radius 1 km)
    "downlink_model": "link_budget",  # [D] the uplink's path, the base station's power
    "downlink_bandwidth_hz": None,  # [D] the uplink's bandwidth (paired allocation)
    "downlink_psd_dbm_hz": -24.0,  # [A] 46 dBm over 10 MHz, TR 36.814 macro
    "downlink_noise_figure_db": 9.0,  # [A] UE receiver, TR 36.814
    "uplink_latency_s": 0.020,  # [D]
    "downlink_latency_s": 0.020,  # [D]
    "protocol": "topp",  # [S]
    "vocab_size": 151_936,  # [A] Qwen2.5 tokenizer
    "prob_bits": 16,  # [D] fp16 probabilities
    "gamma_max": 8,  # [D]
}

_LEGACY: dict[str, Any] = {
    "device": "legacy_jetson",
    "edge": "legacy_a100",
    "bandwidth_hz": 1e6,  # [S]
    "uplink_latency_s": 0.020,  # [D]
    "downlink_latency_s": 0.020,  # [D]
    "protocol": "topp",  # [S]
    "vocab_size": 151_936,  # [S] Qwen2.5
    "gamma_max": 8,  # [D]
}  # radio: the RadioParams defaults (300 m, 9 dB, fixed 20 Mbit/s downlink) [D]

SETTINGS: dict[str, dict[str, Any]] = {
    "paper": _PAPER,
    "high_latency": {**_PAPER, "uplink_latency_s": 0.140, "downlink_latency_s": 0.140},  # [S]
    "legacy_300m": _LEGACY,
}

_NESTED: dict[str, type[Any]] = {
    "radio": RadioParams,
    "link": LinkParams,
    "payload": PayloadParams,
}
_DEVICE_FIELDS = ("draft_time_s", "draft_power_w", "idle_power_w")
_EDGE_FIELDS = ("verify_base_s", "verify_per_token_s")
OVERRIDE_FIELDS: tuple[str, ...] = (
    "device",
    "edge",
    "gamma_max",
    *_DEVICE_FIELDS,
    *_EDGE_FIELDS,
    *(f.name for cls in _NESTED.values() for f in dataclasses.fields(cls)),
)


def _lookup(kind: str, name: str, table: dict[str, Any]) -> Any:
    if name not in table:
        raise ValueError(f"{kind} must be one of {sorted(table)}, got {name!r}")
    return table[name]


def device_profile(name: str) -> DeviceProfile:
    """The named device profile.

    >>> round(device_profile("phone_cpu").draft_energy_per_token_j, 6)
    0.245

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    profile: DeviceProfile = _lookup("device profile", name, DEVICE_PROFILES)
    return profile


def edge_profile(name: str) -> EdgeProfile:
    """The named edge profile.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    profile: EdgeProfile = _lookup("edge profile", name, EDGE_PROFILES)
    return profile


def system_setting(setting: str = "paper", **overrides: Any) -> SystemParams:
    """A named system setting with field overrides.

    Args:
        setting: ``"paper"`` or ``"high_latency"``.
        **overrides: any of ``OVERRIDE_FIELDS``: ``device``/``edge`` (a profile name or a
            profile object), ``gamma_max``, a device field (``draft_time_s``,
            ``draft_power_w``, ``idle_power_w``), an edge field (``verify_base_s``,
            ``verify_per_token_s``), or a field of :class:`RadioParams`,
            :class:`LinkParams` or :class:`PayloadParams`. ``None`` means "keep the
            setting's value", so a Hydra config can list every field with ``null``.

    Returns:
        The validated system parameters.

    Raises:
        ValueError: unknown setting, profile or field (the message lists the known ones).

    >>> params = system_setting("high_latency", bandwidth_hz=5e6, device="phone_cpu")
    >>> params.link.uplink_latency_s, params.radio.bandwidth_hz, params.device.name
    (0.14, 5000000.0, 'phone_cpu')
    """
    base = _lookup("setting", setting, SETTINGS)
    unknown = sorted(set(overrides) - set(OVERRIDE_FIELDS))
    if unknown:
        raise ValueError(f"system overrides must be among {sorted(OVERRIDE_FIELDS)}, got {unknown}")
    values = {**base, **{k: v for k, v in overrides.items() if v is not None}}

    device = values.pop("device")
    if isinstance(device, str):
        device = device_profile(device)
    device_changes = {k: values.pop(k) for k in _DEVICE_FIELDS if k in values}
    if device_changes and isinstance(device, DeviceProfile):
        if device.dvfs is not None and {"draft_time_s", "draft_power_w"} & set(device_changes):
            warnings.warn(
                f"device {device.name!r} uses DVFS, which overrides draft_time_s and "
                f"draft_power_w; the overrides {sorted(device_changes)} change nothing there",
                stacklevel=2,
            )
        device = dataclasses.replace(device, **device_changes)

    edge = values.pop("edge")
    if isinstance(edge, str):
        edge = edge_profile(edge)
    edge_changes = {k: values.pop(k) for k in _EDGE_FIELDS if k in values}
    if edge_changes and isinstance(edge, EdgeProfile):
        edge = dataclasses.replace(edge, **edge_changes)

    nested = {
        key: cls(
            **{f.name: values.pop(f.name) for f in dataclasses.fields(cls) if f.name in values}
        )
        for key, cls in _NESTED.items()
    }
    return SystemParams(device=device, edge=edge, gamma_max=values.pop("gamma_max"), **nested)
