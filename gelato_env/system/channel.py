"""Uplink channel processes: the rate R_k each SD round sees (docs/design.md §3).

One interface, :class:`ChannelProcess`, two ways to drive it. All randomness comes from the
``np.random.Generator`` passed in; processes hold no generator of their own.

- **Single env** (stateful, Python floats): ``reset(rng) -> ChannelState`` at episode start,
  then ``step(rng, elapsed_s) -> ChannelState`` once per round.
- **Vector env** (stateless, numpy, no Python loop over envs): ``reset_batch(rng, n)`` returns
  a :class:`ChannelBatch` of ``n`` independent channels, ``step_batch(rng, batch, elapsed_s)``
  advances all of them at once and returns a new batch. A batch carries each env's process
  memory (``memory``), so the process object itself stays untouched; to restart the channels
  of finished envs, draw ``fresh = process.reset_batch(rng, n)`` and
  ``batch = batch.where(done_mask, fresh)``.

``elapsed_s`` is the simulated time since the previous state (the previous round's latency);
only the wall-time mode of :class:`TraceRate` reads it, the other processes move one step per
round (block fading: the channel is constant within a round and redrawn between rounds).

Processes: :class:`RayleighBlockFading` (i.i.d. per round [D]), :class:`GaussMarkovFading`
(correlated AR(1) fading), :class:`TwoStateMarkovRate` (Gilbert-Elliott good/bad rates) and
:class:`TraceRate` (replay of a user CSV). :func:`make_channel` builds them by name.

Over 500 lines because it is the one home of the channel: the protocol, its state records
and the four processes, each a small class with its scalar and batch forms side by side (the
bit-for-bit pairing the envs rely on).
"""

from __future__ import annotations

