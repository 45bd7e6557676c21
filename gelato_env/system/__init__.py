"""The physical system model of device-edge speculative decoding (docs/design.md §3-§5), numpy only.

Per SD round: the device drafts gamma tokens, sends a payload over a fading uplink, the edge
verifies and answers over the downlink; this package turns that into latency (s) and device
energy (J), and keeps the long-term energy budget's virtual queue. No torch is imported here.

Defaults of the ``paper`` setting and their provenance ([P] paper abstract, [S] secondary
reading of the paper, [A] other literature or a datasheet, [D] our default; the reasoning for
each number is in :mod:`gelato_env.system.profiles`):

=========================  ==========================================  ====
quantity                   default                                     tag
=========================  ==========================================  ====
draft time tau_d           13.7 ms per token (``jetson_orin``,         [A]/[D]
                           roofline 0.98 GB / (0.7 x 102.4 GB/s))
draft power P_d            15 W (205 mJ/token; peers 44-280 mJ/token)  [A]
idle power P_idle          3 W (0 = compute+radio-only model)          [D]
DVFS (tau_d=C/f, kC f²)    off; kappa 1e-28..1e-26                     [D]
verification T_v(gamma)    10.76 ms + 0.098 ms·gamma (``a100_7b``,     [A]/[D]
                           roofline), no device energy                 [S]
uplink bandwidth B         1 MHz (sweep 0.5-10 MHz)                    [S]
transmit power p_tx        0.2 W (23 dBm, UE power class 3)            [A]
noise                      -174 dBm/Hz, 5 dB base-station NF           [A]
path loss                  128.1 + 37.6·log10(d/km) dB, d = 1000 m     [A]
                           (cell edge; mean uplink SNR 3.9 dB)
fading                     Rayleigh block fading, i.i.d. per round     [D]
Gauss-Markov rho           0.9                                         [D]
downlink rate R_dl         link budget: 46 dBm / 10 MHz, UE NF 9 dB,   [A]/[D]
                           B_dl = B (3.71 Mbit/s at 1 MHz)
one-way latency L_0        20 ms each way; ``high_latency`` 140 ms     [D]/[S]
payload protocol           ``topp``, p_top 0.9                         [S]
vocabulary V               151,936 (Qwen2.5; 18-bit token ids)         [A]
probability bits b_q       16                                          [D]
header bits                64 per message                              [D]
gamma_max                  8                                           [D]
=========================  ==========================================  ====

The dataclass defaults of :mod:`gelato_env.system.params` (and the ``legacy_300m`` setting) keep
the first build's values: 25 ms / 5 W drafting, T_v = 30 + 2·gamma ms, 300 m, 9 dB, a fixed
20 Mbit/s downlink.

Modules: ``params`` (dataclasses), ``profiles`` (named profiles and settings), ``radio``
(link budget), ``channel`` (channel processes), ``payload`` (bits per round), ``cost``
(latency and energy of a round), ``energy`` (budget and virtual queue).
"""

from gelato_env.system.channel import (
    CHANNELS,
    ChannelBatch,
    ChannelProcess,
    ChannelState,
    GaussMarkovFading,
    RayleighBlockFading,
    TraceRate,
    TwoStateMarkovRate,
    load_rate_trace,
    make_channel,
)
from gelato_env.system.cost import RoundCost, round_cost
from gelato_env.system.energy import BUDGET_MODES, EnergyBudget
from gelato_env.system.params import (
    PROTOCOLS,
    DeviceProfile,
    DvfsParams,
    EdgeProfile,
    LinkParams,
    PayloadParams,
    RadioParams,
    SystemParams,
)
from gelato_env.system.payload import downlink_bits, uplink_bits, verdict_bits
from gelato_env.system.profiles import (
    DEVICE_PROFILES,
    EDGE_PROFILES,
    OVERRIDE_FIELDS,
    SETTINGS,
    device_profile,
    edge_profile,
    system_setting,
)
from gelato_env.system.radio import (
    noise_power_w,
    path_gain,
    path_loss_db,
    shannon_rate_bps,
    snr_db,
)

__all__ = [
    "BUDGET_MODES",
    "CHANNELS",
    "DEVICE_PROFILES",
    "EDGE_PROFILES",
    "OVERRIDE_FIELDS",
    "PROTOCOLS",
    "SETTINGS",
    "ChannelBatch",
    "ChannelProcess",
    "ChannelState",
    "DeviceProfile",
    "DvfsParams",
    "EdgeProfile",
    "EnergyBudget",
    "GaussMarkovFading",
    "LinkParams",
    "PayloadParams",
    "RadioParams",
    "RayleighBlockFading",
    "RoundCost",
    "SystemParams",
    "TraceRate",
    "TwoStateMarkovRate",
    "device_profile",
    "downlink_bits",
    "edge_profile",
    "load_rate_trace",
    "make_channel",
    "noise_power_w",
    "path_gain",
    "path_loss_db",
    "round_cost",
    "shannon_rate_bps",
    "snr_db",
    "system_setting",
    "uplink_bits",
    "verdict_bits",
]
