"""GELATO's calibration on a trace's training prompts (docs/design.md §5, Calibration).

:meth:`agents.gelato.GelatoPolicy.bind` (and the baselines that borrow its thresholds,
:mod:`agents.baselines`) calibrate on the *training* side of the hash split of the env's trace
(:func:`training_prompts`, the split ``scripts/train.py`` also holds out): the acceptance model
and pair statistics (:func:`training_statistics`), the entropy-bucket exit thresholds under the
env's system model (:func:`calibrated_exit_params`). Results are memoized per process, since the
evaluation harness binds many policies to one trace. :func:`calibration_trace` finds the trace:
the env's, a given one, or gelato's default trace for the default pair; without one GELATO plans
with the documented fallbacks below.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.forecast import RoundCostModel
from gelato_env.system import EnergyBudget, SystemParams

DEFAULT_TOPP_SIZE = 8.0  # top-p set entries per draft token when no trace is available [D]
DEFAULT_ALPHA_PRIOR = 0.7  # mean acceptance when no trace is available [D]
DEFAULT_WINDOW_TOKENS = 4.0  # running-mean window when no trace is available [D]
EVAL_FRACTION = 0.2  # held-out share of a trace's prompts, as scripts/train.py [D]


@dataclass(frozen=True, slots=True)
class Calibration:
    """What GELATO plans with and where it came from (set by :meth:`GelatoPolicy.bind`).

    Attributes:
        source: the trace directory, or ``"fallback"`` (no trace: defaults, with a warning).
        n_prompts: training prompts used (0 for the fallback).
        a: acceptance model scale.
        b: acceptance model slope, 1/nats.
        alpha_prior: mean per-token acceptance of verified draft tokens.
        window_tokens: effective window of the running mean of alpha^(H_i), tokens.
        topp_size_mean: mean top-p set size per draft token, entries.
        exit_params: parameters of the inner exit rule.
        exit_score: the calibration objective of the chosen exit, and without exit, or None.
    """

    source: str
    n_prompts: int
    a: float
    b: float
    alpha_prior: float
    window_tokens: float
    topp_size_mean: float
    exit_params: Mapping[str, float]
    exit_score: tuple[float, float] | None = None


_MEMO: dict[Any, Any] = {}


def memoized(key: Any, compute: Any) -> Any:
    """Memoize a calibration result per process (the harness binds many policies per trace)."""
    if key not in _MEMO:
        if len(_MEMO) > 64:
            _MEMO.clear()
        _MEMO[key] = compute()
    return _MEMO[key]


def training_prompts(trace: Any, eval_fraction: float = EVAL_FRACTION) -> tuple[int, ...]:
    """Trace prompt indices GELATO calibrates on: the training side of the hash split.

    The split is :func:`agents.prompt_split.split_prompts` (by the SHA-256 of each prompt id), the
    same as ``scripts/train.py`` and ``scripts/evaluate.py`` hold out; a one-prompt trace is
    used whole (with a warning: calibration and evaluation then share the prompt).
    """
    from agents.prompt_split import split_prompts

    ids = tuple(trace.header.prompt_ids)
    if len(ids) < 2:
        warnings.warn(
            f"trace {trace.path} has {len(ids)} prompt: GELATO calibrates on it and evaluates on "
            "it too",
            stacklevel=3,
        )
        return tuple(range(len(ids)))
    return split_prompts(ids, eval_fraction).train


def training_statistics(trace: Any, train: tuple[int, ...]) -> Any:
    """:func:`gelato_env.traces.fit.pair_statistics` of ``train`` (memoized per process)."""
    from gelato_env.traces.fit import pair_statistics

    key = ("stats", str(trace.path), trace.header.checksum, train)
    return memoized(key, lambda: pair_statistics(trace, train))


def calibrated_exit_params(
    trace: Any,
    train: tuple[int, ...],
    system: SystemParams,
    budget: EnergyBudget,
    topp_size_mean: float,
    objective: str = "throughput",
) -> tuple[dict[str, float], tuple[float, float]]:
    """Entropy-bucket parameters chosen on ``train`` prompts, and (score, no-exit score).

    :func:`gelato_env.traces.fit.calibrate_entropy_bucket` with each round's latency and energy
    from ``system`` at :func:`mean_rate_bps` (memoized per trace, prompts, system, objective).
    A rule that never exits is returned as ``threshold_nats = 1e9``.
    """
    from gelato_env.traces.fit import calibrate_entropy_bucket

    model = RoundCostModel(system, budget, topp_size_mean)
    forecast = model.forecast(mean_rate_bps(system), 0.0)
    key = ("exit", str(trace.path), trace.header.checksum, train, system, objective)
    result = memoized(key, lambda: calibrate_entropy_bucket(
        trace, train, forecast.latency_s, forecast.energy_j,
        budget=system.gamma_max, objective=objective,
    ))  # fmt: skip
    params = {"threshold_nats": result.threshold_nats, "bucket_nats": result.bucket_nats}
    if math.isinf(result.threshold_nats):  # the best rule never exits
        params = {"threshold_nats": 1e9, "bucket_nats": 0.0}
    return params, (result.score, result.no_exit_score)


def mean_rate_bps(system: SystemParams) -> float:
    """Uplink Shannon rate at the mean SNR (no fading), bit/s: the calibration's rate [D]."""
    from gelato_env.system.radio import noise_power_w, path_gain, shannon_rate_bps

    radio = system.radio
    noise = noise_power_w(radio.bandwidth_hz, radio.noise_psd_dbm_hz, radio.noise_figure_db)
    gain = path_gain(radio.distance_m)
    return float(shannon_rate_bps(radio.bandwidth_hz, radio.tx_power_w, gain, noise))


def calibration_trace(base: Any, path: str | None) -> Any:
    """The env's replay trace, else ``path``, else the default trace for the default pair.

    The default trace counts only when the env's live backend serves the trace's own prompts
    (the default live backend does): a live backend passed in as an object may run any pair.
    """
    trace = base.backend.trace  # RoundBackend.trace: None for live models
    if trace is not None:
        return trace
    from gelato_env.traces.store import TraceError, load_trace

    if path is not None:
        return load_trace(Path(path))
    config = base.config
    if config.backend != "live" or config.model_pair != "default":
        return None
    from gelato_env.traces.default import default_trace_path

    try:
        trace = load_trace(default_trace_path())
    except TraceError:
        return None
    prompts = getattr(base.backend, "prompts", None)  # a LiveBackend's prompt token ids
    if not prompts or list(prompts[0]) != trace.prompt_ids_of(0).tolist():
        return None  # not the default pair's backend
    return trace