import bisect
import csv
import inspect
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from gelato_env.system.params import RadioParams
from gelato_env.system.radio import (
    gain_for_snr_db,
    noise_power_w,
    path_gain,
    rate_and_snr_db,
    snr_db_for_rate,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class ChannelState(NamedTuple):
    """The uplink channel during one round.

    An immutable record; a ``NamedTuple`` rather than a frozen dataclass because the single env
    builds one per step (about 0.3 us less there, ``benchmarks/bench_env.py``).

    Attributes:
        rate_bps: R_k, uplink rate in bit/s (> 0).
        snr_db: received SNR in dB (for rate-driven processes, the SNR at which the Shannon
            rate over the radio's bandwidth equals ``rate_bps``).
        gain: linear power gain g_k = path gain × fading (equivalent gain for rate-driven
            processes).
    """

    rate_bps: float
    snr_db: float
    gain: float


@dataclass(frozen=True, slots=True)
class ChannelBatch:
    """The uplink channels of ``n`` parallel envs; every array has shape ``(n,)``.

    Attributes:
        rate_bps: uplink rate in bit/s per env.
        snr_db: SNR in dB per env.
        gain: linear power gain per env.
        memory: per-env process memory (its dtype is process-specific: the fading power gain
            for Rayleigh, the complex coefficient h for Gauss-Markov, the state index 0=good,
            1=bad for two-state, the row index or trace time for the trace).
    """

    rate_bps: FloatArray
    snr_db: FloatArray
    gain: FloatArray
    memory: npt.NDArray[Any]

    def where(self, mask: BoolArray, other: ChannelBatch) -> ChannelBatch:
        """Entries of ``other`` where ``mask`` (shape ``(n,)``) is True, of ``self`` elsewhere."""
        return ChannelBatch(
            rate_bps=np.where(mask, other.rate_bps, self.rate_bps),
            snr_db=np.where(mask, other.snr_db, self.snr_db),
            gain=np.where(mask, other.gain, self.gain),
            memory=np.where(mask, other.memory, self.memory),
        )

    def __len__(self) -> int:
        return int(self.rate_bps.shape[0])


@runtime_checkable
class ChannelProcess(Protocol):
    """A random process of the uplink rate, one state per SD round (module docstring)."""

    name: ClassVar[str]

    def reset(self, rng: np.random.Generator) -> ChannelState:
        """Draw the first round's channel and restart the process memory."""
        ...

    def step(self, rng: np.random.Generator, elapsed_s: float | None = None) -> ChannelState:
        """Advance to the next round's channel; ``elapsed_s`` is the simulated time since."""
        ...

    def reset_batch(self, rng: np.random.Generator, n: int) -> ChannelBatch:
        """``n`` independent first-round channels."""
        ...

    def step_batch(
        self, rng: np.random.Generator, batch: ChannelBatch, elapsed_s: FloatArray | None = None
    ) -> ChannelBatch:
        """Advance every channel of ``batch`` by one round (``elapsed_s``: shape ``(n,)``)."""
        ...


def _check_probability(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def _check_rate(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be > 0, got {value}")
    return float(value)


class _FadingChannel:
    """Shared link budget of the fading processes: rate from the fading power gain."""

    def __init__(self, radio: RadioParams) -> None:
        if not isinstance(radio, RadioParams):
            raise TypeError(f"radio must be a RadioParams, got {radio!r}")
        self.radio = radio
        self.path_gain = path_gain(radio.distance_m)
        self.noise_w = noise_power_w(
            radio.bandwidth_hz, radio.noise_psd_dbm_hz, radio.noise_figure_db
        )

    def _state(self, fading: float) -> ChannelState:
        gain = self.path_gain * fading
        radio = self.radio
        rate, snr = rate_and_snr_db(radio.bandwidth_hz, radio.tx_power_w, gain, self.noise_w)
        return ChannelState(rate, snr, gain)  # positional: the single env's hot path

    def _batch(self, fading: FloatArray, memory: npt.NDArray[Any]) -> ChannelBatch:
        gain = self.path_gain * fading
        radio = self.radio
        rate, snr = rate_and_snr_db(radio.bandwidth_hz, radio.tx_power_w, gain, self.noise_w)
        return ChannelBatch(rate_bps=rate, snr_db=snr, gain=gain, memory=memory)


class RayleighBlockFading(_FadingChannel):
    """i.i.d. Rayleigh block fading [D]: g_k = path gain × |h_k|², |h_k|² ~ Exp(1) per round.

    The channel is constant within a round and independent across rounds.

    Args:
        radio: the link budget (bandwidth, power, noise, distance).

    >>> ch = RayleighBlockFading(RadioParams())
    >>> round(ch.reset(np.random.default_rng(0)).rate_bps)
    5967891
    """

    name: ClassVar[str] = "rayleigh"
    #: a step is a fresh draw of the reset's distribution, independent of the past (a batched
    #: vector env may let a finished env keep its step's draw rather than draw again)
    memoryless: ClassVar[bool] = True

    def reset(self, rng: np.random.Generator) -> ChannelState:
        """First round's channel (a fresh Exp(1) fading draw)."""
        return self._state(rng.standard_exponential())

    def step(self, rng: np.random.Generator, elapsed_s: float | None = None) -> ChannelState:
        """Next round's channel, independent of the last; ``elapsed_s`` is ignored."""
        return self._state(rng.standard_exponential())

    def reset_batch(self, rng: np.random.Generator, n: int) -> ChannelBatch:
        """``n`` independent draws."""
        fading = rng.standard_exponential(n)
        return self._batch(fading, fading)

    def step_batch(
        self, rng: np.random.Generator, batch: ChannelBatch, elapsed_s: FloatArray | None = None
    ) -> ChannelBatch:
        """Fresh independent draws for every env."""
        return self.reset_batch(rng, len(batch))


class GaussMarkovFading(_FadingChannel):
    """Correlated Rayleigh fading: complex AR(1) h_k = rho·h_{k-1} + sqrt(1 - rho²)·w_k.

    h_0 and w_k are i.i.d. CN(0, 1), so h_k is stationary CN(0, 1) and g_k = path gain ×
    |h_k|² has the same marginal as :class:`RayleighBlockFading`, with lag-1 correlation
    rho of h. rho = 0 is i.i.d. fading, rho = 1 a frozen channel. Under Jakes' model
    rho = J_0(2·pi·f_D·T) for Doppler f_D and round duration T.

    Args:
        radio: the link budget.
        rho: AR(1) coefficient in [0, 1]; 0.9 [D].

    >>> ch = GaussMarkovFading(RadioParams(), rho=0.9)
    >>> round(ch.reset(np.random.default_rng(0)).rate_bps)
    1325623
    """

    name: ClassVar[str] = "gauss_markov"

    def __init__(self, radio: RadioParams, rho: float = 0.9) -> None:  # [D]
        super().__init__(radio)
        self.rho = _check_probability("rho", rho)
        self._innovation = math.sqrt(1.0 - self.rho**2)
        self._h = 0j

    @staticmethod
    def _cn01(rng: np.random.Generator) -> complex:
        re, im = rng.standard_normal(2)
        return complex(re, im) * math.sqrt(0.5)

    def reset(self, rng: np.random.Generator) -> ChannelState:
        """Draw h_0 from the stationary CN(0, 1)."""
        self._h = self._cn01(rng)
        return self._state(abs(self._h) ** 2)

    def step(self, rng: np.random.Generator, elapsed_s: float | None = None) -> ChannelState:
        """One AR(1) step per round; ``elapsed_s`` is ignored."""
        self._h = self.rho * self._h + self._innovation * self._cn01(rng)
        return self._state(abs(self._h) ** 2)

    @staticmethod
    def _cn01_batch(rng: np.random.Generator, n: int) -> npt.NDArray[np.complex128]:
        parts = rng.standard_normal((n, 2))  # (n, 2): real, imaginary, as in the scalar draw
        return parts.view(np.complex128)[:, 0] * math.sqrt(0.5)  # (n, 1) -> (n,)

    def reset_batch(self, rng: np.random.Generator, n: int) -> ChannelBatch:
        """``n`` independent stationary h_0."""
        h = self._cn01_batch(rng, n)
        return self._batch(np.abs(h) ** 2, h)

    def step_batch(
        self, rng: np.random.Generator, batch: ChannelBatch, elapsed_s: FloatArray | None = None
    ) -> ChannelBatch:
        """One AR(1) step for every env (memory: complex h, shape ``(n,)``)."""
        h = self.rho * batch.memory + self._innovation * self._cn01_batch(rng, len(batch))
        return self._batch(np.abs(h) ** 2, h)


class _RateChannel:
    """Rate-driven processes: SNR and gain are the equivalents of the rate under the radio."""

    def __init__(self, radio: RadioParams) -> None:
        if not isinstance(radio, RadioParams):
            raise TypeError(f"radio must be a RadioParams, got {radio!r}")
        self.radio = radio
        self.noise_w = noise_power_w(
            radio.bandwidth_hz, radio.noise_psd_dbm_hz, radio.noise_figure_db
        )

    def _state(self, rate_bps: float) -> ChannelState:
        snr = snr_db_for_rate(rate_bps, self.radio.bandwidth_hz)
        return ChannelState(
            rate_bps=rate_bps,
            snr_db=snr,
            gain=gain_for_snr_db(snr, self.radio.tx_power_w, self.noise_w),
        )

    def _batch(self, rate_bps: FloatArray, memory: npt.NDArray[Any]) -> ChannelBatch:
        snr = snr_db_for_rate(rate_bps, self.radio.bandwidth_hz)
        return ChannelBatch(
            rate_bps=rate_bps,
            snr_db=snr,
            gain=gain_for_snr_db(snr, self.radio.tx_power_w, self.noise_w),
            memory=memory,
        )


class TwoStateMarkovRate(_RateChannel):
    """Gilbert-Elliott two-state Markov rate: a good and a bad uplink rate.

    Each round the state flips good -> bad w.p. ``p_good_to_bad`` and bad -> good w.p.
    ``p_bad_to_good``; the first state is drawn from the stationary distribution
    P(bad) = p_gb / (p_gb + p_bg).

    Args:
        radio: used only for the equivalent SNR/gain of each rate.
        good_rate_bps: rate in the good state; 6.5 Mbit/s [D] (the mean-SNR Shannon rate of the
            default radio).
        bad_rate_bps: rate in the bad state; 0.5 Mbit/s [D].
        p_good_to_bad: per-round transition probability; 0.1 [D].
        p_bad_to_good: per-round transition probability; 0.3 [D].
    """

    name: ClassVar[str] = "two_state"

    def __init__(
        self,
        radio: RadioParams,
        good_rate_bps: float = 6.5e6,  # [D]
        bad_rate_bps: float = 0.5e6,  # [D]
        p_good_to_bad: float = 0.1,  # [D]
        p_bad_to_good: float = 0.3,  # [D]
    ) -> None:
        super().__init__(radio)
        self.rates_bps = np.array(
            [_check_rate("good_rate_bps", good_rate_bps), _check_rate("bad_rate_bps", bad_rate_bps)]
        )
        self.p_good_to_bad = _check_probability("p_good_to_bad", p_good_to_bad)
        self.p_bad_to_good = _check_probability("p_bad_to_good", p_bad_to_good)
        if self.p_good_to_bad + self.p_bad_to_good == 0:
            raise ValueError("p_good_to_bad and p_bad_to_good must not both be 0, got 0 and 0")
        self.p_bad_stationary = self.p_good_to_bad / (self.p_good_to_bad + self.p_bad_to_good)
        # P(next state is bad | state): index 0 = good, 1 = bad.
        self._p_next_bad = np.array([self.p_good_to_bad, 1.0 - self.p_bad_to_good])
        self._bad = 0

    def reset(self, rng: np.random.Generator) -> ChannelState:
        """Draw the first state from the stationary distribution."""
        self._bad = int(rng.random() < self.p_bad_stationary)
        return self._state(float(self.rates_bps[self._bad]))

    def step(self, rng: np.random.Generator, elapsed_s: float | None = None) -> ChannelState:
        """One Markov transition per round; ``elapsed_s`` is ignored."""
        self._bad = int(rng.random() < self._p_next_bad[self._bad])
        return self._state(float(self.rates_bps[self._bad]))

    def reset_batch(self, rng: np.random.Generator, n: int) -> ChannelBatch:
        """``n`` independent stationary first states (memory: state index, 1 = bad)."""
        bad = (rng.random(n) < self.p_bad_stationary).astype(np.int64)
        return self._batch(self.rates_bps[bad], bad)

    def step_batch(
        self, rng: np.random.Generator, batch: ChannelBatch, elapsed_s: FloatArray | None = None
    ) -> ChannelBatch:
        """One Markov transition for every env."""
        bad = (rng.random(len(batch)) < self._p_next_bad[batch.memory]).astype(np.int64)
        return self._batch(self.rates_bps[bad], bad)


TRACE_HEADER = ("timestamp_s", "rate_bps")
TRACE_ADVANCE_MODES = ("row", "time")


def load_rate_trace(path: str | Path) -> tuple[FloatArray, FloatArray]:
    """Read a bandwidth trace CSV with header ``timestamp_s,rate_bps``.

    Blank lines and lines starting with ``#`` are skipped; a UTF-8 byte-order mark (as
    spreadsheet programs write) is allowed. Timestamps must strictly increase, rates be finite
    and > 0.

    Args:
        path: the CSV file.

    Returns:
        ``(timestamp_s, rate_bps)``, two float arrays of shape ``(n_rows,)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed file; the message names the file and the line.
    """
    path = Path(path)
    try:
        return _read_rate_trace(path)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text CSV ({exc})") from None


def _read_rate_trace(path: Path) -> tuple[FloatArray, FloatArray]:
    timestamps: list[float] = []
    rates: list[float] = []
    header_seen = False
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            cells = [cell.strip() for cell in row]
            if not cells or cells == [""] or cells[0].startswith("#"):
                continue
            where = f"{path}, line {line_no}"
            if not header_seen:
                if tuple(cells) != TRACE_HEADER:
                    raise ValueError(
                        f"{where}: expected the header {','.join(TRACE_HEADER)!r}, got {row!r}"
                    )
                header_seen = True
                continue
            if len(cells) != 2:
                raise ValueError(f"{where}: expected 2 columns, got {len(cells)}: {row!r}")
            try:
                t, rate = float(cells[0]), float(cells[1])
            except ValueError:
                raise ValueError(f"{where}: non-numeric value in {row!r}") from None
            if not (math.isfinite(t) and math.isfinite(rate)):
                raise ValueError(f"{where}: values must be finite, got {row!r}")
            if rate <= 0:
                raise ValueError(f"{where}: rate_bps must be > 0, got {rate}")
            if timestamps and t <= timestamps[-1]:
                raise ValueError(
                    f"{where}: timestamps must strictly increase, got {t} after {timestamps[-1]}"
                )
            timestamps.append(t)
            rates.append(rate)
    if not header_seen:
        raise ValueError(f"{path}: empty file, expected the header {','.join(TRACE_HEADER)!r}")
    if not rates:
        raise ValueError(f"{path}: no data rows after the header")
    return np.asarray(timestamps, dtype=np.float64), np.asarray(rates, dtype=np.float64)


class TraceRate(_RateChannel):
    """Replay of a user-supplied uplink bandwidth trace (CSV ``timestamp_s,rate_bps``).

    Two ways to advance, chosen by ``advance``:

    - ``"row"`` [D]: each round moves to the next row, whatever the timestamps say.
    - ``"time"``: the rate is piecewise constant in time (row i holds on
      [t_i, t_{i+1}); the last row holds as long as the one before it); each step advances
      the trace clock by ``elapsed_s`` (the previous round's latency, passed by the env), or
      by ``step_s`` when ``elapsed_s`` is None.

    Both wrap around at the end of the trace. ``reset`` starts at the first row, or, with
    ``random_start``, at a uniformly drawn row (row mode) or time (time mode).

    Args:
        radio: used only for the equivalent SNR/gain of each rate.
        path: the CSV file (see :func:`load_rate_trace`).
        advance: ``"row"`` or ``"time"``.
        step_s: time step in seconds when ``step`` gets no ``elapsed_s`` (time mode); 0.1 [D].
        random_start: start each episode at a random point of the trace; False [D].

    Raises:
        TypeError: ``path`` is not a path.
        FileNotFoundError: no such file.
        ValueError: a malformed file (naming the file and line) or a bad ``advance``/``step_s``.
    """

    name: ClassVar[str] = "trace"

    def __init__(
        self,
        radio: RadioParams,
        path: str | Path,
        advance: str = "row",  # [D]
        step_s: float = 0.1,  # [D]
        random_start: bool = False,  # [D]
    ) -> None:
        super().__init__(radio)
        if advance not in TRACE_ADVANCE_MODES:
            raise ValueError(f"advance must be one of {list(TRACE_ADVANCE_MODES)}, got {advance!r}")
        self.step_s = _check_rate("step_s", step_s)
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a CSV file path (str or os.PathLike), got {path!r}")
        self.path = Path(path)
        self.advance = advance
        self.random_start = bool(random_start)
        self.timestamp_s, self.trace_rate_bps = load_rate_trace(self.path)
        n_rows = self.timestamp_s.shape[0]
        last_hold_s = self.timestamp_s[-1] - self.timestamp_s[-2] if n_rows > 1 else self.step_s
        # The trace covers [t_0, t_end); time mode wraps modulo its duration.
        self.duration_s = float(self.timestamp_s[-1] - self.timestamp_s[0] + last_hold_s)
        self._offsets_s = self.timestamp_s - self.timestamp_s[0]  # (n_rows,)
        # Python-list copies keep the single-env step free of numpy scalar overhead.
        self._offsets_list: list[float] = self._offsets_s.tolist()
        self._rates_list: list[float] = self.trace_rate_bps.tolist()
        self._position: float = 0.0

    @property
    def n_rows(self) -> int:
        """Data rows in the trace."""
        return int(self.timestamp_s.shape[0])

    def _row_at(self, position: FloatArray) -> npt.NDArray[np.int64]:
        if self.advance == "row":
            return position.astype(np.int64)
        return np.searchsorted(self._offsets_s, position, side="right").astype(np.int64) - 1

    def _start(self, rng: np.random.Generator, n: int | None) -> Any:
        if not self.random_start:
            return 0.0 if n is None else np.zeros(n)
        if self.advance == "row":
            rows = rng.integers(self.n_rows, size=n)
            return float(rows) if n is None else rows.astype(np.float64)
        return rng.random(n) * self.duration_s

    def _advanced(self, position: Any, elapsed_s: Any) -> Any:
        if self.advance == "row":
            return (position + 1.0) % self.n_rows
        return (position + (self.step_s if elapsed_s is None else elapsed_s)) % self.duration_s

    def reset(self, rng: np.random.Generator) -> ChannelState:
        """Start at the first row (or a random point with ``random_start``)."""
        self._position = float(self._start(rng, None))
        return self._current()

    def step(self, rng: np.random.Generator, elapsed_s: float | None = None) -> ChannelState:
        """Advance one row, or ``elapsed_s`` seconds (time mode); no randomness is drawn."""
        self._position = float(self._advanced(self._position, elapsed_s))
        return self._current()

    def _current(self) -> ChannelState:
        if self.advance == "row":
            row = int(self._position)
        else:
            row = bisect.bisect_right(self._offsets_list, self._position) - 1
        return self._state(self._rates_list[row])

    def reset_batch(self, rng: np.random.Generator, n: int) -> ChannelBatch:
        """``n`` channels at the trace start (memory: row index or trace time, float)."""
        position = self._start(rng, n)
        return self._batch(self.trace_rate_bps[self._row_at(position)], position)

    def step_batch(
        self, rng: np.random.Generator, batch: ChannelBatch, elapsed_s: FloatArray | None = None
    ) -> ChannelBatch:
        """Advance every env one row, or by its own ``elapsed_s`` (shape ``(n,)``)."""
        position = self._advanced(batch.memory, elapsed_s)
        return self._batch(self.trace_rate_bps[self._row_at(position)], position)


CHANNELS: dict[str, type[Any]] = {
    cls.name: cls for cls in (RayleighBlockFading, GaussMarkovFading, TwoStateMarkovRate, TraceRate)
}


def make_channel(name: str, radio: RadioParams, **kwargs: Any) -> ChannelProcess:
    """Build a channel process by name.

    Args:
        name: ``"rayleigh"``, ``"gauss_markov"``, ``"two_state"`` or ``"trace"``.
        radio: the link budget.
        **kwargs: the process's own constructor arguments (e.g. ``rho=0.95``,
            ``path="bw.csv"``, ``advance="time"``).

    Raises:
        ValueError: unknown name, an argument the process does not take, or a required one
            missing (``"trace"`` needs ``path``).

    >>> make_channel("gauss_markov", RadioParams(), rho=0.5).rho
    0.5
    """
    if name not in CHANNELS:
        raise ValueError(f"channel must be one of {sorted(CHANNELS)}, got {name!r}")
    cls = CHANNELS[name]
    params = inspect.signature(cls.__init__).parameters
    allowed = [p for p in params if p not in ("self", "radio")]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"channel {name!r} takes {allowed}, got unknown {unknown}")
    for p in allowed:
        if params[p].default is inspect.Parameter.empty and p not in kwargs:
            raise ValueError(
                f"channel {name!r} needs the parameter {p!r} in channel_params (it takes "
                f"{allowed}), got {kwargs!r}"
            )
    channel: ChannelProcess = cls(radio, **kwargs)
    return channel
