"""Named device/edge profiles and system settings (DESIGN.md §3).

Profiles model the paper's hardware, not the machine gelato runs on: token statistics come
from real models, time and energy from these numbers. Provenance tags: [P] paper abstract,
[S] secondary reading of the paper, [A] other literature, [D] our default.

Device profiles (per draft token of a ~0.5B draft model):

- ``jetson_orin``: 25 ms, 5 W -> 125 mJ/token, idle 0.5 W [D] (DESIGN.md defaults).
- ``phone_npu``: 20 ms, 2.5 W -> 50 mJ/token, idle 0.3 W [A] (low end of the 44-280 mJ/token
  measured for on-device LLM decoding; an illustrative point in that range, not a measurement).
- ``phone_cpu``: 70 ms, 3.5 W -> 245 mJ/token, idle 0.5 W [A] (high end of the same range;
  illustrative).
- ``jetson_orin_dvfs``: ``jetson_orin`` through the DVFS model: C = 3.25e7 cycles/token at
  f = 1.3 GHz (25 ms) with kappa = 2.3e-27 (inside the 1e-28..1e-26 range [A]) -> 126 mJ/token
  [D].

Edge profiles (7B target, one forward pass over gamma+1 positions):

- ``a100_7b``: T_v = 30 ms + 2 ms·gamma [D] (DESIGN.md defaults).
- ``h100_7b``: ``a100_7b`` scaled by the HBM bandwidth ratio 2.0/3.35 TB/s (7B decoding is
  memory-bound): 17.9 ms + 1.2 ms·gamma [D].

Settings: ``paper`` (1 MHz uplink [S], 20 ms one-way latency [D], Qwen2.5 vocabulary 151,936
[S], ``topp`` payload [S], gamma_max 8 [D], ``jetson_orin`` + ``a100_7b``) and
``high_latency`` (``paper`` with 140 ms one-way latency both ways [S]).
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

DEVICE_PROFILES: dict[str, DeviceProfile] = {
    profile.name: profile
    for profile in (
        DeviceProfile("jetson_orin", draft_time_s=0.025, draft_power_w=5.0, idle_power_w=0.5),
        DeviceProfile("phone_npu", draft_time_s=0.020, draft_power_w=2.5, idle_power_w=0.3),
        DeviceProfile("phone_cpu", draft_time_s=0.070, draft_power_w=3.5, idle_power_w=0.5),
        DeviceProfile(
            "jetson_orin_dvfs",
            idle_power_w=0.5,
            dvfs=DvfsParams(cycles_per_token=3.25e7, freq_hz=1.3e9, kappa=2.3e-27),
        ),
    )
}

EDGE_PROFILES: dict[str, EdgeProfile] = {
    profile.name: profile
    for profile in (
        EdgeProfile("a100_7b", verify_base_s=0.030, verify_per_token_s=0.002),
        EdgeProfile("h100_7b", verify_base_s=0.0179, verify_per_token_s=0.0012),
    )
}

_PAPER: dict[str, Any] = {
    "device": "jetson_orin",
    "edge": "a100_7b",
    "bandwidth_hz": 1e6,  # [S] the paper's headline point
    "uplink_latency_s": 0.020,  # [D]
    "downlink_latency_s": 0.020,  # [D]
    "protocol": "topp",  # [S]
    "vocab_size": 151_936,  # [S] Qwen2.5
    "gamma_max": 8,  # [D]
}

SETTINGS: dict[str, dict[str, Any]] = {
    "paper": _PAPER,
    "high_latency": {**_PAPER, "uplink_latency_s": 0.140, "downlink_latency_s": 0.140},  # [S]
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
