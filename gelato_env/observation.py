"""The environment's observation vector and ``info`` dict, in one place (docs/design.md §7).

The observation is a normalized ``float32`` Box. Every entry is a physical quantity divided by a
documented scale (an :class:`ObservationScales` field, a config option) and clipped to the
entry's bounds, so learned agents see values of order one while analytic agents can read the
physical values back with :func:`decode_observation` (exact up to float32 rounding, unless the
value was clipped at its upper bound).

Observation layout (index: field, physical unit, normalization, bounds):

====  =====================  ==========  =======================================  ============
idx   field                  unit        observed value                           bounds
====  =====================  ==========  =======================================  ============
0     ``queue_j``            J           Q / ``queue_scale_j``                    [0, queue_max]
1     ``rate_bps``           bit/s       R_k / ``rate_scale_bps``                 [0, rate_max]
2     ``link_latency_s``     s           L_0 / ``latency_scale_s``                [0, latency_max]
3     ``entropy_ema_nats``   nats        H-bar / ``entropy_scale_nats``           [0, entropy_max]
4     ``max_prob_ema``       1           EMA of draft max-prob                    [0, 1]
5     ``last_accepted``      tokens      n_accepted of the last round / gamma_max [0, 1]
6     ``last_budget``        tokens      budget of the last round / gamma_max     [0, 1]
7     ``budget_used_frac``   1           energy spent / energy allowed (so far)   [0, used_max]
8     ``progress``           1           n_generated / max_new_tokens             [0, 1]
====  =====================  ==========  =======================================  ============

The ``per_token`` action mode appends three in-round entries (the state of the round being
drafted, shown via ``RoundBackend.peek``):

====  =========================  ======  ========================================  ======
idx   field                      unit    observed value                            bounds
====  =========================  ======  ========================================  ======
9     ``n_drafted_in_round``     tokens  tokens drafted so far this round / gamma_max  [0, 1]
10    ``next_entropy_nats``      nats    H of the next draft token / entropy scale  [0, entropy_max]
11    ``next_max_prob``          1       max-prob of the next draft token           [0, 1]
====  =========================  ======  ========================================  ======

Definitions:
    * ``queue_j``: the virtual energy queue Q (docs/design.md §5) after the last round.
    * ``rate_bps``: the uplink rate of the channel state the *next* round will see (the block-
      fading state is observed before the decision, as GELATO does).
    * ``entropy_ema_nats`` / ``max_prob_ema``: exponential moving averages over drafted tokens,
      H-bar <- beta * H-bar + (1 - beta) * H_i per drafted token (beta = ``ema_decay``); at reset
      both start from the first draft token of the new prompt (``peek(1)``).
    * ``budget_used_frac``: cumulative device energy divided by the cumulative allowance of the
      budget mode (``per_round``: k * E-bar; ``per_token``: e-bar * sum N_k; ``per_second``:
      P-bar * sum T_k) since the queue was last reset; 0 before the first round. It persists with
      the queue under ``reset(options={"keep_queue": True})``.
    * ``next_entropy_nats`` / ``next_max_prob`` (``per_token`` only): statistics of the token the
      draft would propose next; 0 when the budget cap gamma_max is reached (nothing to draft).

``info`` keys returned by ``step`` (all python ``float``/``int``/``bool``; see :data:`INFO_KEYS`).
``reset`` returns the state keys only (``queue``, ``rate_bps``, ``prompt_index``,
``budget_used_frac``, ``n_generated``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ObsArray = npt.NDArray[np.float32]

# Field order: the index of each field in the observation vector.
(
    QUEUE,
    RATE,
    LATENCY,
    ENTROPY_EMA,
    MAX_PROB_EMA,
    LAST_ACCEPTED,
    LAST_BUDGET,
    BUDGET_USED,
    PROGRESS,
) = range(9)
N_DRAFTED_IN_ROUND, NEXT_ENTROPY, NEXT_MAX_PROB = 9, 10, 11

BASE_FIELDS: tuple[str, ...] = (
    "queue_j",
    "rate_bps",
    "link_latency_s",
    "entropy_ema_nats",
    "max_prob_ema",
    "last_accepted",
    "last_budget",
    "budget_used_frac",
    "progress",
)
PER_TOKEN_FIELDS: tuple[str, ...] = ("n_drafted_in_round", "next_entropy_nats", "next_max_prob")

INFO_KEYS: dict[str, str] = {
    # the round (docs/design.md §2)
    "prompt_index": "index of the prompt being generated",
    "budget": "reference drafting budget gamma~ of the round (tokens)",
    "n_drafted": "realized draft length gamma <= budget (tokens)",
    "n_accepted": "draft tokens accepted by the target",
    "n_tokens": "tokens added to the output, N_k",
    "n_generated": "tokens generated so far for this prompt",
    "entropies": "tuple of the round's drafted tokens' entropies H_i in drafting order, nats",
    "entropy_mean_nats": "mean entropy of the round's drafted tokens (0.0 if none), nats",
    "entropy_ema_nats": "entropy EMA after the round, nats",
    "max_prob_ema": "max-prob EMA after the round",
    "round_complete": "True when this step finished an SD round (always but per_token drafting)",
    # the system model (docs/design.md §3-4)
    "rate_bps": "uplink rate the round was sent at, bit/s",
    "snr_db": "uplink SNR of the round, dB",
    "uplink_bits": "uplink payload of the round, bits",
    "downlink_bits": "downlink payload of the round, bits",
    "latency_s": "round latency T_k, s",
    "energy_j": "device energy E_k = draft + radio + idle, J",
    "draft_energy_j": "device drafting energy, J",
    "radio_energy_j": "device transmit energy, J",
    "idle_energy_j": "device idle energy while waiting, J",
    # the energy budget (docs/design.md §5)
    "queue": "virtual energy queue Q after the round, J",
    "queue_before": "virtual energy queue Q the round's decision saw, J",
    "allowance_j": "energy the budget allowed for this round, J",
    "budget_used_frac": "cumulative energy / cumulative allowance since the queue reset",
    # reward terms
    "throughput_tps": "N_k / T_k, tokens/s",
    "reward_throughput": "the throughput reward term (N_k / T_k), tokens/s",
    "reward_penalty": "the dpp penalty term Q * E_k (0.0 in other reward modes), J^2",
    "cost": "constraint cost for Lagrangian methods: E_k, J",
}


@dataclass(frozen=True, slots=True)
class ObservationScales:
    """Normalization scales and upper bounds of the observation (all config options [D]).

    Each observed entry is ``physical / scale`` clipped to ``[0, max]``.
    """

    queue_scale_j: float = 1.0  # about 10 rounds of 0.1 J overspend [D]
    queue_max: float = 1.0e4  # normalized; Q beyond 10 kJ is clipped
    rate_scale_bps: float = 1.0e6  # the paper's 1 MHz headline bandwidth at 1 bit/s/Hz [D]
    rate_max: float = 1.0e3  # normalized; 1 Gbit/s
    latency_scale_s: float = 0.1  # between the 20 ms default and the 140 ms high-latency point
    latency_max: float = 100.0  # normalized; 10 s
    entropy_scale_nats: float = 10.0  # about ln(V) of a 150k vocabulary (11.9 nats)
    entropy_max: float = 2.0  # normalized; ln(V) <= 20 nats for any practical V
    used_max: float = 1.0e3  # normalized; spending 1000x the allowance is clipped

    def __post_init__(self) -> None:
        for name in (
            "queue_scale_j",
            "queue_max",
            "rate_scale_bps",
            "rate_max",
            "latency_scale_s",
            "latency_max",
            "entropy_scale_nats",
            "entropy_max",
            "used_max",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value}")


@dataclass(frozen=True, slots=True)
class ObservationFields:
    """One observation in physical units (the inverse of the normalization).

    Attributes:
        queue_j: virtual energy queue Q, J.
        rate_bps: uplink rate the next round will see, bit/s.
        link_latency_s: one-way link latency L_0, s.
        entropy_ema_nats: EMA of draft entropies, nats.
        max_prob_ema: EMA of draft max-probabilities, in [0, 1].
        last_accepted: accepted draft tokens in the last round (float: decoded from float32).
        last_budget: drafting budget of the last round (float).
        budget_used_frac: cumulative energy / cumulative allowance since the queue reset.
        progress: fraction of ``max_new_tokens`` generated for the current prompt, in [0, 1].
        n_drafted_in_round: ``per_token`` only, tokens drafted so far this round; else None.
        next_entropy_nats: ``per_token`` only, entropy of the next draft token, nats; else None.
        next_max_prob: ``per_token`` only, max-prob of the next draft token; else None.
    """

    queue_j: float
    rate_bps: float
    link_latency_s: float
    entropy_ema_nats: float
    max_prob_ema: float
    last_accepted: float
    last_budget: float
    budget_used_frac: float
    progress: float
    n_drafted_in_round: float | None = None
    next_entropy_nats: float | None = None
    next_max_prob: float | None = None


@dataclass(frozen=True, slots=True)
class ObservationSpec:
    """Layout, scales and bounds of one env's observation.

    Args:
        gamma_max: the env's largest drafting budget (normalizes token counts).
        per_token: include the three in-round entries of the ``per_token`` action mode.
        scales: normalization scales and bounds.
    """

    gamma_max: int = 8
    per_token: bool = False
    scales: ObservationScales = ObservationScales()
    # the encoders' constants, derived once: 1 / physical_scales() and high(), as arrays and lists
    _inverse: FloatArray = field(init=False, repr=False, compare=False)
    _high: ObsArray = field(init=False, repr=False, compare=False)
    _inverse_list: list[float] = field(init=False, repr=False, compare=False)
    _high_list: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.gamma_max, int) or isinstance(self.gamma_max, bool):
            raise TypeError(f"gamma_max must be an int, got {type(self.gamma_max).__name__}")
        if self.gamma_max < 1:
            raise ValueError(f"gamma_max must be >= 1, got {self.gamma_max}")
        object.__setattr__(self, "_inverse", 1.0 / self.physical_scales())
        object.__setattr__(self, "_high", self.high())
        object.__setattr__(self, "_inverse_list", self._inverse.tolist())
        object.__setattr__(self, "_high_list", self._high.astype(np.float64).tolist())

    @property
    def size(self) -> int:
        """Length of the observation vector."""
        return len(BASE_FIELDS) + (len(PER_TOKEN_FIELDS) if self.per_token else 0)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Field names in observation order."""
        return BASE_FIELDS + (PER_TOKEN_FIELDS if self.per_token else ())

    def physical_scales(self) -> FloatArray:
        """Scale of each entry: physical value = observed value * scale, shape ``(size,)``."""
        s = self.scales
        g = float(self.gamma_max)
        base = [s.queue_scale_j, s.rate_scale_bps, s.latency_scale_s, s.entropy_scale_nats]
        base += [1.0, g, g, 1.0, 1.0]
        if self.per_token:
            base += [g, s.entropy_scale_nats, 1.0]
        return np.asarray(base, dtype=np.float64)

    def high(self) -> ObsArray:
        """Upper bounds of the normalized entries, shape ``(size,)``; lower bounds are 0."""
        s = self.scales
        base = [s.queue_max, s.rate_max, s.latency_max, s.entropy_max, 1.0, 1.0, 1.0]
        base += [s.used_max, 1.0]
        if self.per_token:
            base += [1.0, s.entropy_max, 1.0]
        return np.asarray(base, dtype=np.float32)

    def encode(self, fields: ObservationFields) -> ObsArray:
        """Normalize physical values into an observation, shape ``(size,)``, clipped to bounds."""
        values = [getattr(fields, name) for name in self.field_names]
        if any(v is None for v in values):
            raise ValueError("per_token observations need n_drafted_in_round and next_* fields")
        return self.encode_raw(np.maximum(np.asarray(values, dtype=np.float64), 0.0))

    def encode_raw(
        self, raw: FloatArray | Sequence[float], out: ObsArray | None = None
    ) -> ObsArray:
        """Observations of non-negative physical values in field order, as the envs encode them.

        Each value times 1 / its scale, capped at its upper bound, in float32: the single env
        passes a list of ``size`` numbers, the vector env an ``(N, size)`` array (and a
        C-ordered ``out``).
        """
        # minimum in float32: rounding is monotone, so capping after the cast is the same
        return np.minimum(np.multiply(raw, self._inverse), self._high, out=out, dtype=np.float32)

    def encode_one(self, raw: Sequence[float]) -> ObsArray:
        """:meth:`encode_raw` of one observation, in Python floats (the single env's hot path).

        The same products and caps as ``encode_raw`` (``tests/env/test_accounting.py`` checks
        equality) as one straight-line expression and one numpy call (:func:`_encoder`): a
        step's budget is microseconds.
        """
        return _encoder(tuple(self._inverse_list), tuple(self._high_list))(raw)

    def encoder(self) -> Callable[[Sequence[float]], ObsArray]:
        """:meth:`encode_one` as a plain function (what the single env calls every step)."""
        return _encoder(tuple(self._inverse_list), tuple(self._high_list))

    def decode(self, obs: npt.ArrayLike) -> ObservationFields:
        """Read physical values back from a normalized observation of shape ``(size,)``."""
        arr = np.asarray(obs, dtype=np.float64)
        if arr.shape != (self.size,):
            raise ValueError(
                f"observation must have shape ({self.size},) for this spec "
                f"(per_token={self.per_token}), got {arr.shape}"
            )
        values = (arr * self.physical_scales()).tolist()
        return ObservationFields(*values)


@functools.cache
def _encoder(
    inverse: tuple[float, ...], high: tuple[float, ...]
) -> Callable[[Sequence[float]], ObsArray]:
    """``raw -> float32([min(raw[i] * inverse[i], high[i]), ...])`` with the constants inlined.

    Generated once per (scales, bounds): a list display of conditional expressions, no loop and
    no comprehension frame, is about half the cost of a comprehension over ``zip`` on this hot
    path. ``repr`` of a float round-trips exactly, so the constants are the spec's bits.

    >>> _encoder((0.5, 1.0), (1.0, 1.0))([4.0, 0.25])  # 4 * 0.5 capped at 1; 0.25 as is
    array([1.  , 0.25], dtype=float32)
    """
    entries = ", ".join(
        f"x if (x := raw[{i}] * {s!r}) < {h!r} else {h!r}"
        for i, (s, h) in enumerate(zip(inverse, high, strict=True))
    )
    namespace = {"array": np.array, "float32": np.float32, "inf": math.inf}
    return eval(f"lambda raw: array([{entries}], dtype=float32)", namespace)


def decode_observation(
    obs: npt.ArrayLike, spec: ObservationSpec | None = None
) -> ObservationFields:
    """Physical values of an observation.

    Args:
        obs: a normalized observation, shape ``(9,)`` or ``(12,)`` (``per_token`` mode).
        spec: the env's spec (``env.unwrapped.observation_spec``); the default spec (gamma_max 8,
            default scales, ``per_token`` inferred from the shape) when None.

    >>> spec = ObservationSpec(gamma_max=8)
    >>> fields = ObservationFields(2.0, 3.0e6, 0.02, 1.5, 0.6, 2.0, 4.0, 0.5, 0.25)
    >>> round(decode_observation(spec.encode(fields), spec).rate_bps)
    3000000
    """
    if spec is None:
        shape = np.shape(obs)
        spec = ObservationSpec(per_token=shape == (len(BASE_FIELDS) + len(PER_TOKEN_FIELDS),))
    return spec.decode(obs)
